"""Fixtures of the domain's tests: a bare Runtime on the test's database and clock,
and the whole service in-process over the Auth0 emulator (real HTTP) and a real
SMTP server, for the flow tests (each module brings its own `emulator_url`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from hooks.app import create_app
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from storage.database import Database
from tests.conftest import Clock
from tests.mail.servers import Recorder, Server, StartServer


@pytest.fixture
async def runtime(
    database: Database, database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> AsyncIterator[Runtime]:
    built = Runtime.build(settings_for(database_url), db=database, now=clock)
    yield built
    await built.auth0.aclose()
    await built.live_auth0.aclose()
    await built.bulk_auth0.aclose()
    await built.mailer.aclose()
    await built.http.aclose()


ServiceParts = tuple[httpx.AsyncClient, Runtime, Server]


@pytest.fixture
def service(
    database_url: str,
    clock: Clock,
    smtp_server: StartServer,
    settings_for: Callable[..., Settings],
) -> Callable[[str], AbstractAsyncContextManager[ServiceParts]]:
    """`async with service(emulator_url, **env) as (client, runtime, smtp)`: the service
    as the flow tests drive it, with a Recorder SMTP server and fast mail retries;
    `env` overrides settings."""

    @asynccontextmanager
    async def start(emulator_url: str, **env: str) -> AsyncIterator[ServiceParts]:
        smtp = smtp_server(Recorder())
        settings = settings_for(
            database_url,
            AUTH0_BASE_URL=emulator_url,
            SMTP_URL=smtp.url(),
            MAIL_RETRY_INITIAL_SECONDS="1",
            **env,
        )
        runtime = Runtime.build(settings, now=clock)
        app = create_app(settings, runtime=runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://resetrelay.test") as c:
            yield c, runtime, smtp
        await runtime.aclose()

    return start
