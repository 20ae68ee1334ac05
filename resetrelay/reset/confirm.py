"""A ticket from the link to a new password, and what a reset sets in motion.

verify   reads the ticket; never consumes it, so mail scanners that follow
         links do not burn it; lists the tenant's password requirements
confirm  checks the new password against the tenant's policy here first
         (`reset.policy`: Auth0's PATCH may not), then against known breaches
         (`resetrelay.breaches`, when PWNED_PASSWORDS_URL is set), then claims the ticket (a
         conditional UPDATE: a second concurrent confirm sees TicketBusy), reads
         the user at Auth0 (the address must still be the one the link was
         mailed to), sets the password with the
         claim's id in `app_metadata` (one PATCH), then settles the ticket
guard    a job queued with the claim: if this process dies between
         Auth0's answer and our commit, it settles the ticket once the claim
         has lapsed, if Auth0 holds this claim's id (proof of our own PATCH)
after a reset (`settle_reset`, in the caller's transaction): the ticket is
         used, its siblings voided, and the follow-ups queued: unblock,
         revoke sessions and refresh tokens (REVOKE_SESSIONS), forget MFA's
         remembered browsers, mark the address verified, the "changed" mail,
         the website's `password_reset.completed` event

Auth0 refusing for a fault of the setup (a missing scope, a disabled connection,
any 4xx that is not one of the four password-policy errors) is the operator's to
fix: the confirm answers `Misconfigured` (503), says so at ERROR, and counts no
attempt against the link. A missing scope is also recorded (`resetrelay.tenant`)
for `/readyz` and `resetrelay check`.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from identity.client import Auth0Client, Auth0User
from identity.errors import (
    Auth0Error,
    IdentityError,
    InsufficientScope,
    NotAvailable,
    RateLimited,
    UpstreamUnavailable,
    UserNotFound,
)
from identity.errors import (
    PasswordRejected as Auth0PasswordRejected,
)
from resetrelay import courier, funnel
from resetrelay.breaches import BreachCorpus, RangeError, band
from resetrelay.jobs.kinds import Kind, Registry, enqueue
from resetrelay.jobs.run import JobRun, Retry
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.reset.dispute_links import codec_for, open_link
from resetrelay.reset.outcomes import (
    Completed,
    Misconfigured,
    PasswordRejected,
    Requirements,
    TicketBusy,
    TicketClosed,
    TicketInvalid,
    TicketOpen,
    UpstreamDown,
)
from resetrelay.reset.policy import STRENGTH_RULES, Policies, Requirement
from resetrelay.reset.tickets import Tickets
from resetrelay.reset.upstream import follow_up, retry_for
from resetrelay.reset.wording import Wording
from resetrelay.settings import Settings
from resetrelay.tenant import TenantFindings
from storage import disputes, tickets
from storage.database import Database
from storage.tickets import TicketRow

log = logging.getLogger("resetrelay.confirm")

CLAIM_LEASE = timedelta(seconds=60)
MAX_PASSWORD_ATTEMPTS = 10
# Retry-After of the 503 when the range API is down and PWNED_PASSWORDS_ON_ERROR=reject.
BREACH_CHECK_RETRY_AFTER: Final = 30.0
# The `app_metadata` key our password PATCH writes the claim's id to. Auth0 merges
# app_metadata on its first level, so other keys stay; the value is a random id.
CLAIM_MARKER: Final = "resetrelay_claim"
# Calls as `identity` names them in `InsufficientScope.endpoint` (and findings).
GET_USER: Final = "GET /api/v2/users/{id}"
PATCH_USER: Final = "PATCH /api/v2/users/{id}"
REVOKE_ACCESS: Final = "POST /api/v2/users/{id}/revoke-access"
LIST_DEVICE_CREDENTIALS: Final = "GET /api/v2/device-credentials"
DELETE_DEVICE_CREDENTIAL: Final = "DELETE /api/v2/device-credentials/{id}"
REMEMBER_BROWSER: Final = "POST /api/v2/users/{id}/multifactor/actions/invalidate-remember-browser"
_ADDRESS: Final = re.compile(r"\S+@\S+")


@dataclass(frozen=True)
class Claim:
    """One confirm's hold on a ticket: the lease ends at `until`, which is also how the
    row tells this claim from a later one; `id` is what our PATCH leaves at Auth0."""

    id: str
    ticket_id: str
    claimed_at: datetime

    @property
    def until(self) -> datetime:
        return self.claimed_at + CLAIM_LEASE

    def marker(self) -> dict[str, str]:
        return {CLAIM_MARKER: self.id}


@dataclass(frozen=True)
class Guard:
    ticket_id: str
    claimed_at: str  # ISO 8601
    claim_id: str | None = None  # None in guards queued before the marker existed


@dataclass(frozen=True)
class ForUser:
    user_id: str


@dataclass(frozen=True)
class ForAddress:
    user_id: str
    email: str = ""  # the address the link was mailed to; "" in jobs queued before


GUARD = Kind("reset.confirm_guard", Guard)
UNBLOCK = Kind("auth0.unblock", ForUser, max_attempts=12)
REVOKE_SESSIONS = Kind("auth0.revoke_sessions", ForUser, max_attempts=12)
MARK_EMAIL_VERIFIED = Kind("auth0.mark_email_verified", ForAddress, max_attempts=12)
FORGET_BROWSERS = Kind("auth0.invalidate_remember_browser", ForUser, max_attempts=12)
# PATCH `blocked: false`: lifts the block a confirmed dispute set (reset.disputes).
LIFT_DISPUTE_BLOCK = Kind("auth0.lift_dispute_block", ForUser, max_attempts=12)


def same_address(a: str, b: str) -> bool:
    """Auth0 lower-cases database users' addresses; ours are lower-cased at intake."""
    return a.lower() == b.lower()


async def settle_reset(
    conn: AsyncConnection,
    settings: Settings,
    row: TicketRow,
    *,
    now: datetime,
    via_link: bool,
    current_email: str | None = None,
) -> bool:
    """Settle a claimed ticket as used and queue what follows a reset, in the
    caller's transaction; False if the ticket was no longer claimed.
    `current_email` is the user's address at Auth0 as last seen, if known."""
    if not await tickets.mark_used(conn, row.id, now=now):
        return False
    await funnel.completed(conn, row, at=now)
    await after_reset(conn, settings, row, now=now, via_link=via_link, current_email=current_email)
    return True


async def after_reset(
    conn: AsyncConnection,
    settings: Settings,
    row: TicketRow,
    *,
    now: datetime,
    via_link: bool,
    current_email: str | None = None,
) -> None:
    """What follows a password set through `row`'s link: siblings void, follow-ups queued."""
    # A dispute confirmed after this link was made says the link may be the intruder's
    # (its confirm was in flight, so the dispute could not void it): the fresh links the
    # owner got since stay open, or the intruder's settle would take the owner's way back.
    disputed_at = await disputes.confirmed_after(conn, row.user_id, row.created_at)
    await tickets.void_for_user(
        conn, row.user_id, now=now, reason="sibling_used", created_before=disputed_at
    )
    user = ForUser(row.user_id)
    # Auth0 documents that a block lifts on a password change but not whether a
    # Management API PATCH counts: lift it explicitly (also for non-"blocked" tickets).
    await enqueue(conn, UNBLOCK, user, now=now)
    if await disputes.lift_pending(conn, row.user_id, issued_at=row.created_at, now=now):
        # The owner took the account back after a "This wasn't me": the user-level
        # block of that dispute is ours to lift. Only then: a block an administrator
        # set is not ours, and a reset does not lift it.
        await enqueue(conn, LIFT_DISPUTE_BLOCK, user, now=now)
    if settings.revoke_sessions != "off":
        await enqueue(conn, REVOKE_SESSIONS, user, now=now)
        # A browser MFA remembers would let whoever holds the old password skip the
        # second factor: it is part of what the old password opened.
        await enqueue(conn, FORGET_BROWSERS, user, now=now)
    if settings.mark_email_verified and via_link:
        # A separate PATCH: Auth0 refuses email_verified beside password. It carries
        # the address the link went to: only that address may be marked verified.
        await enqueue(conn, MARK_EMAIL_VERIFIED, ForAddress(row.user_id, row.email), now=now)
    recipients = [row.email]
    if current_email and not same_address(current_email, row.email):
        # The address changed at Auth0 while the reset ran: tell both owners.
        recipients.append(current_email)
    for recipient in recipients:
        context: dict[str, Any] = {"changed_at": now.isoformat()}
        if settings.dispute_url:
            # Each notice gets its own "Wasn't you?" link; the outbox keeps its id
            # only, and the courier derives the link when it sends.
            context["dispute_id"] = await open_link(
                conn,
                codec_for(settings),
                settings,
                user_id=row.user_id,
                email=recipient,
                connection=row.connection,
                locale=row.locale,
                changed_at=now,
                now=now,
            )
        await courier.queue(
            conn,
            template="changed",
            recipient=recipient,
            locale=row.locale,
            context=context,
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


async def _still_ours(conn: AsyncConnection, claim: Claim) -> TicketRow | None:
    """The ticket's row if it is still held by `claim`, else None. `mark_used` and
    `release` check only `state = 'claimed'`; a later confirm can claim a ticket only
    after our lease lapsed, so the gap between this read and the write that follows
    matters only past the lease (a conditional write on `claimed_until` in
    storage.tickets would close it)."""
    row = await tickets.by_id(conn, claim.ticket_id)
    if row is None or row.state != tickets.CLAIMED or row.claimed_until != claim.until:
        return None
    return row


@dataclass
class Confirms:
    settings: Settings
    db: Database
    tickets: Tickets
    auth0: Auth0Client
    metrics: Metrics
    now: Callable[[], datetime]
    wake_worker: Callable[[], None] = lambda: None
    policies: Policies | None = None  # default: read through `auth0`, cached briefly
    wording: Wording | None = None  # default: the catalogs, falling back to DEFAULT_LOCALE
    breaches: BreachCorpus | None = None  # None: no breach check (PWNED_PASSWORDS_URL empty)
    tenant: TenantFindings = field(init=False)
    _policy: Policies = field(init=False, repr=False)
    _wording: Wording = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.tenant = TenantFindings(self.db, self.metrics, self.now)
        self._policy = self.policies or Policies(
            self._policy_options, clock=lambda: self.now().timestamp()
        )
        self._wording = self.wording or Wording.defaulting_to(self.settings.default_locale)

    def register(self, registry: Registry) -> None:
        registry.add(GUARD, self.guard)
        registry.add(UNBLOCK, self.unblock)
        registry.add(REVOKE_SESSIONS, self.revoke_sessions)
        registry.add(MARK_EMAIL_VERIFIED, self.mark_email_verified)
        registry.add(FORGET_BROWSERS, self.forget_remembered_browsers)
        registry.add(LIFT_DISPUTE_BLOCK, self.lift_dispute_block)

    # -- verify ---------------------------------------------------------------------

    async def verify(self, value: str) -> TicketOpen | TicketClosed:
        checked = await self.tickets.check(value, self.now())
        if isinstance(checked, str):
            if checked == "expired":
                self.metrics.tickets.labels("expired").inc()
            return TicketClosed(checked)
        await funnel.opened(self.db, self.metrics, checked, at=self.now())
        policy = await self._policy.current()
        requirements = tuple(
            self._wording.describe(r, checked.locale) for r in policy.requirements()
        )
        return TicketOpen(
            checked.expires_at, mask_email(checked.email), checked.locale, requirements
        )

    # -- the tenant's password policy ----------------------------------------------------

    async def _policy_options(self) -> Mapping[str, Any] | None:
        connection = await self.auth0.database_connection()
        if connection is None:
            log.error("no database connection of AUTH0_CONNECTION's name: policy not read")
            return None
        return connection.options

    async def _refused_here(self, row: TicketRow, password: str) -> PasswordRejected | None:
        """The 422 for a password that misses the tenant's policy, checked before any
        Auth0 call; None if it meets what can be checked here."""
        missed = (await self._policy.current()).missed(password, email=row.email)
        if not missed:
            return None
        rules = [r.rule for r in missed]
        log.info(
            "new password refused by the local policy check", extra={"fields": {"rules": rules}}
        )
        # The contract's `rule`, from the first requirement missed (strength first).
        first = rules[0]
        rule = "strength" if first in STRENGTH_RULES else first
        return PasswordRejected(
            self._wording.summary(row.locale), rule, self._described(missed, row.locale)
        )

    async def _breached(
        self, row: TicketRow, password: str
    ) -> PasswordRejected | UpstreamDown | None:
        """The 422 for a password known breaches hold, or the 503 when the range API gave
        no usable answer and PWNED_PASSWORDS_ON_ERROR is `reject`; None to go on. Only the
        hash's 5-digit prefix leaves (`resetrelay.breaches`); the logs get neither the
        password nor its hash, only the outcome."""
        if self.breaches is None:
            return None
        try:
            count = await self.breaches.count(password)
        except RangeError as exc:
            self.metrics.breach_checks.labels("error", exc.reason).inc()
            mode = self.settings.pwned_passwords_on_error
            log.warning(
                "breach check: the range API gave no usable answer",
                extra={"fields": {"reason": exc.reason, "on_error": mode}},
            )
            # `allow`: an outage of a third party must not lock people out of their
            # accounts; `reject`: no password is set unchecked (the link still works).
            return UpstreamDown(BREACH_CHECK_RETRY_AFTER) if mode == "reject" else None
        if not count:
            self.metrics.breach_checks.labels("clean", "").inc()
            return None
        seen = band(count)
        self.metrics.breach_checks.labels("breached", "").inc()
        log.info("new password refused: known breaches hold it", extra={"fields": {"seen": seen}})
        return PasswordRejected(
            self._wording.breached(row.locale),
            "breached",
            self._described([Requirement("breached")], row.locale),
            seen=seen,
        )

    def _described(self, requirements: list[Requirement], locale: str) -> Requirements:
        return tuple(self._wording.describe(r, locale) for r in requirements)

    async def _refused_by_auth0(
        self, exc: Auth0PasswordRejected, row: TicketRow
    ) -> PasswordRejected:
        """Auth0 said no after our check passed: its rule, as one requirement."""
        policy = await self._policy.current()
        numbers = (
            (("size", policy.history_size),)
            if exc.rule == "history" and policy.history_size
            else ()
        )
        requirement = Requirement(exc.rule, numbers)
        return PasswordRejected(exc.message, exc.rule, self._described([requirement], row.locale))

    # -- confirm --------------------------------------------------------------------

    async def claim(self, row: TicketRow, now: datetime) -> tuple[Claim | None, TicketRow | None]:
        """Claim the ticket for one confirm; `(None, current row)` if someone else has
        it. With the claim goes its guard job, in the same transaction."""
        claim = Claim(secrets.token_urlsafe(18), row.id, now)
        async with self.db.begin() as conn:
            if not await tickets.claim(conn, row.id, now=now, lease=CLAIM_LEASE):
                return None, await tickets.by_id(conn, row.id)
            await enqueue(
                conn,
                GUARD,
                Guard(row.id, now.isoformat(), claim.id),
                now=now,
                delay=CLAIM_LEASE + timedelta(seconds=5),
            )
        return claim, row

    async def confirm(
        self, value: str, password: str
    ) -> Completed | TicketInvalid | TicketBusy | PasswordRejected | UpstreamDown | Misconfigured:
        now = self.now()
        row = await self.tickets.check(value, now)
        if isinstance(row, str):
            return TicketInvalid(row)
        # -- the tenant's policy, checked here (reset.policy) -------------------------
        # Before the claim: a refusal here spends no attempt. The attempt cap bounds
        # what a link can make us ask Auth0; this refusal asks Auth0 nothing and tells
        # nothing `verify` does not already list.
        refused = await self._refused_here(row, password)
        if refused is not None:
            return refused
        # -- known breaches (resetrelay.breaches), still before the claim ----------------
        # A breached refusal spends no attempt either: it asks Auth0 nothing, and what it
        # tells (this password is in public breach corpora) anyone can look up.
        breached = await self._breached(row, password)
        if breached is not None:
            return breached
        # -------------------------------------------------------------------------------
        claim, current = await self.claim(row, now)
        if claim is None:
            if current is not None and current.busy(now):
                return TicketBusy()
            reason = current.status(now) if current else "unknown"
            return TicketInvalid("unknown" if reason == "valid" else reason)  # type: ignore[arg-type]
        patched: Auth0User | None = None
        try:
            # One extra GET before the PATCH: a confirm now waits for two Management API
            # round trips instead of one (and spends one read of the rate limit). It is
            # the only reliable way to learn that the address changed since the link was
            # mailed: the log stream (`sce`) is optional, at-least-once and late.
            user = await self.auth0.get_user(row.user_id)
            moved = not same_address(user.email, row.email)
            if not moved:
                patched = await self.auth0.set_password(
                    row.user_id, password, app_metadata=claim.marker()
                )
        except Auth0PasswordRejected as exc:
            async with self.db.begin() as conn:
                state = await tickets.release(
                    conn, row.id, count_attempt=True, max_attempts=MAX_PASSWORD_ATTEMPTS
                )
            if state == tickets.REVOKED:
                self.metrics.tickets.labels("voided").inc()
            return await self._refused_by_auth0(exc, row)
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
            if isinstance(exc, InsufficientScope):
                await self.tenant.missing_scope(exc, consequence="no password can be set")
                return Misconfigured("auth0_scope")
            if isinstance(exc, Auth0Error) and 400 <= exc.status < 500:
                # Not one of the four policy errors (those are PasswordRejected): a
                # disabled connection, a 403 without a scope named, ... No user can fix
                # it, so no attempt counts, and retrying would only repeat the answer.
                log.error(
                    "auth0 refused the password change; the setup needs fixing",
                    extra={
                        "fields": {
                            "status": exc.status,
                            "code": exc.code,
                            "auth0_message": _ADDRESS.sub("[address]", exc.message)[:200],
                        }
                    },
                )
                return Misconfigured("auth0_refused")
            retry_after = 5.0
            if isinstance(exc, RateLimited | UpstreamUnavailable) and exc.retry_after:
                retry_after = exc.retry_after
            log.warning(
                "auth0 unavailable during confirm", extra={"fields": {"error": type(exc).__name__}}
            )
            return UpstreamDown(retry_after)
        if moved:
            return await self._void_moved(row)
        current_email = patched.email if patched is not None and patched.email else user.email
        # Both calls just worked: whatever scope finding named them is out of date.
        for call in (GET_USER, PATCH_USER):
            await self.tenant.call_worked(call)
        async with self.db.begin() as conn:
            settled = await _still_ours(conn, claim) is not None and await settle_reset(
                conn,
                self.settings,
                row,
                now=self.now(),
                via_link=True,
                current_email=current_email,
            )
        if not settled:
            return await self._after_lost_claim(row, claim, current_email)
        self._completed(row)
        return Completed()

    def _completed(self, row: TicketRow) -> None:
        self.metrics.tickets.labels("used").inc()
        funnel.counted(self.metrics, "completed", row.purpose)
        self.wake_worker()
        log.info(
            "password reset completed",
            extra={"fields": {"user": mask_email(row.email), "purpose": row.purpose}},
        )

    async def _void_moved(self, row: TicketRow) -> TicketInvalid:
        """The user's address at Auth0 is no longer the one the link was mailed to:
        the link is void, and so are the user's other open links."""
        now = self.now()
        async with self.db.begin() as conn:
            await tickets.release(
                conn, row.id, count_attempt=False, max_attempts=MAX_PASSWORD_ATTEMPTS
            )
            voided = await tickets.void_for_user(conn, row.user_id, now=now, reason="email_changed")
        self.metrics.tickets.labels("voided").inc(voided)
        log.info(
            "confirm refused: the address changed at auth0 since the link was mailed",
            extra={"fields": {"user": mask_email(row.email), "voided": voided}},
        )
        return TicketInvalid("revoked")

    async def _after_lost_claim(
        self, row: TicketRow, claim: Claim, current_email: str
    ) -> Completed | TicketInvalid | TicketBusy:
        """Our PATCH succeeded, but when we came to settle, the ticket was no longer
        held by our claim: the lease lapsed (a stalled process or database) and the
        guard, or a later confirm, got to it. Find out what happened and say that.

        Whether our password is the one in force is what Auth0 says: its
        `app_metadata` still holds our claim's id unless a later PATCH of ours
        replaced it."""
        now = self.now()
        try:
            user = await self.auth0.get_user(row.user_id)
            ours = user.app_metadata.get(CLAIM_MARKER) == claim.id
            current_email = user.email or current_email
        except UserNotFound:
            ours = False
        except IdentityError as exc:
            # Our PATCH's own answer, moments ago, is the newest word we have.
            ours = True
            log.warning(
                "auth0 unreadable after a lapsed confirm",
                extra={"fields": {"error": type(exc).__name__}},
            )
        async with self.db.begin() as conn:
            current = await tickets.by_id(conn, row.id)
            if current is None:
                return TicketInvalid("unknown")
            if current.busy(now):
                return TicketBusy()  # a later confirm holds it; it settles or releases
            status = current.status(now)
            if not ours:
                if status == "valid":
                    # Someone else changed the password after ours: this link is spent.
                    await tickets.void_for_user(
                        conn, row.user_id, now=now, reason="password_changed"
                    )
                    status = "revoked"
                log.warning(
                    "confirm's claim lapsed and its password is no longer in force",
                    extra={"fields": {"ticket": status}},
                )
                return TicketInvalid(status)  # type: ignore[arg-type]
            if current.state == tickets.USED:
                # Settled already: by the guard, which settles only on our claim's id,
                # or by a later confirm whose PATCH landed before ours.
                log.warning("confirm's claim lapsed; the ticket was settled meanwhile")
                return Completed()
            if status == "valid":
                # Released (the guard looked before our PATCH landed): claim it again
                # and settle it now, in this one transaction.
                reclaimed = await tickets.claim(conn, row.id, now=now, lease=CLAIM_LEASE)
                if reclaimed and await settle_reset(
                    conn, self.settings, row, now=now, via_link=True, current_email=current_email
                ):
                    log.warning("confirm's claim lapsed; settled on a fresh claim")
                    self._completed(row)
                    return Completed()
                return TicketBusy()
            # Revoked or expired meanwhile: the ticket stays closed, but the password is
            # set through this link all the same, and what follows a reset must follow.
            await after_reset(
                conn, self.settings, row, now=now, via_link=True, current_email=current_email
            )
        log.warning("confirm's claim lapsed; the ticket closed meanwhile, password set")
        self.wake_worker()
        return Completed()

    # -- the guard ------------------------------------------------------------------

    async def guard(self, run: JobRun, guard: Guard) -> None:
        """Settle a ticket whose confirm died between Auth0's answer and our commit."""
        claimed_at = datetime.fromisoformat(guard.claimed_at)
        claim = Claim(guard.claim_id or "", guard.ticket_id, claimed_at)
        now = self.now()
        async with self.db.begin() as conn:
            row = await _still_ours(conn, claim)
        if row is None:
            return  # the confirm finished one way or the other, or a later claim holds it
        if row.busy(now) and row.claimed_until is not None:
            raise Retry(
                "confirm still in flight", after=(row.claimed_until - now).total_seconds() + 1
            )
        try:
            user = await self.auth0.get_user(row.user_id)
        except UserNotFound:
            async with self.db.begin() as conn:
                if await _still_ours(conn, claim) is not None:
                    await tickets.release(conn, row.id, count_attempt=False, max_attempts=1)
            return
        except IdentityError as exc:
            raise retry_for(exc) from exc
        ours = _our_patch(user, guard, claimed_at)
        changed_elsewhere = (
            not ours
            and user.last_password_reset is not None
            and user.last_password_reset >= claimed_at
        )
        async with self.db.begin() as conn:
            if await _still_ours(conn, claim) is None:
                return
            if ours:
                if await settle_reset(
                    conn, self.settings, row, now=now, via_link=True, current_email=user.email
                ):
                    self.metrics.tickets.labels("used").inc()
                    funnel.counted(self.metrics, "completed", row.purpose)
                    log.warning("confirm settled by guard after a lost commit")
                return
            await tickets.release(conn, row.id, count_attempt=False, max_attempts=10)
            if changed_elsewhere:
                # The password changed during the claim, but not by our PATCH (the
                # user on Auth0's own page, an admin): as an `scp` event would, void
                # the links issued before that change; run none of our follow-ups.
                await tickets.void_for_user(
                    conn,
                    row.user_id,
                    now=now,
                    reason="password_changed",
                    created_before=user.last_password_reset,
                )
                log.warning("guard: the password changed elsewhere during a confirm's claim")

    # -- follow-ups -----------------------------------------------------------------

    async def unblock(self, run: JobRun, user: ForUser) -> None:
        try:
            await follow_up("unblock", self.auth0.unblock(user.user_id))
        except InsufficientScope as exc:
            await self.tenant.missing_scope(exc, consequence="brute-force blocks stay after resets")

    async def lift_dispute_block(self, run: JobRun, user: ForUser) -> None:
        """PATCH `blocked: false` after the owner of a disputed account reset it."""
        try:
            await self.auth0.set_blocked(user.user_id, False)
        except UserNotFound:
            return
        except InsufficientScope as exc:
            await self.tenant.missing_scope(
                exc, consequence="a disputed account stays blocked after its owner's reset"
            )
            return
        except IdentityError as exc:
            raise retry_for(exc) from exc
        log.info("dispute block lifted after a completed reset")

    async def mark_email_verified(self, run: JobRun, target: ForAddress) -> None:
        """Mark the address verified, only if it is still the one the link went to."""
        if not target.email:
            log.info("mark_email_verified skipped: the job names no address")
            return
        try:
            user = await self.auth0.get_user(target.user_id)
        except UserNotFound:
            log.info("user gone before mark_email_verified")
            return
        except InsufficientScope as exc:
            await self.tenant.missing_scope(exc, consequence="addresses are not marked verified")
            return
        except IdentityError as exc:
            raise retry_for(exc) from exc
        if not same_address(user.email, target.email):
            log.info("mark_email_verified skipped: the address changed since the link was mailed")
            return
        # Residual: Auth0 has no conditional PATCH, so an address change landing between
        # this GET and the PATCH below would still get the flag (one round trip's window).
        try:
            await follow_up("mark_email_verified", self.auth0.mark_email_verified(target.user_id))
        except InsufficientScope as exc:
            await self.tenant.missing_scope(exc, consequence="addresses are not marked verified")

    async def revoke_sessions(self, run: JobRun, user: ForUser) -> None:
        """End what the old password opened, as REVOKE_SESSIONS says. A missing scope
        is reported (it is the operator's to fix) and the job ends: retrying cannot
        help until someone grants it."""
        mode = self.settings.revoke_sessions
        if mode == "off":
            return  # queued before the setting changed
        try:
            outcome = await self._revoke(user.user_id, mode)
        except UserNotFound:
            return
        except IdentityError as exc:
            raise retry_for(exc) from exc
        log.info("sessions revoked", extra={"fields": {"outcome": outcome, "mode": mode}})

    async def _revoke(self, user_id: str, mode: str) -> str:
        """One of "revoked" (sessions and refresh tokens), "refresh_tokens" (refresh
        tokens only: sessions cannot be ended without revoke-access),
        "not_available" or "misconfigured"."""
        if mode in ("auto", "revoke_access"):
            if await self.tenant.plan_lacks("revoke-access"):
                if mode == "revoke_access":
                    log.warning("revoke-access not available on this plan; nothing revoked")
                    return "not_available"
            else:
                try:
                    await self.auth0.revoke_access(user_id)
                except NotAvailable as exc:
                    await self.tenant.remember_plan_limit("revoke-access", exc.status)
                    if mode == "revoke_access":
                        return "not_available"
                except InsufficientScope as exc:
                    await self.tenant.missing_scope(
                        exc, consequence="sessions stay alive after resets"
                    )
                    if mode == "revoke_access":
                        return "misconfigured"
                else:
                    await self.tenant.call_worked(REVOKE_ACCESS)
                    return "revoked"
        # Refresh tokens one by one, on every plan: all that is left where revoke-access
        # is unavailable (Auth0 has no session endpoint below Enterprise).
        try:
            count = await self.auth0.revoke_refresh_tokens(user_id)
        except InsufficientScope as exc:
            await self.tenant.missing_scope(
                exc, consequence="refresh tokens stay valid after resets"
            )
            return "misconfigured"
        await self.tenant.call_worked(LIST_DEVICE_CREDENTIALS)
        if count:
            await self.tenant.call_worked(DELETE_DEVICE_CREDENTIAL)
        return "refresh_tokens"

    async def forget_remembered_browsers(self, run: JobRun, user: ForUser) -> None:
        """MFA's "remember this browser" ends with the old password (`update:users`)."""
        if await self.tenant.plan_lacks("invalidate-remember-browser"):
            return
        try:
            await self.auth0.invalidate_remember_browser(user.user_id)
        except UserNotFound:
            return
        except NotAvailable as exc:
            await self.tenant.remember_plan_limit("invalidate-remember-browser", exc.status)
            return
        except InsufficientScope as exc:
            await self.tenant.missing_scope(
                exc, consequence="MFA keeps trusting remembered browsers after resets"
            )
            return
        except IdentityError as exc:
            raise retry_for(exc) from exc
        await self.tenant.call_worked(REMEMBER_BROWSER)


def _our_patch(user: Auth0User, guard: Guard, claimed_at: datetime) -> bool:
    """Whether Auth0 shows the password PATCH of this guard's claim."""
    if guard.claim_id is not None:
        # Written in the same PATCH as the password: present only if that PATCH was
        # applied, and replaced by any later PATCH of ours.
        return user.app_metadata.get(CLAIM_MARKER) == guard.claim_id
    # A guard queued before the marker existed: any change after the claim counts.
    return user.last_password_reset is not None and user.last_password_reset >= claimed_at
