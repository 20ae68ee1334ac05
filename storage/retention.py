"""Retention: finished rows are deleted some time after they finish.

    tickets         expires_at  < cutoff   every ticket, open, used or revoked: until
                                           it would expire, its row is what makes its
                                           link answer `used`/`revoked`, not `unknown`
    mail_messages   finished_at < cutoff   sent, dead or expired, and its ticket's row
                                           gone (a ticket's mail outlives its ticket)
    jobs            run_after   < cutoff   done or dead; a finished job's `run_after`
                                           is when its last run became due, so it ends
                                           one run later at most

Each delete takes at most `batch` rows, picked by an index range scan that
stops after `batch` rows, in a transaction of its own: no statement holds a
lock for long, and any number of workers may sweep at once (PostgreSQL skips
the rows another sweep has locked; SQLite runs write transactions one at a
time). The caller (resetrelay.housekeeping) runs the statements in `STATEMENTS` order,
each until a batch comes back short.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, exists, select
from sqlalchemy.sql.elements import BindParameter

from storage import jobs, outbox
from storage.models import Job, MailMessage, Ticket
from storage.sql import table

_tickets, _mail, _jobs = table(Ticket), table(MailMessage), table(Job)


def _batch_delete(target: Table, condition: Any, order: Any) -> Any:
    """`DELETE ... WHERE id IN (the first :batch ids meeting condition)`, built once."""
    pick = (
        select(target.c.id)
        .where(condition)
        .order_by(order)
        .limit(bindparam("batch"))
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
    )
    # Materialised, as in storage.jobs' claim: a subquery plan re-run under SKIP
    # LOCKED could pick more than `batch` rows.
    picked = pick.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
    # RETURNING, not rowcount: pysqlite gives -1 for a DELETE that starts with WITH.
    return (
        delete(target).where(target.c.id.in_(select(picked.c.id)), condition).returning(target.c.id)
    )


_cutoff: BindParameter[datetime] = bindparam("cutoff")

# (table, its batch delete) in the order a sweep runs them: tickets before their
# mails, as a mail goes only once its ticket's row has gone. One statement per job
# status: `status IN (...) ORDER BY run_after` would read and sort every match.
STATEMENTS: tuple[tuple[str, Any], ...] = (
    ("tickets", _batch_delete(_tickets, _tickets.c.expires_at < _cutoff, _tickets.c.expires_at)),
    (
        "mail_messages",
        _batch_delete(
            _mail,
            (_mail.c.finished_at < _cutoff)
            & _mail.c.status.in_(outbox.FINISHED)
            & (_mail.c.ticket_id.is_(None) | ~exists().where(_tickets.c.id == _mail.c.ticket_id)),
            _mail.c.finished_at,
        ),
    ),
    *(
        (
            "jobs",
            _batch_delete(
                _jobs, (_jobs.c.status == status) & (_jobs.c.run_after < _cutoff), _jobs.c.run_after
            ),
        )
        for status in (jobs.DONE, jobs.DEAD)
    ),
)


def delete_batch_sync(conn: Connection, *, step: int, cutoff: datetime, batch: int) -> int:
    """Run batch delete number `step` of `STATEMENTS` (up to `batch` rows older than
    `cutoff`); for `Database.run`, one short transaction. Returns how many went."""
    result = conn.execute(STATEMENTS[step][1], {"cutoff": cutoff, "batch": batch})
    return len(result.all())
