"""Errors answered to callers at the HTTP boundary, before the reset flow runs;
a single handler (hooks.app) turns them into the contract's body
`{"error": code, "message": sentence, ...}`.

HookError(status, code, message)
 ├── 400 invalid_payload
 ├── 401 invalid_signature / unauthorized
 ├── 404 not_found        405 method_not_allowed
 ├── 413 payload_too_large
 ├── 415 unsupported_media_type
 ├── 422 unknown_event_type
 └── 503 storage_unavailable (+ Retry-After; from StorageError, in hooks.app)

The flow's own outcomes (409 ticket_busy, 410 ticket_invalid, 422
password_rejected, 503 upstream_unavailable) are answers, not errors: they are
rendered in hooks.answers.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class HookError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}

    def response(self) -> Response:
        return json_response(self.status, self.body(), headers=self.headers)


def json_response(
    status: int, body: dict[str, Any] | str, *, headers: dict[str, str] | None = None
) -> Response:
    content = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return Response(content, status, headers=headers, media_type="application/json")


def internal_error() -> Response:
    """The answer to a bug: the contract's error body, never a traceback."""
    return json_response(
        500, {"error": "internal_error", "message": "Something went wrong on our side."}
    )


def invalid_payload(message: str) -> HookError:
    return HookError(400, "invalid_payload", message)


# Factories, not shared instances: a module-level exception raised by concurrent
# requests would carry one request's traceback and context into the next.
def invalid_signature() -> HookError:
    return HookError(
        401, "invalid_signature", "The webhook signature is missing, invalid or too old."
    )


def unauthorized(message: str) -> HookError:
    return HookError(401, "unauthorized", message)


def not_configured() -> HookError:
    """An optional route whose secret is unset answers as if it did not exist."""
    return HookError(404, "not_found", "Not Found")
