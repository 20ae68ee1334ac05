"""`POST /hooks/auth0/actions`: events from our Auth0 Action (post-change-password).

Order: not configured -> 404; media type; the Authorization header's shape
(no body needed); body read under a limit; token verified against the raw
bytes; then the `jti` is spent and the effect applied in one transaction, so a
replayed token does nothing.

Auth0's post-change-password event reference marks `event.user.user_id` *optional*
(https://auth0.com/docs/customize/actions/explore-triggers/password-reset-triggers/post-change-password-trigger/post-change-password-event-object),
and Auth0 does not retry an Action: a body with only `user.email` is accepted
(202), and the user is found by address in a job.
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
from mail.message import addr_spec

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
    if not isinstance(user, dict):
        raise invalid_payload("user: Field required.")
    user_id, email = _user_id(user.get("user_id")), _email(user.get("email"))
    if user_id is None and email is None:
        raise invalid_payload("user: user.user_id or user.email is required.")
    issued_at = datetime.fromtimestamp(claims.iat, tz=UTC)
    voided = await runtime.auth0_events.password_changed(
        jti=claims.jti,
        # Kept while the token still verifies (exp + leeway), or pruning would let it replay.
        expires_at=datetime.fromtimestamp(claims.exp + LEEWAY, tz=UTC),
        user_id=user_id,
        email=None if user_id is not None else email,
        changed_before=issued_at,
    )
    if voided is None:
        log.info("action token replayed")
        raise unauthorized(UNAUTHORIZED)
    if user_id is None:
        return json_response(202, {"status": "accepted"})
    return json_response(200, {"status": "ok", "voided": voided})


def _user_id(value: object) -> str | None:
    # The id is stored and compared, never parsed: any short storable text will do.
    if isinstance(value, str) and 0 < len(value) <= 255 and storable(value):
        return value
    return None


def _email(value: object) -> str | None:
    # Exactly one mailbox, as at the website's door: the address is only looked up,
    # but a list or a display name is nothing Auth0 could hold for one user.
    if not isinstance(value, str) or len(value) > 254:
        return None
    try:
        return addr_spec(value.strip().lower())
    except ValueError:
        return None
