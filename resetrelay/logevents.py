"""What Auth0's log events and Actions set in motion (SPEC §4 `/hooks/auth0`).

    pwd_leak            -> "breached" mail with a fresh ticket (one per user per 24 h)
    limit_wc, limit_sul -> "blocked" mail with a fresh ticket (one per user per hour);
                           completing it lifts the block (cleanup always unblocks)
    scp, sce, sdu       -> void the user's open tickets issued before the event

Auth0 delivers at least once and out of order: duplicates are dropped at the
door (`log_id`), and an event voids only tickets created before its `date`, so a
late `scp` cannot void a ticket issued after the change it reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from identity.client import Auth0Client, Auth0User
from identity.errors import IdentityError, UserNotFound
from resetrelay import tasks
from resetrelay.issuing import issue
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.settings import Settings
from resetrelay.tickets import TicketCodec
from resetrelay.worker import JobKind, JobRun
from storage import inbound, jobs, tickets, tokens
from storage.database import Database
from storage.sql import storable

log = logging.getLogger("resetrelay.logevents")

SOURCE: Final = "auth0"
JOB: Final = "auth0.log_event"
ISSUE: Final = {"pwd_leak": "breached", "limit_wc": "blocked", "limit_sul": "blocked"}
VOID: Final = {"scp": "password_changed", "sce": "email_changed", "sdu": "user_deleted"}
ONE_MAIL_PER: Final = {"breached": timedelta(hours=24), "blocked": timedelta(hours=1)}
# The fields a job needs; the rest of a log entry (IPs, user agents) is not kept.
_KEEP: Final = ("type", "date", "user_id", "user_name", "connection", "strategy_type")
MAX_FIELD: Final = 512  # longer than any Auth0 id, address or date


def _usable(value: Any) -> bool:
    """A kept field must be text the job can use and the database can hold (Auth0's
    are all strings): NaN, NUL or a lone surrogate would fail the INSERT on
    PostgreSQL (a 5xx) or crash the job on every attempt."""
    return isinstance(value, str) and len(value) <= MAX_FIELD and storable(value)


def event_time(data: dict[str, Any], fallback: datetime) -> datetime:
    raw = data.get("date")
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            # In UTC here: an offset that pushes it past year 1 or 9999 fails now, not
            # in the database driver on every attempt of the job.
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except (ValueError, OverflowError):
            return fallback
    return fallback


@dataclass
class LogEvents:
    settings: Settings
    db: Database
    codec: TicketCodec
    auth0: Auth0Client
    metrics: Metrics
    now: Callable[[], datetime]
    wake_worker: Callable[[], None] = lambda: None

    def kinds(self) -> dict[str, JobKind]:
        return {JOB: JobKind(self.handle)}

    async def store(self, items: list[Any]) -> dict[str, int]:
        """Store the actionable items durably (one transaction) and count the rest."""
        actionable: dict[str, Any] = {}
        ignored = 0
        for item in items:
            self.metrics.log_events.labels(
                item.type if item.type in ISSUE or item.type in VOID else "other"
            ).inc()
            if item.type in ISSUE or item.type in VOID:
                actionable.setdefault(item.log_id, item)  # duplicates within the batch
            else:
                ignored += 1
        stored = 0
        if actionable:
            now = self.now()
            async with self.db.begin() as conn:
                new_ids = await inbound.record_many(
                    conn,
                    source=SOURCE,
                    events=[(i.log_id, i.type) for i in actionable.values()],
                    now=now,
                )
                payloads = [
                    {k: item.data[k] for k in _KEEP if _usable(item.data.get(k))}
                    | {"log_id": log_id}
                    for log_id, item in actionable.items()
                    if log_id in new_ids
                ]
                await jobs.enqueue_many(conn, JOB, payloads, now=now, max_attempts=20)
            stored = len(payloads)
            if stored:
                self.wake_worker()
        return {
            "received": len(items),
            "stored": stored,
            "duplicates": len(items) - ignored - stored,
            "ignored": ignored,
        }

    def _ours(self, data: dict[str, Any]) -> bool:
        # Events of other connections or of social users are none of our business.
        connection = data.get("connection")
        if connection and connection != self.settings.auth0_connection:
            return False
        user_id = data.get("user_id")
        return not (isinstance(user_id, str) and user_id and not user_id.startswith("auth0|"))

    async def _user(self, data: dict[str, Any]) -> Auth0User | None:
        user: Auth0User | None
        try:
            user_id = data.get("user_id")
            if isinstance(user_id, str) and user_id:
                user = await self.auth0.get_user(user_id)
            else:
                name = data.get("user_name")
                if not isinstance(name, str) or "@" not in name:
                    return None  # masked or missing: nothing to look up
                user = await self.auth0.find_database_user(name.strip().lower())
        except UserNotFound:
            return None
        except IdentityError as exc:
            raise tasks.retry_for(exc) from exc
        return user if user is not None and user.is_database_user else None

    async def handle(self, run: JobRun) -> None:
        data = run.job.payload
        kind = data.get("type", "")
        if not self._ours(data):
            return
        when = event_time(data, self.now())
        if kind in VOID:
            user_id = data.get("user_id")
            if not isinstance(user_id, str) or not user_id:
                user = await self._user(data)
                if user is None:
                    return
                user_id = user.user_id
            async with self.db.begin() as conn:
                voided = await tickets.void_for_user(
                    conn, user_id, now=self.now(), reason=VOID[kind], created_before=when
                )
                await run.complete(conn)
            if voided:
                self.metrics.tickets.labels("voided").inc(voided)
            return
        purpose = ISSUE.get(kind)
        if purpose is None:
            return
        user = await self._user(data)
        if user is None:
            return
        now = self.now()
        async with self.db.begin() as conn:
            # Two leak events for one user (Auth0 logs one per IP) run as concurrent
            # jobs: the lock makes the second see the first's ticket.
            await tickets.lock_user(conn, user.user_id)
            if await tickets.issued_since(
                conn, user.user_id, purpose=purpose, since=now - ONE_MAIL_PER[purpose]
            ):
                log.info(
                    "log event mail already sent recently",
                    extra={"fields": {"type": kind, "user": mask_email(user.email)}},
                )
                return
            await issue(
                conn,
                self.settings,
                self.codec,
                user_id=user.user_id,
                email=user.email,
                connection=user.connection or self.settings.auth0_connection,
                locale=user.locale or self.settings.default_locale,
                purpose=purpose,
                now=now,
            )
            await run.complete(conn)
        self.metrics.tickets.labels("issued").inc()
        self.metrics.mails.labels("queued").inc()

    async def password_changed(
        self, *, jti: str, expires_at: datetime, user_id: str, changed_before: datetime
    ) -> int | None:
        """An Action reported a password change: spend the token's `jti` and void the
        user's older open tickets in one transaction. None when the jti was spent."""
        async with self.db.begin() as conn:
            if not await tokens.spend(conn, jti, expires_at=expires_at):
                return None
            voided = await tickets.void_for_user(
                conn,
                user_id,
                now=self.now(),
                reason="password_changed",
                created_before=changed_before,
            )
        if voided:
            self.metrics.tickets.labels("voided").inc(voided)
        return voided
