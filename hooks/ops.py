"""Operations routes: liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hooks.errors import HookError, unauthorized
from hooks.openapi import document

if TYPE_CHECKING:
    from resetrelay.runtime import Runtime


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    problems = await runtime.readiness.problems()
    # Ready, yet something after a reset is not done (a follow-up lacks a scope): said,
    # so "ready" never reads as "all is well".
    warnings = await runtime.readiness.warnings() if not problems else []
    if not problems:
        return JSONResponse({"status": "ready", **({"warnings": warnings} if warnings else {})})
    code = "storage_unavailable" if "not answering" in problems[0] else "not_ready"
    return JSONResponse(
        {"error": code, "message": "; ".join(problems).capitalize() + ".", "problems": problems},
        status_code=503,
        headers={"retry-after": "5"},
    )


def _loopback(request: Request) -> bool:
    # The direct peer (uvicorn runs without proxy headers): a platform's router never
    # is loopback, so without a token only the machine itself can read the counters.
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    token = runtime.settings.metrics_token.reveal()
    if token:
        # Constant time: the comparison's duration says nothing of how close a guess was.
        presented = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(presented, f"Bearer {token}".encode()):
            raise unauthorized("The metrics need Authorization: Bearer <METRICS_TOKEN>.")
    elif not _loopback(request):
        # Counters move when a reset mail goes out, so they must not be public: they
        # would tell anyone whether an address has an account.
        raise HookError(
            403, "forbidden", "Metrics answer loopback clients only unless METRICS_TOKEN is set."
        )
    # Counters are still worth serving when the database is down; gauges keep their value.
    await runtime.housekeeping.refresh_gauges()
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return JSONResponse(document())
