"""The courier: how a message gets out (Kratos' courier).

Outbox mails are rows with a state (`queued → sending → sent | dead | expired`)
and one `mail.send` job each; the courier sends them in batches over the mailer's
connection pool and records the outcomes by group commit (`_Outcomes`). A
mail that carries a reset link gets its link only here, at send time, from
the ticket id (`link`), and is not sent when its ticket can no longer be
used. Signed events to the website (`WEBSITE_EVENTS_URL`) go out here too.

The envelope's one recipient is the outbox row's, checked to be exactly one
addr-spec and handed to the mailer as such: no header is read for recipients.
A mail that can never be built (its recipient is not one address, a header
would carry a line break) is dead at once, with one warning and no retry.

At least once, made visible: the claim of a mail's job marks the mail
`sending` in the claim's own transaction (`_start_sending`), before the SMTP
transaction starts. If the worker dies, or the write of the outcome fails,
after the relay took the mail, the row stays `sending`; the next claim finds it
so, counts a re-send (`resetrelay_mail_resent_total`, `resends` on the row, one
log line) and sends it again with the same Message-ID, so a receiving system
that deduplicates by Message-ID sees one mail. docs/data.md draws the window.

Request handlers and the reset flow only queue (`queue`, `queue_event`),
inside their own transactions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import make_msgid, parseaddr
from typing import Any

import anyio
import httpx
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from mail.errors import PermanentMailError, TransientMailError, scrub_addresses
from mail.message import addr_spec, build_message
from mail.render import MailRenderer
from mail.smtp import SmtpMailer
from resetrelay import funnel
from resetrelay.jobs.kinds import Kind, Registry, enqueue, enqueue_sync
from resetrelay.jobs.run import JobRun, Permanent, Retry, settle_completed
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.settings import Settings
from resetrelay.webhooks import sign
from storage import jobs, outbox, tickets
from storage.database import Database

log = logging.getLogger("resetrelay.courier")

# Seconds of lease a mail send must have left to start: room for a slow relay's
# answers (the mailer's timeout is per command) before the lease could lapse.
_LEASE_MARGIN = 25.0


@dataclass(frozen=True)
class SendMail:
    mail_id: int


@dataclass(frozen=True)
class WebsiteEvent:
    type: str
    data: dict[str, Any]


def _start_sending(conn: Connection, claimed: list[jobs.ClaimedJob], now: datetime) -> set[int]:
    """The claim step of `mail.send` (resetrelay.jobs.kinds): the claimed jobs' mails
    are `sending` before the claim commits, so before any SMTP transaction starts.
    Returns the jobs whose mail was `sending` already: it may have gone out.

    A job whose attempts a lost worker used up is buried without running; its mail
    is given up here, or it would stay unfinished, and kept, for ever."""
    lost = [SEND.decode(job.payload).mail_id for job in claimed if job.attempts > job.max_attempts]
    outbox.give_up_sync(conn, lost, now=now, error="attempts exhausted (worker lost)")
    job_of = {
        SEND.decode(job.payload).mail_id: job.id
        for job in claimed
        if job.attempts <= job.max_attempts
    }
    return {job_of[mail_id] for mail_id in outbox.start_sending_sync(conn, job_of)}


SEND = Kind("mail.send", SendMail, max_attempts=10, batch_limit=32, on_claim=_start_sending)
WEBSITE_EVENT = Kind("website.event", WebsiteEvent, max_attempts=15)


def new_message_id(mail_from: str) -> str:
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "resetrelay.invalid"
    return make_msgid(domain=domain)


async def queue(
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
    """Queue a mail and its send job in the caller's transaction."""
    return await conn.run_sync(
        lambda sync: queue_sync(
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


def queue_sync(
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
    """`queue` for `Database.run` (one thread hop on SQLite for the whole transaction)."""
    mail_id = outbox.insert_sync(
        conn,
        template=template,
        recipient=recipient,
        locale=locale,
        context=context,
        message_id=message_id,
        now=now,
        ticket_id=ticket_id,
    )
    enqueue_sync(conn, SEND, SendMail(mail_id), now=now)
    return mail_id


async def queue_event(
    conn: AsyncConnection, event_type: str, data: dict[str, Any], *, now: datetime
) -> None:
    """Queue a signed event to the website in the caller's transaction (only call
    this when WEBSITE_EVENTS_URL is set)."""
    await enqueue(conn, WEBSITE_EVENT, WebsiteEvent(event_type, data), now=now)


@dataclass
class Courier:
    settings: Settings
    db: Database
    mailer: SmtpMailer
    renderer: MailRenderer
    http: httpx.AsyncClient
    metrics: Metrics
    now: Callable[[], datetime]
    link: Callable[[str], str]  # ticket id -> the link in its mail
    code: Callable[[str], str] | None = None  # ticket id -> the one-time code in its mail
    # dispute id -> the "Wasn't you?" link of a "changed" mail (reset.dispute_links)
    dispute_link: Callable[[str], str] | None = None

    def register(self, registry: Registry) -> None:
        backoff = max(0.01, self.settings.mail_retry_initial_seconds)
        registry.add_batch(replace(SEND, backoff_initial=backoff), self.send_mails)
        registry.add(WEBSITE_EVENT, self.website_event)

    async def send_mails(self, runs: list[JobRun]) -> None:
        """Send the outbox mails of one claim: one read for all of them, the sends in
        parallel over the mailer's pool, and the outcomes recorded by group commit as
        the sends finish (`_Outcomes`), so a batch costs a few transactions, not a
        few per mail."""
        mail_ids = {run.job.id: SEND.of(run).mail_id for run in runs}

        def load(
            conn: Connection,
        ) -> tuple[dict[int, outbox.MailRow], dict[str, tickets.TicketRow]]:
            rows = outbox.get_many_sync(conn, mail_ids.values())
            ticket_ids = {row.ticket_id for row in rows.values() if row.ticket_id}
            return rows, tickets.by_ids_sync(conn, ticket_ids)

        rows, ticket_rows = await self.db.run_read(load)
        outcomes = _Outcomes(self.db, self.now, runs)
        async with anyio.create_task_group() as tg:
            tg.start_soon(outcomes.flush)
            for run in runs:
                mail_id = mail_ids[run.job.id]
                row = rows.get(mail_id)
                ticket = ticket_rows.get(row.ticket_id) if row and row.ticket_id else None
                tg.start_soon(self._send_one, run, mail_id, row, ticket, outcomes)

    async def _send_one(
        self,
        run: JobRun,
        mail_id: int,
        row: outbox.MailRow | None,
        ticket: tickets.TicketRow | None,
        outcomes: _Outcomes,
    ) -> None:
        # Every failure stays with this run; one bad mail must not cancel its batch.
        try:
            await self._send(run, mail_id, row, ticket, outcomes)
        except (Retry, Permanent) as exc:
            run.fail(exc)
        except Exception as exc:
            log.exception("mail job failed", extra={"fields": {"mail_id": mail_id}})
            run.fail(Retry(f"{type(exc).__name__}: {scrub_addresses(str(exc))}"))
        finally:
            outcomes.done(run)

    async def _send(
        self,
        run: JobRun,
        mail_id: int,
        row: outbox.MailRow | None,
        ticket: tickets.TicketRow | None,
        outcomes: _Outcomes,
    ) -> None:
        now = self.now()
        if row is None:
            raise Permanent(f"mail {mail_id} does not exist")
        if row.status in (outbox.SENT, outbox.DEAD, outbox.EXPIRED):
            await outcomes.record(run, mail_id, None)
            return
        context: dict[str, Any] = dict(row.context)
        if row.ticket_id is not None:
            status = ticket.status(now) if ticket else "unknown"
            if status != "valid" or ticket is None:
                # A link that cannot work is not sent: expired, used, or superseded.
                if await outcomes.record(run, mail_id, outbox.EXPIRED, error=status):
                    self.metrics.mails.labels("expired").inc()
                return
            # The link exists only here, in memory, derived from SECRET_KEY.
            context["link"] = self.link(ticket.id)
            if self.code is not None and self.settings.mail_codes and ticket.code_state == "open":
                # Made the same way, from the id: the code is never stored either.
                context["code"] = self.code(ticket.id)
            # Rounded to the nearest minute: a fresh one-hour link says "1 hour".
            context["expires_minutes"] = max(
                1, round((ticket.expires_at - now).total_seconds() / 60)
            )
        dispute_id = context.pop("dispute_id", None)
        if isinstance(dispute_id, str) and self.dispute_link is not None:
            # As a ticket's link: derived here, from the id, only in memory and the mail.
            context["dispute_link"] = self.dispute_link(dispute_id)
        context.setdefault("email", row.recipient)
        try:
            try:
                # The one recipient, from the row, never from a header: a list, a
                # group or a display name here must not become several RCPT TOs.
                recipient = addr_spec(row.recipient)
                if isinstance(context.get("changed_at"), str):
                    context["changed_at"] = datetime.fromisoformat(context["changed_at"])
                rendered = self.renderer.render(row.template, row.locale, context)
                message = build_message(
                    rendered,
                    to=recipient,
                    sender=self.settings.mail_from,
                    message_id=row.message_id,
                    reply_to=self.settings.support_email or None,
                )
            except ValueError as exc:
                await self._unbuildable(run, mail_id, row, exc, outcomes)
                return
            # A batch waits for the mailer's few connections; a send that starts
            # late could outlive the job's lease, and another worker would send the
            # mail again. Start only while the lease has _LEASE_MARGIN left.
            left = (run.job.lease_until - self.now()).total_seconds() - _LEASE_MARGIN
            await self.mailer.send(message, recipients=[recipient], start_within=max(0.0, left))
        except TransientMailError as exc:
            last = run.job.exhausted
            async with self.db.begin() as conn:
                await outbox.mark(
                    conn,
                    mail_id,
                    outbox.DEAD if last else outbox.QUEUED,
                    now=now,
                    error=str(exc),
                    attempted=True,
                )
            if last:
                await self._mail_dead(row, str(exc))
                raise Permanent(f"mail gave up after {run.job.attempts} attempts: {exc}") from exc
            self.metrics.mails.labels("retried").inc()
            raise Retry(f"smtp: {exc}") from exc
        except PermanentMailError as exc:
            async with self.db.begin() as conn:
                await outbox.mark(
                    conn, mail_id, outbox.DEAD, now=now, error=str(exc), attempted=True
                )
            await self._mail_dead(row, str(exc))
            raise Permanent(f"smtp refused: {exc}") from exc
        if not await outcomes.record(run, mail_id, outbox.SENT):
            return
        self.metrics.mails.labels("sent").inc()
        if ticket is not None:
            funnel.counted(self.metrics, "mailed", ticket.purpose)
        if run.job.in_doubt:
            # An earlier send of this mail started and its outcome was never written:
            # the recipient may now hold it twice (with one Message-ID).
            self.metrics.mail_resent.inc()
            log.warning(
                "mail sent again: an earlier send's outcome was unknown",
                extra={
                    "fields": {
                        "template": row.template,
                        "mail_id": mail_id,
                        "message_id": row.message_id,
                        "resends": row.resends,
                    }
                },
            )
        log.info(
            "mail sent",
            extra={
                "fields": {
                    "template": row.template,
                    "user": mask_email(row.recipient),
                    "mail_id": mail_id,
                }
            },
        )

    async def _unbuildable(
        self,
        run: JobRun,
        mail_id: int,
        row: outbox.MailRow,
        exc: ValueError,
        outcomes: _Outcomes,
    ) -> None:
        """No message can ever be made of this row: dead now, its job done (not
        retried), one warning without a traceback or the address."""
        reason = f"cannot be built: {scrub_addresses(str(exc), [row.recipient])}"[:500]
        if not await outcomes.record(run, mail_id, outbox.DEAD, error=reason):
            return
        self.metrics.mails.labels("unbuildable").inc()
        log.warning(
            "mail cannot be built; dead",
            extra={"fields": {"template": row.template, "mail_id": mail_id, "reason": reason}},
        )
        await self._mail_dead(row, reason)

    async def _mail_dead(self, row: outbox.MailRow, reason: str) -> None:
        self.metrics.mails.labels("dead").inc()
        if self.settings.website_events_url:
            async with self.db.begin() as conn:
                await queue_event(
                    conn,
                    "password_reset.mail_failed",
                    {"email": row.recipient, "reason": reason[:200]},
                    now=self.now(),
                )

    # -- events we send ---------------------------------------------------------------

    async def website_event(self, run: JobRun, event: WebsiteEvent) -> None:
        url = self.settings.website_events_url
        if not url:
            return
        body = json.dumps(
            {"type": event.type, "timestamp": self.now().isoformat(), "data": event.data},
            separators=(",", ":"),
        ).encode()
        # The job id makes the webhook-id stable across retries, so the website dedupes.
        headers = sign(
            self.settings.webhook_secrets[0],
            f"msg_rr_{run.job.id}",
            int(self.now().timestamp()),
            body,
        )
        headers["content-type"] = "application/json"
        try:
            response = await self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise Retry(f"website unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise Retry(f"website answered {response.status_code}")


class _Outcomes:
    """Group commit for the outcomes of one batch of sends.

    A finished send adds its outcome and waits; `flush` writes the outcomes in
    groups, each in one transaction: the jobs completed (only those still
    leased to us) and their mails marked, so a mail's state and its job's
    completion commit together, as `JobRun.complete` does for one job. A group
    is written when `group` outcomes wait, when no send of the batch is still
    out, or `linger` seconds after the last write, whichever comes first: a
    slow send holds back the record of the others by `linger` at most.
    """

    def __init__(
        self,
        db: Database,
        now: Callable[[], datetime],
        runs: list[JobRun],
        *,
        group: int = 8,
        linger: float = 0.05,
    ) -> None:
        self._db = db
        self._now = now
        self._group = group
        self._linger = linger
        self._open = {run.job.id for run in runs}  # may still add an outcome
        self._pending: list[tuple[JobRun, int, str | None, str | None]] = []
        self._changed = anyio.Event()
        self._written = anyio.Event()

    async def record(
        self, run: JobRun, mail_id: int, status: str | None, *, error: str | None = None
    ) -> bool:
        """Complete `run`, marking its mail `status` (None: leave the mail as it is).
        True when it committed as ours; otherwise the run has been failed."""
        self._pending.append((run, mail_id, status, error))
        self.done(run)
        while not run.settled:
            await self._written.wait()
        return run.completed

    def done(self, run: JobRun) -> None:
        """`run` will add no (more) outcome."""
        self._open.discard(run.job.id)
        self._changed.set()

    async def flush(self) -> None:
        """Write outcomes as they come, until every run has had its say."""
        while self._open or self._pending:
            with anyio.move_on_after(self._linger):
                while self._open and len(self._pending) < self._group:
                    await self._changed.wait()
                    self._changed = anyio.Event()
            if not self._pending:
                continue
            batch, self._pending = self._pending, []
            try:
                await self._write(batch)
            except Exception as exc:  # the database; every run of this write fails
                log.warning("could not record sent mails", exc_info=True)
                for pending_run, *_ in batch:
                    pending_run.fail(Retry(f"recording failed: {type(exc).__name__}"))
            self._written.set()
            self._written = anyio.Event()

    async def _write(self, batch: list[tuple[JobRun, int, str | None, str | None]]) -> None:
        now = self._now()
        runs = [run for run, *_ in batch]

        def write(conn: Connection) -> set[int]:
            owned = jobs.complete_many_sync(conn, [run.job for run in runs], now=now)
            sent = [m for run, m, st, _ in batch if st == outbox.SENT and run.job.id in owned]
            outbox.mark_sync(conn, sent, outbox.SENT, now=now, attempted=True)
            funnel.mailed_sync(conn, sent, at=now)
            for run, mail_id, status, error in batch:
                if status in (outbox.EXPIRED, outbox.DEAD) and run.job.id in owned:
                    outbox.mark_sync(conn, [mail_id], status, now=now, error=error)
            return owned

        settle_completed(runs, await self._db.run(write))
