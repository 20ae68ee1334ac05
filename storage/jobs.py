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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

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
    lease_until: datetime  # after this, another worker may take the job over
    # Set by the kind's claim step (resetrelay.jobs.kinds): an earlier run of this
    # job started its effect and never recorded the outcome, so it may have happened.
    in_doubt: bool = False

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
    return await conn.run_sync(
        lambda sync: enqueue_sync(
            sync, kind, payload, now=now, delay=delay, max_attempts=max_attempts
        )
    )


def enqueue_sync(
    conn: Connection,
    kind: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    delay: timedelta = timedelta(0),
    max_attempts: int = 8,
) -> int:
    """`enqueue` for `Database.run`."""
    result = conn.execute(
        _ENQUEUE,
        {
            "kind": kind,
            "payload": payload,
            "status": QUEUED,
            "attempts": 0,
            "max_attempts": max_attempts,
            "run_after": now + delay,
            "created_at": now,
            "updated_at": now,
        },
    )
    return int(result.scalar_one())


# Built once, as the statements below: every reset queues and completes jobs, and
# building a statement (and its cache key) cost more than SQLite takes to run it.
_ENQUEUE = _jobs.insert().returning(_jobs.c.id)


async def claim(
    conn: AsyncConnection,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    kinds: tuple[str, ...] | None = None,
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs (oldest first) to the caller."""
    return await conn.run_sync(claim_sync, now=now, lease=lease, limit=limit, kinds=kinds)


def claim_sync(
    conn: Connection,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    kinds: tuple[str, ...] | None = None,
) -> list[ClaimedJob]:
    """`claim` for `Database.run` (one thread hop per claim on SQLite)."""
    token = secrets.token_hex(16)
    params: dict[str, Any] = {"now": now, "lease_end": now + lease, "token": token}
    if kinds is not None:
        params["kinds"] = list(kinds)
    rows: list[Any] = []
    for statement in _CLAIMS[kinds is not None]:
        want = limit - len(rows)
        if want <= 0:
            break
        rows += conn.execute(statement, {**params, "limit": want}).all()
    return [
        ClaimedJob(
            r.id, r.kind, dict(r.payload), r.attempts, r.max_attempts, token, params["lease_end"]
        )
        for r in sorted(rows, key=lambda r: r.id)
    ]


def _claim_statements(*, by_kind: bool) -> tuple[Any, ...]:
    """The claim, as two statements built once (building a statement costs more
    than SQLite takes to run it): lapsed leases first, they were due before
    anything still queued, then queued jobs.

    Each is an index range scan on (status, run_after) that stops after `limit`
    rows. One `OR` of both conditions would make both databases read and sort
    every due job on every claim, so a claim would cost as much as the backlog
    is long."""
    now: BindParameter[datetime] = bindparam("now")
    due = (
        and_(_jobs.c.status == RUNNING, _jobs.c.lease_until < now),
        and_(_jobs.c.status == QUEUED, _jobs.c.run_after <= now),
    )
    statements = []
    for condition in due:
        pick = select(_jobs.c.id).where(condition)
        if by_kind:
            pick = pick.where(_jobs.c.kind.in_(bindparam("kinds", expanding=True)))
        pick = pick.order_by(_jobs.c.run_after, _jobs.c.id).limit(bindparam("limit"))
        pick = pick.with_for_update(skip_locked=True)  # rendered on PostgreSQL only
        # A materialised CTE, not `IN (subquery)`: PostgreSQL may run a subquery
        # plan more than once per statement, and with SKIP LOCKED each run skips
        # the rows the last one locked, so the UPDATE took more than `limit` rows.
        picked = pick.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
        statements.append(
            update(_jobs)
            .where(_jobs.c.id.in_(select(picked.c.id)), condition)
            .values(
                status=RUNNING,
                attempts=_jobs.c.attempts + 1,
                lease_until=bindparam("lease_end"),
                lease_token=bindparam("token"),
                updated_at=now,
            )
            .returning(
                _jobs.c.id, _jobs.c.kind, _jobs.c.payload, _jobs.c.attempts, _jobs.c.max_attempts
            )
        )
    return tuple(statements)


_CLAIMS = {False: _claim_statements(by_kind=False), True: _claim_statements(by_kind=True)}


def _owned(job: ClaimedJob) -> Any:
    return and_(
        _jobs.c.id == job.id, _jobs.c.status == RUNNING, _jobs.c.lease_token == job.lease_token
    )


async def complete(conn: AsyncConnection, job: ClaimedJob, *, now: datetime) -> bool:
    return await conn.run_sync(lambda sync: complete_sync(sync, job, now=now))


def complete_sync(conn: Connection, job: ClaimedJob, *, now: datetime) -> bool:
    """`complete` for `Database.run`."""
    result = conn.execute(_COMPLETE, {"job_id": job.id, "token": job.lease_token, "now": now})
    return result.rowcount == 1


def _owned_by_params() -> Any:
    """`_owned`, as bound parameters `job_id` and `token` (an UPDATE's parameters may
    not be named as a column), for statements built once."""
    return and_(
        _jobs.c.id == bindparam("job_id"),
        _jobs.c.status == RUNNING,
        _jobs.c.lease_token == bindparam("token"),
    )


_COMPLETE = (
    update(_jobs)
    .where(_owned_by_params())
    .values(status=DONE, lease_until=None, lease_token=None, updated_at=bindparam("now"))
)
_UPDATE_PAYLOAD = update(_jobs).where(_owned_by_params()).values(payload=bindparam("new_payload"))


async def complete_many(
    conn: AsyncConnection, claimed: Sequence[ClaimedJob], *, now: datetime
) -> set[int]:
    """Complete several jobs in one statement per claim; returns the ids still owned."""
    return await conn.run_sync(complete_many_sync, claimed, now=now)


def complete_many_sync(
    conn: Connection, claimed: Sequence[ClaimedJob], *, now: datetime
) -> set[int]:
    """`complete_many` for `Database.run`.

    Jobs leased by one claim share its lease token, so a batch from one claim is
    one `UPDATE ... WHERE id IN (...) AND lease_token = ...`. A job missing from
    the answer had its lease taken over: its new owner decides its fate.
    """
    by_token: dict[str, list[int]] = {}
    for job in claimed:
        by_token.setdefault(job.lease_token, []).append(job.id)
    owned: set[int] = set()
    for token, ids in by_token.items():
        rows = conn.execute(_COMPLETE_MANY, {"ids": ids, "token": token, "now": now})
        owned.update(int(job_id) for job_id in rows.scalars())
    return owned


_COMPLETE_MANY = (
    update(_jobs)
    .where(
        _jobs.c.id.in_(bindparam("ids", expanding=True)),
        _jobs.c.status == RUNNING,
        _jobs.c.lease_token == bindparam("token"),
    )
    .values(status=DONE, lease_until=None, lease_token=None, updated_at=bindparam("now"))
    .returning(_jobs.c.id)
)


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


def update_payload_sync(conn: Connection, job: ClaimedJob, payload: dict[str, Any]) -> bool:
    """`update_payload` for `Database.run`."""
    params = {"job_id": job.id, "token": job.lease_token, "new_payload": payload}
    return conn.execute(_UPDATE_PAYLOAD, params).rowcount == 1


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


# -- for operators (resetrelay.operators.queue) ----------------------------------------


@dataclass(frozen=True)
class JobRow:
    id: int
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    run_after: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime


_JOB_ROW = [getattr(_jobs.c, name) for name in JobRow.__dataclass_fields__]


def _job_row(row: Any) -> JobRow:
    values = dict(row._mapping)
    values["payload"] = dict(values["payload"] or {})
    return JobRow(**values)


async def listing(
    conn: AsyncConnection, *, status: str | None = None, kind: str | None = None, limit: int = 50
) -> list[JobRow]:
    """Jobs newest first, optionally of one status and one kind."""
    query = select(*_JOB_ROW).order_by(_jobs.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(_jobs.c.status == status)
    if kind is not None:
        query = query.where(_jobs.c.kind == kind)
    return [_job_row(row) for row in await conn.execute(query)]


async def requeue_dead(
    conn: AsyncConnection, *, now: datetime, ids: Sequence[int] | None = None
) -> list[tuple[int, str, dict[str, Any]]]:
    """Give dead jobs (those listed, or every one when `ids` is None) one more attempt,
    due now; returns (id, kind, payload) of each job requeued.

    One attempt, as Sidekiq's "retry now" on its dead set (`retry_count` minus one)
    and good_job's `retry_job` (its execution count goes on): if the cause is not
    fixed the job is dead again after one try, not after a whole new round of
    backoff. A job that is not dead (queued, running, done) is left alone:
    retrying it could run it twice."""
    query = update(_jobs).where(_jobs.c.status == DEAD)
    if ids is not None:
        if not ids:
            return []
        query = query.where(_jobs.c.id.in_(list(ids)))
    result = await conn.execute(
        query.values(
            status=QUEUED,
            attempts=_jobs.c.max_attempts - 1,
            run_after=now,
            lease_until=None,
            lease_token=None,
            updated_at=now,
        ).returning(_jobs.c.id, _jobs.c.kind, _jobs.c.payload)
    )
    return sorted(((int(r.id), r.kind, dict(r.payload)) for r in result), key=lambda t: t[0])


async def purge_finished(
    conn: AsyncConnection, *, older_than: datetime, limit: int | None = None
) -> int:
    """Delete done and dead jobs last changed before `older_than`, at most `limit` of
    them (a caller deletes a large backlog in short transactions); never a queued or
    running one."""
    finished = and_(_jobs.c.status.in_((DONE, DEAD)), _jobs.c.updated_at < older_than)
    query = delete(_jobs).where(finished)
    if limit is not None:
        query = delete(_jobs).where(
            _jobs.c.id.in_(select(_jobs.c.id).where(finished).limit(limit)), finished
        )
    result = await conn.execute(query)
    return int(result.rowcount)


async def for_person(
    conn: AsyncConnection,
    *,
    kinds: Sequence[str],
    user_ids: Sequence[str] = (),
    emails: Sequence[str] = (),
) -> list[JobRow]:
    """Jobs of `kinds` whose payload names one of `user_ids` (`user_id`) or `emails`
    (`email`, `user_name`), oldest first. Payloads are JSON without an index: this
    reads every job of those kinds, which suits an operator's one-off question."""
    conditions = []
    if user_ids:
        conditions.append(_jobs.c.payload["user_id"].as_string().in_(list(user_ids)))
    if emails:
        lowered = [e.lower() for e in emails]
        conditions.append(func.lower(_jobs.c.payload["email"].as_string()).in_(lowered))
        conditions.append(func.lower(_jobs.c.payload["user_name"].as_string()).in_(lowered))
    if not conditions or not kinds:
        return []
    rows = await conn.execute(
        select(*_JOB_ROW)
        .where(_jobs.c.kind.in_(list(kinds)), or_(*conditions))
        .order_by(_jobs.c.created_at, _jobs.c.id)
    )
    return [_job_row(row) for row in rows]
