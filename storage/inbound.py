"""Dedupe of inbound events, with the first answer kept for replay.

An event id is one namespace per source across event types: `storage.intake`
queues no job for an id stored here, and `claim` takes no id that has a job.
A claimed event whose answer is not known yet is stored as PENDING (status 0)
until `settle` writes the answer or `release` gives the id back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, delete, exists, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.intake import LOCK_EXCLUSIVE, dedupe_key
from storage.models import InboundEvent, Job
from storage.sql import table, upsert

_events = table(InboundEvent)
_jobs = table(Job)
PENDING = 0  # status_code of a claimed event still being answered


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    answer: str

    @property
    def pending(self) -> bool:
        return self.status_code == PENDING


Claimed = Literal["claimed", "job"]


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


async def has_job(conn: AsyncConnection, source: str, event_id: str) -> bool:
    """Whether the id was taken by `storage.intake` (a job keyed by it)."""
    key = dedupe_key(source, event_id)
    return (
        await conn.execute(select(_jobs.c.id).where(_jobs.c.dedupe_key == key))
    ).first() is not None


async def claim(
    conn: AsyncConnection,
    *,
    source: str,
    event_id: str,
    event_type: str,
    now: datetime,
    stale_before: datetime,
) -> Claimed | StoredAnswer:
    """Take `event_id` before acting on it: "claimed" when this caller now owns it
    (a PENDING row), "job" when intake queued a job under it, or the stored row
    (a settled answer, or PENDING while another delivery is being answered). A
    PENDING claim older than `stale_before` was abandoned (a crash) and is taken over.
    Run inside `db.begin()`: on SQLite that holds the write lock, on PostgreSQL the
    advisory lock below orders this against intake batches of the same key."""
    key = dedupe_key(source, event_id)
    if conn.dialect.name == "postgresql":
        await conn.execute(text(LOCK_EXCLUSIVE), {"key": key})
    no_job = ~exists().where(_jobs.c.dedupe_key == key)
    row = select(
        literal(source),
        literal(event_id),
        literal(event_type),
        literal(PENDING),
        literal(""),
        literal(now, _events.c.received_at.type),
    ).where(no_job)
    columns = ["source", "event_id", "event_type", "status_code", "answer", "received_at"]
    result = await conn.execute(
        upsert(conn, _events)
        .from_select(columns, row)
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(_events.c.event_id)
    )
    if result.first() is not None:
        return "claimed"
    stored = await find(conn, source, event_id)
    if stored is None:
        return "job"
    if stored.pending:
        taken = await conn.execute(
            update(_events)
            .where(
                and_(
                    _events.c.source == source,
                    _events.c.event_id == event_id,
                    _events.c.status_code == PENDING,
                    _events.c.received_at < stale_before,
                )
            )
            .values(received_at=now, event_type=event_type)
        )
        if taken.rowcount == 1:
            return "claimed"
    return stored


async def settle(
    conn: AsyncConnection, *, source: str, event_id: str, status_code: int, answer: str
) -> bool:
    """Write the answer of a claimed (PENDING) event; False when there was no claim
    to settle (none was taken, or another delivery settled it meanwhile)."""
    result = await conn.execute(
        update(_events)
        .where(
            _events.c.source == source,
            _events.c.event_id == event_id,
            _events.c.status_code == PENDING,
        )
        .values(status_code=status_code, answer=answer)
    )
    return bool(result.rowcount == 1)


async def release(conn: AsyncConnection, *, source: str, event_id: str) -> None:
    """Give a claimed id back unanswered (a transient answer): a resend tries afresh."""
    await conn.execute(
        delete(_events).where(
            _events.c.source == source,
            _events.c.event_id == event_id,
            _events.c.status_code == PENDING,
        )
    )
