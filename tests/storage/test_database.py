from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from psycopg import pq
from sqlalchemy import Connection, func, select, text
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


# -- committer(): PostgreSQL's kept-open connection for the group committer ----------


async def _postgres(db: Database) -> bool:
    """True on PostgreSQL. On SQLite, whose hot path is the writer thread's, asking for
    the committer is a TypeError: each test below checks that much there."""
    if db.dialect != "sqlite":
        return True
    with pytest.raises(TypeError, match=r"writer\.run_driver"):
        async with db.committer():
            pass
    return False


async def _backend_pid(db: Database) -> int:
    async with db.committer() as driver:
        cursor = await driver.execute("SELECT pg_backend_pid()")
        row = await cursor.fetchone()
        return int(row[0])


async def _gone(db: Database, pid: int) -> bool:
    for _ in range(250):
        # A transaction of its own each time: PostgreSQL reads pg_stat_activity once
        # per transaction and answers from that copy until it ends, so polling in one
        # transaction never saw a backend go that was still there at the first look.
        async with db.read() as conn:
            found = await conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            if found.scalar_one() == 0:
                return True
        await anyio.sleep(0.02)
    return False


async def _terminate(db: Database, pid: int) -> None:
    async with db.begin() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert await _gone(db, pid)


_INSERT_JOB = (
    "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_after, "
    "created_at, updated_at) VALUES ('a', '{}', 'queued', 0, 1, now(), now(), now())"
)


async def test_the_committer_keeps_one_connection_and_commits_each_statement(
    database: Database,
) -> None:
    if not await _postgres(database):
        return
    first = await _backend_pid(database)
    async with database.committer() as driver:
        await driver.execute(_INSERT_JOB)
        assert await _count(database) == 1  # committed as it ran: another connection sees it
        assert driver.pgconn.transaction_status == pq.TransactionStatus.IDLE  # no BEGIN
    assert await _backend_pid(database) == first


async def test_a_failed_committer_statement_rolls_back_alone_and_the_connection_is_kept(
    database: Database,
) -> None:
    if not await _postgres(database):
        return
    first = await _backend_pid(database)

    async def insert_then_fail() -> None:
        async with database.committer() as driver:
            await driver.execute(_INSERT_JOB)
            await driver.execute("INSERT INTO jobs (kind) VALUES ('no payload')")  # NOT NULL

    with pytest.raises(StorageUnavailable):
        await insert_then_fail()
    assert await _count(database) == 1  # the statement before it stands
    assert await _backend_pid(database) == first


async def test_an_idle_committer_whose_server_side_went_away_reconnects_unseen(
    database_url: str,
) -> None:
    db = Database(database_url, ping_after=0.0)  # every use counts as after idleness
    try:
        if not await _postgres(db):
            return
        first = await _backend_pid(db)
        await _terminate(db, first)
        assert await _backend_pid(db) != first  # no error: the ping found it gone
    finally:
        await db.dispose()


async def test_a_committer_in_steady_use_that_lost_its_server_fails_once_then_recovers(
    database_url: str,
) -> None:
    db = Database(database_url, ping_after=3600.0)  # never pinged: in steady use
    try:
        if not await _postgres(db):
            return
        first = await _backend_pid(db)
        await _terminate(db, first)
        with pytest.raises(StorageUnavailable):  # that batch's callers answer 503
            await _backend_pid(db)
        assert await _backend_pid(db) != first  # the next batch reconnects
    finally:
        await db.dispose()


async def test_a_committer_user_cancelled_mid_statement_leaves_no_connection_behind(
    database: Database,
) -> None:
    if not await _postgres(database):
        return
    first = await _backend_pid(database)
    with anyio.move_on_after(0.3) as scope:
        async with database.committer() as driver:
            await driver.execute("SELECT pg_sleep(30)")
    assert scope.cancelled_caught
    # A fresh connection, at once: the old one, whose protocol state is unknown, is
    # never used again. (The server notices the closed socket only when its
    # statement ends: PostgreSQL does not watch idle clients by default.)
    with anyio.fail_after(10):
        assert await _backend_pid(database) != first


async def test_dispose_closes_the_committer_connection(database_url: str) -> None:
    db = Database(database_url)
    if not await _postgres(db):
        await db.dispose()
        return
    pid = await _backend_pid(db)
    await db.dispose()
    other = Database(database_url)
    try:
        assert await _gone(other, pid)
    finally:
        await other.dispose()
