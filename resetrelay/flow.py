"""The reset flow behind `/hooks/website`: what each event does, before the answer.

`requested` only persists: the event id (dedupe) and a job, in one
transaction, then answers the same 202 for every address. Whether the account
exists is found out by the job, after the answer, so neither the body, the
status, the headers nor the timing of the answer can tell (SPEC §5).

`verify` reads; it never consumes, so mail scanners that follow links do not
burn tickets. `confirm` claims the ticket with a conditional UPDATE (a second
concurrent confirm sees `409 ticket_busy`), calls Auth0 (the one network call
a request waits for), and commits the outcome. Before calling Auth0 it queues
a guard job that settles the ticket if this process dies before committing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from identity.client import Auth0Client
from identity.errors import (
    IdentityError,
    PasswordRejected,
    RateLimited,
    UpstreamUnavailable,
    UserNotFound,
)
from resetrelay.cleanup import after_reset
from resetrelay.intake import Intake
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.settings import Settings
from resetrelay.tickets import TicketCodec
from storage import inbound, jobs, tickets
from storage.database import Database
from storage.tickets import TicketRow

log = logging.getLogger("resetrelay.flow")

SOURCE = "website"
CLAIM_LEASE = timedelta(seconds=60)
MAX_PASSWORD_ATTEMPTS = 10
REQUESTED_JOB = "reset.requested"
GUARD_JOB = "reset.confirm_guard"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    # Answers that settle the event are stored for replay; transient ones
    # (409, 503) are not, so the sender's retry with the same id gets a fresh try.
    final: bool = True


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


ACCEPTED = Answer(202, _json({"status": "accepted"}))


def _error(status: int, code: str, message: str, **extra: Any) -> Answer:
    return Answer(status, _json({"error": code, "message": message, **extra}))


_INVALID_MESSAGES = {
    "expired": "This reset link has expired. Ask for a new one.",
    "used": "This reset link has already been used.",
    "revoked": "This reset link is no longer valid. Use the newest link you received.",
    "unknown": "This reset link is not valid.",
}


def ticket_invalid(reason: str) -> Answer:
    return _error(410, "ticket_invalid", _INVALID_MESSAGES[reason], reason=reason)


def replayed(stored: inbound.StoredAnswer) -> Answer:
    return Answer(stored.status_code, stored.answer, {"idempotent-replayed": "true"})


@dataclass
class ResetFlow:
    settings: Settings
    db: Database
    codec: TicketCodec
    auth0: Auth0Client
    metrics: Metrics
    now: Callable[[], datetime]
    wake_worker: Callable[[], None] = lambda: None
    intake: Intake = field(init=False)

    def __post_init__(self) -> None:
        self.intake = Intake(
            self.db,
            self.now,
            source=SOURCE,
            job_kind=REQUESTED_JOB,
            answer=(ACCEPTED.status, ACCEPTED.body),
        )

    async def requested(
        self, event_id: str, email: str, locale: str | None, client_ip: str | None
    ) -> Answer:
        payload = {"email": email, "locale": locale, "client_ip": client_ip}
        stored = await self.intake.submit(event_id, payload)
        if stored is not None:
            return replayed(stored)
        self.wake_worker()
        return ACCEPTED

    async def replay(self, event_id: str) -> Answer | None:
        async with self.db.read() as conn:
            stored = await inbound.find(conn, SOURCE, event_id)
        return replayed(stored) if stored else None

    async def _record(self, event_id: str, event_type: str, answer: Answer) -> Answer:
        if not answer.final:
            return answer
        async with self.db.begin() as conn:
            fresh = await inbound.record(
                conn,
                source=SOURCE,
                event_id=event_id,
                event_type=event_type,
                status_code=answer.status,
                answer=answer.body,
                now=self.now(),
            )
            if not fresh:  # a concurrent delivery of the same id won the race
                stored = await inbound.find(conn, SOURCE, event_id)
                if stored:
                    return replayed(stored)
        return answer

    async def _find_ticket(self, value: str) -> TicketRow | None:
        # Cheap reject first (shape), then lookup by hash, then a constant-time
        # HMAC check that only our key could have produced this ticket.
        if not self.codec.well_formed(value):
            return None
        async with self.db.read() as conn:
            row = await tickets.by_hash(conn, self.codec.lookup_hash(value))
        if row is None or not self.codec.matches(row.id, value):
            return None
        return row

    async def verify(self, event_id: str, value: str) -> Answer:
        row = await self._find_ticket(value)
        now = self.now()
        if row is None:
            answer = Answer(200, _json({"valid": False, "reason": "unknown"}))
        elif (status := row.status(now)) != "valid":
            if status == "expired":
                self.metrics.tickets.labels("expired").inc()
            answer = Answer(200, _json({"valid": False, "reason": status}))
        else:
            answer = Answer(
                200,
                _json(
                    {
                        "valid": True,
                        "expires_at": row.expires_at.isoformat().replace("+00:00", "Z"),
                        "email": mask_email(row.email),
                        "locale": row.locale,
                    }
                ),
            )
        return await self._record(event_id, "password_reset.verify", answer)

    async def confirm(self, event_id: str, value: str, password: str) -> Answer:
        answer = await self._confirm(value, password)
        return await self._record(event_id, "password_reset.confirm", answer)

    async def claim(self, row: TicketRow, now: datetime) -> tuple[bool, TicketRow | None]:
        """Claim the ticket for one confirm; `(False, current row)` if someone else has it.

        With the claim goes a guard job: if this process dies between Auth0's answer
        and our commit, the guard settles the ticket from Auth0's
        `last_password_reset` once the claim has lapsed (resetrelay.tasks)."""
        async with self.db.begin() as conn:
            if not await tickets.claim(conn, row.id, now=now, lease=CLAIM_LEASE):
                return False, await tickets.by_id(conn, row.id)
            await jobs.enqueue(
                conn,
                GUARD_JOB,
                {"ticket_id": row.id, "claimed_at": now.isoformat()},
                now=now,
                delay=CLAIM_LEASE + timedelta(seconds=5),
            )
        return True, row

    async def _confirm(self, value: str, password: str) -> Answer:
        row = await self._find_ticket(value)
        if row is None:
            return ticket_invalid("unknown")
        now = self.now()
        if (status := row.status(now)) != "valid":
            return ticket_invalid(status)
        claimed, current = await self.claim(row, now)
        if not claimed:
            if current is not None and current.busy(now):
                return Answer(
                    409,
                    _json(
                        {
                            "error": "ticket_busy",
                            "message": "This reset is already being completed. "
                            "Try again in a moment.",
                        }
                    ),
                    final=False,
                )
            reason = current.status(now) if current else "unknown"
            return ticket_invalid("unknown" if reason == "valid" else reason)
        try:
            await self.auth0.set_password(row.user_id, password)
        except PasswordRejected as exc:
            async with self.db.begin() as conn:
                state = await tickets.release(
                    conn, row.id, count_attempt=True, max_attempts=MAX_PASSWORD_ATTEMPTS
                )
            if state == tickets.REVOKED:
                self.metrics.tickets.labels("voided").inc()
            return _error(422, "password_rejected", exc.message, rule=exc.rule)
        except UserNotFound:
            async with self.db.begin() as conn:
                await tickets.release(conn, row.id, count_attempt=False, max_attempts=1)
                await tickets.void_for_user(conn, row.user_id, now=now, reason="user_deleted")
            return ticket_invalid("revoked")
        except IdentityError as exc:
            async with self.db.begin() as conn:
                await tickets.release(
                    conn, row.id, count_attempt=False, max_attempts=MAX_PASSWORD_ATTEMPTS
                )
            retry_after = 5.0
            if isinstance(exc, RateLimited | UpstreamUnavailable) and exc.retry_after:
                retry_after = exc.retry_after
            log.warning(
                "auth0 unavailable during confirm", extra={"fields": {"error": type(exc).__name__}}
            )
            return Answer(
                503,
                _json(
                    {
                        "error": "upstream_unavailable",
                        "message": "The account service is unavailable; the link still works. "
                        "Try again shortly.",
                    }
                ),
                {"retry-after": str(max(1, round(retry_after)))},
                final=False,
            )
        async with self.db.begin() as conn:
            await after_reset(conn, self.settings, row, now=self.now(), via_link=True)
        self.metrics.tickets.labels("used").inc()
        self.wake_worker()
        log.info(
            "password reset completed",
            extra={"fields": {"user": mask_email(row.email), "purpose": row.purpose}},
        )
        return Answer(200, _json({"status": "completed"}))
