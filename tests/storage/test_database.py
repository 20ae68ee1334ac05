from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, func, select

from storage import jobs
from storage.database import Database
from storage.models import Job
from storage.sql import table

pytestmark = pytest.mark.anyio
_jobs = table(Job)


def _insert(conn: Connection, kind: str) -> int:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    result = conn.execute(
        _jobs.insert()
        .values(
            kind=kind,
            payload={},
            status=jobs.QUEUED,
            attempts=0,
            max_attempts=1,
            run_after=now,
            created_at=now,
            updated_at=now,
        )
        .returning(_jobs.c.id)
    )
    return int(result.scalar_one())


async def _count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(_jobs))).scalar_one())


async def test_run_commits_what_work_wrote_and_returns_its_value(database: Database) -> None:
    job_id = await database.run(lambda conn: _insert(conn, "a"))
    assert job_id > 0
    assert await _count(database) == 1  # visible to the async engine: committed


async def test_run_rolls_back_and_reraises_when_work_fails(database: Database) -> None:
    class Boom(Exception):
        pass

    def work(conn: Connection) -> None:
        _insert(conn, "a")
        raise Boom

    with pytest.raises(Boom):
        await database.run(work)
    assert await _count(database) == 0


async def test_run_read_sees_committed_rows(database: Database) -> None:
    async with database.begin() as conn:
        await jobs.enqueue(conn, "a", {}, now=datetime(2026, 1, 1, tzinfo=UTC))
    count = await database.run_read(
        lambda conn: conn.execute(select(func.count()).select_from(_jobs)).scalar_one()
    )
    assert count == 1
