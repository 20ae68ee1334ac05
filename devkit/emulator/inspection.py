"""`/__emulator/*`: what tests and the demo use to look inside and to steer.
None of this exists on Auth0.

    GET    /__emulator/requests         the request log (passwords and secrets redacted)
    POST   /__emulator/reset            clear the request log (DELETE /__emulator/requests too)
    POST   /__emulator/users            add a user: a users-file object
    GET    /__emulator/users/{id}       a user plus blocked, password_changed, sessions_revoked, ...
    POST   /__emulator/blocks/{id}      block a user from an IP, as brute-force protection
                                        would: {"ip"?} (default 127.0.0.1)
    POST   /__emulator/faults           queue a fault: {"path_prefix", "status", "times"?,
                                        "method"?, "reset_after"?, "retry_after"?};
                                        {"clear": true} (or DELETE) drops all faults
    POST   /__emulator/tokens/revoke    forget issued tokens: the next API call gets a 401
    POST   /__emulator/logs             stream one log event: {"type", "user_id"?, "description"?,
                                        "date"?, "ip"?}
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from devkit.emulator.responses import body_of, emulator
from devkit.emulator.state import Fault

__all__ = ["routes"]


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": "bad_request", "message": message}, 400)


def _missing() -> JSONResponse:
    return JSONResponse({"error": "not_found", "message": "No such user."}, 404)


async def home(request: Request) -> Response:
    return PlainTextResponse(
        "resetrelay's Auth0 emulator: a local stand-in for development and tests. "
        "It is NOT Auth0.\n"
    )


async def requests(request: Request) -> Response:
    state = emulator(request)
    if request.method == "DELETE":
        state.reset()
        return Response(status_code=204)
    return JSONResponse(state.requests())


async def reset(request: Request) -> Response:
    emulator(request).reset()
    return Response(status_code=204)


async def add_user(request: Request) -> Response:
    spec = await body_of(request)
    if not isinstance(spec, dict):
        return _bad("Send a JSON object.")
    try:
        user = emulator(request).add_user(spec)
    except ValueError as exc:
        return _bad(str(exc))
    return JSONResponse(user.inspect(), 201)


async def inspect_user(request: Request) -> Response:
    found = emulator(request).inspect_user(request.path_params["user_id"])
    return _missing() if found is None else JSONResponse(found)


async def block(request: Request) -> Response:
    spec = await body_of(request)
    ip = spec.get("ip") if isinstance(spec, dict) else None
    state = emulator(request)
    user_id = request.path_params["user_id"]
    found = state.block(user_id, ip) if isinstance(ip, str) and ip else state.block(user_id)
    return _missing() if found is None else JSONResponse(found)


async def faults(request: Request) -> Response:
    state = emulator(request)
    spec: Any = None if request.method == "DELETE" else await body_of(request)
    if request.method == "DELETE" or (isinstance(spec, dict) and spec.get("clear")):
        state.clear_faults()
        return Response(status_code=204)
    if not isinstance(spec, dict):
        return _bad("Send a JSON object.")
    try:
        state.add_fault(Fault.from_json(spec))
    except (KeyError, TypeError, ValueError):
        return _bad('A fault needs "path_prefix" and a numeric "status".')
    return JSONResponse({"faults": len(state.faults)}, 201)


async def revoke_tokens(request: Request) -> Response:
    emulator(request).revoke_tokens()
    return Response(status_code=204)


async def inject_log(request: Request) -> Response:
    state = emulator(request)
    spec = await body_of(request)
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        return _bad('A log event needs a "type".')
    target = state.user(str(spec.get("user_id", "")))
    ip = spec.get("ip")
    description = str(spec.get("description", "injected"))
    if isinstance(ip, str) and ip:
        event = state.logs.event(spec["type"], target, description, ip=ip)
    else:
        event = state.logs.event(spec["type"], target, description)
    if "date" in spec:
        event["data"]["date"] = spec["date"]
    await state.logs.deliver([event])
    return JSONResponse(event, 201)


routes = [
    Route("/", home),
    Route("/__emulator/requests", requests, methods=["GET", "DELETE"]),
    Route("/__emulator/reset", reset, methods=["POST"]),
    Route("/__emulator/users", add_user, methods=["POST"]),
    Route("/__emulator/users/{user_id:path}", inspect_user, methods=["GET"]),
    Route("/__emulator/blocks/{user_id:path}", block, methods=["POST"]),
    Route("/__emulator/faults", faults, methods=["POST", "DELETE"]),
    Route("/__emulator/tokens/revoke", revoke_tokens, methods=["POST"]),
    Route("/__emulator/logs", inject_log, methods=["POST"]),
]
