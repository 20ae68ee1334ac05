"""The mail outbox. A message row and the job that sends it are written in the
caller's transaction, so a mail exists exactly when the state that caused it does."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import MailMessage
from storage.sql import table

_mail = table(MailMessage)

QUEUED, SENDING, SENT, DEAD, EXPIRED = "queued", "sending", "sent", "dead", "expired"


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
        _mail.insert()
        .values(
            template=template,
            recipient=recipient,
            locale=locale,
            context=context,
            ticket_id=ticket_id,
            message_id=message_id,
            status=QUEUED,
            attempts=0,
            created_at=now,
        )
        .returning(_mail.c.id)
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
    """Set the status of each of `mail_ids` (one statement); for `Database.run`."""
    if not mail_ids:
        return
    params = {"ids": list(mail_ids), "new_status": status, "error": error, "now": now}
    conn.execute(_MARKS[attempted, status == SENT], params)


def _mark_statement(*, attempted: bool, sent: bool) -> Any:
    values: dict[str, Any] = {"status": bindparam("new_status"), "last_error": bindparam("error")}
    if attempted:
        values["attempts"] = _mail.c.attempts + 1
    if sent:
        values["sent_at"] = bindparam("now")
    return update(_mail).where(_mail.c.id.in_(bindparam("ids", expanding=True))).values(**values)


_MARKS = {
    (attempted, sent): _mark_statement(attempted=attempted, sent=sent)
    for attempted in (False, True)
    for sent in (False, True)
}


async def counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(_mail.c.status, func.count()).group_by(_mail.c.status))
    return {status: int(n) for status, n in rows.all()}
