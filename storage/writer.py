"""A dedicated SQLite writer thread for the request hot path (storage.intake).

aiosqlite moves every call (BEGIN, each statement, each fetch, COMMIT) to its
thread and back, and each round trip wakes the event loop. A batch written
here costs one round trip: the whole transaction runs in this thread on its
own connection, and SQLite releases the GIL while it works, so the event loop
keeps serving requests meanwhile. Other writers (the worker, through the
pool) share the file under WAL; BEGIN IMMEDIATE plus the busy timeout order
them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.engine import make_url

T = TypeVar("T")


class SqliteWriter:
    def __init__(self, url: str) -> None:
        self._path = make_url(url).database or ":memory:"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=15)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=15000")
            self._local.conn = conn
        return conn

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(connection)` inside one immediate transaction in the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work)

    def close(self) -> None:
        def shut() -> None:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                conn.close()
                self._local.conn = None

        self._executor.submit(shut).result(timeout=10)
        self._executor.shutdown(wait=True)
