from __future__ import annotations

import pytest

from storage import audit
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


async def test_lines_are_found_by_subject_oldest_first(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        first = await audit.record(
            conn,
            at=clock(),
            actor="ana",
            host="ops-1",
            action="tickets.revoke",
            subject="user:a",
            rows=2,
            detail="reason: phished",
        )
        clock.advance(5)
        await audit.record(conn, at=clock(), actor="ana", host="ops-1", action="jobs.retry", rows=3)
        clock.advance(5)
        second = await audit.record(
            conn, at=clock(), actor="bo", host="ops-2", action="forget", subject="user:a", rows=9
        )
    async with database.read() as conn:
        lines = await audit.for_subjects(conn, ["user:a", "user:other"])
        latest = await audit.recent(conn, limit=2)
        none = await audit.for_subjects(conn, [])
    assert [line.id for line in lines] == [first, second]
    assert (lines[0].actor, lines[0].host, lines[0].rows, lines[0].detail) == (
        "ana",
        "ops-1",
        2,
        "reason: phished",
    )
    assert [line.action for line in latest] == ["forget", "jobs.retry"]
    assert none == []
