"""Retention: finished rows are deleted some time after they finish.

    tickets         expires_at  < cutoff   every ticket, open, used or revoked: until
                                           it would expire, its row is what makes its
                                           link answer `used`/`revoked`, not `unknown`
    disputes        expires_at  < cutoff   as tickets; except a confirmed dispute whose
                    and not awaiting a lift  block is not lifted yet (`lifted_at` unset):
                                           its row is what makes the owner's next
                                           completed reset lift that block
    mail_messages   finished_at < cutoff   sent, dead or expired, and its ticket's row
                                           gone (a ticket's mail outlives its ticket)
    jobs            run_after   < cutoff   done or dead; a finished job's `run_after`
                                           is when its last run became due, so it ends
                                           one run later at most
    bulk_rows       (its run's)            every line of a run that goes (next row),
                                           before the run itself: a run is one unit,
                                           as a run missing some lines would mail
                                           their users again when it is continued
    bulk_runs       finished_at < cutoff   finished; a run never finished goes
                    or created_at          by `created_at` (see `_RUN_OVER`)
    funnel_days     day < today - FUNNEL_KEPT
                                           counts only, kept for a year-on-year view

`operator_actions` is the audit trail and stays. `auth0_findings` holds at most
one row per Management API endpoint or call, overwritten in place, and nobody in
it: nothing to sweep.

Each transaction deletes at most `batch` rows, picked by an index range scan
that stops after `batch` rows (bulk_runs, a row per operator command, is read
whole; bulk_rows may take a few statements, one per run, to fill a batch): no
statement holds a lock for long, and any number of workers may sweep at once (PostgreSQL skips
the rows another sweep has locked; SQLite runs write transactions one at a
time). The caller (resetrelay.housekeeping) runs the statements in `STATEMENTS` order,
each until a batch comes back short. Tables with a composite primary key are
picked and deleted by the whole key (a row value `IN`), through that key's index.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Table, bindparam, delete, exists, func, select, true, tuple_
from sqlalchemy.sql.elements import BindParameter

from storage import jobs, outbox
from storage.models import BulkRow, BulkRun, Dispute, FunnelDay, Job, MailMessage, Ticket
from storage.sql import table

_tickets, _mail, _jobs = table(Ticket), table(MailMessage), table(Job)
_disputes = table(Dispute)
_runs, _rows, _funnel = table(BulkRun), table(BulkRow), table(FunnelDay)
_lines = _rows.alias("lines")  # bulk_rows again, inside a pick from bulk_rows

# The funnel's daily counts hold nobody, so RETENTION_DAYS (a privacy limit) does
# not apply; thirteen months let a month be compared with the same month a year ago.
FUNNEL_KEPT: Final = timedelta(days=400)


def _batch_delete(target: Table, condition: Any, order: Any, where: Any = None) -> Any:
    """`DELETE ... WHERE key IN (the first :batch keys meeting condition)`, built once.
    The key is the primary key, one column or several; `order` should lead with an
    indexed column so the pick is a range scan that stops after `batch` rows.
    `where` is checked again by the DELETE (default: `condition`)."""
    key = list(target.primary_key.columns)
    pick = (
        select(*key)
        .where(condition)
        .order_by(*order)
        .limit(bindparam("batch"))
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
    )
    # Materialised, as in storage.jobs' claim: a subquery plan re-run under SKIP
    # LOCKED could pick more than `batch` rows.
    picked = pick.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
    chosen = select(*(picked.c[c.name] for c in key))
    match = key[0].in_(chosen) if len(key) == 1 else tuple_(*key).in_(chosen)
    # RETURNING, not rowcount: pysqlite gives -1 for a DELETE that starts with WITH.
    return delete(target).where(match, condition if where is None else where).returning(key[0])


_cutoff: BindParameter[datetime] = bindparam("cutoff")
_day_before: BindParameter[date] = bindparam("day_before")

# A bulk run is over RETENTION_DAYS after it finished or, never marked finished,
# after it started. A run is marked finished only by the command watching it, so
# one whose command was stopped stays open although the workers did every line,
# and its user ids must not be kept for ever either. A run that old and still
# open is not worth continuing: the tickets it mailed have long expired, a breach
# notice that late is news to nobody, and its lines' jobs have long since run or
# given up (`bulk.reset`: 30 tries). A job still queued for a run that is gone
# finds no queued line (storage.bulk.queued_sync) and does nothing; the same file
# run again starts a new run.
_RUN_OVER = func.coalesce(_runs.c.finished_at, _runs.c.created_at) < _cutoff

# The next run, by id after `:after`, that is over and still has lines. Lines go
# one run at a time, so the pick of a run's lines is a range scan of bulk_rows'
# primary key (run_id, row_no) that stops after `batch` rows, whatever other runs
# hold. bulk_runs has a row per operator command, too few for an index on its
# times to pay; EXISTS is one probe of that key.
_NEXT_RUN = (
    select(_runs.c.id)
    .where(
        _RUN_OVER,
        _runs.c.id > bindparam("after"),
        exists().where(_lines.c.run_id == _runs.c.id),
    )
    .order_by(_runs.c.id)
    .limit(1)
)

# (table, its batch delete) in the order a sweep runs them: tickets before their
# mails, as a mail goes only once its ticket's row has gone. One statement per job
# status: `status IN (...) ORDER BY run_after` would read and sort every match.
STATEMENTS: tuple[tuple[str, Any], ...] = (
    (
        "tickets",
        _batch_delete(_tickets, _tickets.c.expires_at < _cutoff, [_tickets.c.expires_at]),
    ),
    (
        "mail_messages",
        _batch_delete(
            _mail,
            (_mail.c.finished_at < _cutoff)
            & _mail.c.status.in_(outbox.FINISHED)
            & (_mail.c.ticket_id.is_(None) | ~exists().where(_tickets.c.id == _mail.c.ticket_id)),
            [_mail.c.finished_at],
        ),
    ),
    (
        "disputes",
        _batch_delete(
            _disputes,
            (_disputes.c.expires_at < _cutoff)
            & ((_disputes.c.state != "used") | _disputes.c.lifted_at.is_not(None)),
            [_disputes.c.expires_at],
        ),
    ),
    *(
        (
            "jobs",
            _batch_delete(
                _jobs,
                (_jobs.c.status == status) & (_jobs.c.run_after < _cutoff),
                [_jobs.c.run_after],
            ),
        )
        for status in (jobs.DONE, jobs.DEAD)
    ),
    # A run's lines first (the run `:run_id`, from `_NEXT_RUN`), then the run once
    # it has none left. The DELETE of lines does not re-check the run: a run that
    # is over cannot become open again.
    (
        "bulk_rows",
        _batch_delete(_rows, _rows.c.run_id == bindparam("run_id"), [_rows.c.row_no], where=true()),
    ),
    (
        "bulk_runs",
        _batch_delete(
            _runs, _RUN_OVER & ~exists().where(_rows.c.run_id == _runs.c.id), [_runs.c.id]
        ),
    ),
    (
        "funnel_days",
        _batch_delete(
            _funnel,
            _funnel.c.day < _day_before,
            [_funnel.c.day, _funnel.c.purpose, _funnel.c.locale, _funnel.c.step],
        ),
    ),
)


def delete_batch_sync(
    conn: Connection, *, step: int, now: datetime, retention: timedelta, batch: int
) -> int:
    """Run batch delete number `step` of `STATEMENTS` (up to `batch` rows finished
    `retention` before `now`, or funnel days `FUNNEL_KEPT` before it); for
    `Database.run`, one short transaction. Returns how many went."""
    name, statement = STATEMENTS[step]
    params = {"cutoff": now - retention, "day_before": (now - FUNNEL_KEPT).date()}
    if name == "bulk_rows":
        return _delete_lines(conn, statement, params, batch)
    return len(conn.execute(statement, {**params, "batch": batch}).all())


def _delete_lines(conn: Connection, statement: Any, params: dict[str, Any], batch: int) -> int:
    """Up to `batch` lines of the runs that are over, run after run in id order:
    a statement per run, each taking what the batch still has room for."""
    total, after = 0, ""  # run ids are never empty: the command falls back to the hash
    while total < batch:
        run_id = conn.execute(_NEXT_RUN, {**params, "after": after}).scalar()
        if run_id is None:
            break
        total += len(conn.execute(statement, {"run_id": run_id, "batch": batch - total}).all())
        # Fewer than asked: the run is empty, or another sweep holds the rest of its
        # lines (PostgreSQL skips them). Either way the next run is the one to
        # work on, so concurrent sweeps spread over the runs instead of all
        # stopping at the first one.
        after = run_id
    return total
