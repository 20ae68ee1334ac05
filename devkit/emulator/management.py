"""The Management API endpoints resetrelay calls, under `/api/v2/`.

Every call is logged, spends a rate-limit token (when limits are on, every
answer carries `x-ratelimit-*`), may meet a queued fault, needs a bearer
token from `/oauth/token`, and needs its scopes in that token, in that order.

Scopes per endpoint are the Management API reference's (docs/auth0.md lists them).
A token without one gets what the Management API specification writes for 403,
`{"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope,
expected any of: <scope>", "errorCode": "insufficient_scope"}`. Where an endpoint
needs two scopes (`revoke-access`), how Auth0 words a refusal naming both is
unconfirmed: the emulator names the first one missing.

Plans: the user session and refresh-token endpoints answer only on the
"enterprise" plan (`EmulatorState.plan`). What Auth0 answers a tenant without them
is undocumented: the emulator's 403 below, without an `errorCode`, is a guess,
and the service must not rely on its wording (it treats any other 403/404 from
these endpoints as "not on this plan").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, cast

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devkit.emulator.oauth import SCOPES
from devkit.emulator.policy import hash_password
from devkit.emulator.responses import api_error, body_of, emulator, not_found
from devkit.emulator.state import EmulatorState
from devkit.emulator.users import EmulatedUser

__all__ = ["routes"]

Handler = Callable[[Request, EmulatorState, Any], Awaitable[Response]]
# Unconfirmed wording (see the module docstring): no errorCode on purpose.
PLAN_MESSAGE: Final = "This feature is not available on your plan."


class Grants(Protocol):
    """The client grant (`connections.Directory`): the scopes of an issued token."""

    def scopes_of(self, authorization: str) -> frozenset[str]: ...


def granted(request: Request) -> frozenset[str]:
    """The scopes of the request's token. The grant lives in `connections.directory`,
    made when the first token is issued; before that, the default grant."""
    found = getattr(request.app.state, "connections", None)
    if found is None:
        return frozenset((*SCOPES.split(), "read:connections"))
    return cast(Grants, found).scopes_of(request.headers.get("authorization", ""))


def insufficient_scope(scope: str, headers: dict[str, str] | None = None) -> Response:
    return api_error(
        403, f"Insufficient scope, expected any of: {scope}", "insufficient_scope", headers
    )


NOT_WITH_PASSWORD: Final = ("email_verified", "email", "username")
NOT_WITH_EMAIL: Final = ("username",)  # "Cannot update username and email simultaneously"
METADATA: Final = ("app_metadata", "user_metadata")
HISTORY_KEPT: Final = 25  # Auth0 remembers at most 24 previous passwords


def api(handler: Handler, scopes: tuple[str, ...] = ()) -> Callable[[Request], Awaitable[Response]]:
    """`handler` behind the log, the rate limit, faults, the token and `scopes` (all
    of them needed)."""

    async def endpoint(request: Request) -> Response:
        state = emulator(request)
        state.settle_revocations()
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
        have = granted(request)
        missing = next((scope for scope in scopes if scope not in have), None)
        if missing is not None:
            return insufficient_scope(missing, headers)
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
            state.logs.api_write("Update a User", "PATCH", state.logs.user_path(target), body),
            state.logs.event("sce", target, "Change email"),
        ]
    if "email_verified" in body:
        target.email_verified = bool(body["email_verified"])
    if "blocked" in body:
        if not isinstance(body["blocked"], bool):
            return api_error(
                400,
                "Payload validation error: 'Expected type boolean but found type "
                f"{type(body['blocked']).__name__}' on property blocked.",
                "invalid_body",
            )
        # The user attribute: no sign-in at all while true. Brute-force blocks
        # (`user-blocks`) are separate and stay as they are.
        target.admin_blocked = body["blocked"]
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
    if target.connection in state.disabled_connections:
        # The wording is the one reported from a real tenant (issue 16); which status and
        # errorCode go with it is unconfirmed: 400 without a code here.
        return api_error(400, "Cannot change email or password for users in a disabled connection.")
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
    target.failed_logins.clear()
    _merge_metadata(target, body)  # in the same write as the password: all or nothing
    target.last_password_reset = target.updated_at = state.now_iso()
    # No unblock here: Auth0 lifts a block when "the affected user changes their
    # password"; whether an admin's PATCH counts is unconfirmed.
    events = [state.logs.api_write("Update a User", "PATCH", state.logs.user_path(target), body)]
    if state.logs.scp_for_api_password:
        # Off by default: Auth0 documents `sapi` for every Management API write, but
        # no source says it also logs `scp` for a password set this way.
        events.append(state.logs.event("scp", target, "Change password"))
    return JSONResponse(target.public(), background=BackgroundTask(state.logs.deliver, events))


def _blocks(targets: list[EmulatedUser]) -> JSONResponse:
    """One `{identifier, ip, connection}` per blocked IP (the Management API's
    `blocked_for`; `ip` may be omitted under Account Lockout, not emulated)."""
    blocked = [
        {"identifier": t.email, "ip": ip, "connection": t.connection}
        for t in targets
        for ip in t.blocked_ips
    ]
    return JSONResponse({"blocked_for": blocked})


async def user_blocks(request: Request, state: EmulatorState, body: Any) -> Response:
    target = _target(request, state)
    if target is None:
        return not_found()
    if request.method == "GET":
        return _blocks([target])
    target.unblock()  # every IP's block of this user
    return Response(status_code=204)


async def blocks_by_identifier(request: Request, state: EmulatorState, body: Any) -> Response:
    identifier = request.query_params.get("identifier", "")
    targets = [u for u in state.users.values() if identifier and u.email == identifier.lower()]
    if request.method == "GET":
        return _blocks(targets)
    for target in targets:
        target.unblock()
    return Response(status_code=204)


async def revoke(request: Request, state: EmulatorState, body: Any) -> Response:
    kind = request.url.path.rsplit("/", 1)[1]
    if not state.has_endpoint(kind):
        return api_error(403, PLAN_MESSAGE)
    target = _target(request, state)
    if target is None:
        return not_found()
    # 202: accepted, done later (Auth0 revokes asynchronously).
    state.schedule_revocation(
        target.user_id,
        sessions=kind in ("revoke-access", "sessions"),
        refresh_tokens=kind in ("revoke-access", "refresh-tokens"),
    )
    return Response(status_code=202)


def _bad_query(message: str) -> Response:
    return api_error(400, f"Query validation error: '{message}'", "invalid_query_string")


async def device_credentials(request: Request, state: EmulatorState, body: Any) -> Response:
    """`GET /api/v2/device-credentials?user_id&type&page&per_page&include_totals`."""
    query = request.query_params
    found = [
        c
        for c in state.device_credentials.values()
        if query.get("user_id") in (None, c["user_id"])
        and query.get("type") in (None, c["type"])
        and query.get("client_id") in (None, c["client_id"])
    ]
    if query.get("type") not in (None, "public_key", "refresh_token", "rotating_refresh_token"):
        return _bad_query("Object didn't pass validation for format enum")
    try:
        page = int(query.get("page", "0"))
        per_page = int(query.get("per_page", "50"))
    except ValueError:
        return _bad_query("Expected type integer")
    if page < 0 or not 1 <= per_page <= 1000:
        return _bad_query("Value out of range")
    shown = found[page * per_page : (page + 1) * per_page]
    if query.get("include_totals") == "true":
        return JSONResponse(
            {"device_credentials": shown, "start": page * per_page, "limit": per_page,
             "total": len(found)}
        )  # fmt: skip
    return JSONResponse(shown)


async def delete_device_credential(request: Request, state: EmulatorState, body: Any) -> Response:
    if state.device_credentials.pop(request.path_params["credential_id"], None) is None:
        return api_error(
            404, "The device credential does not exist", "inexistent_device_credential"
        )
    return Response(status_code=204)


async def remember_browser(request: Request, state: EmulatorState, body: Any) -> Response:
    target = _target(request, state)
    if target is None:
        return not_found()
    target.remember_browser_invalidated += 1
    return Response(status_code=204)


USER: Final = "/api/v2/users/{user_id}"
READ: Final = ("read:users",)
UPDATE: Final = ("update:users",)
routes = [
    Route("/api/v2/users-by-email", api(users_by_email, READ), methods=["GET"]),
    Route(
        f"{USER}/revoke-access",
        api(revoke, ("delete:sessions", "delete:refresh_tokens")),
        methods=["POST"],
    ),
    Route(f"{USER}/sessions", api(revoke, ("delete:sessions",)), methods=["DELETE"]),
    Route(f"{USER}/refresh-tokens", api(revoke, ("delete:refresh_tokens",)), methods=["DELETE"]),
    Route(
        f"{USER}/multifactor/actions/invalidate-remember-browser",
        api(remember_browser, UPDATE),
        methods=["POST"],
    ),
    Route(USER, api(get_user, READ), methods=["GET"]),
    Route(USER, api(patch_user, UPDATE), methods=["PATCH"]),
    Route("/api/v2/user-blocks", api(blocks_by_identifier, READ), methods=["GET"]),
    Route("/api/v2/user-blocks", api(blocks_by_identifier, UPDATE), methods=["DELETE"]),
    Route("/api/v2/user-blocks/{user_id}", api(user_blocks, READ), methods=["GET"]),
    Route("/api/v2/user-blocks/{user_id}", api(user_blocks, UPDATE), methods=["DELETE"]),
    Route(
        "/api/v2/device-credentials",
        api(device_credentials, ("read:device_credentials",)),
        methods=["GET"],
    ),
    Route(
        "/api/v2/device-credentials/{credential_id}",
        api(delete_device_credential, ("delete:device_credentials",)),
        methods=["DELETE"],
    ),
]
