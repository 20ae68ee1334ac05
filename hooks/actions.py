"""`POST /hooks/auth0/actions`: events from our Auth0 Action (post-change-password).

Order: not configured -> 404; media type; the Authorization header's shape
(no body needed); body read under a limit; token verified against the raw
bytes; then the `jti` is spent and the effect applied in one transaction, so a
replayed token does nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from hooks.actiontoken import LEEWAY, InvalidActionToken, verify
from hooks.bodies import read_limited, require_json
from hooks.errors import HookError, invalid_payload, json_response, not_configured, unauthorized
from hooks.inputs import storable

if TYPE_CHECKING:
    from resetrelay.runtime import Runtime

log = logging.getLogger("resetrelay.hooks.actions")

MAX_BODY = 64 * 1024
UNAUTHORIZED = "The bearer token is missing or invalid."


async def actions(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    secret = settings.auth0_action_secret.reveal()
    if not secret:
        raise not_configured()
    require_json(request)
    # Cheap rejects first: a request without a bearer token never gets its body read.
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(UNAUTHORIZED)
    body = await read_limited(request, MAX_BODY)
    try:
        claims = verify(
            token.strip(),
            body,
            secret=secret,
            issuer=f"https://{settings.auth0_domain}/",
            now=runtime.now().timestamp(),
        )
    except InvalidActionToken as exc:
        log.info("action token rejected", extra={"fields": {"reason": exc.reason}})
        raise unauthorized(UNAUTHORIZED) from None
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested past the stack's depth
        raise invalid_payload("The body is not valid JSON.") from None
    if not isinstance(event, dict):
        raise invalid_payload("The body must be a JSON object.")
    if event.get("type") != "post_change_password":
        raise HookError(422, "unknown_event_type", "Only post_change_password is handled.")
    user = event.get("user")
    user_id = user.get("user_id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not 0 < len(user_id) <= 255 or not storable(user_id):
        raise invalid_payload("user.user_id: Field required.")
    issued_at = datetime.fromtimestamp(claims.iat, tz=UTC)
    voided = await runtime.auth0_events.password_changed(
        jti=claims.jti,
        # Kept while the token still verifies (exp + leeway), or pruning would let it replay.
        expires_at=datetime.fromtimestamp(claims.exp + LEEWAY, tz=UTC),
        user_id=user_id,
        changed_before=issued_at,
    )
    if voided is None:
        log.info("action token replayed")
        raise unauthorized(UNAUTHORIZED)
    return json_response(200, {"status": "ok", "voided": voided})
