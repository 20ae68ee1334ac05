"""`password_reset.requested`: from the website's event to a queued mail.

At the door (`submit`) only what must happen before the answer: the event's
id and its job are made durable, then every address gets the same 202.
Whether the account exists is found out by the job (`handle`), after the
answer, so neither the body, the status, the headers nor the timing of the
answer can tell. The job counts the request against its rate limits, looks
the user up at Auth0, and issues a ticket whose mail goes to the outbox.

Group commit (`Intake`): a request may be answered only once its event id
and its job are durable. Committing each on its own costs a transaction per
request; here concurrent requests hand their rows to one committer and wait
for the commit that carries them. Nothing waits on a timer: while one batch
commits, the next one gathers, and before it takes a batch the committer lets
the event loop turn twice (`GATHER_TURNS`), so requests whose bytes have
already arrived join it. A lone request commits a few microseconds later; a
burst commits in a few large transactions. Duplicate ids (inside a batch or
already stored) get the same answer back, and cause nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from identity.client import Auth0Client
from identity.errors import IdentityError, InsufficientScope
from mail.message import addr_spec
from resetrelay import courier, funnel
from resetrelay.jobs.kinds import Kind, Registry
from resetrelay.jobs.run import JobRun, Retry
from resetrelay.keys import derive
from resetrelay.logs import mask_email
from resetrelay.metrics import Metrics
from resetrelay.reset.courtesy import CourtesyMails
from resetrelay.reset.limits import RequestLimits
from resetrelay.reset.outcomes import Accepted
from resetrelay.reset.tickets import TicketCodec
from resetrelay.reset.upstream import retry_for
from resetrelay.settings import Settings
from resetrelay.tenant import TenantFindings
from storage import intake, jobs, tickets
from storage.database import Database

log = logging.getLogger("resetrelay.requests")

SOURCE = "website"
LOOKUP_CALL = "GET /api/v2/users-by-email"  # as `InsufficientScope.endpoint` names it
MISCONFIGURED_RETRY = 300.0  # seconds: an operator has to act first
# Which mail announces a ticket of each purpose.
TEMPLATE_FOR_PURPOSE = {"reset": "reset", "breached": "breached", "blocked": "blocked"}


@dataclass(frozen=True)
class Requested:
    email: str
    locale: str | None = None
    client_ip: str | None = None
    over_limit: bool | None = None  # set once the request was counted


REQUESTED = Kind("reset.requested", Requested, max_attempts=20)
# Made once: the answer never varies, and this is the request path.
_ACCEPTED, _ACCEPTED_AGAIN = Accepted(replayed=False), Accepted(replayed=True)


async def issue(
    conn: AsyncConnection,
    settings: Settings,
    codec: TicketCodec,
    *,
    user_id: str,
    email: str,
    connection: str,
    locale: str,
    purpose: str,
    now: datetime,
) -> str:
    """Store a new ticket (voiding the user's older ones) and queue its mail, in the
    caller's transaction; returns the ticket id. The ticket value itself is neither
    stored nor returned: the courier derives the link when it sends."""
    return await conn.run_sync(
        lambda sync: issue_sync(
            sync,
            settings,
            codec,
            user_id=user_id,
            email=email,
            connection=connection,
            locale=locale,
            purpose=purpose,
            now=now,
        )
    )


def issue_sync(
    conn: Connection,
    settings: Settings,
    codec: TicketCodec,
    *,
    user_id: str,
    email: str,
    connection: str,
    locale: str,
    purpose: str,
    now: datetime,
) -> str:
    """`issue` for `Database.run`: the same rows, in one thread hop on SQLite (through
    aiosqlite, each statement of it cost several hops and shared the write lock with
    the writer thread's transactions)."""
    ticket = codec.new()
    tickets.insert_sync(
        conn,
        ticket_id=ticket.id,
        lookup_hash=ticket.lookup_hash,
        user_id=user_id,
        email=email,
        connection=connection,
        locale=locale,
        purpose=purpose,
        now=now,
        ttl=timedelta(seconds=settings.ticket_ttl_seconds),
        code=settings.mail_codes,
    )
    courier.queue_sync(
        conn,
        template=TEMPLATE_FOR_PURPOSE[purpose],
        recipient=email,
        locale=locale,
        context={},
        ticket_id=ticket.id,
        message_id=courier.new_message_id(settings.mail_from),
        now=now,
    )
    return ticket.id


def recipient(email: str, user_id: str, metrics: Metrics, **fields: str) -> str | None:
    """A user's address as a mail's one recipient, or None: Auth0 may hold a list, a
    display name or worse, and that is never a recipient (`mail.message.addr_spec`, the
    rule the door and the mailer apply too). Such a user gets no ticket: one warning,
    without the address, and a count."""
    try:
        return addr_spec(email)
    except ValueError:
        fields = {**fields, "user_id": user_id}
        log.warning("user's address is not one mailbox; no mail", extra={"fields": fields})
        metrics.mails.labels("bad_address").inc()
        return None


@dataclass
class Requests:
    settings: Settings
    db: Database
    codec: TicketCodec
    auth0: Auth0Client
    metrics: Metrics
    now: Callable[[], datetime]
    wake_worker: Callable[[], None] = lambda: None
    tenant: TenantFindings = field(init=False)

    def __post_init__(self) -> None:
        self.tenant = TenantFindings(self.db, self.metrics, self.now)
        rate_key = derive(self.settings.secret_key.reveal(), "rate-limits")
        self._limits = RequestLimits(self.settings, self.metrics, rate_key)
        self._courtesy = CourtesyMails(self.settings, self.metrics, self._limits)
        self._intake = Intake(self.db, self.now, source=SOURCE, job_kind=REQUESTED)

    def register(self, registry: Registry) -> None:
        registry.add(REQUESTED, self.handle)

    # -- at the door --------------------------------------------------------------

    async def submit(
        self, event_id: str, email: str, locale: str | None, client_ip: str | None
    ) -> Accepted:
        """Persist the event and its job; the same answer for a new or a seen id."""
        fresh = await self._intake.submit(
            event_id, REQUESTED.encode(Requested(email, locale, client_ip))
        )
        if fresh:
            self.wake_worker()
            return _ACCEPTED
        return _ACCEPTED_AGAIN

    # -- the job, after the answer ------------------------------------------------

    async def _over_limit(self, run: JobRun, request: Requested) -> bool:
        """Count this request against its limits (reset.limits), once per job even if
        it is retried: the verdict is saved in the job with the count, and a refused
        request's job completes in the same transaction. Synchronous statements in
        one `Database.run`: one thread hop on SQLite, where the worker shares the
        write lock with the request path."""
        if request.over_limit is not None:
            return request.over_limit
        now = self.now()
        asked = request.locale or self.settings.default_locale  # the funnel's locale

        def count(conn: Connection) -> tuple[bool, bool]:
            refused = self._limits.refused_sync(conn, request.email, request.client_ip, now=now)
            over = refused is not None
            funnel.requested_sync(conn, self.metrics, at=now, locale=asked, limited=over)
            jobs.update_payload_sync(
                conn, run.job, REQUESTED.encode(replace(request, over_limit=over))
            )
            done = over and run.job.id in jobs.complete_many_sync(conn, [run.job], now=now)
            return over, done

        over, done = await self.db.run(count)
        if over:
            if not done:
                raise Retry("lease lost before completion")
            run.completed = True
        return over

    async def handle(self, run: JobRun, request: Requested) -> None:
        email = request.email
        if await self._over_limit(run, request):
            log.info("reset request over rate limit", extra={"fields": {"user": mask_email(email)}})
            return
        asked = request.locale or self.settings.default_locale  # the funnel's locale
        try:
            users = await self.auth0.users_by_email(email.strip().lower())
        except InsufficientScope as exc:
            # Said loudly, then retried later: once the scope is granted, the mail goes.
            await self.tenant.missing_scope(exc, consequence="no reset mail can be sent")
            raise Retry("auth0 application lacks a scope", after=MISCONFIGURED_RETRY) from exc
        except IdentityError as exc:
            raise retry_for(exc) from exc
        await self.tenant.call_worked(LOOKUP_CALL)
        user = next((u for u in users if u.is_database_user), None)
        if user is None:
            # Unknown or social-only: no reset (Auth0 resets social users at their
            # provider); at most a courtesy mail, as COURTESY_MAILS says. The website's
            # answer was the same 202 either way.
            log.info("no database user for reset", extra={"fields": {"user": mask_email(email)}})
            outcome = "social" if users else "unknown"
            courtesy = self._courtesy.plan(users, email, request.locale)
            now = self.now()

            def settle(conn: Connection) -> bool:
                funnel.looked_up_sync(conn, self.metrics, outcome, at=now, locale=asked)
                queued = courtesy is not None and self._courtesy.queue_sync(conn, courtesy, now=now)
                run.complete_sync(conn)
                return queued

            queued = await self.db.run(settle)
            run.completed = True
            if courtesy is not None:
                self._courtesy.counted(courtesy, queued=queued)
            return
        address = recipient(user.email or email, user.user_id, self.metrics, type="reset")
        if address is None:
            return
        locale = request.locale or user.locale or self.settings.default_locale
        now = self.now()

        def issue_and_complete(conn: Connection) -> None:
            issue_sync(
                conn,
                self.settings,
                self.codec,
                user_id=user.user_id,
                email=address,
                connection=user.connection or self.settings.auth0_connection,
                locale=locale,
                purpose="reset",
                now=now,
            )
            funnel.looked_up_sync(conn, self.metrics, "found", at=now, locale=asked)
            run.complete_sync(conn)

        await self.db.run(issue_and_complete)
        run.completed = True
        self.metrics.tickets.labels("issued").inc()
        self.metrics.mails.labels("queued").inc()


@dataclass(frozen=True)
class Pending:
    event_id: str
    payload: dict[str, Any]


# Turns of the event loop the committer lets pass before it takes a batch. The
# committer's first step is queued behind the requests that created it, but ahead
# of those whose bytes the loop reads in its next poll of the sockets: the first
# turn lets those reach the queue, the second takes one more poll. Under load the
# batches then hold about every connection's request instead of half of them,
# which halves the commits (each one a SQLite transaction, or a round trip to
# PostgreSQL per 64 rows) per request; bench/run.py's requested rows measure the effect.
GATHER_TURNS = 2


class Intake:
    """Group commit of `requested` events (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        now: Callable[[], datetime],
        *,
        source: str,
        job_kind: Kind[Any],
        max_batch: int = 500,
        record: Callable[..., Awaitable[set[str]]] = intake.record,
    ) -> None:
        self._db = db
        self._now = now
        self._batch = intake.Batch(source, job_kind.name, job_kind.max_attempts)
        self._max_batch = max_batch
        self._record = record  # storage.intake.record; tests count the batches
        self._queue: list[tuple[Pending, asyncio.Future[bool]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, event_id: str, payload: dict[str, Any]) -> bool:
        """Persist the event and its job; True when the id is new (a job was queued).
        Raises what the commit raised (e.g. StorageUnavailable)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            # Looked up once: on Python 3.11 every get_running_loop() is a getpid()
            # system call (its fork check), once per request on this path. A new
            # loop (the old one closed) gets a committer of its own: the old one's
            # task never finishes, and nothing would commit this request. What the
            # old loop left queued goes: its callers went with their loop.
            loop = self._loop = asyncio.get_running_loop()
            self._committer = None
            self._queue = [item for item in self._queue if item[1].get_loop() is loop]
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.append((Pending(event_id, payload), future))
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._commit_all())
        # A caller that goes away (client disconnect) cancels only its own future,
        # which the committer then skips (`done()`); the commit carries on for
        # everyone in the batch, so no shield (another future per request) is needed.
        return await future

    async def _commit_all(self) -> None:
        while self._queue:
            for _ in range(GATHER_TURNS):
                if len(self._queue) >= self._max_batch:
                    break
                await asyncio.sleep(0)  # one turn of the loop, never a timer
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            try:
                results = await self._commit([item for item, _ in batch])
            except intake.PartlyStored as exc:
                # Those whose job was queued get their 202; only the rest get the 503.
                _settle(batch, self._partly([item for item, _ in batch], exc))
                continue
            except Exception as exc:  # handed to every waiter, which answers 503
                _settle(batch, [exc] * len(batch))
                continue
            _settle(batch, results)

    async def _commit(self, items: list[Pending]) -> list[bool]:
        first = _firsts(items)
        new_ids = await self._record(
            self._db,
            self._batch,
            [(i.event_id, i.payload) for i in first.values()],
            now=self._now(),
        )
        # Stored before, or a twin inside this batch: not fresh, nothing queued.
        return [first[item.event_id] is item and item.event_id in new_ids for item in items]

    @staticmethod
    def _partly(items: list[Pending], exc: intake.PartlyStored) -> list[bool | BaseException]:
        """The answers to a batch that failed after part of it was stored: a stored
        id's first item is fresh, its twins are not; every other item failed."""
        first = _firsts(items)
        return [
            (first[item.event_id] is item) if item.event_id in exc.stored else exc for item in items
        ]


def _settle(
    batch: list[tuple[Pending, asyncio.Future[bool]]], results: Sequence[bool | BaseException]
) -> None:
    """Each waiter's answer: its result, or the error it raises (answered 503)."""
    for (_, future), result in zip(batch, results, strict=True):
        if future.done():  # its caller went away
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


def _firsts(items: list[Pending]) -> dict[str, Pending]:
    """Each event id's first item in a batch (a twin after it changes nothing)."""
    first: dict[str, Pending] = {}
    for item in items:
        first.setdefault(item.event_id, item)
    return first
