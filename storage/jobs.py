"""The durable job queue.

    queued --claim--> running --complete--> done
                        |  \\--retry------> queued (run_after = now + backoff)
                        |   \\-fail/last--> dead
                        \\--lease expires-> claimable again (a crashed worker's job comes back)

Claiming is one statement: PostgreSQL picks rows with `FOR UPDATE SKIP LOCKED`,
so any number of workers share the table without blocking each other; SQLite's
immediate transaction (storage.database) serialises claimers. Each claim
writes a fresh lease token, and every later transition is conditional on it:
a worker whose lease ran out cannot overwrite the result of the worker that
took the job over. Attempts are counted at claim time, so a job that crashes
its worker still runs out of attempts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Job
from storage.sql import table

_jobs = table(Job)

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_token: str

    @property
    def exhausted(self) -> bool:
        return self.attempts >= self.max_attempts


async def enqueue(
    conn: AsyncConnection,
    kind: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    delay: timedelta = timedelta(0),
    max_attempts: int = 8,
) -> int:
    result = await conn.execute(
        _jobs.insert()
        .values(
            kind=kind,
            payload=payload,
            status=QUEUED,
            attempts=0,
            max_attempts=max_attempts,
            run_after=now + delay,
            created_at=now,
            updated_at=now,
        )
        .returning(_jobs.c.id)
    )
    return int(result.scalar_one())


def _claimable(now: datetime) -> Any:
    return or_(
        and_(_jobs.c.status == QUEUED, _jobs.c.run_after <= now),
        and_(_jobs.c.status == RUNNING, _jobs.c.lease_until < now),
    )


async def claim(
    conn: AsyncConnection,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    kinds: tuple[str, ...] | None = None,
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs (oldest first) to the caller."""
    pick = select(_jobs.c.id).where(_claimable(now))
    if kinds is not None:
        pick = pick.where(_jobs.c.kind.in_(kinds))
    pick = pick.order_by(_jobs.c.run_after, _jobs.c.id).limit(limit)
    pick = pick.with_for_update(skip_locked=True)  # rendered on PostgreSQL only
    token = secrets.token_hex(16)
    rows = (
        await conn.execute(
            update(_jobs)
            .where(_jobs.c.id.in_(pick.scalar_subquery()), _claimable(now))
            .values(
                status=RUNNING,
                attempts=_jobs.c.attempts + 1,
                lease_until=now + lease,
                lease_token=token,
                updated_at=now,
            )
            .returning(
                _jobs.c.id, _jobs.c.kind, _jobs.c.payload, _jobs.c.attempts, _jobs.c.max_attempts
            )
        )
    ).all()
    return [
        ClaimedJob(r.id, r.kind, dict(r.payload), r.attempts, r.max_attempts, token)
        for r in sorted(rows, key=lambda r: r.id)
    ]


def _owned(job: ClaimedJob) -> Any:
    return and_(
        _jobs.c.id == job.id, _jobs.c.status == RUNNING, _jobs.c.lease_token == job.lease_token
    )


async def complete(conn: AsyncConnection, job: ClaimedJob, *, now: datetime) -> bool:
    result = await conn.execute(
        update(_jobs)
        .where(_owned(job))
        .values(status=DONE, lease_until=None, lease_token=None, updated_at=now)
    )
    return result.rowcount == 1


async def retry(
    conn: AsyncConnection, job: ClaimedJob, *, now: datetime, delay: timedelta, error: str
) -> bool:
    """Put the job back for another attempt after `delay`; the caller checks `exhausted`."""
    result = await conn.execute(
        update(_jobs)
        .where(_owned(job))
        .values(
            status=QUEUED,
            run_after=now + delay,
            lease_until=None,
            lease_token=None,
            last_error=error[:2000],
            updated_at=now,
        )
    )
    return result.rowcount == 1


async def bury(conn: AsyncConnection, job: ClaimedJob, *, now: datetime, error: str) -> bool:
    result = await conn.execute(
        update(_jobs)
        .where(_owned(job))
        .values(
            status=DEAD, lease_until=None, lease_token=None, last_error=error[:2000], updated_at=now
        )
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class QueueStats:
    depth: int
    oldest_age_seconds: float
    dead: int


async def stats(conn: AsyncConnection, *, now: datetime) -> QueueStats:
    row = (
        await conn.execute(
            select(func.count(), func.min(_jobs.c.run_after)).where(
                _jobs.c.status.in_((QUEUED, RUNNING))
            )
        )
    ).one()
    dead = (await conn.execute(select(func.count()).where(_jobs.c.status == DEAD))).scalar_one()
    oldest: datetime | None = row[1]
    age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
    return QueueStats(depth=int(row[0]), oldest_age_seconds=age, dead=int(dead))


async def update_payload(conn: AsyncConnection, job: ClaimedJob, payload: dict[str, Any]) -> bool:
    """Record progress inside a running job (e.g. "rate limit already counted")."""
    result = await conn.execute(update(_jobs).where(_owned(job)).values(payload=payload))
    return result.rowcount == 1


async def enqueue_many(
    conn: AsyncConnection,
    kind: str,
    payloads: list[dict[str, Any]],
    *,
    now: datetime,
    max_attempts: int = 8,
) -> None:
    if not payloads:
        return
    await conn.execute(
        _jobs.insert(),
        [
            {
                "kind": kind,
                "payload": payload,
                "status": QUEUED,
                "attempts": 0,
                "max_attempts": max_attempts,
                "run_after": now,
                "created_at": now,
                "updated_at": now,
            }
            for payload in payloads
        ],
    )
