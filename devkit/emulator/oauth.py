"""`POST /oauth/token`: client credentials for the Management API, and the
password grant so the demo website can sign users in."""

from __future__ import annotations

import secrets
from typing import Any, Final

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devkit.emulator.policy import check_password
from devkit.emulator.responses import api_error, body_of, emulator
from devkit.emulator.state import EmulatorState

__all__ = ["FAILED_LOGINS_BEFORE_BLOCK", "routes"]

FAILED_LOGINS_BEFORE_BLOCK: Final = 10  # Auth0's brute-force protection default
# Every Management API scope the service uses (docs/auth0.md, "The scopes, call by call").
SCOPES: Final = (
    "read:users update:users delete:sessions delete:refresh_tokens"
    " read:device_credentials delete:device_credentials"
)
WRONG: Final = {"error": "invalid_grant", "error_description": "Wrong email or password."}
BLOCKED: Final = {
    "error": "too_many_attempts",
    "error_description": "Your account has been blocked after multiple consecutive login "
    "attempts. We've sent you an email with instructions on how to unblock it.",
}


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status)


async def token(request: Request) -> Response:
    state = emulator(request)
    body = await body_of(request)
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    state.record(request.method, request.url.path, request.url.path, "", fields)
    fault = state.take_fault(request.method, request.url.path)
    if fault is not None:
        return api_error(fault.status, "Injected fault", headers=fault.headers(state.clock()))
    grant = fields.get("grant_type")
    if grant == "password":
        return _sign_in(state, fields)
    if grant != "client_credentials":
        return _oauth_error(403, "unsupported_grant_type", "Grant type not allowed for client.")
    good = secrets.compare_digest(str(fields.get("client_id", "")), state.client_id)
    good &= secrets.compare_digest(str(fields.get("client_secret", "")), state.client_secret)
    if not good:
        return _oauth_error(401, "access_denied", "Unauthorized")
    if fields.get("audience") != state.audience:
        return _oauth_error(
            403,
            "access_denied",
            f"Service not enabled within domain: {fields.get('audience')}",
        )
    return JSONResponse(
        {
            "access_token": state.issue_token(),
            "expires_in": state.token_lifetime,
            "scope": SCOPES,
            "token_type": "Bearer",
        }
    )


def _sign_in(state: EmulatorState, fields: dict[str, Any]) -> Response:
    if fields.get("client_id") != state.client_id:
        return _oauth_error(401, "access_denied", "Unauthorized")
    email = str(fields.get("username", "")).strip().lower()
    user = next((u for u in state.users_with_email(email) if u.password_hash), None)
    if user is not None and user.blocked:
        return JSONResponse(BLOCKED, 429)
    if user is None or not check_password(
        str(fields.get("password", "")), user.password_hash or ""
    ):
        if user is None:
            return JSONResponse(WRONG, 403)
        user.failed_logins += 1
        if user.failed_logins < FAILED_LOGINS_BEFORE_BLOCK:
            return JSONResponse(WRONG, 403)
        user.blocked = True
        event = state.logs.event("limit_wc", user, "Blocked account")
        return JSONResponse(WRONG, 403, background=BackgroundTask(state.logs.deliver, [event]))
    user.failed_logins = 0
    return JSONResponse(
        {
            "access_token": secrets.token_urlsafe(24),
            "id_token": "emulated",
            "scope": str(fields.get("scope") or "openid"),
            "token_type": "Bearer",
            "expires_in": 86400,
        }
    )


routes = [Route("/oauth/token", token, methods=["POST"])]
