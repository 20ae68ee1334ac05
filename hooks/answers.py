"""The reset flow's outcomes as HTTP answers: status, JSON body, headers.

The one place where the flow's results become status codes; the bodies follow
the contract's `{"error": code, "message": sentence, ...}` for errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from resetrelay.reset.outcomes import (
    Accepted,
    Answer,
    CodeRedeemed,
    Completed,
    DisputeClosed,
    Disputed,
    DisputeInvalid,
    DisputeOpen,
    Misconfigured,
    Outcome,
    PasswordRejected,
    TicketBusy,
    TicketClosed,
    TicketInvalid,
    TicketOpen,
    UpstreamDown,
)

_INVALID_MESSAGES = {
    "expired": "This reset link has expired. Ask for a new one.",
    "used": "This reset link has already been used.",
    "revoked": "This reset link is no longer valid. Use the newest link you received.",
    "unknown": "This reset link is not valid.",
}
_DISPUTE_MESSAGES = {
    "expired": "This link has expired. Write to support if the change was not yours.",
    "used": "This link has already been used: the account is secured.",
    "unknown": "This link is not valid.",
}
REPLAYED = {"idempotent-replayed": "true"}
MISCONFIGURED_RETRY_AFTER = 300  # seconds


@dataclass(frozen=True)
class Rendered:
    answer: Answer
    headers: dict[str, str] = field(default_factory=dict)


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _error(status: int, code: str, message: str, **extra: Any) -> Answer:
    return Answer(status, _json({"error": code, "message": message, **extra}))


ACCEPTED = Answer(202, _json({"status": "accepted"}))
# Made once: `requested` is the hot path, and its answer never varies.
_ACCEPTED = Rendered(ACCEPTED)
_ACCEPTED_AGAIN = Rendered(ACCEPTED, REPLAYED)


def _open(outcome: TicketOpen) -> dict[str, Any]:
    body: dict[str, Any] = {
        "valid": True,
        "expires_at": _timestamp(outcome.expires_at),
        "email": outcome.email,
        "locale": outcome.locale,
    }
    if outcome.requirements:
        body["policy"] = {"requirements": list(outcome.requirements)}
    return body


def _timestamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# A kept redeem answer names its ticket by id under this key (see `sealed`).
_SEALED_KEY = "ticket_ref"


def sealed(outcome: CodeRedeemed) -> Answer:
    """The answer to keep for a replay: the ticket's id where the ticket was, so the
    replay store holds no usable ticket (the ticket is an HMAC of the id under
    SECRET_KEY). `unsealed` turns it back into the answer given."""
    return Answer(200, _json({**_open(outcome.opened), _SEALED_KEY: outcome.ref}))


def unsealed(answer: Answer, ticket_for: Callable[[str], str]) -> Answer:
    """A kept answer as it was given: a sealed redeem answer gets its ticket back,
    byte for byte (same keys, same order); any other answer is returned as is."""
    if f'"{_SEALED_KEY}":' not in answer.body:
        return answer
    body = json.loads(answer.body)
    ref = body.pop(_SEALED_KEY, None)
    if not isinstance(ref, str):
        return answer
    body["ticket"] = ticket_for(ref)
    return Answer(answer.status, _json(body))


def render(outcome: Outcome) -> Rendered:
    match outcome:
        case Accepted(replayed=replayed):
            # Byte-identical for every address: the body says nothing of the account.
            return _ACCEPTED_AGAIN if replayed else _ACCEPTED
        case TicketOpen():
            return Rendered(Answer(200, _json(_open(outcome))))
        case CodeRedeemed(opened=opened, ticket=ticket):
            return Rendered(Answer(200, _json({**_open(opened), "ticket": ticket})))
        case TicketClosed(reason=reason):
            return Rendered(Answer(200, _json({"valid": False, "reason": reason})))
        case Completed():
            return Rendered(Answer(200, _json({"status": "completed"})))
        case TicketInvalid(reason=reason):
            return Rendered(_error(410, "ticket_invalid", _INVALID_MESSAGES[reason], reason=reason))
        case TicketBusy():
            message = "This reset is already being completed. Try again in a moment."
            return Rendered(_error(409, "ticket_busy", message))
        case PasswordRejected(message=message, rule=rule, requirements=requirements):
            extra: dict[str, Any] = {"rule": rule}
            if outcome.seen is not None:
                extra["seen"] = outcome.seen
            if requirements:
                extra["requirements"] = list(requirements)
            return Rendered(_error(422, "password_rejected", message, **extra))
        case UpstreamDown(retry_after=retry_after):
            message = "The account service is unavailable; the link still works. Try again shortly."
            return Rendered(
                _error(503, "upstream_unavailable", message),
                {"retry-after": str(max(1, round(retry_after)))},
            )
        case Misconfigured(reason=reason):
            # Not the user's fault and not a passing outage: the operator must act. A
            # long Retry-After keeps a website's automatic retries from hammering Auth0.
            message = "The account service is not set up correctly; the link still works."
            return Rendered(
                _error(503, "service_misconfigured", message, reason=reason),
                {"retry-after": str(MISCONFIGURED_RETRY_AFTER)},
            )
        case DisputeOpen(email=email, changed_at=changed_at, locale=locale):
            body = {
                "valid": True,
                "email": email,
                "changed_at": changed_at.isoformat().replace("+00:00", "Z"),
                "locale": locale,
            }
            return Rendered(Answer(200, _json(body)))
        case DisputeClosed(reason=reason):
            return Rendered(Answer(200, _json({"valid": False, "reason": reason})))
        case Disputed():
            return Rendered(Answer(200, _json({"status": "disputed"})))
        case DisputeInvalid(reason=reason):
            # 410 as a spent or dead reset link (`ticket_invalid`): the same shape.
            return Rendered(
                _error(410, "dispute_invalid", _DISPUTE_MESSAGES[reason], reason=reason)
            )
    raise TypeError(f"no answer for {outcome!r}")  # every Outcome is matched above
