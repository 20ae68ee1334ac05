"""The reset funnel: where users drop out between asking and a new password.

    requested -> limited                      (over a rate limit: nothing more)
              -> found | unknown | social     (the Auth0 lookup)
    found     -> mailed -> opened -> completed

Each step is counted twice: in the `funnel_days` table (storage.funnel), in the
transaction that does the step's own work, so the count commits with the state
it counts; and in the `resetrelay_funnel_steps_total` Prometheus counter, by
step and purpose, which belongs to the process and restarts with it.

Where each step is counted, and why there:
- requested, limited: in the job, in the transaction that counts the request
  against its rate limits (once per job, however often it is retried). Not at
  the door: the `requested` answer is the hot path, batched by group commit,
  and an extra upsert there would cost every request a write on one contended
  row per day.
- found, unknown, social: in the job, with the lookup's outcome (found: in the
  transaction that issues the ticket).
- mailed: in the courier's transaction that marks a mail with a ticket sent.
  Courtesy mails (reset.courtesy) carry no ticket and are no step: their
  request already ended at `social` or `unknown`, and they are counted by
  kind in `resetrelay_courtesy_mails_total`.
- opened: the first `verify` of a ticket (`tickets.opened_at`): a link opened
  again, or fetched by a mail scanner first, counts once.
- completed: in the transaction that settles the ticket as used.

The request steps carry the locale the website asked for (or DEFAULT_LOCALE);
from `found` on, the locale of the mail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from resetrelay.metrics import Metrics
from storage import funnel, tickets
from storage.database import Database
from storage.tickets import TicketRow

STEPS = funnel.STEPS


def counted(metrics: Metrics, step: str, purpose: str, n: int = 1) -> None:
    """The Prometheus side of a step (after its row was written)."""
    metrics.funnel.labels(step, purpose).inc(n)


def requested_sync(
    conn: Connection, metrics: Metrics, *, at: datetime, locale: str, limited: bool
) -> None:
    """A `requested` job counted against the rate limits; `limited` when refused."""
    for step in ("requested", "limited") if limited else ("requested",):
        funnel.add_sync(conn, at=at, purpose="reset", locale=locale, step=step)
        counted(metrics, step, "reset")


async def looked_up(
    conn: AsyncConnection, metrics: Metrics, outcome: str, *, at: datetime, locale: str
) -> None:
    """The Auth0 lookup of a reset request: `found`, `unknown` or `social`."""
    await conn.run_sync(lambda sync: looked_up_sync(sync, metrics, outcome, at=at, locale=locale))


def looked_up_sync(
    conn: Connection, metrics: Metrics, outcome: str, *, at: datetime, locale: str
) -> None:
    """`looked_up` for `Database.run` (the ticket is issued in the same hop)."""
    funnel.add_sync(conn, at=at, purpose="reset", locale=locale, step=outcome)
    counted(metrics, outcome, "reset")


def mailed_sync(conn: Connection, mail_ids: list[int], *, at: datetime) -> None:
    """Sent mails that carry a ticket (the Prometheus side: `counted` by the sender)."""
    funnel.mailed_sync(conn, mail_ids, at=at)


async def opened(db: Database, metrics: Metrics, row: TicketRow, *, at: datetime) -> None:
    """A ticket's link opened (`verify`); counted the first time only. A link opened
    before costs no write at all: the row read by the check says so."""
    if row.opened_at is not None:
        return
    async with db.begin() as conn:
        first = await tickets.mark_opened(conn, row.id, now=at)
        if first:
            await funnel.add(conn, at=at, purpose=row.purpose, locale=row.locale, step="opened")
    if first:
        counted(metrics, "opened", row.purpose)


async def completed(conn: AsyncConnection, row: TicketRow, *, at: datetime) -> None:
    """A ticket settled as used (the Prometheus side: `counted` once it committed)."""
    await funnel.add(conn, at=at, purpose=row.purpose, locale=row.locale, step="completed")
