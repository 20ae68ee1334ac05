"""`POST /hooks/auth0`: Auth0's custom-webhook log stream (docs/routes.md).

Auth0 signs nothing here: it sends the Authorization value configured on the
stream, exactly as typed. Actionable events are stored (deduped by `log_id`,
one job each) before the 200; the rest are only counted. Auth0 delivers at
least once and out of order, so duplicates are dropped here and stale events
are judged by their `date` in the job.

Malformed items are skipped and counted (`resetrelay_log_stream_malformed_total`,
an operator alerts on it), the rest of the batch is kept: answering non-2xx would
make Auth0 resend the whole batch, bad item included, to the same end. A body in
which nothing parses as JSON gets 400: Auth0 treats any non-2xx as a failed
delivery, retries it, and shows it in the stream's health.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from hooks.bodies import read_limited
from hooks.errors import invalid_payload, json_response, not_configured, unauthorized
from hooks.logstream import parse

if TYPE_CHECKING:
    from resetrelay.runtime import Runtime

log = logging.getLogger("resetrelay.hooks.auth0")

MAX_BODY = 5 * 1024 * 1024
UNAUTHORIZED = "The Authorization header is missing or wrong."
UNPARSEABLE = "Nothing in the body is JSON: expected JSON Lines of {log_id, data} items."


def authorized(presented: str, configured: str) -> bool:
    """Constant-time comparison with the configured value; `Bearer <token>` is accepted
    too when the configured value has no scheme. Both comparisons always run, so
    timing does not reveal which form was close."""
    exact = hmac.compare_digest(presented.encode(), configured.encode())
    bearer = " " not in configured and hmac.compare_digest(
        presented.encode(), f"Bearer {configured}".encode()
    )
    return exact or bearer


async def log_stream(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    token = runtime.settings.auth0_log_stream_token.reveal()
    if not token:
        raise not_configured()  # unset: the route does not exist for callers
    if not authorized(request.headers.get("authorization", ""), token):
        raise unauthorized(UNAUTHORIZED)
    body = await read_limited(request, MAX_BODY)
    parsed = parse(body)
    malformed = runtime.metrics.log_stream_malformed
    if parsed.unparseable:
        malformed.labels("body").inc()
        log.warning(
            "log stream body refused: nothing parses as JSON",
            extra={"fields": {"bytes": len(body)}},
        )
        raise invalid_payload(UNPARSEABLE)
    summary = await runtime.auth0_events.store(parsed.items)
    summary["malformed"] = parsed.malformed
    if parsed.malformed:
        malformed.labels("item").inc(parsed.malformed)
        log.warning("log stream items skipped", extra={"fields": {"malformed": parsed.malformed}})
    return json_response(200, summary)
