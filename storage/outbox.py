"""The mail outbox. A message row and the job that sends it are written in the
caller's transaction, so a mail exists exactly when the state that caused it does."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import MailMessage
from storage.sql import table

_mail = table(MailMessage)

QUEUED, SENDING, SENT, DEAD, EXPIRED = "queued", "sending", "sent", "dead", "expired"
FINISHED = (SENT, DEAD, EXPIRED)  # no way out of these: retention counts from `finished_at`


@dataclass(frozen=True)
class MailRow:
    id: int
    template: str
    recipient: str
    locale: str
    context: dict[str, Any]
    ticket_id: str | None
    message_id: str
    status: str
    attempts: int
    resends: int = 0


async def insert(
    conn: AsyncConnection,
    *,
    template: str,
    recipient: str,
    locale: str,
    context: dict[str, Any],
    message_id: str,
    now: datetime,
    ticket_id: str | None = None,
) -> int:
    """A queued mail's row; its send job is the caller's (resetrelay.courier.queue)."""
    return await conn.run_sync(
        lambda sync: insert_sync(
            sync,
            template=template,
            recipient=recipient,
            locale=locale,
            context=context,
            message_id=message_id,
            now=now,
            ticket_id=ticket_id,
        )
    )


def insert_sync(
    conn: Connection,
    *,
    template: str,
    recipient: str,
    locale: str,
    context: dict[str, Any],
    message_id: str,
    now: datetime,
    ticket_id: str | None = None,
) -> int:
    """`insert` for `Database.run`."""
    result = conn.execute(
        _INSERT,
        {
            "template": template,
            "recipient": recipient,
            "locale": locale,
            "context": context,
            "ticket_id": ticket_id,
            "message_id": message_id,
            "status": QUEUED,
            "attempts": 0,
            "created_at": now,
        },
    )
    return int(result.scalar_one())


def get_many_sync(conn: Connection, mail_ids: Collection[int]) -> dict[int, MailRow]:
    """The rows that exist among `mail_ids`, by id (one query for a batch of sends);
    for `Database.run_read`."""
    if not mail_ids:
        return {}
    rows = conn.execute(_GET_MANY, {"ids": list(mail_ids)})
    return {row.id: _row(row) for row in rows}


# Built once: constructing a statement costs more than running it (bench/outbox.py).
_INSERT = _mail.insert().returning(_mail.c.id)
_GET_MANY = select(_mail).where(_mail.c.id.in_(bindparam("ids", expanding=True)))


def _row(row: Any) -> MailRow:
    return MailRow(
        id=row.id,
        template=row.template,
        recipient=row.recipient,
        locale=row.locale,
        context=dict(row.context),
        ticket_id=row.ticket_id,
        message_id=row.message_id,
        status=row.status,
        attempts=row.attempts,
        resends=row.resends,
    )


def start_sending_sync(conn: Connection, mail_ids: Collection[int]) -> set[int]:
    """Mark `mail_ids` `sending`, in the transaction that claims their jobs, before
    any SMTP transaction starts; returns the ids that were `sending` already.

    Such a mail's earlier send started and its outcome was never written (the
    worker died, or the database did not take the write): the relay may have it
    already. Its `resends` goes up by one, and the caller counts the re-send. A
    mail in a finished state is left as it is (its job is done at once)."""
    if not mail_ids:
        return set()
    params = {"ids": list(mail_ids)}
    # This order: the first statement must see the rows before the second changes them.
    again = {int(i) for i in conn.execute(_RESEND, params).scalars()}
    conn.execute(_START, params)
    return again


def give_up_sync(conn: Connection, mail_ids: Collection[int], *, now: datetime, error: str) -> None:
    """Mark the unfinished ones of `mail_ids` `dead`: their job will not run again."""
    if mail_ids:
        conn.execute(_GIVE_UP, {"ids": list(mail_ids), "now": now, "error": error})


_GIVE_UP = (
    update(_mail)
    .where(_mail.c.id.in_(bindparam("ids", expanding=True)), _mail.c.status.in_((QUEUED, SENDING)))
    .values(status=DEAD, last_error=bindparam("error"), finished_at=bindparam("now"))
)
_RESEND = (
    update(_mail)
    .where(_mail.c.id.in_(bindparam("ids", expanding=True)), _mail.c.status == SENDING)
    .values(resends=_mail.c.resends + 1)
    .returning(_mail.c.id)
)
_START = (
    update(_mail)
    .where(_mail.c.id.in_(bindparam("ids", expanding=True)), _mail.c.status == QUEUED)
    .values(status=SENDING)
)


async def mark(
    conn: AsyncConnection,
    mail_id: int,
    status: str,
    *,
    now: datetime,
    error: str | None = None,
    attempted: bool = False,
) -> None:
    await conn.run_sync(mark_sync, [mail_id], status, now=now, error=error, attempted=attempted)


def mark_sync(
    conn: Connection,
    mail_ids: Collection[int],
    status: str,
    *,
    now: datetime,
    error: str | None = None,
    attempted: bool = False,
) -> None:
    """Set the status of each of `mail_ids` (one statement); for `Database.run`.
    A finished status also stamps `finished_at`, where retention counts from."""
    if not mail_ids:
        return
    params = {"ids": list(mail_ids), "new_status": status, "error": error, "now": now}
    conn.execute(_MARKS[attempted, status == SENT, status in FINISHED], params)


def _mark_statement(*, attempted: bool, sent: bool, finished: bool) -> Any:
    values: dict[str, Any] = {"status": bindparam("new_status"), "last_error": bindparam("error")}
    if attempted:
        values["attempts"] = _mail.c.attempts + 1
    if sent:
        values["sent_at"] = bindparam("now")
    if finished:
        values["finished_at"] = bindparam("now")
    return update(_mail).where(_mail.c.id.in_(bindparam("ids", expanding=True))).values(**values)


_MARKS = {
    (attempted, sent, finished): _mark_statement(attempted=attempted, sent=sent, finished=finished)
    for attempted in (False, True)
    for sent in (False, True)
    for finished in (False, True)
}


@dataclass(frozen=True)
class MailHistory:
    """A mail as an operator sees it (`resetrelay inspect`): never its context."""

    id: int
    template: str
    recipient: str
    locale: str
    ticket_id: str | None
    message_id: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


async def for_person(
    conn: AsyncConnection, *, ticket_ids: Collection[str] = (), recipients: Collection[str] = ()
) -> list[MailHistory]:
    """The mails of these tickets or to these addresses, oldest first."""
    conditions = []
    if ticket_ids:
        conditions.append(_mail.c.ticket_id.in_(list(ticket_ids)))
    if recipients:
        conditions.append(func.lower(_mail.c.recipient).in_([r.lower() for r in recipients]))
    if not conditions:
        return []
    columns = [getattr(_mail.c, name) for name in MailHistory.__dataclass_fields__]
    rows = await conn.execute(
        select(*columns).where(or_(*conditions)).order_by(_mail.c.created_at, _mail.c.id)
    )
    return [MailHistory(**row._mapping) for row in rows]


async def by_status_and_template(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """How many mails are in each (status, template)."""
    rows = await conn.execute(
        select(_mail.c.status, _mail.c.template, func.count()).group_by(
            _mail.c.status, _mail.c.template
        )
    )
    return {(status, template): int(n) for status, template, n in rows.all()}


async def oldest_queued(conn: AsyncConnection) -> datetime | None:
    """When the oldest mail still waiting to go out was queued."""
    return (  # type: ignore[no-any-return]
        await conn.execute(
            select(func.min(_mail.c.created_at)).where(_mail.c.status.in_((QUEUED, SENDING)))
        )
    ).scalar_one()


async def requeue_dead(conn: AsyncConnection, mail_ids: Collection[int]) -> int:
    """Dead mails back to queued, for a send job that an operator retries (the
    courier skips a mail whose row is dead)."""
    if not mail_ids:
        return 0
    result = await conn.execute(
        update(_mail)
        .where(_mail.c.id.in_(list(mail_ids)), _mail.c.status == DEAD)
        .values(status=QUEUED)
    )
    return int(result.rowcount)


async def counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(_mail.c.status, func.count()).group_by(_mail.c.status))
    return {status: int(n) for status, n in rows.all()}
