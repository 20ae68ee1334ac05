"""The baseline: a bare Starlette JSON echo, served with the same uvicorn settings."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    return JSONResponse(await request.json(), status_code=202)


app = Starlette(routes=[Route("/hooks/website", echo, methods=["POST"])])
