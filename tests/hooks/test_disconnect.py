"""A client that goes away mid-body ends its request quietly: no 500, no error-level
log line, nothing counted as a server error. The app is driven as ASGI directly, so
the test decides exactly when `receive()` reports the disconnect."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hooks.app import create_app
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from tests.conftest import Clock
from tests.support import post_scope

pytestmark = pytest.mark.anyio

ACTION_SECRET = "action-secret-7f3b2c9d0e1a4b5c6d7e8f90"
LOG_TOKEN = "log-stream-token-0123456789"


@pytest.fixture
async def app(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> AsyncIterator[Starlette]:
    settings = settings_for(
        database_url, AUTH0_ACTION_SECRET=ACTION_SECRET, AUTH0_LOG_STREAM_TOKEN=LOG_TOKEN
    )
    runtime = Runtime.build(settings, now=clock, auth0_transport=httpx.MockTransport(_no_auth0))
    try:
        yield create_app(settings, runtime=runtime)
    finally:
        await runtime.aclose()


def _no_auth0(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"called Auth0: {request.url}")


async def drive(
    app: Starlette, path: str, headers: dict[str, str], first_chunk: bytes
) -> list[dict[str, Any]]:
    """One request whose client sends `first_chunk`, says more follows, then leaves."""
    scope = post_scope(path, [(k.lower().encode(), v.encode()) for k, v in headers.items()])
    incoming: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": first_chunk, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent


def _status(sent: list[dict[str, Any]]) -> int | None:
    starts = [m for m in sent if m["type"] == "http.response.start"]
    return starts[0]["status"] if starts else None


BODY = json.dumps({"type": "password_reset.requested", "data": {"email": "j@example.com"}})
ROUTES = {
    "website": (
        "/hooks/website",
        {
            "content-type": "application/json",
            "content-length": "4096",
            "webhook-id": "msg_1",
            "webhook-timestamp": "1",
            "webhook-signature": "v1,AAAA",
        },
    ),
    "actions": (
        "/hooks/auth0/actions",
        {
            "content-type": "application/json",
            "content-length": "4096",
            "authorization": "Bearer a.b.c",
        },
    ),
    "log stream": (
        "/hooks/auth0",
        {"content-type": "application/json", "content-length": "4096", "authorization": LOG_TOKEN},
    ),
}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_a_disconnect_mid_body_is_quiet(
    app: Starlette, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    path, headers = ROUTES[route]
    runtime: Runtime = app.state.runtime
    with caplog.at_level(logging.DEBUG):
        sent = await drive(app, path, headers, BODY.encode()[:20])
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [(r.name, r.getMessage()) for r in loud]
    assert _status(sent) in (None, 499)
    samples = {
        sample.labels.get("code") or sample.labels.get("outcome"): sample.value
        for metric in runtime.metrics.requests.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }
    assert "500" not in samples


async def test_actions_refuses_a_missing_bearer_before_reading_the_body(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    """No Authorization header: 401 at once, whatever the body is doing."""
    path, headers = ROUTES["actions"]
    headers = {k: v for k, v in headers.items() if k != "authorization"}
    with caplog.at_level(logging.DEBUG):
        sent = await drive(app, path, headers, b"{")
    assert _status(sent) == 401
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert json.loads(body)["error"] == "unauthorized"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
