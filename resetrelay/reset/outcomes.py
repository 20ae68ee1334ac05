"""What the reset flow answers, as types; `hooks.answers` turns them into HTTP.

    Outcome
     ├── Accepted(replayed)               requested: the same for every address
     ├── TicketOpen(expires_at, email, locale)   verify: the link works
     ├── TicketClosed(reason)             verify: it does not (expired, used, revoked, unknown)
     ├── Completed                        confirm: the password is set
     ├── TicketInvalid(reason)            confirm: the link does not work
     ├── TicketBusy                       confirm: another confirm holds the ticket
     ├── PasswordRejected(message, rule)  confirm: Auth0's policy said no; the link still works
     └── UpstreamDown(retry_after)        confirm: Auth0 did not answer; the link still works

`final` says whether the outcome settles the event: a final answer is kept
and given again to a redelivery of the same `webhook-id`; a transient one
(busy, upstream down) is not, so the sender's retry gets a fresh try.

`Replays` keeps the answers already given, by event id (`storage.inbound`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from storage import inbound
from storage.database import Database

Reason = Literal["expired", "used", "revoked", "unknown"]


@dataclass(frozen=True)
class Accepted:
    replayed: bool = False  # the event id was seen before: nothing new was queued
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class TicketOpen:
    expires_at: datetime
    email: str  # masked
    locale: str
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class TicketClosed:
    reason: Reason
    final: ClassVar[bool] = True


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
    rule: str
    final: ClassVar[bool] = True


@dataclass(frozen=True)
class UpstreamDown:
    retry_after: float
    final: ClassVar[bool] = False


Outcome = (
    Accepted
    | TicketOpen
    | TicketClosed
    | Completed
    | TicketInvalid
    | TicketBusy
    | PasswordRejected
    | UpstreamDown
)


@dataclass(frozen=True)
class Answer:
    """An answer as it was given: kept verbatim, so a replay is byte-identical."""

    status: int
    body: str


class Replays:
    """The answers given to website events, by `webhook-id`."""

    SOURCE = "website"

    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self._db = db
        self._now = now

    async def find(self, event_id: str) -> Answer | None:
        async with self._db.read() as conn:
            stored = await inbound.find(conn, self.SOURCE, event_id)
        return Answer(stored.status_code, stored.answer) if stored else None

    async def keep(self, event_id: str, event_type: str, answer: Answer) -> Answer | None:
        """Keep `answer` for `event_id`; if a concurrent delivery of the same id kept
        its own first, return that one instead (the caller answers with it)."""
        async with self._db.begin() as conn:
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
