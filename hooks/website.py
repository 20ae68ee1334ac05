"""`POST /hooks/website`: the website's signed events (SPEC §4).

Order of checks: cheap rejects (media type, size) before reading, the
signature over the raw bytes before parsing anything, dedupe before acting.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from hooks import events
from hooks.bodies import read_limited, require_json
from hooks.errors import HookError, invalid_signature
from hooks.signature import InvalidSignature, verify

if TYPE_CHECKING:
    from resetrelay.flow import Answer
    from resetrelay.runtime import Runtime

log = logging.getLogger("resetrelay.hooks.website")

MAX_BODY = 64 * 1024


def _respond(answer: Answer) -> Response:
    return Response(
        answer.body, answer.status, headers=answer.headers, media_type="application/json"
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
    flow = runtime.flow
    if isinstance(data, events.Requested):
        answer = await flow.requested(event_id, data.email, data.locale, data.client_ip)
    else:
        replay = await flow.replay(event_id)
        if replay is not None:
            answer = replay
        elif isinstance(data, events.Verify):
            answer = await flow.verify(event_id, data.ticket)
        elif isinstance(data, events.Confirm):
            answer = await flow.confirm(event_id, data.ticket, data.new_password)
        else:  # parse() only returns the three models above
            raise HookError(422, "unknown_event_type", "Event type is not handled.")
    outcome = "replayed" if "idempotent-replayed" in answer.headers else str(answer.status)
    metrics.requests.labels(event_type, outcome).inc()
    return _respond(answer)
