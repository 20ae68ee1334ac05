"""Retention over a backlog: how fast finished rows go, and how long one batch's
transaction (the longest any lock is held) takes.

Fills a migrated database with `--rows` finished mails, as many expired tickets,
as many done jobs and a finished bulk run of as many lines, all older than
RETENTION_DAYS, plus as many open rows of each that must stay (the open bulk run's
id sorts first, so a pick that read it would show); then runs storage.retention's
statements in order, 500 rows a batch, each through `Database.run` as
housekeeping does, timing every batch.

    python -m bench.retention --rows 100000
    python -m bench.retention --rows 100000 --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import create_engine, func, make_url, select, text

from resetrelay.settings import normalise_database_url
from storage import retention
from storage.database import Database
from storage.migrate import sync_url, upgrade
from storage.models import BulkRow, BulkRun, Job, MailMessage, Ticket, metadata
from storage.sql import table


def _fill(url: str, rows: int, now: datetime) -> None:
    old, young = now - timedelta(days=40), now - timedelta(hours=1)
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        for start in range(0, rows, 5000):
            n = min(5000, rows - start)
            tickets: list[dict[str, Any]] = []
            mails: list[dict[str, Any]] = []
            jobs: list[dict[str, Any]] = []
            for i in range(start, start + n):
                for at, tag in ((old, "o"), (young, "y")):
                    tid = f"{tag}{i}"
                    tickets.append(
                        {
                            "id": tid,
                            "lookup_hash": uuid.uuid4().hex,
                            "user_id": f"auth0|{i}",
                            "email": f"u{i}@example.com",
                            "connection": "db",
                            "locale": "en",
                            "purpose": "reset",
                            "state": "used",
                            "attempts": 0,
                            "created_at": at,
                            "expires_at": at + timedelta(hours=1),
                        }
                    )
                    mails.append(
                        {
                            "template": "reset",
                            "recipient": f"u{i}@example.com",
                            "locale": "en",
                            "context": {},
                            "ticket_id": tid,
                            "message_id": f"<{tid}.{uuid.uuid4().hex}@bench>",
                            "status": "sent",
                            "attempts": 1,
                            "created_at": at,
                            "sent_at": at,
                            "finished_at": at,
                        }
                    )
                    jobs.append(
                        {
                            "kind": "mail.send",
                            "payload": {"mail_id": i},
                            "status": "done",
                            "attempts": 1,
                            "max_attempts": 10,
                            "run_after": at,
                            "created_at": at,
                            "updated_at": at,
                        }
                    )
            conn.execute(table(Ticket).insert(), tickets)
            conn.execute(table(MailMessage).insert(), mails)
            conn.execute(table(Job).insert(), jobs)
        for run_id, at, finished in (("a-open", young, None), ("z-finished", old, old)):
            conn.execute(
                table(BulkRun).insert(),
                {
                    "id": run_id,
                    "file_sha256": "0" * 64,
                    "key_column": "email",
                    "template": "breached",
                    "rows": rows,
                    "created_at": at,
                    "finished_at": finished,
                },
            )
            for start in range(0, rows, 5000):
                conn.execute(
                    table(BulkRow).insert(),
                    [
                        {
                            "run_id": run_id,
                            "row_no": i,
                            "state": "done",
                            "outcome": "mailed",
                            "user_id": f"auth0|{run_id}{i}",
                            "updated_at": at,
                        }
                        for i in range(start, min(rows, start + 5000))
                    ],
                )
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
    engine.dispose()


async def _sweep(url: str, now: datetime) -> tuple[int, list[float]]:
    db = Database(url)
    batches: list[float] = []
    deleted = 0
    try:
        for step in range(len(retention.STATEMENTS)):
            while True:
                started = time.perf_counter()
                n = await db.run(
                    partial(
                        retention.delete_batch_sync,
                        step=step,
                        now=now,
                        retention=timedelta(days=30),
                        batch=500,
                    )
                )
                batches.append(time.perf_counter() - started)
                deleted += n
                if n < 500:
                    break
    finally:
        await db.dispose()
    return deleted, batches


def _left(url: str) -> dict[str, int]:
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        counts = {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (
                metadata.tables[n]
                for n in ("tickets", "mail_messages", "jobs", "bulk_rows", "bulk_runs")
            )
        }
    engine.dispose()
    return counts


@contextmanager
def _database(server_url: str, folder: str) -> Iterator[str]:
    """A fresh SQLite file, or a fresh database of its own on the PostgreSQL server
    (dropped afterwards), so the run never touches anyone else's rows."""
    if not server_url:
        yield normalise_database_url(f"sqlite:///{Path(folder) / 'retention.db'}")
        return
    admin_url = make_url(sync_url(normalise_database_url(server_url)))
    name = f"resetrelay_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        own = admin_url.set(database=name).render_as_string(hide_password=False)
        yield normalise_database_url(own)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, _database(args.database_url, folder) as url:
        upgrade(url)
        now = datetime.now(UTC)
        _fill(url, args.rows, now)
        started = time.perf_counter()
        deleted, batches = anyio.run(_sweep, url, now)
        elapsed = time.perf_counter() - started
        left = _left(url)
    batches.sort()
    print(f"database: {url.split(':')[0]}; finished rows: {4 * args.rows + 1}; open rows kept")
    print(f"deleted {deleted} rows in {elapsed:.1f} s: {deleted / elapsed:,.0f} rows/s")
    print(
        f"batches: {len(batches)}; per batch median {batches[len(batches) // 2] * 1000:.1f} ms,"
        f" p99 {batches[int(len(batches) * 0.99)] * 1000:.1f} ms,"
        f" max {batches[-1] * 1000:.1f} ms"
    )
    print(f"left (the open halves): {left}")


if __name__ == "__main__":
    main()
