"""What Auth0's log events and Actions set in motion (`/hooks/auth0`, `/hooks/auth0/actions`).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from identity.client import Auth0Client, Auth0User
from identity.errors import IdentityError, UserNotFound
from resetrelay.jobs.kinds import Kind, Registry, enqueue_many
from resetrelay.jobs.run import JobRun
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.reset.requests import issue, recipient
from resetrelay.reset.tickets import TicketCodec
from resetrelay.reset.upstream import retry_for
from resetrelay.settings import Settings
from storage import inbound, tickets, tokens
from storage.database import Database

log = logging.getLogger("resetrelay.auth0_events")

SOURCE: Final = "auth0"
ISSUE: Final = {"pwd_leak": "breached", "limit_wc": "blocked", "limit_sul": "blocked"}
VOID: Final = {"scp": "password_changed", "sce": "email_changed", "sdu": "user_deleted"}
ONE_MAIL_PER: Final = {"breached": timedelta(hours=24), "blocked": timedelta(hours=1)}
MAX_FIELD: Final = 512  # longer than any Auth0 id, address or date


@dataclass(frozen=True)
class LogEvent:
    """The fields a job needs; the rest of a log entry (IPs, user agents) is not kept."""

    log_id: str
    type: str
    date: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    connection: str | None = None
    strategy_type: str | None = None


LOG_EVENT = Kind("auth0.log_event", LogEvent, max_attempts=20)
_KEEP: Final = tuple(f.name for f in fields(LogEvent) if f.name not in ("log_id", "type"))


class LogEntry(Protocol):
    """One parsed log-stream entry, as the door hands it over (hooks.logstream.LogItem)."""

    @property
    def log_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    def text(self, name: str) -> str | None: ...


def _kept(item: LogEntry) -> dict[str, str]:
    """The fields a job keeps: text the database can hold (`item.text`, asked at the
    door) and short enough to be an Auth0 id, address or date."""
    return {k: v for k in _KEEP if (v := item.text(k)) is not None and len(v) <= MAX_FIELD}


def event_time(event: LogEvent, fallback: datetime) -> datetime:
    raw = event.date
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
class Auth0Events:
    settings: Settings
    db: Database
    codec: TicketCodec
    auth0: Auth0Client
    metrics: Metrics
    now: Callable[[], datetime]
    wake_worker: Callable[[], None] = lambda: None

    def register(self, registry: Registry) -> None:
        registry.add(LOG_EVENT, self.handle)

    async def store(self, items: Sequence[LogEntry]) -> dict[str, int]:
        """Store the actionable items durably (one transaction) and count the rest."""
        actionable: dict[str, LogEntry] = {}
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
                    LogEvent(log_id=log_id, type=item.type, **_kept(item))
                    for log_id, item in actionable.items()
                    if log_id in new_ids
                ]
                await enqueue_many(conn, LOG_EVENT, payloads, now=now)
            stored = len(payloads)
            if stored:
                self.wake_worker()
        return {
            "received": len(items),
            "stored": stored,
            "duplicates": len(items) - ignored - stored,
            "ignored": ignored,
        }

    def _ours(self, event: LogEvent) -> bool:
        # Events of other connections or of social users are none of our business.
        if event.connection and event.connection != self.settings.auth0_connection:
            return False
        return not (event.user_id and not event.user_id.startswith("auth0|"))

    async def _user(self, event: LogEvent) -> Auth0User | None:
        user: Auth0User | None
        try:
            if event.user_id:
                user = await self.auth0.get_user(event.user_id)
            else:
                name = event.user_name
                if not name or "@" not in name:
                    return None  # masked or missing: nothing to look up
                user = await self.auth0.find_database_user(name.strip().lower())
        except UserNotFound:
            return None
        except IdentityError as exc:
            raise retry_for(exc) from exc
        return user if user is not None and user.is_database_user else None

    async def handle(self, run: JobRun, event: LogEvent) -> None:
        kind = event.type
        if not self._ours(event):
            return
        when = event_time(event, self.now())
        if kind in VOID:
            user_id = event.user_id
            if not user_id:
                user = await self._user(event)
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
        user = await self._user(event)
        if user is None:
            return
        address = recipient(user.email, user.user_id, self.metrics, type=kind)
        if address is None:
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
                email=address,
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
