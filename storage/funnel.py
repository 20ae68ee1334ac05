"""The funnel's per-day counts: one row per (day, purpose, locale, step), upserted.

Each step adds to its row in the transaction that does the step's own work, so a
count and the state it counts commit together (a retried job does not count
twice). Counts only: nothing here names a person.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import FunnelDay, MailMessage, Ticket
from storage.sql import table

_days = table(FunnelDay)
_mail = table(MailMessage)
_tickets = table(Ticket)

# In the order a reset moves through them; `limited`, `unknown` and `social` end it.
STEPS = ("requested", "limited", "found", "unknown", "social", "mailed", "opened", "completed")


@dataclass(frozen=True)
class FunnelRow:
    day: date
    purpose: str
    locale: str
    step: str
    total: int


def _upsert(postgres: bool) -> Any:
    insert = (postgresql if postgres else sqlite).insert(_days)
    return insert.on_conflict_do_update(
        index_elements=["day", "purpose", "locale", "step"],
        set_={"total": _days.c.total + insert.excluded.total},
    )


# Built once per dialect: every reset job adds to two or three steps, and building
# an upsert cost more than running it.
_UPSERTS = {postgres: _upsert(postgres) for postgres in (False, True)}


def add_sync(
    conn: Connection, *, at: datetime, purpose: str, locale: str, step: str, n: int = 1
) -> None:
    """Add `n` to a step's count for `at`'s day (UTC); for `Database.run`."""
    if step not in STEPS:
        raise ValueError(f"unknown funnel step {step!r}")
    if n <= 0:
        return
    conn.execute(
        _UPSERTS[conn.dialect.name == "postgresql"],
        {"day": at.date(), "purpose": purpose, "locale": locale[:16], "step": step, "total": n},
    )


async def add(
    conn: AsyncConnection, *, at: datetime, purpose: str, locale: str, step: str, n: int = 1
) -> None:
    await conn.run_sync(
        lambda sync: add_sync(sync, at=at, purpose=purpose, locale=locale, step=step, n=n)
    )


def mailed_sync(conn: Connection, mail_ids: Collection[int], *, at: datetime) -> None:
    """Count the sent mails among `mail_ids` that carry a ticket, by the ticket's
    purpose and the mail's locale (other mails, e.g. "changed", are not a step)."""
    if not mail_ids:
        return
    rows = conn.execute(_MAILED, {"ids": list(mail_ids)}).all()
    for purpose, locale, n in rows:
        add_sync(conn, at=at, purpose=purpose, locale=locale, step="mailed", n=int(n))


_MAILED = (
    select(_tickets.c.purpose, _mail.c.locale, func.count())
    .select_from(_mail.join(_tickets, _tickets.c.id == _mail.c.ticket_id))
    .where(_mail.c.id.in_(bindparam("ids", expanding=True)))
    .group_by(_tickets.c.purpose, _mail.c.locale)
)


async def since(conn: AsyncConnection, first_day: date) -> list[FunnelRow]:
    """Every row from `first_day` on, by day, purpose, locale."""
    rows = await conn.execute(
        select(_days)
        .where(_days.c.day >= first_day)
        .order_by(_days.c.day, _days.c.purpose, _days.c.locale, _days.c.step)
    )
    return [FunnelRow(r.day, r.purpose, r.locale, r.step, int(r.total)) for r in rows]
