"""Durable state of `resetrelay bulk-reset` runs: one `bulk_runs` row per run, one
`bulk_rows` row per line of its file.

    (no row) --enqueue--> queued --finish--> done (outcome, reason)

A row exists exactly when its job does: `add_rows` writes both in the caller's
transaction. `finish` is conditional on `queued`, so of two workers holding the
same row (a lease that lapsed) only the first one's transaction does anything;
the caller commits its ticket and mail in that same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import outbox, tickets
from storage.models import BulkRow, BulkRun, MailMessage, Ticket
from storage.sql import table

_runs = table(BulkRun)
_rows = table(BulkRow)
_tickets = table(Ticket)
_mail = table(MailMessage)

QUEUED, DONE = "queued", "done"


@dataclass(frozen=True)
class RunRow:
    id: str
    file_sha256: str
    key_column: str
    template: str
    rows: int
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Counts:
    """A run's rows: how many are queued, and the done ones by outcome."""

    queued: int
    outcomes: dict[str, int]

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())


async def run_by_id(conn: AsyncConnection, run_id: str) -> RunRow | None:
    row = (await conn.execute(select(_runs).where(_runs.c.id == run_id))).first()
    return None if row is None else RunRow(**row._mapping)


async def create_run(
    conn: AsyncConnection,
    *,
    run_id: str,
    file_sha256: str,
    key_column: str,
    template: str,
    rows: int,
    now: datetime,
) -> None:
    await conn.execute(
        _runs.insert().values(
            id=run_id,
            file_sha256=file_sha256,
            key_column=key_column,
            template=template,
            rows=rows,
            created_at=now,
        )
    )


async def finish_run(conn: AsyncConnection, run_id: str, *, now: datetime) -> bool:
    result = await conn.execute(
        update(_runs)
        .where(_runs.c.id == run_id, _runs.c.finished_at.is_(None))
        .values(finished_at=now)
    )
    return result.rowcount == 1


async def known_rows(conn: AsyncConnection, run_id: str) -> set[int]:
    """The line numbers of the run that already have a row (queued or done)."""
    rows = await conn.execute(select(_rows.c.row_no).where(_rows.c.run_id == run_id))
    return {int(n) for n in rows.scalars()}


async def add_rows(
    conn: AsyncConnection,
    run_id: str,
    rows: Iterable[tuple[int, str, str | None, str | None]],
    *,
    now: datetime,
) -> None:
    """Insert rows as (row_no, state, outcome, reason)."""
    values = [
        {
            "run_id": run_id,
            "row_no": row_no,
            "state": state,
            "outcome": outcome,
            "reason": reason,
            "updated_at": now,
        }
        for row_no, state, outcome, reason in rows
    ]
    if values:
        await conn.execute(_rows.insert(), values)


def queued_sync(conn: Connection, run_id: str, row_nos: Collection[int]) -> set[int]:
    """Which of `row_nos` are still queued (a retried job skips the done ones)."""
    if not row_nos:
        return set()
    rows = conn.execute(_QUEUED, {"run_id": run_id, "row_nos": list(row_nos)})
    return {int(n) for n in rows.scalars()}


_QUEUED = select(_rows.c.row_no).where(
    _rows.c.run_id == bindparam("run_id"),
    _rows.c.row_no.in_(bindparam("row_nos", expanding=True)),
    _rows.c.state == QUEUED,
)


async def finish(
    conn: AsyncConnection,
    run_id: str,
    row_no: int,
    *,
    outcome: str,
    now: datetime,
    reason: str | None = None,
    user_id: str | None = None,
) -> bool:
    """Mark a queued row done; False when it was done already (by another worker)."""
    result = await conn.execute(
        update(_rows)
        .where(_rows.c.run_id == run_id, _rows.c.row_no == row_no, _rows.c.state == QUEUED)
        .values(
            state=DONE,
            outcome=outcome,
            reason=None if reason is None else reason[:200],
            user_id=user_id,
            updated_at=now,
        )
    )
    return result.rowcount == 1


async def mailed_row(conn: AsyncConnection, run_id: str, user_id: str) -> int | None:
    """The line whose user got this run's mail, if one did."""
    row = (
        await conn.execute(
            select(_rows.c.row_no).where(_rows.c.run_id == run_id, _rows.c.user_id == user_id)
        )
    ).first()
    return None if row is None else int(row.row_no)


async def counts(conn: AsyncConnection, run_id: str) -> Counts:
    rows = await conn.execute(
        select(_rows.c.state, _rows.c.outcome, func.count())
        .where(_rows.c.run_id == run_id)
        .group_by(_rows.c.state, _rows.c.outcome)
    )
    queued = 0
    outcomes: dict[str, int] = {}
    for state, outcome, n in rows:
        if state == QUEUED:
            queued += int(n)
        else:
            outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + int(n)
    return Counts(queued=queued, outcomes=outcomes)


async def reasons(
    conn: AsyncConnection, run_id: str, *, limit: int = 20
) -> list[tuple[int, str, str]]:
    """Rows that were not mailed for a reason worth showing: (line, outcome, reason)."""
    rows = await conn.execute(
        select(_rows.c.row_no, _rows.c.outcome, _rows.c.reason)
        .where(_rows.c.run_id == run_id, _rows.c.reason.is_not(None))
        .order_by(_rows.c.row_no)
        .limit(limit)
    )
    return [(int(r.row_no), str(r.outcome), str(r.reason)) for r in rows]


# -- set-based writes of one job's verdicts (one transaction, a few statements) -------


@dataclass(frozen=True)
class NewTicket:
    """A ticket and its mail, as `resetrelay.reset.requests.issue` would store them."""

    ticket_id: str
    lookup_hash: str
    user_id: str
    email: str
    connection: str
    locale: str
    purpose: str
    expires_at: datetime
    template: str
    message_id: str
    code: bool = False  # the mail carries a one-time code too


async def claim_queued(conn: AsyncConnection, run_id: str, row_nos: Collection[int]) -> set[int]:
    """Which of `row_nos` are still queued, locked until the transaction ends: a
    second worker holding the same lines waits here, then finds them done."""
    if not row_nos:
        return set()
    rows = await conn.execute(
        select(_rows.c.row_no)
        .where(_rows.c.run_id == run_id, _rows.c.row_no.in_(list(row_nos)), _rows.c.state == QUEUED)
        .with_for_update()  # rendered on PostgreSQL only
    )
    return {int(n) for n in rows.scalars()}


async def mailed_users(
    conn: AsyncConnection, run_id: str, user_ids: Collection[str]
) -> dict[str, int]:
    """The users of `user_ids` already mailed in this run, with their line."""
    if not user_ids:
        return {}
    rows = await conn.execute(
        select(_rows.c.user_id, _rows.c.row_no).where(
            _rows.c.run_id == run_id, _rows.c.user_id.in_(list(user_ids))
        )
    )
    return {str(r.user_id): int(r.row_no) for r in rows}


async def finish_many(
    conn: AsyncConnection,
    run_id: str,
    done: list[tuple[int, str, str | None, str | None]],
    *,
    now: datetime,
) -> None:
    """Mark queued rows done: (row_no, outcome, reason, user_id) each."""
    if not done:
        return
    await conn.execute(
        _FINISH,
        [
            {
                "b_run": run_id,
                "b_row": row_no,
                "b_outcome": outcome,
                "b_reason": None if reason is None else reason[:200],
                "b_user": user_id,
                "b_now": now,
            }
            for row_no, outcome, reason, user_id in done
        ],
    )


_FINISH = (
    update(_rows)
    .where(
        _rows.c.run_id == bindparam("b_run"),
        _rows.c.row_no == bindparam("b_row"),
        _rows.c.state == QUEUED,
    )
    .values(
        state=DONE,
        outcome=bindparam("b_outcome"),
        reason=bindparam("b_reason"),
        user_id=bindparam("b_user"),
        updated_at=bindparam("b_now"),
    )
)


async def issue_many(
    conn: AsyncConnection, new: list[NewTicket], *, now: datetime, void_reason: str
) -> tuple[int, list[int]]:
    """Void the users' usable tickets, store the new ones and their queued mails;
    returns (tickets voided, the mails' ids in the order of `new`). The caller holds
    the users' locks (`storage.tickets.lock_user`) and queues the send jobs."""
    if not new:
        return 0, []
    users = [t.user_id for t in new]
    voided = await conn.execute(
        update(_tickets)
        .where(
            _tickets.c.user_id.in_(users),
            or_(
                _tickets.c.state == tickets.OPEN,
                and_(_tickets.c.state == tickets.CLAIMED, _tickets.c.claimed_until <= now),
            ),
        )
        .values(
            state=tickets.REVOKED, finished_at=now, claimed_until=None, revoked_reason=void_reason
        )
    )
    await conn.execute(
        _tickets.insert(),
        [
            {
                "id": t.ticket_id,
                "lookup_hash": t.lookup_hash,
                "user_id": t.user_id,
                "email": t.email,
                "connection": t.connection,
                "locale": t.locale,
                "purpose": t.purpose,
                "state": tickets.OPEN,
                "attempts": 0,
                "created_at": now,
                "expires_at": t.expires_at,
                "code_state": tickets.CODE_OPEN if t.code else None,
                "code_attempts": 0,
            }
            for t in new
        ],
    )
    result = await conn.execute(
        _mail.insert().returning(_mail.c.id, sort_by_parameter_order=True),
        [
            {
                "template": t.template,
                "recipient": t.email,
                "locale": t.locale,
                "context": {},
                "ticket_id": t.ticket_id,
                "message_id": t.message_id,
                "status": outbox.QUEUED,
                "attempts": 0,
                "created_at": now,
            }
            for t in new
        ],
    )
    return voided.rowcount, [int(i) for i in result.scalars()]
