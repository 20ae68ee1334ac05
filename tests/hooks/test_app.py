"""`Service`'s plain-ASGI answer to `POST /hooks/website` answers exactly as the routed
Starlette handler does (status, headers, body) for hostile deliveries: the same ASGI
messages are driven through both, the routed one by mounting the app under a root path
(which `Service` leaves to Starlette)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hooks.app import create_app
from resetrelay.logs import JsonFormatter
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from resetrelay.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Clock
from tests.support import post_scope

pytestmark = pytest.mark.anyio
KEY = __import__("base64").b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
Headers = list[tuple[bytes, bytes]]


def _no_auth0(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"called Auth0: {request.url}")


@pytest.fixture
async def app(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> AsyncIterator[Starlette]:
    settings = settings_for(database_url)
    runtime = Runtime.build(settings, now=clock, auth0_transport=httpx.MockTransport(_no_auth0))
    try:
        yield create_app(settings, runtime=runtime)
    finally:
        await runtime.aclose()


async def drive(
    app: Starlette, headers: Headers, chunks: list[bytes], *, root: str = ""
) -> tuple[int | None, list[tuple[bytes, bytes]], bytes]:
    """One POST to /hooks/website (under `root`): status, headers but the request id, body."""
    scope = post_scope("/hooks/website", headers, root=root, query=b"ticket=x")
    incoming: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    kept = sorted((k, v) for k, v in starts[0]["headers"] if k != b"x-request-id")
    return starts[0]["status"], kept, body


BODY = json.dumps({"type": "password_reset.requested", "data": {"email": "j@example.com"}}).encode()
JSON: Headers = [(b"content-type", b"application/json")]
BAD_SIG: Headers = [
    (b"webhook-id", b"msg_x"),
    (b"webhook-timestamp", b"1"),
    (b"webhook-signature", b"v1,AAAA"),
]
CASES: dict[str, tuple[Headers, list[bytes], int]] = {
    # Chunked (no Content-Length) past 64 KiB: cut off while reading.
    "chunked over the limit": (JSON + BAD_SIG, [b"x" * 40_000] * 2, 413),
    "declared over the limit": (JSON + BAD_SIG + [(b"content-length", b"70000")], [BODY], 413),
    "negative length": (JSON + BAD_SIG + [(b"content-length", b"-1")], [BODY], 400),
    "latin-1 digit length": (JSON + BAD_SIG + [(b"content-length", b"\xb2")], [BODY], 400),
    "non-UTF-8 webhook-id": (
        [*JSON, (b"webhook-id", b"\xff\xfe"), *BAD_SIG[1:]],
        [BODY],
        401,
    ),
    "non-UTF-8 media type": ([(b"content-type", b"application/\xffjson")], [BODY], 415),
    # The first of repeated headers counts, on both paths.
    "a bad signature header first": (
        [*JSON, (b"webhook-signature", b"v1,AAAA"), *BAD_SIG],
        [BODY],
        401,
    ),
    "no body at all": (JSON + BAD_SIG, [b""], 401),
    "gone before the body": (JSON + BAD_SIG, [], 499),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_the_fast_path_answers_as_the_routed_handler(app: Starlette, case: str) -> None:
    headers, chunks, status = CASES[case]
    fast = await drive(app, headers, chunks)
    routed = await drive(app, headers, chunks, root="/mounted")
    assert fast == routed
    assert fast[0] == status
    assert (b"content-type", b"application/json") in fast[1]
    assert set(json.loads(fast[2])) == {"error", "message"}


async def test_a_signed_delivery_is_the_same_202(app: Starlette, clock: Clock) -> None:
    answers = []
    for root, event_id in (("", "msg_fast"), ("/mounted", "msg_routed")):
        signed = sign(KEY, event_id, int(clock().timestamp()), BODY)
        headers = JSON + [(k.encode(), v.encode()) for k, v in signed.items()]
        answers.append(await drive(app, headers, [BODY], root=root))
    assert answers[0] == answers[1]
    assert answers[0][0] == 202


class _Keep:
    def __init__(self, sent: list[MutableMapping[str, Any]]) -> None:
        self.sent = sent

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)


class _Broken:
    """In place of the runtime's `requests`: a bug in the flow."""

    async def submit(self, *args: object) -> None:
        raise RuntimeError("a bug")


async def test_a_bug_is_a_clean_500_naming_the_request_id_its_log_line_has(
    app: Starlette, clock: Clock
) -> None:
    app.state.runtime.requests = _Broken()
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())  # formats at emit: the request's context
    logging.getLogger("resetrelay.app").addHandler(handler)
    try:
        for root in ("", "/mounted"):  # the plain-ASGI path and the routed one
            signed = sign(KEY, f"msg_bug{root}", int(clock().timestamp()), BODY)
            headers = [*JSON, *((k.encode(), v.encode()) for k, v in signed.items())]
            sent: list[MutableMapping[str, Any]] = []

            async def receive() -> MutableMapping[str, Any]:
                return {"type": "http.request", "body": BODY, "more_body": False}

            send = _Keep(sent)

            scope = post_scope("/hooks/website", headers, root=root)
            with pytest.raises(RuntimeError, match="a bug"):  # raised on, as Starlette does
                await app(scope, receive, send)
            start, body = sent  # one answer: nothing sent twice
            assert start["status"] == 500
            assert body["body"] == (
                b'{"error":"internal_error","message":"Something went wrong on our side."}'
            )
            rid = dict(start["headers"])[b"x-request-id"].decode()
            (line,) = [json.loads(x) for x in lines.getvalue().splitlines()]
            assert line["msg"] == "unhandled error" and line["exc_type"] == "RuntimeError"
            assert line["request_id"] == rid != "-"
            lines.truncate(0)
            lines.seek(0)
    finally:
        logging.getLogger("resetrelay.app").removeHandler(handler)
