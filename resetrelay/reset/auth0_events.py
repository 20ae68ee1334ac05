"""What Auth0's log events and Actions set in motion (`/hooks/auth0`, `/hooks/auth0/actions`).

    pwd_leak        -> "breached" mail with a fresh ticket (one per user per 24 h)
    limit_wc        -> "blocked" mail with a fresh ticket (one per user per hour);
                       completing it lifts the block (cleanup always unblocks)
    scp, sce, sdu   -> void the user's open tickets issued before the event
    sapi            -> the same as scp, when it records a password PATCH of a user
    limit_sul       -> counted only: a login throttle, not a lock-out

Why each, from Auth0's log type codes and attack-protection docs
(https://auth0.com/docs/deploy-monitor/logs/log-event-type-codes,
https://auth0.com/docs/secure/attack-protection/brute-force-protection):

- `limit_wc`: "An IP address is blocked because it reached the maximum failed login
  attempts into a single account." The block holds until an admin removes it, the
  user follows Auth0's unblock link, or the user changes the password: a reset link
  is a way out.
- `limit_sul`: the same-user login rate limit, 20 logins a minute from one IP to
  one account, successful ones counted, then 10 a minute (Auth0's rate limit
  policy, "Database login limits"). It lifts itself within the minute and
  `DELETE /user-blocks` does not touch it: a "your account is blocked, reset your
  password" mail would be wrong, so it is only counted.
- `sapi`: "Successful management API write event". Its `user_id` is the *actor*
  (an admin, or empty for a machine-to-machine client: auth0-log-schemas, sapi),
  never the user whose password changed, so it cannot void by `user_id`. Whether
  Auth0 also logs `scp` for a password set through the Management API or the
  Dashboard is not documented; if it does not, `sapi` is the only trace of an
  admin's password change, and the links mailed before it must stop working like
  after `scp`. The target is read from `details.request` (method `patch`, path
  `/api/v2/users/{id}`, a `password` in the body): the log schema types
  `details.request` only as an object, so this shape is taken from logs as
  observed, a guess. A `sapi` of any other shape is counted, not stored.

Failure logs (`pwd_leak`, `limit_wc`) may lack `user_id` or carry an invalid one,
and `user_name` "may be a valid username, an invalid username, or empty string"
(auth0-log-schemas); PII obfuscation can mask or hash it. Without an id the user is
looked up by `user_name` when that is one mailbox, else the event is counted
(`resetrelay_log_events_skipped_total`) and skipped. A mail only ever goes to the
address Auth0 holds for the user found, never to the name in the log.

Auth0 delivers at least once and out of order: duplicates are dropped at the
door (`log_id`), and an event voids only tickets created before its `date`, so a
late `scp` cannot void a ticket issued after the change it reports.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from urllib.parse import unquote

from identity.client import Auth0Client, Auth0User
from identity.errors import IdentityError, UserNotFound
from mail.message import addr_spec
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
ISSUE: Final = {"pwd_leak": "breached", "limit_wc": "blocked"}
VOID: Final = {
    "scp": "password_changed",
    "sce": "email_changed",
    "sdu": "user_deleted",
    "sapi": "password_changed",
}
COUNTED: Final = frozenset({"limit_sul"})  # named in the metric, nothing else
USERS_PATH: Final = re.compile(r"/api/v2/users/([^/?#]+)")
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

    def field(self, *path: str) -> object: ...

    def text(self, *path: str) -> str | None: ...


def _short(value: str | None) -> str | None:
    # Longer than any Auth0 id, address or date: not kept (it would only bloat a job).
    return value if value is not None and len(value) <= MAX_FIELD else None


def _kept(item: LogEntry) -> dict[str, str]:
    """The fields a job keeps: text the database can hold (`item.text`, asked at the
    door) and short enough to be an Auth0 id, address or date."""
    return {k: v for k in _KEEP if (v := _short(item.text(k))) is not None}


def password_patch_target(item: LogEntry) -> str | None:
    """The user whose password a `sapi` entry records being set, or None when it
    records anything else. The shape of `details.request` is a guess (see the module
    docstring); anything that does not match it exactly is not a password change."""
    method = item.text("details", "request", "method")
    path = item.text("details", "request", "path")
    if method is None or method.lower() != "patch" or path is None:
        return None
    match = USERS_PATH.fullmatch(path)
    body = item.field("details", "request", "body")
    if match is None or not isinstance(body, dict) or "password" not in body:
        return None
    target = unquote(match.group(1))
    return target if target and target.isprintable() and len(target) <= MAX_FIELD else None


def _payload(item: LogEntry) -> LogEvent | None:
    """What the job needs of an actionable entry; None for a `sapi` that is not a
    password change (counted, not stored)."""
    if item.type != "sapi":
        return LogEvent(log_id=item.log_id, type=item.type, **_kept(item))
    target = password_patch_target(item)
    if target is None:
        return None
    # Not the entry's own user_id or user_name: those name the actor, not the target.
    connection = _short(item.text("details", "request", "body", "connection"))
    date = _short(item.text("date"))
    return LogEvent(
        log_id=item.log_id, type="sapi", date=date, user_id=target, connection=connection
    )


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
        actionable: dict[str, LogEvent] = {}
        ignored = 0
        for item in items:
            kind = item.type
            named = kind in ISSUE or kind in VOID or kind in COUNTED
            self.metrics.log_events.labels(kind if named else "other").inc()
            payload = _payload(item) if kind in ISSUE or kind in VOID else None
            if payload is None:
                ignored += 1
            else:
                actionable.setdefault(item.log_id, payload)  # duplicates within the batch
        stored = 0
        if actionable:
            now = self.now()
            async with self.db.begin() as conn:
                new_ids = await inbound.record_many(
                    conn,
                    source=SOURCE,
                    events=[(e.log_id, e.type) for e in actionable.values()],
                    now=now,
                )
                payloads = [e for log_id, e in actionable.items() if log_id in new_ids]
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
        # Events of other connections or of social logins are none of our business.
        if event.connection and event.connection != self.settings.auth0_connection:
            return False
        if event.strategy_type and event.strategy_type != "database":
            return False
        # An event that names our connection may carry a social user id: a social
        # primary account with our database identity linked to it. Without the
        # connection, only a database user id says the user can be ours.
        if event.connection:
            return True
        return not (event.user_id and not event.user_id.startswith("auth0|"))

    def _skipped(self, event: LogEvent, reason: str) -> None:
        self.metrics.log_events_skipped.labels(event.type, reason).inc()
        log.info(
            "log event names no user of ours; skipped",
            extra={"fields": {"type": event.type, "reason": reason}},
        )

    async def _user(self, event: LogEvent) -> Auth0User | None:
        user: Auth0User | None
        try:
            if event.user_id:
                user = await self.auth0.get_user(event.user_id)
            else:
                address = _usable_address(event.user_name)
                if address is None:
                    # Missing, masked or hashed: nothing to look up, and a masked name
                    # is never a recipient.
                    self._skipped(event, "no_user")
                    return None
                user = await self.auth0.find_database_user(address)
        except UserNotFound:
            user = None
        except IdentityError as exc:
            raise retry_for(exc) from exc
        if user is None or not user.is_database_user:
            self._skipped(event, "unknown_user")
            return None
        return user

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
        self,
        *,
        jti: str,
        expires_at: datetime,
        user_id: str | None,
        email: str | None,
        changed_before: datetime,
    ) -> int | None:
        """An Action reported a password change: spend the token's `jti` and, in the
        same transaction, void the user's older open tickets. None when the jti was
        spent already.

        Auth0 marks `event.user.user_id` optional; with only the address, finding
        the user is an Auth0 call, which belongs in a job, not in the request: the
        change is stored as an `scp` named by address (the log-stream path that
        resolves by address), and 0 tickets are voided now."""
        async with self.db.begin() as conn:
            if not await tokens.spend(conn, jti, expires_at=expires_at):
                return None
            if user_id is None:
                event = LogEvent(
                    log_id=f"action:{jti}",
                    type="scp",
                    date=changed_before.isoformat(),
                    user_name=email,
                )
                await enqueue_many(conn, LOG_EVENT, [event], now=self.now())
                voided = 0
            else:
                voided = await tickets.void_for_user(
                    conn,
                    user_id,
                    now=self.now(),
                    reason="password_changed",
                    created_before=changed_before,
                )
        if user_id is None:
            self.wake_worker()
        if voided:
            self.metrics.tickets.labels("voided").inc(voided)
        return voided


def _usable_address(name: str | None) -> str | None:
    """`user_name` as an address to look up, if it is exactly one mailbox; a masked
    or hashed name is not (and if a masked one still looks like an address, the
    lookup finds nobody)."""
    if not name:
        return None
    try:
        return addr_spec(name.strip()).lower()
    except ValueError:
        return None
