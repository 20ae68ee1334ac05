"""A ticket from the link to a new password, and what a reset sets in motion.

verify   reads the ticket; never consumes it, so mail scanners that follow
         links do not burn it
confirm  claims the ticket (a conditional UPDATE: a second concurrent
         confirm sees TicketBusy), sets the password at Auth0 (the one
         network call a request waits for), then settles the ticket
guard    a job queued with the claim: if this process dies between
         Auth0's answer and our commit, it settles the ticket from Auth0's
         `last_password_reset` once the claim has lapsed
after a reset (`settle_reset`, in the caller's transaction): the ticket is
         used, its siblings voided, and the follow-ups queued: unblock,
         revoke sessions, mark the address verified, the "changed" mail,
         the website's `password_reset.completed` event
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from identity.client import Auth0Client
from identity.errors import (
    IdentityError,
    RateLimited,
    UpstreamUnavailable,
    UserNotFound,
)
from identity.errors import (
    PasswordRejected as Auth0PasswordRejected,
)
from resetrelay import courier
from resetrelay.jobs.kinds import Kind, Registry, enqueue
from resetrelay.jobs.run import JobRun, Retry
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.reset.outcomes import (
    Completed,
    PasswordRejected,
    TicketBusy,
    TicketClosed,
    TicketInvalid,
    TicketOpen,
    UpstreamDown,
)
from resetrelay.reset.tickets import Tickets
from resetrelay.reset.upstream import follow_up, retry_for
from resetrelay.settings import Settings
from storage import tickets
from storage.database import Database
from storage.tickets import TicketRow

log = logging.getLogger("resetrelay.confirm")

CLAIM_LEASE = timedelta(seconds=60)
MAX_PASSWORD_ATTEMPTS = 10


@dataclass(frozen=True)
class Guard:
    ticket_id: str
    claimed_at: str  # ISO 8601


@dataclass(frozen=True)
class ForUser:
    user_id: str


GUARD = Kind("reset.confirm_guard", Guard)
UNBLOCK = Kind("auth0.unblock", ForUser, max_attempts=12)
REVOKE_SESSIONS = Kind("auth0.revoke_sessions", ForUser, max_attempts=12)
MARK_EMAIL_VERIFIED = Kind("auth0.mark_email_verified", ForUser, max_attempts=12)


async def settle_reset(
    conn: AsyncConnection, settings: Settings, row: TicketRow, *, now: datetime, via_link: bool
) -> bool:
    """Settle a claimed ticket as used and queue what follows a reset, in the
    caller's transaction; False if the ticket was no longer claimed."""
    if not await tickets.mark_used(conn, row.id, now=now):
        return False
    await tickets.void_for_user(conn, row.user_id, now=now, reason="sibling_used")
    user = ForUser(row.user_id)
    # Auth0 documents that a block lifts on a password change but not whether a
    # Management API PATCH counts: lift it explicitly (also for non-"blocked" tickets).
    await enqueue(conn, UNBLOCK, user, now=now)
    if settings.revoke_sessions:
        await enqueue(conn, REVOKE_SESSIONS, user, now=now)
    if settings.mark_email_verified and via_link:
        # A separate PATCH: Auth0 refuses email_verified beside password.
        await enqueue(conn, MARK_EMAIL_VERIFIED, user, now=now)
    await courier.queue(
        conn,
        template="changed",
        recipient=row.email,
        locale=row.locale,
        context={"changed_at": now.isoformat()},
        message_id=courier.new_message_id(settings.mail_from),
        now=now,
    )
    if settings.website_events_url:
        await courier.queue_event(
            conn,
            "password_reset.completed",
            {"user_id": row.user_id, "email": row.email, "at": now.isoformat()},
            now=now,
        )
    return True


@dataclass
class Confirms:
    settings: Settings
    db: Database
    tickets: Tickets
    auth0: Auth0Client
    metrics: Metrics
    now: Callable[[], datetime]
    wake_worker: Callable[[], None] = lambda: None

    def register(self, registry: Registry) -> None:
        registry.add(GUARD, self.guard)
        registry.add(UNBLOCK, self.unblock)
        registry.add(REVOKE_SESSIONS, self.revoke_sessions)
        registry.add(MARK_EMAIL_VERIFIED, self.mark_email_verified)

    # -- verify ---------------------------------------------------------------------

    async def verify(self, value: str) -> TicketOpen | TicketClosed:
        checked = await self.tickets.check(value, self.now())
        if isinstance(checked, str):
            if checked == "expired":
                self.metrics.tickets.labels("expired").inc()
            return TicketClosed(checked)
        return TicketOpen(checked.expires_at, mask_email(checked.email), checked.locale)

    # -- confirm --------------------------------------------------------------------

    async def claim(self, row: TicketRow, now: datetime) -> tuple[bool, TicketRow | None]:
        """Claim the ticket for one confirm; `(False, current row)` if someone else has
        it. With the claim goes its guard job, in the same transaction."""
        async with self.db.begin() as conn:
            if not await tickets.claim(conn, row.id, now=now, lease=CLAIM_LEASE):
                return False, await tickets.by_id(conn, row.id)
            await enqueue(
                conn,
                GUARD,
                Guard(row.id, now.isoformat()),
                now=now,
                delay=CLAIM_LEASE + timedelta(seconds=5),
            )
        return True, row

    async def confirm(
        self, value: str, password: str
    ) -> Completed | TicketInvalid | TicketBusy | PasswordRejected | UpstreamDown:
        now = self.now()
        row = await self.tickets.check(value, now)
        if isinstance(row, str):
            return TicketInvalid(row)
        claimed, current = await self.claim(row, now)
        if not claimed:
            if current is not None and current.busy(now):
                return TicketBusy()
            reason = current.status(now) if current else "unknown"
            return TicketInvalid("unknown" if reason == "valid" else reason)  # type: ignore[arg-type]
        try:
            await self.auth0.set_password(row.user_id, password)
        except Auth0PasswordRejected as exc:
            async with self.db.begin() as conn:
                state = await tickets.release(
                    conn, row.id, count_attempt=True, max_attempts=MAX_PASSWORD_ATTEMPTS
                )
            if state == tickets.REVOKED:
                self.metrics.tickets.labels("voided").inc()
            return PasswordRejected(exc.message, exc.rule)
        except UserNotFound:
            async with self.db.begin() as conn:
                await tickets.release(conn, row.id, count_attempt=False, max_attempts=1)
                await tickets.void_for_user(conn, row.user_id, now=now, reason="user_deleted")
            return TicketInvalid("revoked")
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
            return UpstreamDown(retry_after)
        async with self.db.begin() as conn:
            await settle_reset(conn, self.settings, row, now=self.now(), via_link=True)
        self.metrics.tickets.labels("used").inc()
        self.wake_worker()
        log.info(
            "password reset completed",
            extra={"fields": {"user": mask_email(row.email), "purpose": row.purpose}},
        )
        return Completed()

    # -- the guard ------------------------------------------------------------------

    async def guard(self, run: JobRun, guard: Guard) -> None:
        """Settle a ticket whose confirm died between Auth0's answer and our commit."""
        claimed_at = datetime.fromisoformat(guard.claimed_at)
        now = self.now()
        async with self.db.begin() as conn:
            row = await tickets.by_id(conn, guard.ticket_id)
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
                if await settle_reset(conn, self.settings, row, now=now, via_link=True):
                    self.metrics.tickets.labels("used").inc()
                    log.warning("confirm settled by guard after a lost commit")
            else:
                await tickets.release(conn, row.id, count_attempt=False, max_attempts=10)

    # -- follow-ups -----------------------------------------------------------------

    async def unblock(self, run: JobRun, user: ForUser) -> None:
        await follow_up("unblock", self.auth0.unblock(user.user_id))

    async def mark_email_verified(self, run: JobRun, user: ForUser) -> None:
        await follow_up("mark_email_verified", self.auth0.mark_email_verified(user.user_id))

    async def revoke_sessions(self, run: JobRun, user: ForUser) -> None:
        try:
            outcome = await self.auth0.revoke_sessions(user.user_id)
        except UserNotFound:
            return
        except IdentityError as exc:
            raise retry_for(exc) from exc
        log.info("sessions revoked", extra={"fields": {"outcome": outcome}})
