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
        return _sign_in(state, fields, _client_ip(request))
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


def _client_ip(request: Request) -> str:
    # A backend using the password grant forwards the end user's IP in
    # `auth0-forwarded-for` (Auth0's resource-owner-password docs); without it the
    # caller's own address is the one brute-force protection sees.
    forwarded = request.headers.get("auth0-forwarded-for", "").strip()
    return forwarded or (request.client.host if request.client else "127.0.0.1")


def _sign_in(state: EmulatorState, fields: dict[str, Any], ip: str) -> Response:
    if fields.get("client_id") != state.client_id:
        return _oauth_error(401, "access_denied", "Unauthorized")
    email = str(fields.get("username", "")).strip().lower()
    user = next((u for u in state.users_with_email(email) if u.password_hash), None)
    if (
        user is not None
        and user.admin_blocked
        and check_password(str(fields.get("password", "")), user.password_hash or "")
    ):
        # PATCH `blocked: true`: refused even with the right password.
        return _oauth_error(401, "unauthorized", "user is blocked")
    if user is not None and ip in user.blocked_ips:
        return JSONResponse(BLOCKED, 429)  # blocked from this IP only
    if user is None or not check_password(
        str(fields.get("password", "")), user.password_hash or ""
    ):
        if user is None:
            return JSONResponse(WRONG, 403)
        # Counted per IP and identifier: the brute force threshold is "incorrect
        # login attempts allowed from a single IP address to a single user identifier".
        user.failed_logins[ip] = user.failed_logins.get(ip, 0) + 1
        if user.failed_logins[ip] < FAILED_LOGINS_BEFORE_BLOCK:
            return JSONResponse(WRONG, 403)
        user.block(ip)
        event = state.logs.event("limit_wc", user, "Blocked account", ip=ip)
        return JSONResponse(WRONG, 403, background=BackgroundTask(state.logs.deliver, [event]))
    user.failed_logins.pop(ip, None)
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
