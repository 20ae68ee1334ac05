"""What the reset flow answers, as types; `hooks.answers` turns them into HTTP.

    Outcome
     ├── Accepted(replayed)               requested: the same for every address
     ├── TicketOpen(expires_at, email, locale, requirements)   verify: the link works,
     │                                    and the tenant's password requirements for the form
     ├── TicketClosed(reason)             verify: it does not (expired, used, revoked, unknown)
     ├── CodeRedeemed(opened, ticket, ref)  redeem_code: the code works; as TicketOpen, with
     │                                    a ticket minted for it (`reset.codes`)
     ├── Completed                        confirm: the password is set
     ├── TicketInvalid(reason)            confirm: the link does not work
     ├── TicketBusy                       confirm: another confirm holds the ticket
     ├── PasswordRejected(message, rule, requirements, seen)  confirm: the tenant's policy
     │                                    said no (checked here, or by Auth0), or known
     │                                    breaches hold the password; the link still works
     ├── UpstreamDown(retry_after)        confirm: Auth0 did not answer; the link still works
     ├── Misconfigured(reason)            confirm: Auth0 refused for a fault of the setup (a
     │                                    missing scope, a disabled connection): the
     │                                    operator's to fix; the link still works
     ├── DisputeOpen(email, changed_at, locale)  dispute, confirm false: what the page shows
     ├── DisputeClosed(reason)            dispute, confirm false: the link does not work
     ├── Disputed                         dispute, confirm true: the account is secured
     └── DisputeInvalid(reason)           dispute, confirm true: the link does not work

`final` says whether the outcome settles the event: a final answer is kept
and given again to a redelivery of the same `webhook-id`; a transient one
(busy, upstream down) is not, so the sender's retry gets a fresh try.

`Replays` keeps the answers already given, by event id (`storage.inbound`).
The id is one namespace across event types: a `requested` event's id is taken
by its job (`storage.intake`), a `verify`/`confirm` event's id by a claim taken
before the event is acted on, so of two deliveries with one id only the first
does anything, whatever their types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from storage import inbound, intake
from storage.database import Database

Reason = Literal["expired", "used", "revoked", "unknown"]
DisputeReason = Literal["expired", "used", "unknown"]


@dataclass(frozen=True)
class Accepted:
    replayed: bool = False  # the event id was seen before: nothing new was queued
    final: ClassVar[bool] = True


Requirements = tuple[Mapping[str, Any], ...]
"""Password requirements as JSON objects: `rule`, its numbers, a `message` (see
`reset.policy.Wording`)."""


@dataclass(frozen=True)
class TicketOpen:
    expires_at: datetime
    email: str  # masked
    locale: str
    requirements: Requirements = ()  # every requirement of the tenant's policy
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class TicketClosed:
    reason: Reason
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class CodeRedeemed:
    """A redeemed code: what `verify` says of its ticket, plus the ticket minted for it.
    `ref` is the ticket row's id, which a kept answer holds instead of the ticket (the
    database never holds a ticket); a replay makes the ticket again from it."""

    opened: TicketOpen
    ticket: str
    ref: str
    final: ClassVar[bool] = True

    def __repr__(self) -> str:  # the ticket is a credential
        return f"CodeRedeemed(opened={self.opened!r})"


@dataclass(frozen=True)
class Completed:
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class TicketInvalid:
    reason: Reason
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class TicketBusy:
    final: ClassVar[bool] = False


@dataclass(frozen=True)
class PasswordRejected:
    message: str
    rule: str  # strength | history | dictionary | user_info | breached | unknown
    requirements: Requirements = ()  # the requirements the password missed
    seen: str | None = None  # breached: the band of its breach count (resetrelay.breaches)
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class UpstreamDown:
    retry_after: float
    final: ClassVar[bool] = False


@dataclass(frozen=True)
class Misconfigured:
    reason: Literal["auth0_scope", "auth0_refused"]
    final: ClassVar[bool] = False


@dataclass(frozen=True)
class DisputeOpen:
    email: str  # masked
    changed_at: datetime
    locale: str
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class DisputeClosed:
    reason: DisputeReason
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class Disputed:
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class DisputeInvalid:
    reason: DisputeReason
    final: ClassVar[bool] = True


Outcome = (
    Accepted
    | TicketOpen
    | TicketClosed
    | CodeRedeemed
    | Completed
    | TicketInvalid
    | TicketBusy
    | PasswordRejected
    | UpstreamDown
    | Misconfigured
    | DisputeOpen
    | DisputeClosed
    | Disputed
    | DisputeInvalid
)


@dataclass(frozen=True)
class Answer:
    """An answer as it was given: kept verbatim, so a replay is byte-identical."""

    status: int
    body: str


Replay = Answer | Accepted | TicketBusy
"""What a seen id gets: the answer kept for it; `Accepted(replayed=True)` when a
`requested` job holds it; `TicketBusy` while its first delivery is being answered."""


class Replays:
    """The answers given to website events, by `webhook-id` (one namespace for all
    event types; see the module's docstring)."""

    SOURCE = "website"
    # A claim left unanswered this long was abandoned (its process died): taken over.
    STALE = timedelta(minutes=2)

    MAX_BATCH = 500

    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self._db = db
        self._now = now
        self._held_queue: list[tuple[str, asyncio.Future[bool]]] = []
        self._held_task: asyncio.Task[None] | None = None

    async def find(self, event_id: str) -> Replay | None:
        """What a second delivery of `event_id` gets, or None if the id is free."""
        async with self._db.read() as conn:
            stored = await inbound.find(conn, self.SOURCE, event_id)
            if stored is None:
                job = await inbound.has_job(conn, self.SOURCE, event_id)
                return Accepted(replayed=True) if job else None
        return _replay(stored)

    async def find_for_requested(self, event_id: str) -> Replay:
        """What a replayed `requested` answers: the answer of the other type of event
        that holds the id, if any, else the 202 again. The check is batched across
        concurrent replays (one statement each round), as `requested` itself is."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._held_queue.append((event_id, future))
        if self._held_task is None or self._held_task.done():
            self._held_task = loop.create_task(self._check_held())
        if await asyncio.shield(future):
            return await self.find(event_id) or Accepted(replayed=True)
        return Accepted(replayed=True)

    async def _check_held(self) -> None:
        while self._held_queue:
            batch = self._held_queue[: self.MAX_BATCH]
            del self._held_queue[: self.MAX_BATCH]
            try:
                held = await intake.held_elsewhere(
                    self._db, self.SOURCE, sorted({event_id for event_id, _ in batch})
                )
            except Exception as exc:  # handed to every waiter (a 503)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for event_id, future in batch:
                if not future.done():
                    future.set_result(event_id in held)

    async def claim(self, event_id: str, event_type: str) -> Replay | None:
        """Take `event_id` before acting on it: None when this delivery owns it (then
        `keep` or `release` it), else what to answer instead, acting on nothing."""
        now = self._now()
        async with self._db.begin() as conn:
            claimed = await inbound.claim(
                conn,
                source=self.SOURCE,
                event_id=event_id,
                event_type=event_type,
                now=now,
                stale_before=now - self.STALE,
            )
        if claimed == "claimed":
            return None
        if claimed == "job":
            return Accepted(replayed=True)
        return _replay(claimed)

    async def keep(self, event_id: str, event_type: str, answer: Answer) -> Answer | None:
        """Keep the final `answer` for `event_id` (settling this delivery's claim); if
        another delivery of the same id answered first, return that answer instead
        (the caller answers with it)."""
        async with self._db.begin() as conn:
            if await inbound.settle(
                conn,
                source=self.SOURCE,
                event_id=event_id,
                status_code=answer.status,
                answer=answer.body,
            ):
                return None
            fresh = await inbound.record(
                conn,
                source=self.SOURCE,
                event_id=event_id,
                event_type=event_type,
                status_code=answer.status,
                answer=answer.body,
                now=self._now(),
            )
            if fresh:
                return None
            stored = await inbound.find(conn, self.SOURCE, event_id)
        return Answer(stored.status_code, stored.answer) if stored else None

    async def release(self, event_id: str) -> None:
        """Give a claimed id back unanswered (a transient outcome, or a failure): a
        resend of it really tries again."""
        async with self._db.begin() as conn:
            await inbound.release(conn, source=self.SOURCE, event_id=event_id)


def _replay(stored: inbound.StoredAnswer) -> Replay:
    return TicketBusy() if stored.pending else Answer(stored.status_code, stored.answer)
