"""Engine and transactions.

SQLite: WAL journal, a busy timeout, and every transaction opened with
`BEGIN IMMEDIATE`. pysqlite's default deferred BEGIN takes the write lock only
at the first write, so two connections that both read first deadlock on lock
upgrade (SQLITE_BUSY with no busy-handler retry); taking the lock up front
turns that into an orderly wait. See SQLAlchemy's "Serializable isolation /
Savepoints / Transactional DDL" notes for pysqlite and aiosqlite. Read-only
work uses `read()`, a deferred transaction that never upgrades and so never
holds the write lock.

PostgreSQL: psycopg 3, async, a small pool with pre-ping; the request hot path's
batches on one kept-open connection of their own (`committer()`).

Driver failures that mean "the database is not answering" become
`StorageUnavailable` here, so callers answer 503 instead of leaking a
SQLAlchemy exception.

One way to run a transaction per need:

    begin()        async SQLAlchemy Core, read-write   most work (a few statements)
    read()         async SQLAlchemy Core, read-only    lookups; never takes SQLite's write lock
    run(work)      synchronous Core, read-write        batch paths of many short transactions
    run_read(work) synchronous Core, read-only         (the worker's claims, the courier):
                                                       one thread hop per transaction on SQLite
    driver()       PostgreSQL's psycopg connection     the request hot path only
                   (SQLite: `writer.run_driver`)       (storage.intake), no SQLAlchemy on the way
    committer()    psycopg, one kept-open connection   the group committer's batches
                   in autocommit, one user at a time   (storage.intake.record)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage.writer import SqliteWriter, sqlite_transactions

__all__ = ["Database", "StorageError", "StorageUnavailable"]

T = TypeVar("T")

# committer(): a kept-open connection idle this long (seconds) is pinged before use,
# as the pool's pre-ping would; one in steady use is not.
PING_AFTER = 1.0


class StorageError(Exception):
    """Base of storage failures.

    StorageError
     └── StorageUnavailable   the database did not answer (connection, lock timeout)
    """


class StorageUnavailable(StorageError):
    pass


class Database:
    """Owns the engine. `begin()` yields a connection inside one transaction."""

    def __init__(
        self, url: str, *, pool_size: int = 8, echo: bool = False, ping_after: float = PING_AFTER
    ) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            # One pooled connection per process: writers queue on the pool (async,
            # in order) instead of in SQLite's busy handler, which sleeps up to 100 ms
            # between tries. Other processes (and the hot-path writer thread,
            # storage.writer) are ordered by the busy timeout.
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=30)
        else:
            kwargs.update(
                pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_timeout=10
            )
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._writer: SqliteWriter | None = None
        if self.dialect == "sqlite":
            sqlite_transactions(self.engine.sync_engine)
        # PostgreSQL: committer()'s connection, opened on first use.
        self._committer: Any = None
        self._committer_lock = asyncio.Lock()
        self._committer_used = 0.0
        self._ping_after = ping_after

    @property
    def writer(self) -> SqliteWriter:
        """SQLite only: the writer thread (storage.writer), made on first use."""
        if self._writer is None:
            self._writer = SqliteWriter(self.url)
        return self._writer

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        with _unavailable():
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (deferred on SQLite: it does not take the write lock)."""
        with _unavailable():
            async with self.engine.connect() as plain:
                conn = await plain.execution_options(readonly=True)
                async with conn.begin():
                    yield conn

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)`, synchronous SQLAlchemy Core, in one write transaction.

        SQLite: in the writer thread (storage.writer), one thread hop for the whole
        transaction instead of about four per statement through aiosqlite.
        PostgreSQL: on a pooled connection through `AsyncConnection.run_sync`.
        For batch paths that run many short transactions (the worker's claims, the
        outbox); `work` must not block on anything but the database."""
        return await self._run(work, readonly=False)

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """As `run`, in a read-only transaction (deferred on SQLite)."""
        return await self._run(work, readonly=True)

    async def _run(self, work: Callable[[Connection], T], *, readonly: bool) -> T:
        if self.dialect != "sqlite":
            async with self.read() if readonly else self.begin() as conn:
                return await conn.run_sync(work)
        with _unavailable():
            return await self.writer.run_sync(work, readonly=readonly)

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """PostgreSQL: a pooled connection's own psycopg connection, in one transaction
        (committed when the block ends, rolled back when it raises). For the one hot
        path that spells its SQL for the driver (storage.intake); SQLite's equivalent
        is `writer.run_driver`, which runs in the writer thread."""
        if self.dialect == "sqlite":
            raise TypeError("SQLite's driver path is writer.run_driver")
        try:
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                try:
                    yield driver
                except BaseException:
                    await driver.rollback()
                    raise
                await driver.commit()
        except StorageUnavailable:
            raise
        except Exception as exc:
            if _is_driver_error(exc):
                raise StorageUnavailable(type(exc).__name__) from exc
            raise

    @asynccontextmanager
    async def committer(self) -> AsyncIterator[Any]:
        """PostgreSQL: one psycopg connection of its own, kept open between uses and in
        autocommit, for the group committer's batches (storage.intake.record, one
        statement a batch): each statement is its own transaction, one round trip,
        with no BEGIN before it and no COMMIT after. Whatever needs several statements
        in one transaction uses `begin()` or `driver()`.

        Why not the pool: a checkout pings the server (pre-ping) and a return resets
        the connection, which together cost the client more CPU than the batch's own
        statement, once per batch. Here a connection idle for `ping_after` seconds
        is pinged first (so a restarted server costs no batch its answer, as with the
        pool); one in steady use is not. One that fails, or whose user is cancelled
        mid-statement (its protocol state is then unknown), is closed, and the next
        use opens another. One user at a time: the committer runs one batch at a time
        anyway; a second user waits its turn."""
        if self.dialect == "sqlite":
            raise TypeError("SQLite's driver path is writer.run_driver")
        async with self._committer_lock:
            try:
                driver = await self._committer_connection()
                try:
                    yield driver  # each statement in it committed (or failed) as it ran
                except BaseException as exc:
                    # A statement that failed rolled back alone and the connection is
                    # fine; one cancelled mid-statement leaves the protocol unknown.
                    if not isinstance(exc, Exception):
                        self._drop_committer()
                    raise
                self._committer_used = time.monotonic()
            except Exception as exc:
                if _is_driver_error(exc):
                    if self._committer is not None and self._committer.broken:
                        self._drop_committer()
                    raise StorageUnavailable(type(exc).__name__) from exc
                raise

    async def _committer_connection(self) -> Any:
        import psycopg

        conn = self._committer
        if conn is not None and not conn.closed:
            if time.monotonic() - self._committer_used < self._ping_after:
                return conn
            try:
                await conn.execute("SELECT 1")
                return conn
            except (psycopg.Error, OSError):  # its socket may fail before libpq says so
                self._drop_committer()
        # The engine's own connect arguments (host, credentials, TLS, adapters): the
        # same connection its pool would open.
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        self._committer = await psycopg.AsyncConnection.connect(
            *cargs, **{**cparams, "autocommit": True}
        )
        self._committer_used = time.monotonic()
        return self._committer

    def _drop_committer(self) -> None:
        conn, self._committer = self._committer, None
        if conn is not None:
            conn.pgconn.finish()  # closes the socket now, without a round trip

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
        except (StorageError, OSError):
            return False
        return True

    async def dispose(self) -> None:
        if self._committer is not None:
            conn, self._committer = self._committer, None
            await conn.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        await self.engine.dispose()


def _is_driver_error(exc: Exception) -> bool:
    return type(exc).__module__.split(".")[0] in ("psycopg", "sqlalchemy")


@contextmanager
def _unavailable() -> Iterator[None]:
    """Driver failures that mean "the database is not answering" become
    StorageUnavailable; any other database error passes through as itself."""
    try:
        yield
    except (PoolTimeout, DBAPIError) as exc:
        if isinstance(exc, DBAPIError) and not _is_unavailable(exc):
            raise
        raise StorageUnavailable(type(exc).__name__) from exc


def _is_unavailable(exc: DBAPIError) -> bool:
    # OperationalError/InterfaceError: connection refused or lost, database locked.
    from sqlalchemy.exc import InterfaceError, OperationalError

    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
