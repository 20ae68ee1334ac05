"""The hot path of `password_reset.requested`: queue a batch of jobs, each keyed by
its event's id, in one statement through the database driver itself.

Everything else in `storage` goes through SQLAlchemy Core. This statement runs
for every batch of reset requests, and SQLAlchemy's per-statement and per-row
work (compilation, bind processing, greenlet hops) cost several times what the
database does, which would cap the request rate (see bench/run.py). The SQL is
spelled out for the two dialects and writes the same column formats SQLAlchemy
writes (tests/storage/test_intake.py reads the rows back through the models):
on SQLite here, on PostgreSQL in the function `resetrelay_intake` (migration
0011), which this module calls. The job's `dedupe_key` is the event's dedupe
record: the answer to `requested` is always the same 202, so there is nothing
else to store for a replay.

Event ids are one namespace per source, whatever the event's type: an id already
in `inbound_events` (another type of event from the same sender, answered or
being answered) queues nothing here. `storage.inbound.claim` is the other half:
it takes no id that has a job. On SQLite both statements run under the one write
lock, so neither can slip between the other's check and its write; on PostgreSQL
both take an advisory lock on the key first (shared here, exclusive there), and
the insert's snapshot is taken after the lock.
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


class PartlyStored(StorageUnavailable):
    """A PostgreSQL batch that failed after some of its calls had committed (each
    call is its own transaction): `stored` are the new ids those calls queued, and
    the others were not stored."""

    def __init__(self, reason: str, stored: set[str]) -> None:
        super().__init__(reason)
        self.stored = stored


@dataclass(frozen=True)
class Batch:
    source: str
    job_kind: str
    max_attempts: int


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format (naive UTC, always microseconds).
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# json.dumps(obj, separators=...) builds an encoder on every call; this one is made once.
_compact = json.JSONEncoder(separators=(",", ":")).encode


def dedupe_key(source: str, event_id: str) -> str:
    return f"{source}:{event_id}"


# PostgreSQL: one call to the function migration 0011 made, `resetrelay_intake`, in
# autocommit (`Database.committer`): one round trip for each POSTGRES_MAX_ROWS rows.
# It takes a shared transaction-scoped advisory lock per key (exclusive in
# `storage.inbound.claim`, which spells the same key), then inserts the jobs in a
# statement of its own, whose snapshot comes after the locks. The rows go as two
# JSON documents, the ids `["id", ...]` and the payloads `[{...}, ...]`, each
# encoded in one call and sent as one text value, and zipped back into rows by
# `ROWS FROM`: one statement text whatever the number of rows (psycopg caches a
# query's conversion per text), and no Python step per element (as arrays would
# cost). Only the ids are ever read as text: a payload may hold \u0000 (JSON allows
# it, PostgreSQL's text does not), and `json_array_elements` hands it on as JSON
# without decoding it.
PG_RECORD = (
    "SELECT * FROM resetrelay_intake(%(source)s, %(kind)s, %(max_attempts)s, %(now)s, "
    "%(ids)s::json, %(payloads)s::json)"
)
LOCK_EXCLUSIVE = "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"
# Rows per call, each call its own transaction. Every row holds an advisory lock
# until its transaction ends, in PostgreSQL's shared lock table, which every
# session of the server shares: about max_locks_per_transaction (64 by default)
# times max_connections entries. One process's committer then holds at most 64,
# what any one transaction is budgeted, whatever a flood makes of its batches (the
# group committer's take up to 500); more and a few busy processes could fill
# the table, and every session would fail with "out of shared memory".
POSTGRES_MAX_ROWS = 64


def sqlite_statement(rows: int) -> str:
    """SQLite: the statement for `rows` rows, each `(kind, payload, max_attempts,
    run_after, created_at, updated_at, dedupe_key, event_id)`, then the source.
    (bench/sqlite_keys.py times this same statement.)"""
    values = ",".join(["(?,?,?,?,?,?,?,?)"] * rows)
    return (
        "WITH v (kind, payload, max_attempts, run_after, created_at, updated_at, "
        f"dedupe_key, event_id) AS (VALUES {values}) "
        "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_after, "
        "created_at, updated_at, dedupe_key) "
        "SELECT kind, payload, 'queued', 0, max_attempts, run_after, created_at, "
        "updated_at, dedupe_key FROM v WHERE NOT EXISTS (SELECT 1 FROM inbound_events e "
        "WHERE e.source = ? AND e.event_id = v.event_id) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key"
    )


async def record(
    db: Database, batch: Batch, items: Sequence[tuple[str, dict[str, Any]]], *, now: datetime
) -> set[str]:
    """Queue one job per `(event_id, job payload)`, keyed by the event id; returns the
    ids that were new (the others were delivered before and change nothing)."""
    if not items:
        return set()
    prefix = len(batch.source) + 1
    if db.dialect != "sqlite":
        new: set[str] = set()
        try:
            async with db.committer() as driver:
                cursor = driver.cursor()
                for start in range(0, len(items), POSTGRES_MAX_ROWS):
                    chunk = items[start : start + POSTGRES_MAX_ROWS]
                    await cursor.execute(
                        PG_RECORD,
                        {
                            "source": batch.source,
                            "kind": batch.job_kind,
                            "max_attempts": batch.max_attempts,
                            "now": now,
                            "ids": _compact([event_id for event_id, _ in chunk]),
                            "payloads": _compact([payload for _, payload in chunk]),
                        },
                    )
                    new.update(r[0][prefix:] for r in await cursor.fetchall())
        except StorageUnavailable as exc:
            if new:  # the calls before the failed one committed: say which ids
                raise PartlyStored(str(exc), new) from exc
            raise
        return new
    keys = [dedupe_key(batch.source, event_id) for event_id, _ in items]
    payloads = [_compact(payload) for _, payload in items]
    when = _sqlite_time(now)
    statement = sqlite_statement(len(items))
    params: list[Any] = []
    for (event_id, _), key, payload in zip(items, keys, payloads, strict=True):
        params += (batch.job_kind, payload, batch.max_attempts, when, when, when, key, event_id)
    params.append(batch.source)

    def work(conn: sqlite3.Connection) -> list[Any]:
        return conn.execute(statement, params).fetchall()

    try:
        rows = await db.writer.run_driver(work)
    except (sqlite3.Error, DBAPIError) as exc:
        raise StorageUnavailable(type(exc).__name__) from exc
    return {r[0][prefix:] for r in rows}


async def held_elsewhere(db: Database, source: str, event_ids: Sequence[str]) -> set[str]:
    """Which of `event_ids` are held in `inbound_events` (another type of event from
    the same sender took them): the check replayed `requested` events make before
    their answer. Batched and through the driver, as `record`: replays of
    `requested` are common (a sender resending after a timeout) and must cost about
    what a fresh one does."""
    if not event_ids:
        return set()
    sqlite = db.dialect == "sqlite"
    mark = "?" if sqlite else "%s"
    statement = (
        f"SELECT event_id FROM inbound_events WHERE source = {mark} "
        f"AND event_id IN ({','.join([mark] * len(event_ids))})"
    )
    params = (source, *event_ids)
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
    return {r[0] for r in rows}
