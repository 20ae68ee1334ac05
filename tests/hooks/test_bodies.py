"""hooks.bodies through a tiny Starlette app: the size limit while reading, and the
JSON media types accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hooks.bodies import read_limited, require_json
from hooks.errors import HookError

pytestmark = pytest.mark.anyio
LIMIT = 16


async def echo(request: Request) -> Response:
    if request.query_params.get("json"):
        require_json(request)
    return Response(await read_limited(request, LIMIT))


async def hook_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HookError)
    return exc.response()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(
        routes=[Route("/", echo, methods=["POST"])], exception_handlers={HookError: hook_error}
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_body_up_to_the_limit_is_read_whole(client: httpx.AsyncClient) -> None:
    answer = await client.post("/", content=b"x" * LIMIT)
    assert answer.status_code == 200
    assert answer.content == b"x" * LIMIT


async def test_a_declared_length_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post("/", content=b"x" * (LIMIT + 1))
    assert answer.status_code == 413
    assert answer.json()["error"] == "payload_too_large"
    assert str(LIMIT) in answer.json()["message"]


async def test_a_chunked_body_is_cut_off_past_the_limit(client: httpx.AsyncClient) -> None:
    answer = await client.post("/", content=chunks(b"x" * 10, b"x" * 10))
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413


async def test_a_body_longer_than_its_declared_length_is_cut_off(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/", content=chunks(b"x" * 30), headers={"content-length": "3"})
    assert answer.request.headers["content-length"] == "3"
    assert answer.status_code == 413


@pytest.mark.parametrize("declared", ["abc", "-1", "+5", "1e3"])
async def test_a_content_length_that_is_not_a_number_is_a_400(
    client: httpx.AsyncClient, declared: str
) -> None:
    answer = await client.post("/", content=chunks(b"{}"), headers={"content-length": declared})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_payload"


async def test_a_superscript_digit_content_length_is_a_400(client: httpx.AsyncClient) -> None:
    # "²" (latin-1 0xB2) passes str.isdigit() but not int(): it must be refused as a
    # malformed length, not raise past the check.
    answer = await client.post("/", content=chunks(b"{}"), headers={b"content-length": b"\xb2"})
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "media_type",
    ["application/json", "Application/JSON; charset=utf-8", "application/cloudevents+json"],
)
async def test_json_media_types_are_accepted(client: httpx.AsyncClient, media_type: str) -> None:
    answer = await client.post("/?json=1", content=b"{}", headers={"content-type": media_type})
    assert answer.status_code == 200


@pytest.mark.parametrize("media_type", ["", "text/plain", "application/jsonx", "text/x+json"])
async def test_other_media_types_are_a_415(client: httpx.AsyncClient, media_type: str) -> None:
    answer = await client.post("/?json=1", content=b"{}", headers={"content-type": media_type})
    assert answer.status_code == 415
    assert answer.json()["error"] == "unsupported_media_type"
