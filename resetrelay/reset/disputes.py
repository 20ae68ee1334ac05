""" "This wasn't me": the owner of an account disputes a password change.

inspect  (`confirm: false`) what the dispute page shows; consumes nothing, so a
         mail scanner following the link spends nothing
confirm  (`confirm: true`) spends the link (a conditional UPDATE: of two
         concurrent confirms one disputes, the other sees `used`) and, in that
         same transaction: voids the user's open tickets, queues the block
         (PATCH `blocked: true`), the revocation follow-ups, a fresh reset mail
         to the address the notice went to, the website's
         `password_reset.disputed` event, and an audit line

What is true before the 200: all of the above is committed, in one
transaction, or none of it is (a 503, the link still unspent). The Auth0 calls
run as jobs, the block first: the owner's page must not wait on Auth0 or fail
with it, and a job retries until Auth0 answers, where an inline call that
failed after our commit would leave the account open with nobody to retry.

The fresh reset's completion lifts the block (`reset.confirm.after_reset`,
`LIFT_DISPUTE_BLOCK`, PATCH `blocked: false`); that is the user attribute,
not Auth0's brute-force blocks, which `UNBLOCK` lifts after every reset.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from identity.client import Auth0Client
from identity.errors import IdentityError, InsufficientScope, UserNotFound
from resetrelay import courier
from resetrelay.audit import Subjects
from resetrelay.jobs.kinds import Kind, Registry, enqueue
from resetrelay.jobs.run import JobRun
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.reset.confirm import FORGET_BROWSERS, REVOKE_SESSIONS, ForUser
from resetrelay.reset.dispute_links import DisputeLinks
from resetrelay.reset.outcomes import DisputeClosed, Disputed, DisputeInvalid, DisputeOpen
from resetrelay.reset.requests import issue
from resetrelay.reset.tickets import TicketCodec
from resetrelay.reset.upstream import retry_for
from resetrelay.settings import Settings
from resetrelay.tenant import TenantFindings
from storage import audit, disputes, tickets
from storage.database import Database

log = logging.getLogger("resetrelay.disputes")

AUDIT_ACTOR = "website:dispute"  # not an operator: the account's owner, through the link
AUDIT_ACTION = "dispute"


@dataclass(frozen=True)
class Block:
    user_id: str
    dispute_id: str


BLOCK = Kind("auth0.block_disputed", Block, max_attempts=12)


@dataclass
class Disputes:
    settings: Settings
    db: Database
    links: DisputeLinks
    ticket_codec: TicketCodec
    auth0: Auth0Client
    metrics: Metrics
    now: Callable[[], datetime]
    wake_worker: Callable[[], None] = lambda: None
    tenant: TenantFindings = field(init=False)

    def __post_init__(self) -> None:
        self.tenant = TenantFindings(self.db, self.metrics, self.now)
        self._subjects = Subjects(self.settings.secret_key.reveal())

    def register(self, registry: Registry) -> None:
        registry.add(BLOCK, self.block)

    async def inspect(self, value: str) -> DisputeOpen | DisputeClosed:
        row = await self.links.find(value)
        if row is None:
            return DisputeClosed("unknown")
        status = row.status(self.now())
        if status != "valid":
            return DisputeClosed(status)  # type: ignore[arg-type]
        return DisputeOpen(mask_email(row.email), row.changed_at, row.locale)

    async def confirm(self, value: str) -> Disputed | DisputeInvalid:
        row = await self.links.find(value)
        if row is None:
            return DisputeInvalid("unknown")
        now = self.now()
        async with self.db.begin() as conn:
            # The one spend: a conditional UPDATE, so a second confirm (concurrent or
            # later) finds the link used and acts on nothing.
            if not await disputes.use(conn, row.id, now=now):
                current = await disputes.by_id(conn, row.id)
                reason = current.status(now) if current else "unknown"
                return DisputeInvalid("unknown" if reason == "valid" else reason)  # type: ignore[arg-type]
            user = ForUser(row.user_id)
            # The block first: jobs due at the same moment run in queue order.
            await enqueue(conn, BLOCK, Block(row.user_id, row.id), now=now)
            # Whoever changed the password may hold sessions and refresh tokens: end
            # them as after a reset (REVOKE_SESSIONS says how; `off` leaves them).
            if self.settings.revoke_sessions != "off":
                await enqueue(conn, REVOKE_SESSIONS, user, now=now)
                await enqueue(conn, FORGET_BROWSERS, user, now=now)
            voided = await tickets.void_for_user(conn, row.user_id, now=now, reason="disputed")
            # A fresh link to the address the notice went to, so the owner can take
            # the account back; completing it lifts the block. No rate limit: the
            # dispute link is single use, so this mails once per notice at most.
            await issue(
                conn,
                self.settings,
                self.ticket_codec,
                user_id=row.user_id,
                email=row.email,
                connection=row.connection,
                locale=row.locale,
                purpose="reset",
                now=now,
            )
            if self.settings.website_events_url:
                await courier.queue_event(
                    conn,
                    "password_reset.disputed",
                    {"user_id": row.user_id, "email": row.email, "at": now.isoformat()},
                    now=now,
                )
            await audit.record(
                conn,
                at=now,
                actor=AUDIT_ACTOR,
                host=socket.gethostname()[:255],
                action=AUDIT_ACTION,
                rows=voided,
                subject=self._subjects.user(row.user_id),
                detail="blocked, sessions revoked, open links voided, fresh reset mailed",
            )
        self.metrics.tickets.labels("voided").inc(voided)
        self.wake_worker()
        log.warning(
            "password change disputed: account blocked until its owner resets it",
            extra={"fields": {"user": mask_email(row.email), "voided": voided}},
        )
        return Disputed()

    async def block(self, run: JobRun, job: Block) -> None:
        """PATCH `blocked: true`, unless the owner's fresh reset has already lifted it."""
        async with self.db.read() as conn:
            if await disputes.lifted_since(conn, job.dispute_id):
                return  # blocking now would lock the owner out of the account they took back
        try:
            await self.auth0.set_blocked(job.user_id, True)
        except UserNotFound:
            return
        except InsufficientScope as exc:
            await self.tenant.missing_scope(exc, consequence="a disputed account is not blocked")
            return
        except IdentityError as exc:
            raise retry_for(exc) from exc
        async with self.db.read() as conn:
            lifted = await disputes.lifted_since(conn, job.dispute_id)
        if lifted:
            # The owner's reset settled while our PATCH was on its way, and its lift
            # may have run first: lift again, so the last word is theirs.
            try:
                await self.auth0.set_blocked(job.user_id, False)
            except IdentityError as exc:
                raise retry_for(exc) from exc
        log.info("disputed account blocked", extra={"fields": {"lifted_meanwhile": lifted}})
