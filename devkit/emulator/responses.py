"""Shared request and answer helpers: the state behind a request, a request's
body (JSON or form), and errors in the Management API's shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse

from devkit.emulator.state import EmulatorState

__all__ = ["api_error", "body_of", "emulator", "not_found"]


def emulator(request: Request) -> EmulatorState:
    return cast(EmulatorState, request.app.state.emulator)


async def body_of(request: Request) -> Any:
    """The body as JSON or form fields; None when there is none or it does not parse."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return await request.json()
    except ValueError:
        return None


def api_error(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """`{"statusCode", "error", "message"[, "errorCode"]}` as the Management API answers."""
    body: dict[str, Any] = {
        "statusCode": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
    }
    if code:
        body["errorCode"] = code
    return JSONResponse(body, status_code=status, headers=headers)


def not_found() -> JSONResponse:
    return api_error(404, "The user does not exist.", "inexistent_user")
