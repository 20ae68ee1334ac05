"""`resetrelay jobs list | retry | purge` and `resetrelay outbox stats`: the job queue
and the outbox as an operator sees them.

`jobs list` masks every address in a payload (`mask_email`, as in the logs): the
queue holds everyone's jobs, and nobody asked for those people.
`jobs retry` gives dead jobs one more attempt (storage.jobs.requeue_dead says
why one); a dead mail's row goes back to queued with its job, or the courier
would skip it. `jobs purge` deletes finished jobs (done or dead) only. Each
action that changes rows writes one audit line in the same transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mail.errors import scrub_addresses
from resetrelay.audit import Operator
from resetrelay.courier import SEND
from resetrelay.logs import mask_email
from resetrelay.operators import funnel
from resetrelay.operators.table import iso, render
from storage import audit, jobs, outbox
from storage.database import Database
from storage.jobs import JobRow

PURGE_BATCH = 5000
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `30d`, `2w` -> a timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 15m, 90s or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def masked(value: Any) -> Any:
    """A payload with every string that holds an `@` masked, however deep."""
    if isinstance(value, str):
        return mask_email(value) if "@" in value else value
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


async def listing(db: Database, *, state: str | None, kind: str | None, limit: int) -> list[JobRow]:
    async with db.read() as conn:
        return await jobs.listing(conn, status=state, kind=kind, limit=limit)


@dataclass(frozen=True)
class Retried:
    job_ids: list[int]
    mails_requeued: int


async def retry(
    db: Database,
    operator: Operator,
    *,
    now: datetime,
    job_ids: list[int] | None = None,
) -> Retried:
    """Requeue the dead jobs among `job_ids`, or every dead job when it is None."""
    async with db.begin() as conn:
        requeued = await jobs.requeue_dead(conn, now=now, ids=job_ids)
        mail_ids = [int(p["mail_id"]) for _, kind, p in requeued if kind == SEND.name]
        mails = await outbox.requeue_dead(conn, mail_ids)
        ids = [job_id for job_id, _, _ in requeued]
        asked = "every dead job" if job_ids is None else "ids " + ",".join(map(str, job_ids))
        await audit.record(
            conn,
            at=now,
            actor=operator.actor,
            host=operator.host,
            action="jobs.retry",
            rows=len(ids),
            detail=f"asked: {asked}"[:500],
        )
    return Retried(ids, mails)


async def purge(
    db: Database,
    operator: Operator,
    *,
    now: datetime,
    older_than: timedelta,
    batch: int = PURGE_BATCH,
) -> int:
    """Delete done and dead jobs last changed more than `older_than` ago, `batch` at a
    time: each batch is its own short transaction with its own audit line, so a large
    backlog never holds a long lock on the table the workers claim from."""
    cutoff = now - older_than
    total = 0
    while True:
        async with db.begin() as conn:
            deleted = await jobs.purge_finished(conn, older_than=cutoff, limit=batch)
            if deleted or not total:  # the first line even when nothing was finished
                await audit.record(
                    conn,
                    at=now,
                    actor=operator.actor,
                    host=operator.host,
                    action="jobs.purge",
                    rows=deleted,
                    detail=f"finished before {cutoff.isoformat()}",
                )
        total += deleted
        if deleted < batch:
            return total


@dataclass(frozen=True)
class OutboxStats:
    by_state_template: dict[tuple[str, str], int]
    oldest_queued: datetime | None
    now: datetime

    @property
    def oldest_queued_age_seconds(self) -> float | None:
        if self.oldest_queued is None:
            return None
        return max(0.0, (self.now - self.oldest_queued).total_seconds())


async def outbox_stats(db: Database, *, now: datetime) -> OutboxStats:
    async with db.read() as conn:
        counts = await outbox.by_status_and_template(conn)
        oldest = await outbox.oldest_queued(conn)
    return OutboxStats(counts, oldest, now)


def age(seconds: float | None) -> str:
    """`3d 4h`, `2h 5m`, `4m 10s`, `12s`; `-` for none."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _job(row: JobRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "state": row.status,
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "run_after": iso(row.run_after),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        # Errors may quote a server's reply, and a reply may quote an address.
        "last_error": scrub_addresses(row.last_error) if row.last_error else None,
        "payload": masked(row.payload),
    }


def jobs_json(rows: list[JobRow]) -> str:
    return json.dumps([_job(r) for r in rows], indent=2, ensure_ascii=False)


def jobs_text(rows: list[JobRow]) -> str:
    table: list[list[object]] = []
    for row in rows:
        job = _job(row)
        payload = json.dumps(job["payload"], separators=(",", ":"), ensure_ascii=False)
        table.append(
            [
                row.id,
                row.kind,
                row.status,
                f"{row.attempts}/{row.max_attempts}",
                row.run_after,
                row.updated_at,
                (job["last_error"] or "")[:60],
                payload[:70],
            ]
        )
    headings = ["id", "kind", "state", "attempts", "run after", "updated", "last error", "payload"]
    return render(headings, table, empty="(no jobs)")


def outbox_json(stats: OutboxStats, counted: funnel.Funnel) -> str:
    return json.dumps(
        {
            "by_state_template": [
                {"state": state, "template": template, "count": n}
                for (state, template), n in sorted(stats.by_state_template.items())
            ],
            "oldest_queued_age_seconds": stats.oldest_queued_age_seconds,
            "funnel": funnel.as_json(counted),
        },
        indent=2,
    )


def outbox_text(stats: OutboxStats, counted: funnel.Funnel) -> str:
    counts = stats.by_state_template
    templates = sorted({t for _, t in counts})
    rows = []
    for state in sorted({s for s, _ in counts}):
        row = [counts.get((state, t), 0) for t in templates]
        rows.append([state, *row, sum(row)])
    days = (counted.last_day - counted.first_day).days + 1
    return "\n".join(
        [
            "Outbox by state and template",
            render(["state", *templates, "total"], rows, empty="(no mails)"),
            "",
            f"Oldest mail waiting to go out: {age(stats.oldest_queued_age_seconds)}",
            "",
            f"Funnel, last {days} days by purpose (`resetrelay funnel` for days and locales)",
            funnel.totals_text(counted),
        ]
    )
