"""Rate limits shared by every process through the database.

    admit   a sliding window: at most `limit` events of one key in any window of
            `window_seconds` (exact, one row per admitted event; for small limits
            such as 3 resets per address an hour)
    take    a GCRA budget: units at `rate` per second with a burst, one row per
            key (for large limits: a global ceiling, the Auth0 request budget)
    hit     fixed-window counters (kept for rows written before 0003; unused)

Keys are HMACs of addresses or networks, never the values themselves.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import RateBudget, RateCounter, RateEvent
from storage.sql import table, upsert

_counters = table(RateCounter)
_events = table(RateEvent)
_budgets = table(RateBudget)


def _lock(conn: Connection, key: str) -> None:
    """Serialise deciders of one key until the transaction ends: under PostgreSQL's
    READ COMMITTED two concurrent admits would each count the same rows and both
    insert. SQLite's write transactions are BEGIN IMMEDIATE: one at a time already."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"resetrelay.ratelimits:{key}".encode()).digest()
    lock = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})


def admit_sync(
    conn: Connection, key: str, *, now: datetime, limit: int, window_seconds: int
) -> bool:
    """Record one event under `key` and return True if fewer than `limit` were admitted
    in the `window_seconds` before `now`; else record nothing and return False. A
    refused event does not count, so a flood does not lengthen its own lock-out.
    Synchronous, for `Database.run` (one thread hop on SQLite)."""
    _lock(conn, key)
    since = now - timedelta(seconds=window_seconds)
    seen = conn.execute(_SEEN, {"key": key, "since": since}).scalar_one()
    if seen >= limit:
        return False
    conn.execute(_ADMIT, {"key": key, "at": now})
    return True


def take_sync(conn: Connection, key: str, *, now: datetime, rate: float, burst: float) -> float:
    """Take one unit of the budget `key` (GCRA: `rate` units a second, up to `burst`
    at once). Returns 0.0 when taken, else the seconds until one would be."""
    _lock(conn, key)
    interval = timedelta(seconds=1.0 / rate)
    tolerance = timedelta(seconds=max(0.0, burst - 1.0) / rate)
    conn.execute(_BUDGET_START[conn.dialect.name == "postgresql"], {"key": key, "tat": now})
    stored: datetime = conn.execute(_BUDGET_TAT, {"key": key}).scalar_one()
    tat = max(stored, now)
    if tat - now > tolerance:
        return (tat - now - tolerance).total_seconds()
    conn.execute(_BUDGET_TAKE, {"budget": key, "new_tat": tat + interval})
    return 0.0


# Built once: on the reset job's path building a statement (and its cache key) cost
# more than SQLite takes to run it.
_SEEN = select(func.count()).where(
    _events.c.key == bindparam("key"), _events.c.at > bindparam("since")
)
_ADMIT = _events.insert()
_BUDGET_START = {
    postgres: (postgresql if postgres else sqlite).insert(_budgets).on_conflict_do_nothing()
    for postgres in (False, True)
}
_BUDGET_TAT = select(_budgets.c.tat).where(_budgets.c.key == bindparam("key"))
# An UPDATE's parameters may not be named as a column.
_BUDGET_TAKE = (
    update(_budgets).where(_budgets.c.key == bindparam("budget")).values(tat=bindparam("new_tat"))
)


async def admit(
    conn: AsyncConnection, key: str, *, now: datetime, limit: int, window_seconds: int
) -> bool:
    """`admit_sync` in the caller's async transaction."""
    return await conn.run_sync(
        lambda sync: admit_sync(sync, key, now=now, limit=limit, window_seconds=window_seconds)
    )


async def take(
    conn: AsyncConnection, key: str, *, now: datetime, rate: float, burst: float
) -> float:
    """`take_sync` in the caller's async transaction."""
    return await conn.run_sync(lambda sync: take_sync(sync, key, now=now, rate=rate, burst=burst))


def window_start(now: datetime, window_seconds: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_seconds, tz=UTC)


async def hit(conn: AsyncConnection, key: str, *, now: datetime, window_seconds: int) -> int:
    """Count one event under `key` in the current fixed window; returns the count."""
    start = window_start(now, window_seconds)
    statement = upsert(conn, _counters).values(key=key, window_start=start, count=1)
    statement = statement.on_conflict_do_update(
        index_elements=["key", "window_start"], set_={"count": _counters.c.count + 1}
    ).returning(_counters.c.count)
    return int((await conn.execute(statement)).scalar_one())


async def prune(conn: AsyncConnection, *, now: datetime, keep: timedelta) -> int:
    """Forget events and counters older than `keep` (longer than any window)."""
    counters = await conn.execute(delete(_counters).where(_counters.c.window_start < now - keep))
    events = await conn.execute(delete(_events).where(_events.c.at < now - keep))
    return counters.rowcount + events.rowcount
