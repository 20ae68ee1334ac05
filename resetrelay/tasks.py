"""Job handlers: the work that happens after an answer (SPEC §1).

Every Auth0 and SMTP call is made here, never in a request handler (the
confirm PATCH excepted). Handlers are idempotent where they can be and finish
their state changes in the same transaction that completes the job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import httpx
from sqlalchemy import Connection

from hooks.signature import sign
from identity.client import Auth0Client
from identity.errors import (
    Auth0Error,
    IdentityError,
    NotAvailable,
    RateLimited,
    UpstreamUnavailable,
    UserNotFound,
)
from mail.errors import PermanentMailError, TransientMailError
from mail.message import build_message
from mail.render import MailRenderer
from mail.smtp import SmtpMailer
from resetrelay import cleanup, flow
from resetrelay.issuing import issue, reset_link
from resetrelay.keys import derive, keyed_digest
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.settings import Settings
from resetrelay.tickets import TicketCodec
from resetrelay.worker import BatchJobKind, JobKind, JobRun, Permanent, Retry, settle_completed
from storage import jobs, outbox, ratelimits, tickets
from storage.database import Database

log = logging.getLogger("resetrelay.tasks")

# Seconds of lease a mail send must have left to start: room for a slow relay's
# answers (the mailer's timeout is per command) before the lease could lapse.
_LEASE_MARGIN = 25.0


def retry_for(exc: IdentityError) -> Retry:
    """Auth0 trouble becomes a later attempt: at the time Auth0 names for 429s."""
    if isinstance(exc, RateLimited):
        return Retry("auth0 rate limited", after=max(1.0, exc.retry_after))
    if isinstance(exc, UpstreamUnavailable):
        return Retry("auth0 unavailable", after=exc.retry_after)
    if isinstance(exc, Auth0Error):
        return Retry(f"auth0 answered {exc.status} {exc.code}")
    return Retry(type(exc).__name__)


@dataclass
class Tasks:
    settings: Settings
    db: Database
    codec: TicketCodec
    auth0: Auth0Client
    mailer: SmtpMailer
    renderer: MailRenderer
    http: httpx.AsyncClient
    metrics: Metrics
    now: Callable[[], datetime]

    def __post_init__(self) -> None:
        self._rate_key = derive(self.settings.secret_key.reveal(), "rate-limits")

    def kinds(self) -> Mapping[str, JobKind | BatchJobKind]:
        mail_backoff = max(0.01, self.settings.mail_retry_initial_seconds)
        return {
            flow.REQUESTED_JOB: JobKind(self.requested),
            flow.GUARD_JOB: JobKind(self.confirm_guard),
            outbox.SEND_JOB: BatchJobKind(self.send_mails, backoff_initial=mail_backoff, limit=32),
            cleanup.UNBLOCK_JOB: JobKind(self.unblock),
            cleanup.REVOKE_JOB: JobKind(self.revoke_sessions),
            cleanup.VERIFY_EMAIL_JOB: JobKind(self.mark_email_verified),
            cleanup.WEBSITE_EVENT_JOB: JobKind(self.website_event),
        }

    # -- password_reset.requested -------------------------------------------------

    async def _over_limit(self, run: JobRun) -> bool:
        """Count this request against the address and the IP, once per job even if it
        is retried; the counters key on an HMAC, so the table holds no addresses."""
        payload = run.job.payload
        if "over_limit" in payload:
            return bool(payload["over_limit"])
        now = self.now()
        s = self.settings
        async with self.db.begin() as conn:
            key = "email:" + keyed_digest(self._rate_key, payload["email"])
            over = (
                await ratelimits.hit(
                    conn, key, now=now, window_seconds=s.rate_limit_per_email.window_seconds
                )
                > s.rate_limit_per_email.count
            )
            if over:
                self.metrics.rate_limited.labels("email").inc()
            if payload.get("client_ip"):
                key = "ip:" + keyed_digest(self._rate_key, payload["client_ip"])
                ip_over = (
                    await ratelimits.hit(
                        conn, key, now=now, window_seconds=s.rate_limit_per_ip.window_seconds
                    )
                    > s.rate_limit_per_ip.count
                )
                if ip_over:
                    self.metrics.rate_limited.labels("ip").inc()
                over = over or ip_over
            await jobs.update_payload(conn, run.job, {**payload, "over_limit": over})
            if over:
                await run.complete(conn)
        return over

    async def requested(self, run: JobRun) -> None:
        payload = run.job.payload
        email: str = payload["email"]
        if await self._over_limit(run):
            log.info("reset request over rate limit", extra={"fields": {"user": mask_email(email)}})
            return
        try:
            user = await self.auth0.find_database_user(email)
        except IdentityError as exc:
            raise retry_for(exc) from exc
        if user is None:
            # Unknown or social-only: nothing to send. (Auth0 resets social users at
            # their provider.) The website's answer was the same 202 either way.
            log.info("no database user for reset", extra={"fields": {"user": mask_email(email)}})
            return
        locale = payload.get("locale") or user.locale or self.settings.default_locale
        async with self.db.begin() as conn:
            await issue(
                conn,
                self.settings,
                self.codec,
                user_id=user.user_id,
                email=user.email or email,
                connection=user.connection or self.settings.auth0_connection,
                locale=locale,
                purpose="reset",
                now=self.now(),
            )
            await run.complete(conn)
        self.metrics.tickets.labels("issued").inc()
        self.metrics.mails.labels("queued").inc()

    # -- the outbox -----------------------------------------------------------------

    async def send_mails(self, runs: list[JobRun]) -> None:
        """Send the outbox mails of one claim: one read for all of them, the sends in
        parallel over the mailer's pool, and the outcomes recorded by group commit as
        the sends finish (`_Outcomes`), so a batch costs a few transactions, not a
        few per mail."""
        mail_ids = {run.job.id: int(run.job.payload["mail_id"]) for run in runs}

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
            run.fail(Retry(f"{type(exc).__name__}: {exc}"))
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
            context["link"] = reset_link(self.settings, self.codec.value_for(ticket.id))
            # Rounded to the nearest minute: a fresh one-hour link says "1 hour".
            context["expires_minutes"] = max(
                1, round((ticket.expires_at - now).total_seconds() / 60)
            )
        context.setdefault("email", row.recipient)
        if isinstance(context.get("changed_at"), str):
            context["changed_at"] = datetime.fromisoformat(context["changed_at"])
        try:
            rendered = self.renderer.render(row.template, row.locale, context)
            message = build_message(
                rendered,
                to=row.recipient,
                sender=self.settings.mail_from,
                message_id=row.message_id,
                reply_to=self.settings.support_email or None,
            )
            # A batch waits for the mailer's few connections; a send that starts
            # late could outlive the job's lease, and another worker would send the
            # mail again. Start only while the lease has _LEASE_MARGIN left.
            left = (run.job.lease_until - self.now()).total_seconds() - _LEASE_MARGIN
            await self.mailer.send(message, start_within=max(0.0, left))
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

    async def _mail_dead(self, row: outbox.MailRow, reason: str) -> None:
        self.metrics.mails.labels("dead").inc()
        if self.settings.website_events_url:
            async with self.db.begin() as conn:
                await jobs.enqueue(
                    conn,
                    cleanup.WEBSITE_EVENT_JOB,
                    {
                        "type": "password_reset.mail_failed",
                        "data": {"email": row.recipient, "reason": reason[:200]},
                    },
                    now=self.now(),
                    max_attempts=15,
                )

    # -- after a reset --------------------------------------------------------------

    async def _auth0_call(self, what: str, call: Any) -> None:
        try:
            await call
        except UserNotFound:
            log.info("user gone before %s", what)
        except NotAvailable as exc:
            log.info(
                "%s not available on this plan", what, extra={"fields": {"status": exc.status}}
            )
        except IdentityError as exc:
            raise retry_for(exc) from exc

    async def unblock(self, run: JobRun) -> None:
        await self._auth0_call("unblock", self.auth0.unblock(run.job.payload["user_id"]))

    async def mark_email_verified(self, run: JobRun) -> None:
        await self._auth0_call(
            "mark_email_verified", self.auth0.mark_email_verified(run.job.payload["user_id"])
        )

    async def revoke_sessions(self, run: JobRun) -> None:
        try:
            outcome = await self.auth0.revoke_sessions(run.job.payload["user_id"])
        except UserNotFound:
            return
        except IdentityError as exc:
            raise retry_for(exc) from exc
        log.info("sessions revoked", extra={"fields": {"outcome": outcome}})

    async def confirm_guard(self, run: JobRun) -> None:
        """Settle a ticket whose confirm died between Auth0's answer and our commit."""
        ticket_id = run.job.payload["ticket_id"]
        claimed_at = datetime.fromisoformat(run.job.payload["claimed_at"])
        now = self.now()
        async with self.db.begin() as conn:
            row = await tickets.by_id(conn, ticket_id)
        if row is None or row.state != tickets.CLAIMED:
            return  # the confirm finished one way or the other
        if row.busy(now) and row.claimed_until is not None:
            raise Retry(
                "confirm still in flight", after=(row.claimed_until - now).total_seconds() + 1
            )
        try:
            user = await self.auth0.get_user(row.user_id)
        except UserNotFound:
            async with self.db.begin() as conn:
                await tickets.release(conn, row.id, count_attempt=False, max_attempts=1)
            return
        except IdentityError as exc:
            raise retry_for(exc) from exc
        async with self.db.begin() as conn:
            if user.last_password_reset is not None and user.last_password_reset >= claimed_at:
                if await cleanup.after_reset(conn, self.settings, row, now=now, via_link=True):
                    self.metrics.tickets.labels("used").inc()
                    log.warning("confirm settled by guard after a lost commit")
            else:
                await tickets.release(conn, row.id, count_attempt=False, max_attempts=10)

    # -- events we send ---------------------------------------------------------------

    async def website_event(self, run: JobRun) -> None:
        url = self.settings.website_events_url
        if not url:
            return
        body = json.dumps(
            {
                "type": run.job.payload["type"],
                "timestamp": self.now().isoformat(),
                "data": run.job.payload["data"],
            },
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
            for run, mail_id, status, error in batch:
                if status == outbox.EXPIRED and run.job.id in owned:
                    outbox.mark_sync(conn, [mail_id], outbox.EXPIRED, now=now, error=error)
            return owned

        settle_completed(runs, await self._db.run(write))
