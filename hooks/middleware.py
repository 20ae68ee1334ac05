"""Request ids, one JSON access line per request that needs attention, and every
answer counted by route and status (pure ASGI, no body buffering)."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hooks.errors import internal_error
from resetrelay.logs import new_request_id, request_id

log = logging.getLogger("resetrelay.access")
errors = logging.getLogger("resetrelay.app")
SLOW = 1.0  # seconds
# The label is the route, never the raw path: a path is the client's choice, and
# every distinct label value is a series Prometheus keeps.
_ROUTES = frozenset(
    {
        "/hooks/website",
        "/hooks/auth0",
        "/hooks/auth0/actions",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
)


def route_of(path: str) -> str:
    if path in _ROUTES:
        return path
    return "/preview/mail/{template}" if path.startswith("/preview/mail/") else "other"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The counter's child for each (route, status), looked up once: `labels()`
        # validates and locks on every call, several times the cost of `inc()`. Few
        # keys: routes are the fixed set above, statuses the ones this app answers.
        self._metrics: object = None
        self._answers: dict[tuple[str, int], Any] = {}

    def _count(self, metrics: Any, path: str, status: int) -> None:
        if metrics is not self._metrics:  # another runtime (tests build several)
            self._metrics, self._answers = metrics, {}
        key = (route_of(path), status)
        child = self._answers.get(key)
        if child is None:
            child = self._answers[key] = metrics.answers.labels(key[0], str(status))
        child.inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = new_request_id(incoming)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A bug. Answered and logged here, inside the request's context, so the 500
            # names the request id its log line (with the traceback) carries: outside,
            # Starlette's handler would answer without the id and log without it.
            errors.exception("unhandled error")
            if not answered:
                await internal_error()(scope, receive, send_with_id)
            raise
        finally:
            runtime = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
            if runtime is not None:
                # Every answer, 503s and the ones errors produced included.
                self._count(runtime.metrics, scope["path"], status)
            elapsed = time.perf_counter() - started
            # The platform's router logs every request; we log what needs attention
            # (errors, slow answers) at INFO and the rest at DEBUG, which keeps the
            # hot path cheap. The path only: query strings may carry tickets.
            level = logging.INFO if status >= 400 or elapsed > SLOW else logging.DEBUG
            if log.isEnabledFor(level):
                fields = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                }
                log.log(level, "request", extra={"fields": fields})
            request_id.reset(token)
