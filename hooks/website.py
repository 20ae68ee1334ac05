"""`POST /hooks/website`: the website's signed events (docs/routes.md).

Order of checks: cheap rejects (media type, size) before reading, the
signature over the raw bytes before parsing anything, dedupe before acting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import anyio
from starlette.requests import Request
from starlette.responses import Response

from hooks import events
from hooks.answers import REPLAYED, Rendered, render, sealed, unsealed
from hooks.bodies import read_limited, require_json_type
from hooks.errors import HookError, invalid_signature
from resetrelay.metrics import Metrics
from resetrelay.reset.outcomes import Accepted, Answer, CodeRedeemed, Outcome, Replay
from resetrelay.webhooks import InvalidSignature, verify
from storage.database import StorageError

if TYPE_CHECKING:
    from resetrelay.runtime import Runtime

log = logging.getLogger("resetrelay.hooks.website")

MAX_BODY = 64 * 1024
# The one answer most requests get, made once: a Response is only read when sent
# (its status, header list and body), and nothing on the way changes it in place
# (hooks.middleware copies the header list to add its own).
_ACCEPTED = render(Accepted(replayed=False))


def _count(metrics: Metrics, event_type: str, outcome: str) -> None:
    """`metrics.requests` by type and outcome, each child looked up once per registry:
    `labels()` validates and locks on every call, several times the cost of `inc()`."""
    children = _COUNTED.setdefault(metrics, {})
    child = children.get((event_type, outcome))
    if child is None:
        child = children[(event_type, outcome)] = metrics.requests.labels(event_type, outcome)
    child.inc()


_COUNTED: WeakKeyDictionary[Metrics, dict[tuple[str, str], Any]] = WeakKeyDictionary()


def _respond(rendered: Rendered) -> Response:
    if rendered is _ACCEPTED:
        return _ACCEPTED_RESPONSE
    answer = rendered.answer
    return Response(
        answer.body, answer.status, headers=rendered.headers, media_type="application/json"
    )


_ACCEPTED_RESPONSE = Response(
    _ACCEPTED.answer.body, _ACCEPTED.answer.status, media_type="application/json"
)


async def website(request: Request) -> Response:
    """The routed form, for an app mounted under a root path (hooks.app answers
    `POST /hooks/website` itself, through `answer`, when it is not)."""

    async def read() -> bytes:
        return await read_limited(request, MAX_BODY)

    return await answer(request.app.state.runtime, request.headers, read)


def headers_of(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request headers `answer` reads, from an ASGI scope's list; the first of
    repeated ones, as Starlette's `Headers.get` (names arrive lower-cased in ASGI)."""
    found: dict[str, str] = {}
    for name, value in raw:
        key = _READ.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


_READ = {
    name.encode(): name
    for name in (
        "content-type",
        "content-length",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    )
}


async def answer(
    runtime: Runtime, headers: Mapping[str, str], read: Callable[[], Awaitable[bytes]]
) -> Response:
    """The answer to one delivery: `headers` are the request's, `read()` its body
    (limited to MAX_BODY). Raises HookError and StorageError, which hooks.app maps."""
    settings = runtime.settings
    metrics = runtime.metrics
    try:
        require_json_type(headers.get("content-type", ""))
        body = await read()
        try:
            event_id, _ = verify(
                headers,
                body,
                keys=settings.webhook_secrets,
                now=runtime.now().timestamp(),
                tolerance=settings.webhook_tolerance_seconds,
            )
        except InvalidSignature as exc:
            log.info("signature rejected", extra={"fields": {"reason": exc.reason}})
            raise invalid_signature() from None
        event_type, data = events.parse(body)
    except HookError as exc:
        _count(metrics, "unknown", exc.code)
        raise
    try:
        rendered = await _answer(runtime, event_id, event_type, data)
    except StorageError:
        _count(metrics, event_type, "503")  # answered in hooks.app
        raise
    replayed = REPLAYED.items() <= rendered.headers.items()
    _count(metrics, event_type, "replayed" if replayed else str(rendered.answer.status))
    return _respond(rendered)


async def _answer(runtime: Runtime, event_id: str, event_type: str, data: object) -> Rendered:
    # One id namespace for every type: whichever event took an id first is the only
    # one that acts; a later delivery of that id, of any type, gets its answer again.
    if isinstance(data, events.Requested):
        # Deduped by its job's key (one row per event), which is skipped when another
        # type of event holds the id: the answer is always the same.
        accepted = await runtime.requests.submit(event_id, data.email, data.locale, data.client_ip)
        if accepted.replayed:  # off the hot path: only for an id seen before
            return _replayed(runtime, await runtime.replays.find_for_requested(event_id))
        return render(accepted)
    # Claimed before acting, so a concurrent delivery (of any type) cannot act too.
    seen = await runtime.replays.claim(event_id, event_type)
    if seen is not None:
        return _replayed(runtime, seen)
    try:
        outcome: Outcome
        if isinstance(data, events.Verify):
            outcome = await runtime.confirms.verify(data.ticket)
        elif isinstance(data, events.Confirm):
            outcome = await runtime.confirms.confirm(data.ticket, data.new_password)
        elif isinstance(data, events.RedeemCode):
            outcome = await runtime.codes.redeem(data.email, data.code)
        elif isinstance(data, events.Dispute):
            if data.confirm:
                outcome = await runtime.disputes.confirm(data.token)
            else:
                outcome = await runtime.disputes.inspect(data.token)
        else:  # parse() only returns the models above
            raise HookError(422, "unknown_event_type", "Event type is not handled.")
    except BaseException:
        with anyio.CancelScope(shield=True):
            await runtime.replays.release(event_id)
        raise
    rendered = render(outcome)
    if not outcome.final:  # transient: not kept, so a resend of the id tries afresh
        await runtime.replays.release(event_id)
        return rendered
    # A redeem's answer is kept with its ticket's id, never the ticket itself.
    kept = sealed(outcome) if isinstance(outcome, CodeRedeemed) else rendered.answer
    earlier = await runtime.replays.keep(event_id, event_type, kept)
    if earlier is not None:  # a concurrent delivery of the same id answered first
        return Rendered(unsealed(earlier, runtime.codec.redeemed_value), REPLAYED)
    return rendered


def _replayed(runtime: Runtime, seen: Replay) -> Rendered:
    if isinstance(seen, Answer):
        return Rendered(unsealed(seen, runtime.codec.redeemed_value), REPLAYED)
    if isinstance(seen, Accepted):
        return render(Accepted(replayed=True))  # the 202, marked as a replay
    # The first delivery of this id is still being answered: transient, not kept.
    return render(seen)
