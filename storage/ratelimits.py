"""Fixed-window counters shared by every process through the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import RateCounter
from storage.sql import table, upsert

_counters = table(RateCounter)


def window_start(now: datetime, window_seconds: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_seconds, tz=UTC)


async def hit(conn: AsyncConnection, key: str, *, now: datetime, window_seconds: int) -> int:
    """Count one event under `key` in the current window; returns the count including it."""
    start = window_start(now, window_seconds)
    statement = upsert(conn, _counters).values(key=key, window_start=start, count=1)
    statement = statement.on_conflict_do_update(
        index_elements=["key", "window_start"], set_={"count": _counters.c.count + 1}
    ).returning(_counters.c.count)
    return int((await conn.execute(statement)).scalar_one())


async def prune(conn: AsyncConnection, *, now: datetime, keep: timedelta) -> int:
    result = await conn.execute(delete(_counters).where(_counters.c.window_start < now - keep))
    return result.rowcount
