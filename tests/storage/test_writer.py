"""storage.writer.SqliteWriter on a temporary SQLite file: one transaction per call,
committed or rolled back; write transactions take the lock up front, read-only ones
run beside a writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from storage.writer import RESTART_AFTER_FRAMES, RESTART_BACKOFF, RESTART_WAIT_MS, SqliteWriter

pytestmark = pytest.mark.anyio


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "writer.db"


@pytest.fixture
def writer(path: Path) -> Iterator[SqliteWriter]:
    writer = SqliteWriter(f"sqlite:///{path}")
    yield writer
    writer.close()


def values(conn: Connection) -> list[int]:
    return list(conn.execute(text("SELECT x FROM t ORDER BY x")).scalars())


async def create(writer: SqliteWriter) -> None:
    await writer.run_sync(lambda c: c.execute(text("CREATE TABLE t (x INTEGER)")))


async def test_run_sync_commits_and_rolls_back(writer: SqliteWriter) -> None:
    await create(writer)
    await writer.run_sync(lambda c: c.execute(text("INSERT INTO t VALUES (1)")))

    def fails(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        raise LookupError("undo")

    with pytest.raises(LookupError):
        await writer.run_sync(fails)
    assert await writer.run_sync(values, readonly=True) == [1]


async def test_run_on_the_raw_connection_commits_and_rolls_back(writer: SqliteWriter) -> None:
    await create(writer)
    await writer.run_driver(lambda c: c.execute("INSERT INTO t VALUES (3)"))

    def fails(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (4)")
        raise LookupError("undo")

    with pytest.raises(LookupError):
        await writer.run_driver(fails)
    assert await writer.run_sync(values, readonly=True) == [3]


async def test_the_file_is_in_wal_mode(writer: SqliteWriter) -> None:
    mode = await writer.run_sync(lambda c: c.exec_driver_sql("PRAGMA journal_mode").scalar())
    assert mode == "wal"


async def test_reads_pass_a_held_write_lock_and_writes_wait_for_it(
    writer: SqliteWriter, path: Path
) -> None:
    await create(writer)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    other.execute("INSERT INTO t VALUES (9)")
    try:
        assert await writer.run_sync(values, readonly=True) == []  # WAL reader, no wait
        write = asyncio.ensure_future(
            writer.run_sync(lambda c: c.execute(text("INSERT INTO t VALUES (1)")))
        )
        await asyncio.sleep(0.3)
        assert not write.done()  # BEGIN IMMEDIATE waits (the readonly flag did not stick)
    finally:
        other.execute("COMMIT")
        other.close()
    await write
    assert await writer.run_sync(values, readonly=True) == [1, 9]


async def test_run_driver_commits_on_the_callers_thread_when_the_lock_is_free(
    writer: SqliteWriter,
) -> None:
    await create(writer)
    threads: list[int] = []

    def insert(conn: sqlite3.Connection) -> None:
        threads.append(threading.get_ident())
        conn.execute("INSERT INTO t VALUES (5)")

    await writer.run_driver(insert)
    assert threads == [threading.get_ident()]  # no hand-off to the writer thread
    assert await writer.run_sync(values, readonly=True) == [5]

    def fails(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (6)")
        raise LookupError("undo")

    with pytest.raises(LookupError):
        await writer.run_driver(fails)
    assert await writer.run_sync(values, readonly=True) == [5]


async def test_run_driver_never_blocks_the_loop_on_a_held_lock(
    writer: SqliteWriter, path: Path
) -> None:
    """Another connection holds the write lock: the batch goes to the writer thread,
    which waits for the lock; the event loop goes on meanwhile, and the batch commits
    once the lock is released."""
    await create(writer)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (9)")
    threads: list[int] = []

    def insert(conn: sqlite3.Connection) -> None:
        threads.append(threading.get_ident())
        conn.execute("INSERT INTO t VALUES (1)")

    try:
        write = asyncio.ensure_future(writer.run_driver(insert))
        ticks = 0
        for _ in range(30):  # the loop keeps running: 30 ticks of 10 ms
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 30 and not write.done()
    finally:
        other.execute("COMMIT")
        other.close()
    await write
    assert threads == [threads[0]] and threads[0] != threading.get_ident()
    assert await writer.run_sync(values, readonly=True) == [1, 9]


async def test_checkpoints_run_beside_commits_not_in_them(path: Path) -> None:
    """The writer's connections never checkpoint on commit (autocheckpoint off); a
    passive checkpoint on a thread of its own moves the WAL into the file."""
    writer = SqliteWriter(f"sqlite:///{path}", checkpoint_every=0.0)
    try:
        await create(writer)
        pages = await writer.run_sync(
            lambda c: c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        )
        assert pages == 0
        size = path.stat().st_size
        await writer.run_driver(lambda c: c.execute("INSERT INTO t VALUES (?)", (b"x" * 200_000,)))
        for _ in range(100):  # the checkpoint thread copies the pages into the file
            if path.stat().st_size > size + 150_000:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size > size + 150_000
    finally:
        writer.close()


def _wal_restarts(path: Path) -> int:
    """The log's checkpoint sequence number (its header, bytes 12-16): SQLite adds
    one each time a write starts the log over from its beginning."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


async def test_steady_writes_still_start_the_log_over(path: Path) -> None:
    """Under writes that never pause for a whole checkpoint, the passive checkpoint
    is never done before the next write begins, and only then does SQLite start the
    log over: it grew without end. The checkpoint thread's RESTART holds writers
    off long enough for the log to be started over, again and again."""
    writer = SqliteWriter(f"sqlite:///{path}", checkpoint_every=0.05)
    try:
        await writer.run_sync(
            lambda c: c.execute(text("CREATE TABLE k (id TEXT PRIMARY KEY, v BLOB)"))
        )
        count = 0

        def batch(conn: sqlite3.Connection) -> None:
            nonlocal count
            rows = [(f"{(count + i) * 7919 % 1000003:07d}", b"v" * 300) for i in range(32)]
            count += 32
            conn.executemany("INSERT INTO k VALUES (?, ?)", rows)

        for _ in range(20):
            await writer.run_driver(batch)
        before = _wal_restarts(path)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0  # under a second here; room for a busy machine
        while _wal_restarts(path) < before + 3 and loop.time() < deadline:
            await writer.run_driver(batch)  # random keys: pages all over the index
            await asyncio.sleep(0.0005)  # as between a server's batches
        assert _wal_restarts(path) >= before + 3
        # Its file stays about as long as what a checkpoint interval writes.
        assert Path(f"{path}-wal").stat().st_size < 64 * 1024 * 1024
        async with asyncio.timeout(10):  # every batch committed, none lost
            rows = await writer.run_sync(
                lambda c: c.execute(text("SELECT count(*) FROM k")).scalar_one()
            )
        assert rows == count
    finally:
        writer.close()


async def test_a_restart_that_meets_a_long_read_holds_writes_off_briefly_and_backs_off(
    path: Path,
) -> None:
    """A read left open (another process, a shell) keeps the log from being started
    over: RESTART then waits RESTART_WAIT_MS for it with writers held off, gives
    up, and sits the next RESTART_BACKOFF checkpoints out instead of holding
    writers off at every one."""
    writer = SqliteWriter(f"sqlite:///{path}", checkpoint_every=3600.0)  # by hand
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        await create(writer)

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (1)")

        for _ in range(RESTART_AFTER_FRAMES + 200):  # a frame a commit: a long log
            await writer.run_driver(insert)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] > 0  # holds a snapshot
        await writer.run_driver(lambda c: c.execute("INSERT INTO t VALUES (-1)"))
        started = time.monotonic()
        writer._checkpoint()  # run here, as its thread would
        held = time.monotonic() - started
        assert writer._restart_skips == RESTART_BACKOFF
        assert RESTART_WAIT_MS / 1000 <= held < 2.0  # its own wait, not the writers' 15 s
        writer._checkpoint()  # sits this one out: no wait at all
        assert writer._restart_skips == RESTART_BACKOFF - 1
        reader.execute("COMMIT")
    finally:
        reader.close()
        writer.close()
