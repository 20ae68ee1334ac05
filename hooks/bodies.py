"""Reading request bodies with a hard size limit enforced while reading."""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from hooks.errors import HookError

log = logging.getLogger("resetrelay.hooks.bodies")

# nginx's code for "the client closed the request": nobody reads this answer, it only
# names the outcome in the access line and the metrics.
CLIENT_CLOSED = 499


def too_large(limit: int) -> HookError:
    return HookError(413, "payload_too_large", f"The request body is larger than {limit} bytes.")


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refusing anything over `limit` bytes without buffering it.

    A declared Content-Length over the limit is refused before reading; a body
    that lies about its length (or is chunked) is cut off as soon as it passes
    the limit, so an attacker cannot make us hold more than `limit` bytes.
    A client that disconnects mid-body ends the request as a quiet 499.
    """
    _check_declared(request.headers.get("content-length"), limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # The sender went away mid-body: nothing to do and nobody to answer. Not a
        # server error, so no traceback and no 500 (hooks.app would log both).
        log.info("client disconnected", extra={"fields": {"read": size}})
        raise client_closed() from None
    return b"".join(chunks)


def _check_declared(declared: str | None, limit: int) -> None:
    if declared is not None:
        # ASCII digits only: str.isdigit() also takes "²" (a latin-1 header byte),
        # which int() refuses, and a hostile header must be a 400, never a 5xx.
        if not (declared.isascii() and declared.isdigit()):
            raise HookError(400, "invalid_payload", "Content-Length is not a number.")
        if int(declared) > limit:
            raise too_large(limit)


async def read_limited_asgi(declared: str | None, receive: Receive, limit: int) -> bytes:
    """`read_limited` for a handler that speaks ASGI itself (hooks.app's route for
    `/hooks/website`): the same rules and answers, read from `receive` directly
    instead of through a Starlette `Request`."""
    _check_declared(declared, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: as Request.stream()
            log.info("client disconnected", extra={"fields": {"read": size}})
            raise client_closed()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def client_closed() -> HookError:
    return HookError(CLIENT_CLOSED, "client_closed_request", "The client closed the request.")


def require_json(request: Request) -> None:
    require_json_type(request.headers.get("content-type", ""))


def require_json_type(content_type: str) -> None:
    """`require_json` given the Content-Type header's value ("" when absent)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise HookError(415, "unsupported_media_type", "Send the event as application/json.")
