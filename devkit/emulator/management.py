"""The Management API endpoints resetrelay calls, under `/api/v2/`.

Every call is logged, spends a rate-limit token (when limits are on, every
answer carries `x-ratelimit-*`), may meet a queued fault, and needs a bearer
token from `/oauth/token`, in that order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devkit.emulator.policy import hash_password
from devkit.emulator.responses import api_error, body_of, emulator, not_found
from devkit.emulator.state import EmulatorState
from devkit.emulator.users import EmulatedUser

__all__ = ["routes"]

Handler = Callable[[Request, EmulatorState, Any], Awaitable[Response]]
NOT_WITH_PASSWORD: Final = ("email_verified", "email", "username")
NOT_WITH_EMAIL: Final = ("username",)  # "Cannot update username and email simultaneously"
METADATA: Final = ("app_metadata", "user_metadata")
HISTORY_KEPT: Final = 25  # Auth0 remembers at most 24 previous passwords


def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state = emulator(request)
        body = await body_of(request) if request.method in ("POST", "PATCH") else None
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        state.record(
            request.method,
            request.url.path,
            raw_path.decode("latin-1"),
            request.url.query,
            body,
        )
        headers: dict[str, str] = {}
        if state.bucket is not None:
            allowed, headers = state.bucket.take()
            if not allowed:
                return api_error(429, "Global limit has been reached", "too_many_requests", headers)
        fault = state.take_fault(request.method, request.url.path)
        if fault is not None:
            headers.update(fault.headers(state.clock()))
            code = "too_many_requests" if fault.status == 429 else None
            return api_error(fault.status, "Injected fault", code, headers)
        problem = state.token_problem(request.headers.get("authorization", ""))
        if problem is not None:
            return api_error(401, problem, headers=headers)
        response = await handler(request, state, body)
        response.headers.update(headers)
        return response

    return endpoint


def _target(request: Request, state: EmulatorState) -> EmulatedUser | None:
    return state.user(request.path_params["user_id"])


async def users_by_email(request: Request, state: EmulatorState, body: Any) -> Response:
    email = request.query_params.get("email")
    if not email:
        return api_error(
            400,
            "Query validation error: 'Missing required property: email'",
            "invalid_query_string",
        )
    return JSONResponse([u.public() for u in state.users_with_email(email)])


async def get_user(request: Request, state: EmulatorState, body: Any) -> Response:
    target = _target(request, state)
    return not_found() if target is None else JSONResponse(target.public())


async def patch_user(request: Request, state: EmulatorState, body: Any) -> Response:
    target = _target(request, state)
    if target is None:
        return not_found()
    if not isinstance(body, dict):
        return api_error(400, "Payload validation error: 'Expected type object'", "invalid_body")
    problem = _metadata_problem(body)
    if problem is not None:
        return problem
    if "password" in body:
        other = next((k for k in NOT_WITH_PASSWORD if k in body), None)
        if other is not None:
            return api_error(400, f"Cannot update password and {other} simultaneously")
        # app_metadata beside password is allowed: the Management API documents the
        # pairs it refuses (above), and metadata is not among them.
        return _set_password(state, target, body)
    events: list[dict[str, Any]] = []
    if "email" in body:
        other = next((k for k in NOT_WITH_EMAIL if k in body), None)
        if other is not None:
            return api_error(400, f"Cannot update {other} and email simultaneously")
        refused = _change_email(state, target, body["email"])
        if refused is not None:
            return refused
        if "email_verified" not in body:
            # A new address is not verified until someone says so (stricter of the two
            # readings: whether Auth0 keeps the old flag is not documented).
            target.email_verified = False
        events += [
            state.logs.event("sapi", target, "Update a User"),
            state.logs.event("sce", target, "Change email"),
        ]
    if "email_verified" in body:
        target.email_verified = bool(body["email_verified"])
    _merge_metadata(target, body)
    target.updated_at = state.now_iso()
    return JSONResponse(target.public(), background=BackgroundTask(state.logs.deliver, events))


def _metadata_problem(body: dict[str, Any]) -> Response | None:
    for name in METADATA:
        if name in body and not isinstance(body[name], dict):
            return api_error(
                400,
                f"Payload validation error: 'Expected type object but found type "
                f"{type(body[name]).__name__}' on property {name}.",
                "invalid_body",
            )
    return None


def _merge_metadata(target: EmulatedUser, body: dict[str, Any]) -> None:
    """Auth0 merges metadata on the first level only; a `null` value removes a key,
    and an empty object removes all of it."""
    patch = body.get("app_metadata")
    if not isinstance(patch, dict):
        return
    if not patch:
        target.app_metadata = {}
        return
    for key, value in patch.items():
        if value is None:
            target.app_metadata.pop(key, None)
        else:
            target.app_metadata[key] = value


def _change_email(state: EmulatorState, target: EmulatedUser, email: Any) -> Response | None:
    if not isinstance(email, str) or "@" not in email:
        return api_error(
            400, "Payload validation error: 'Object didn't pass validation for format email'"
        )
    # Auth0 stores database users' addresses in lower case.
    new = email.lower() if target.connection else email
    taken = any(
        u.email == new and u.connection == target.connection and u is not target
        for u in state.users.values()
        if target.connection
    )
    if taken:
        return api_error(409, "The specified new email already exists", "auth0_idp_error")
    target.email = new
    return None


def _set_password(state: EmulatorState, target: EmulatedUser, body: dict[str, Any]) -> Response:
    password = body["password"]
    if not isinstance(password, str):
        return api_error(
            400, "Payload validation error: 'Expected type string' on property password"
        )
    if target.connection is None or body.get("connection") != target.connection:
        return api_error(400, "The user has no identity in the specified connection")
    rejection = state.policy.check(
        password,
        email=target.email,
        name=target.name,
        history=target.history,
        enforce=state.policy.patch_enforces,  # what a PATCH checks is contested (policy.py)
    )
    if rejection is not None:
        return api_error(400, rejection)
    target.password_hash = hash_password(password)
    target.history = [*target.history, target.password_hash][-HISTORY_KEPT:]
    target.password_changed += 1
    target.failed_logins = 0
    _merge_metadata(target, body)  # in the same write as the password: all or nothing
    target.last_password_reset = target.updated_at = state.now_iso()
    # No unblock here: whether a PATCH lifts brute-force blocks is unconfirmed.
    events = [
        state.logs.event("sapi", target, "Update a User"),
        state.logs.event("scp", target, "Change password"),
    ]
    return JSONResponse(target.public(), background=BackgroundTask(state.logs.deliver, events))


def _blocks(target: EmulatedUser) -> JSONResponse:
    blocked = [{"identifier": target.email, "ip": "127.0.0.1"}] if target.blocked else []
    return JSONResponse({"blocked_for": blocked})


async def user_blocks(request: Request, state: EmulatorState, body: Any) -> Response:
    target = _target(request, state)
    if target is None:
        return not_found()
    if request.method == "GET":
        return _blocks(target)
    target.blocked, target.failed_logins = False, 0
    return Response(status_code=204)


async def blocks_by_identifier(request: Request, state: EmulatorState, body: Any) -> Response:
    identifier = request.query_params.get("identifier", "")
    targets = [u for u in state.users.values() if identifier and u.email == identifier.lower()]
    if request.method == "GET":
        return _blocks(targets[0]) if targets else JSONResponse({"blocked_for": []})
    for target in targets:
        target.blocked, target.failed_logins = False, 0
    return Response(status_code=204)


async def revoke(request: Request, state: EmulatorState, body: Any) -> Response:
    if not state.revocation_available:
        return api_error(403, "This feature is not available for your plan", "insufficient_plan")
    target = _target(request, state)
    if target is None:
        return not_found()
    kind = request.url.path.rsplit("/", 1)[1]
    if kind in ("revoke-access", "sessions"):
        target.sessions_revoked += 1
    if kind in ("revoke-access", "refresh-tokens"):
        target.refresh_tokens_revoked += 1
    return Response(status_code=202)


async def remember_browser(request: Request, state: EmulatorState, body: Any) -> Response:
    target = _target(request, state)
    if target is None:
        return not_found()
    target.remember_browser_invalidated += 1
    return Response(status_code=204)


USER: Final = "/api/v2/users/{user_id}"
routes = [
    Route("/api/v2/users-by-email", api(users_by_email), methods=["GET"]),
    Route(f"{USER}/revoke-access", api(revoke), methods=["POST"]),
    Route(f"{USER}/sessions", api(revoke), methods=["DELETE"]),
    Route(f"{USER}/refresh-tokens", api(revoke), methods=["DELETE"]),
    Route(
        f"{USER}/multifactor/actions/invalidate-remember-browser",
        api(remember_browser),
        methods=["POST"],
    ),
    Route(USER, api(get_user), methods=["GET"]),
    Route(USER, api(patch_user), methods=["PATCH"]),
    Route("/api/v2/user-blocks", api(blocks_by_identifier), methods=["GET", "DELETE"]),
    Route("/api/v2/user-blocks/{user_id}", api(user_blocks), methods=["GET", "DELETE"]),
]
