from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from resetrelay.settings import normalise_database_url
from storage import jobs
from storage.database import Database, StorageUnavailable
from storage.models import Job
from storage.sql import table
from tests.support import HOST, free_port

pytestmark = pytest.mark.anyio
_jobs = table(Job)


def _insert(conn: Connection, kind: str, dedupe_key: str | None = None) -> int:
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
            dedupe_key=dedupe_key,
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


async def test_a_rolled_back_run_leaves_the_next_run_a_clean_transaction(
    database: Database,
) -> None:
    def work(conn: Connection) -> None:
        _insert(conn, "a")
        raise LookupError("half way")

    with pytest.raises(LookupError, match="half way"):
        await database.run(work)
    await database.run(lambda conn: _insert(conn, "b"))
    kinds = await database.run_read(lambda conn: list(conn.execute(select(_jobs.c.kind)).scalars()))
    assert kinds == ["b"]


async def test_run_read_neither_waits_for_nor_sees_an_open_write(database: Database) -> None:
    await database.run(lambda conn: _insert(conn, "a"))
    async with database.begin() as conn:  # holds SQLite's write lock until the block ends
        await jobs.enqueue(conn, "b", {}, now=datetime(2026, 1, 1, tzinfo=UTC))
        with anyio.fail_after(5):
            kinds = await database.run_read(
                lambda sync: list(sync.execute(select(_jobs.c.kind)).scalars())
            )
    assert kinds == ["a"]
    assert await _count(database) == 2


async def test_a_constraint_violation_propagates_as_itself_not_as_unavailable(
    database: Database,
) -> None:
    def insert_twice(conn: Connection) -> None:
        _insert(conn, "a", dedupe_key="same")
        _insert(conn, "a", dedupe_key="same")

    with pytest.raises(IntegrityError):
        await database.run(insert_twice)
    assert await _count(database) == 0


async def test_an_unreachable_postgres_is_storage_unavailable() -> None:
    # Nothing listens on this port: the connection is refused at once.
    db = Database(normalise_database_url(f"postgresql://postgres@{HOST}:{free_port()}/none"))
    try:
        with pytest.raises(StorageUnavailable):
            await db.run(lambda conn: None)
        with pytest.raises(StorageUnavailable):
            await db.run_read(lambda conn: None)
    finally:
        await db.dispose()


async def test_an_sqlite_file_that_cannot_be_opened_is_storage_unavailable(
    tmp_path: Path,
) -> None:
    db = Database(normalise_database_url(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    try:
        with pytest.raises(StorageUnavailable):
            await db.run(lambda conn: None)
    finally:
        await db.dispose()
