"""Operations routes: liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hooks.openapi import document

if TYPE_CHECKING:
    from resetrelay.runtime import Runtime


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    if await runtime.db.ping():
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"error": "storage_unavailable", "message": "The database is not answering."},
        status_code=503,
        headers={"retry-after": "5"},
    )


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    # Counters are still worth serving when the database is down; gauges keep their value.
    await runtime.housekeeping.refresh_gauges()
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return JSONResponse(document())
