"""The Starlette application: `create_app(settings)`.

The app owns a `Runtime` (database, clients, worker) for its lifetime; tests
hand in one built with their own seams. Failures are mapped to the contract's
JSON error body here, at one place; nothing below answers HTTP.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hooks import ops
from hooks.actions import actions
from hooks.auth0 import log_stream
from hooks.bodies import read_limited_asgi
from hooks.errors import HookError, internal_error, json_response
from hooks.middleware import RequestIdMiddleware
from hooks.preview import preview_mail
from hooks.website import MAX_BODY, answer, headers_of, website
from resetrelay.readiness import run_inline_worker
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from storage.database import StorageError

log = logging.getLogger("resetrelay.app")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _hook_error(request: Request, exc: Exception) -> Response:
    return cast(HookError, exc).response()  # Starlette dispatches by type


async def _http_error(request: Request, exc: Exception) -> Response:
    exc = cast(HTTPException, exc)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return json_response(
        exc.status_code,
        {"error": code, "message": str(exc.detail)},
        headers=dict(exc.headers or {}),
    )


async def _storage_error(request: Request, exc: Exception) -> Response:
    # The cause's class (the driver's, e.g. UndefinedFunction when the schema is
    # behind the code) says what to fix; never its message, which may quote data.
    cause = exc.__cause__
    fields = {"error": type(exc).__name__, "cause": cause and type(cause).__name__}
    log.warning("storage unavailable", extra={"fields": fields})
    return json_response(
        503,
        {"error": "storage_unavailable", "message": "The service cannot store events right now."},
        headers={"retry-after": "5"},
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    # Logged by RequestIdMiddleware, which answers first (with the request id): this
    # answer is sent only where that middleware does not run.
    return internal_error()


async def _website(scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /hooks/website` as plain ASGI, inside RequestIdMiddleware: what
    Starlette's router, Request and Response would do for it, without their
    per-request layers (the website's events are the service's hot path).
    HookError and StorageError become the same answers the handlers above give."""
    headers = headers_of(scope["headers"])

    async def read() -> bytes:
        return await read_limited_asgi(headers.get("content-length"), receive, MAX_BODY)

    try:
        response = await answer(scope["app"].state.runtime, headers, read)
    except HookError as exc:
        response = exc.response()
    except StorageError as exc:
        response = await _storage_error(Request(scope), exc)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


class Service(Starlette):
    """The app, with `POST /hooks/website` answered before Starlette's middleware
    and router (`_website`); every other request takes the usual way. The route
    stays in the router too: other methods get its 405, and an app mounted under a
    root path is served by it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast = RequestIdMiddleware(_website)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/hooks/website"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            # RequestIdMiddleware does what Starlette's ServerErrorMiddleware would:
            # an unexpected error is logged, answered 500 if nothing was sent, raised on.
            await self._fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> Starlette:
    owns_runtime = runtime is None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt = runtime or Runtime.build(settings)
        app.state.runtime = rt
        if settings.auto_migrate:
            await rt.migrate()
        if owns_runtime:
            # Everything made at start-up (modules, the runtime, SQLAlchemy's and
            # pydantic's caches) moves out of the collector's generations, so a full
            # collection under load walks only what requests made since.
            gc.collect()
            gc.freeze()
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            if settings.inline_worker:
                tg.start_soon(run_inline_worker, rt.worker, rt.readiness, stop)
            try:
                yield
            finally:
                stop.set()
        if owns_runtime:
            await rt.aclose()

    routes = [
        Route("/hooks/website", website, methods=["POST"]),
        Route("/hooks/auth0", log_stream, methods=["POST"]),
        Route("/hooks/auth0/actions", actions, methods=["POST"]),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route("/openapi.json", ops.openapi, methods=["GET"]),
    ]
    if settings.dev_mode:
        routes.append(Route("/preview/mail/{template}", preview_mail, methods=["GET"]))
    app = Service(
        routes=routes,
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={
            HookError: _hook_error,
            HTTPException: _http_error,
            StorageError: _storage_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    if runtime is not None:
        app.state.runtime = runtime
    return app


def create_metrics_app(runtime: Runtime) -> Starlette:
    """`/metrics` (and `/healthz`) alone, for a `resetrelay worker` with METRICS_PORT:
    the worker's counters (mail, tickets, Auth0 calls, rate limits) live in its own
    process, which serves nothing else. Same access rules as the web's `/metrics`."""
    app = Starlette(
        routes=[
            Route("/metrics", ops.metrics, methods=["GET"]),
            Route("/healthz", ops.healthz, methods=["GET"]),
        ],
        exception_handlers={HookError: _hook_error, HTTPException: _http_error},
    )
    app.state.runtime = runtime
    return app
