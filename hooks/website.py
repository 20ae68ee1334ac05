"""`POST /hooks/website`: the website's signed events (docs/routes.md).

Order of checks: cheap rejects (media type, size) before reading, the
signature over the raw bytes before parsing anything, dedupe before acting.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from hooks import events
from hooks.answers import REPLAYED, Rendered, render
from hooks.bodies import read_limited, require_json
from hooks.errors import HookError, invalid_signature
from resetrelay.reset.outcomes import Outcome
from resetrelay.webhooks import InvalidSignature, verify
from storage.database import StorageError

if TYPE_CHECKING:
    from resetrelay.runtime import Runtime

log = logging.getLogger("resetrelay.hooks.website")

MAX_BODY = 64 * 1024


def _respond(rendered: Rendered) -> Response:
    answer = rendered.answer
    return Response(
        answer.body, answer.status, headers=rendered.headers, media_type="application/json"
    )


async def website(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    metrics = runtime.metrics
    try:
        require_json(request)
        body = await read_limited(request, MAX_BODY)
        try:
            event_id, _ = verify(
                request.headers,
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
        metrics.requests.labels("unknown", exc.code).inc()
        raise
    try:
        rendered = await _answer(runtime, event_id, event_type, data)
    except StorageError:
        metrics.requests.labels(event_type, "503").inc()  # answered in hooks.app
        raise
    replayed = REPLAYED.items() <= rendered.headers.items()
    metrics.requests.labels(
        event_type, "replayed" if replayed else str(rendered.answer.status)
    ).inc()
    return _respond(rendered)


async def _answer(runtime: Runtime, event_id: str, event_type: str, data: object) -> Rendered:
    if isinstance(data, events.Requested):
        # Deduped by its job's key (one row per event): the answer is always the same.
        return render(
            await runtime.requests.submit(event_id, data.email, data.locale, data.client_ip)
        )
    # A redelivered id gets the first answer again, and causes nothing.
    replay = await runtime.replays.find(event_id)
    if replay is not None:
        return Rendered(replay, REPLAYED)
    outcome: Outcome
    if isinstance(data, events.Verify):
        outcome = await runtime.confirms.verify(data.ticket)
    elif isinstance(data, events.Confirm):
        outcome = await runtime.confirms.confirm(data.ticket, data.new_password)
    else:  # parse() only returns the three models above
        raise HookError(422, "unknown_event_type", "Event type is not handled.")
    rendered = render(outcome)
    if outcome.final:
        earlier = await runtime.replays.keep(event_id, event_type, rendered.answer)
        if earlier is not None:  # a concurrent delivery of the same id answered first
            return Rendered(earlier, REPLAYED)
    return rendered
