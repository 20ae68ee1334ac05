from __future__ import annotations

from datetime import timedelta

import pytest

from storage import inbound
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


async def test_second_record_is_refused_and_first_answer_kept(
    database: Database, clock: Clock
) -> None:
    async with database.begin() as conn:
        assert await inbound.record(
            conn,
            source="website",
            event_id="e1",
            event_type="t",
            status_code=202,
            answer="first",
            now=clock(),
        )
        assert not await inbound.record(
            conn,
            source="website",
            event_id="e1",
            event_type="t",
            status_code=200,
            answer="second",
            now=clock(),
        )
        # Same id from another source is another event.
        assert await inbound.record(
            conn,
            source="auth0",
            event_id="e1",
            event_type="t",
            status_code=200,
            answer="x",
            now=clock(),
        )
        stored = await inbound.find(conn, "website", "e1")
    assert stored == inbound.StoredAnswer(202, "first")


async def test_prune_forgets_old_events(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        await inbound.record(
            conn,
            source="website",
            event_id="old",
            event_type="t",
            status_code=202,
            answer="a",
            now=clock(),
        )
    clock.advance(4 * 86400)
    async with database.begin() as conn:
        await inbound.record(
            conn,
            source="website",
            event_id="new",
            event_type="t",
            status_code=202,
            answer="a",
            now=clock(),
        )
        assert await inbound.prune(conn, older_than=clock() - timedelta(days=3)) == 1
        assert await inbound.find(conn, "website", "old") is None
        assert await inbound.find(conn, "website", "new") is not None
