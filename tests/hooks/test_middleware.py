"""hooks.middleware.RequestIdMiddleware: the id it honours or makes, the header it
adds, the context it sets for the request only, and the access line it logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from hooks.middleware import RequestIdMiddleware
from resetrelay.logs import request_id

pytestmark = pytest.mark.anyio


async def inner(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers the request id it sees; /missing is a 404, /boom raises."""
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": request_id.get().encode()})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=RequestIdMiddleware(inner))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_an_id_is_made_and_seen_by_the_app(client: httpx.AsyncClient) -> None:
    first, second = await client.get("/"), await client.get("/")
    assert first.headers["x-request-id"] == first.text != "-"
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert request_id.get() == "-"  # reset once the request is over


async def test_a_plausible_incoming_id_is_honoured(client: httpx.AsyncClient) -> None:
    answer = await client.get("/", headers={"x-request-id": "abc-123"})
    assert answer.headers.get_list("x-request-id") == ["abc-123"]
    assert answer.text == "abc-123"


@pytest.mark.parametrize("incoming", [b"x" * 201, b"caf\xe9", b"tab\there"])
async def test_an_implausible_incoming_id_is_replaced(
    client: httpx.AsyncClient, incoming: bytes
) -> None:
    answer = await client.get("/", headers={b"x-request-id": incoming})
    assert answer.headers["x-request-id"].encode() != incoming
    assert answer.headers["x-request-id"] == answer.text


async def test_errors_are_logged_at_info_without_the_query(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resetrelay.access")
    await client.get("/", params={"ticket": "secret"})
    await client.get("/missing", params={"ticket": "secret"})
    ok, missing = caplog.records
    assert ok.levelno == logging.DEBUG
    assert missing.levelno == logging.INFO
    assert missing.fields["path"] == "/missing"  # type: ignore[attr-defined]
    assert missing.fields["status"] == 404  # type: ignore[attr-defined]
    assert missing.fields["method"] == "GET"  # type: ignore[attr-defined]
    assert "secret" not in caplog.text


async def test_an_app_that_raises_is_logged_as_a_500(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resetrelay.access")
    with pytest.raises(RuntimeError, match="boom"):
        await client.get("/boom")
    (record,) = [r for r in caplog.records if r.name == "resetrelay.access"]
    (bug,) = [r for r in caplog.records if r.name == "resetrelay.app"]
    assert bug.getMessage() == "unhandled error" and bug.exc_info is not None
    assert record.levelno == logging.INFO
    assert record.fields["status"] == 500  # type: ignore[attr-defined]
    assert request_id.get() == "-"


async def test_other_scopes_pass_through_untouched() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    scope: Scope = {"type": "lifespan"}
    await RequestIdMiddleware(app)(scope, receive, send)
    assert seen == [scope]
