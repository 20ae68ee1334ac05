"""Dedupe of inbound events, with the first answer kept for replay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import InboundEvent
from storage.sql import table, upsert

_events = table(InboundEvent)


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    answer: str


async def find(conn: AsyncConnection, source: str, event_id: str) -> StoredAnswer | None:
    row = (
        await conn.execute(
            select(_events.c.status_code, _events.c.answer).where(
                _events.c.source == source, _events.c.event_id == event_id
            )
        )
    ).first()
    return None if row is None else StoredAnswer(row.status_code, row.answer)


async def record(
    conn: AsyncConnection,
    *,
    source: str,
    event_id: str,
    event_type: str,
    status_code: int,
    answer: str,
    now: datetime,
) -> bool:
    """Store the event and its answer; False when that id was already stored
    (the caller then replays what `find` returns, and does nothing else)."""
    result = await conn.execute(
        upsert(conn, _events)
        .values(
            source=source,
            event_id=event_id,
            event_type=event_type,
            status_code=status_code,
            answer=answer,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(_events.c.event_id)
    )
    # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT inserts.
    return result.first() is not None


async def prune(conn: AsyncConnection, *, older_than: datetime) -> int:
    result = await conn.execute(delete(_events).where(_events.c.received_at < older_than))
    return result.rowcount


async def record_many(
    conn: AsyncConnection,
    *,
    source: str,
    events: list[tuple[str, str]],
    now: datetime,
    status_code: int = 200,
    answer: str = "",
) -> set[str]:
    """Store `(event_id, event_type)` pairs in one statement; returns the ids that were
    new. Concurrent deliveries of one batch cannot both claim an id (ON CONFLICT)."""
    if not events:
        return set()
    statement = (
        upsert(conn, _events)
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(_events.c.event_id)
    )
    rows = [
        {
            "source": source,
            "event_id": event_id,
            "event_type": event_type,
            "status_code": status_code,
            "answer": answer,
            "received_at": now,
        }
        for event_id, event_type in events
    ]
    result = await conn.execute(statement, rows)
    return {row.event_id for row in result}
