"""The hot path of `password_reset.requested`: record a batch of events and their
jobs in one transaction, through the database driver itself.

Everything else in `storage` goes through SQLAlchemy Core. This one statement
pair runs for every reset request, and SQLAlchemy's per-statement and per-row
work (compilation, bind processing, greenlet hops) cost several times what the
database does, which would cap the request rate (see bench/run.py). The SQL is
spelled out for the two dialects, writes the same column formats SQLAlchemy
writes (tests/storage/test_intake.py reads the rows back through the models),
and is kept to these two statements.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage.database import Database, StorageUnavailable
from storage.inbound import StoredAnswer


@dataclass(frozen=True)
class Batch:
    source: str
    event_type: str
    status_code: int
    answer: str
    job_kind: str
    max_attempts: int


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format (naive UTC, always microseconds).
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@asynccontextmanager
async def _driver(db: Database) -> AsyncIterator[Any]:
    """A pooled connection's driver object (aiosqlite or psycopg), in a transaction."""
    try:
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            if db.dialect == "sqlite":
                await driver.execute("BEGIN IMMEDIATE")
            try:
                yield driver
            except BaseException:
                await driver.rollback()
                raise
            await driver.commit()
    except StorageUnavailable:
        raise
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg", "sqlalchemy"):
            raise StorageUnavailable(type(exc).__name__) from exc
        raise


async def record(
    db: Database, batch: Batch, items: Sequence[tuple[str, dict[str, Any]]], *, now: datetime
) -> tuple[set[str], dict[str, StoredAnswer]]:
    """Insert `(event_id, job payload)` pairs whose ids are new, each with its job.
    Returns the new ids and, for ids seen before, their stored answers."""
    if not items:
        return set(), {}
    sqlite = db.dialect == "sqlite"
    mark = "?" if sqlite else "%s"
    when: Any = _sqlite_time(now) if sqlite else now
    row = "(" + ",".join([mark] * 6) + ")"
    # Placeholders only: every value travels as a bound parameter.
    insert_events = (
        "INSERT INTO inbound_events (source, event_id, event_type, status_code, answer, "
        f"received_at) VALUES {','.join([row] * len(items))} "
        "ON CONFLICT (source, event_id) DO NOTHING RETURNING event_id"
    )
    event_params: list[Any] = []
    for event_id, _ in items:
        event_params += (
            batch.source,
            event_id,
            batch.event_type,
            batch.status_code,
            batch.answer,
            when,
        )
    json_mark = mark if sqlite else "%s::json"
    insert_job = (
        "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_after, "
        f"created_at, updated_at) VALUES ({mark},{json_mark},{mark},0,{mark},{mark},{mark},{mark})"
    )
    async with _driver(db) as driver:
        if sqlite:
            cursor = await driver.execute(insert_events, event_params)
            new_ids = {r[0] for r in await cursor.fetchall()}
            await cursor.close()
        else:
            cursor = driver.cursor()
            await cursor.execute(insert_events, event_params)
            new_ids = {r[0] for r in await cursor.fetchall()}
        job_rows = [
            (batch.job_kind, json.dumps(payload), "queued", batch.max_attempts, when, when, when)
            for event_id, payload in items
            if event_id in new_ids
        ]
        if job_rows:
            if sqlite:
                await driver.executemany(insert_job, job_rows)
            else:
                await cursor.executemany(insert_job, job_rows)
        seen = [event_id for event_id, _ in items if event_id not in new_ids]
        stored: dict[str, StoredAnswer] = {}
        if seen:
            query = (
                "SELECT event_id, status_code, answer FROM inbound_events WHERE source = "
                f"{mark} AND event_id IN ({','.join([mark] * len(seen))})"
            )
            if sqlite:
                found = await (await driver.execute(query, [batch.source, *seen])).fetchall()
            else:
                await cursor.execute(query, [batch.source, *seen])
                found = await cursor.fetchall()
            stored = {r[0]: StoredAnswer(int(r[1]), str(r[2])) for r in found}
    return new_ids, stored
