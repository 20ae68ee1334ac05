"""The hot path of `password_reset.requested`: queue a batch of jobs, each keyed by
its event's id, in one statement through the database driver itself.

Everything else in `storage` goes through SQLAlchemy Core. This one statement
pair runs for every reset request, and SQLAlchemy's per-statement and per-row
work (compilation, bind processing, greenlet hops) cost several times what the
database does, which would cap the request rate (see bench/run.py). The SQL is
spelled out for the two dialects and writes the same column formats SQLAlchemy
writes (tests/storage/test_intake.py reads the rows back through the models);
and is kept to this one statement. The job's `dedupe_key` is the event's dedupe
record: the answer to `requested` is always the same 202, so there is nothing
else to store for a replay.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from storage.database import Database, StorageUnavailable


@dataclass(frozen=True)
class Batch:
    source: str
    job_kind: str
    max_attempts: int


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format (naive UTC, always microseconds).
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def dedupe_key(source: str, event_id: str) -> str:
    return f"{source}:{event_id}"


async def record(
    db: Database, batch: Batch, items: Sequence[tuple[str, dict[str, Any]]], *, now: datetime
) -> set[str]:
    """Queue one job per `(event_id, job payload)`, keyed by the event id; returns the
    ids that were new (the others were delivered before and change nothing)."""
    if not items:
        return set()
    sqlite = db.dialect == "sqlite"
    mark = "?" if sqlite else "%s"
    json_mark = mark if sqlite else "%s::json"
    when: Any = _sqlite_time(now) if sqlite else now
    row = f"({mark},{json_mark},'queued',0,{mark},{mark},{mark},{mark},{mark})"
    statement = (
        "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_after, "
        f"created_at, updated_at, dedupe_key) VALUES {','.join([row] * len(items))} "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key"
    )
    params: list[Any] = []
    for event_id, payload in items:
        params += (
            batch.job_kind,
            json.dumps(payload, separators=(",", ":")),
            batch.max_attempts,
            when,
            when,
            when,
            dedupe_key(batch.source, event_id),
        )
    prefix = len(batch.source) + 1
    if sqlite:

        def work(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(statement, params).fetchall()

        try:
            rows = await db.writer.run_driver(work)
        except (sqlite3.Error, DBAPIError) as exc:
            raise StorageUnavailable(type(exc).__name__) from exc
    else:
        async with db.driver() as driver:
            cursor = driver.cursor()
            await cursor.execute(statement, params)
            rows = await cursor.fetchall()
    return {r[0][prefix:] for r in rows}
