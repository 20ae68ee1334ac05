"""A Runtime on the test's database and clock, for the domain's focused tests (no
Auth0 or SMTP call is made through it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from storage.database import Database
from tests.conftest import Clock


@pytest.fixture
async def runtime(
    database: Database, database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> AsyncIterator[Runtime]:
    built = Runtime.build(settings_for(database_url), db=database, now=clock)
    yield built
    await built.auth0.aclose()
    await built.live_auth0.aclose()
    await built.mailer.aclose()
    await built.http.aclose()
