"""A dedicated SQLite thread that runs whole transactions in one hop.

aiosqlite moves every call (BEGIN, each statement's cursor, execute, fetch and
close, COMMIT, the pool's reset) to its thread and back, and each round trip
wakes the event loop: about four hops per statement. A transaction handed to
this thread costs one hop however many statements it runs. It holds one
connection behind a synchronous SQLAlchemy engine, so the same Core
statements serve both this path and PostgreSQL's
`AsyncConnection.run_sync` (`storage.database.Database.run`); the request
hot path (`storage.intake`) uses the raw sqlite3 connection of the same engine
(`run_driver`).

Checkpoints: SQLite moves the WAL back into the database file on the commit
that takes the WAL past `wal_autocheckpoint` pages, and that commit's caller
waits for the copy and its fsyncs. On this connection autocheckpoint is off;
after a commit, when the last checkpoint is a second old, a PASSIVE checkpoint
runs on a connection and thread of its own (it takes no write lock, so commits
go on beside it). When the log is still long after it, a RESTART follows, which
holds writers off while it copies the rest, so that the next write starts the
log over (`_checkpoint` says why that is needed, and how long it may hold them).
The pool's connections keep the default and checkpoint as before; a worker
process has a writer of its own, which does as this one.

The hot path's short transactions (`run_driver`) are first tried on the event
loop's own thread, on a connection of their own whose busy timeout is zero: when
the write lock is free (the common case) the batch commits at once, without the
hand-off to this thread and back (two thread wake-ups and GIL switches a batch);
when anyone holds the lock, SQLite says so immediately and the batch goes to this
thread, which waits for the lock as before. The loop never waits for a lock.

Everything this thread writes is serialised here; writers on other
connections (the aiosqlite pool, other processes) share the file under WAL and
are ordered by BEGIN IMMEDIATE plus the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

T = TypeVar("T")

# Statements' scratch tables (a RETURNING clause's rows, a CTE's VALUES, sorts) in
# memory. SQLite's default puts them in temporary files, so the request path's one
# statement (storage.intake) paid file system calls for every batch. They are as
# large as one statement's rows, never the database's.
TEMP_STORE = "PRAGMA temp_store=MEMORY"


def sqlite_transactions(engine: Engine) -> None:
    """SQLite connection set-up and transaction start for every engine of ours.

    WAL journal, a busy timeout, and every transaction opened with `BEGIN
    IMMEDIATE` (see storage.database for why); read-only ones, marked with the
    `readonly` execution option, stay deferred: they never upgrade, so they run
    beside a writer (WAL readers do not block)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to us (the "begin" hook below), then tune.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: the pragmas after it may need a lock another
        # connection holds, and would otherwise fail at once with "database is locked".
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(TEMP_STORE)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _engine(url: str) -> Engine:
    # One connection, used only by this module's single thread.
    engine = create_engine(make_url(url).set(drivername="sqlite"), pool_size=1, max_overflow=0)
    sqlite_transactions(engine)

    @event.listens_for(engine, "connect")
    def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")  # see the module docstring

    return engine


class _Busy(Exception):
    """Another connection holds SQLite's write lock."""


CHECKPOINT_EVERY = 1.0  # seconds, at most one passive checkpoint per interval
# A log longer than this after a passive checkpoint (SQLite's own autocheckpoint
# size) is started over with a RESTART (`_checkpoint`).
RESTART_AFTER_FRAMES = 1000
RESTART_WAIT_MS = 50
RESTART_BACKOFF = 10  # checkpoints without a restart after one that found a reader


class SqliteWriter:
    def __init__(self, url: str, *, checkpoint_every: float = CHECKPOINT_EVERY) -> None:
        self._engine = _engine(url)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._conn: Connection | None = None  # used only in the thread
        self._checkpoints = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-ckpt")
        self._checkpointer: sqlite3.Connection | None = None  # used only in that thread
        self._path = make_url(url).database or ""
        self._last_checkpoint = time.monotonic()
        self._checkpoint_every = checkpoint_every
        self._checkpoint_count = threading.Lock()  # the loop's thread and the checkpoints'
        self._checkpoints_due = 0  # submitted and not yet done
        self._restart_skips = 0  # checkpoints left to run without a restart
        self._here: sqlite3.Connection | None = None  # the event loop's (run_driver)

    def _connection(self) -> Connection:
        # One connection held for the thread's life: a pool checkout and the pool's
        # reset on return would cost more than many of the transactions run here.
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self._engine.connect()
        return self._conn

    def _after_commit(self) -> None:
        now = time.monotonic()
        if now - self._last_checkpoint < self._checkpoint_every or self._path in (
            "",
            ":memory:",
        ):
            return
        with self._checkpoint_count:
            # One running and one waiting at most: the waiting one copies whatever
            # commits land while the other runs, and more would only queue up behind
            # them (a RESTART waits, and a slow disk makes every checkpoint slow).
            if self._checkpoints_due >= 2:
                return
            self._checkpoints_due += 1
        self._last_checkpoint = now
        self._checkpoints.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            if self._checkpointer is None:
                # The busy timeout is how long the restart below may wait for a
                # write or a read to end (a passive checkpoint never waits).
                self._checkpointer = sqlite3.connect(
                    self._path, timeout=RESTART_WAIT_MS / 1000, check_same_thread=False
                )
            _, frames, _ = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if self._restart_skips > 0:
                self._restart_skips -= 1
            elif frames > RESTART_AFTER_FRAMES:
                # SQLite starts the log over from its beginning only when a write
                # begins on a log copied whole, and under steady writes some commit
                # always lands while the passive one copies (what it reports is the
                # log as it found it): the log then grew without end, on disk and in
                # the index every page read searches. A log this long was not started
                # over since the last checkpoint, or more was written since than
                # SQLite's own autocheckpoint allows. RESTART holds writers off while
                # it copies what is left (the loop's path finds the lock taken and
                # hands its batch to the writer thread, which waits), then waits for
                # readers to leave the log, so the next write starts it over. Each of
                # its waits for a write or a read to end is at most RESTART_WAIT_MS,
                # after which it carries on as a passive one. That happening (a
                # long read, another process's) makes it sit out the next few
                # checkpoints: writers are held off for that long at most once per
                # RESTART_BACKOFF checkpoints, never every one.
                busy, _, _ = self._checkpointer.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                if busy:
                    self._restart_skips = RESTART_BACKOFF
        except sqlite3.Error:
            # A checkpoint is housekeeping: the next one (or another connection's
            # autocheckpoint) catches up; no commit depends on it.
            pass
        finally:
            with self._checkpoint_count:
                self._checkpoints_due -= 1

    def _transaction(self, work: Callable[[Connection], T], readonly: bool) -> T:
        conn = self._connection()
        conn.execution_options(readonly=readonly)  # in place; read by the begin hook
        with conn.begin():
            result = work(conn)
        if not readonly:
            self._after_commit()
        return result

    def _raw_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        driver: sqlite3.Connection = self._connection().connection.driver_connection  # type: ignore[assignment]
        driver.execute("BEGIN IMMEDIATE")
        try:
            result = work(driver)
        except BaseException:
            driver.execute("ROLLBACK")
            raise
        driver.execute("COMMIT")
        self._after_commit()
        return result

    async def run_sync(self, work: Callable[[Connection], T], *, readonly: bool = False) -> T:
        """Run `work(connection)` in one transaction in this thread (immediate unless
        `readonly`); commits when it returns, rolls back when it raises."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work, readonly)

    async def run_driver(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on a raw sqlite3 connection, inside one immediate transaction
        (the request hot path, storage.intake: no SQLAlchemy on the way): here when
        the write lock is free, else in the writer thread (see the module docstring).
        `work` must be short and must not block on anything but SQLite."""
        if self._path not in ("", ":memory:"):
            try:
                return self._transaction_here(work)
            except _Busy:
                pass
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._raw_transaction, work)

    def _transaction_here(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._here
        if conn is None:
            # timeout=0: a held lock is SQLITE_BUSY at once, never a wait on the loop.
            conn = sqlite3.connect(
                self._path, timeout=0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")  # as every connection of ours
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(TEMP_STORE)
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints: see the docstring
            self._here = conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            # Busy: nothing was written (rolled back above); the writer thread waits.
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:
                raise _Busy from exc
            raise
        self._after_commit()
        return result

    def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._engine.dispose()

        self._executor.submit(shut).result(timeout=10)
        self._executor.shutdown(wait=True)
        self._checkpoints.shutdown(wait=True)
        if self._here is not None:
            self._here.close()
            self._here = None
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
