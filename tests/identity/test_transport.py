"""identity.transport against real sockets on loopback: a scripted HTTP/1.1 server
(asyncio streams) answers each connection as the test says, so both the good
answers and the broken ones (hang-ups, silence, garbage) are what the transport
meets on the wire. What matters most is the line between "never sent" and
"maybe sent": Auth0Client repeats a PATCH only after the first."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from identity.client import _NOT_SENT
from identity.transport import AiohttpTransport

pytestmark = pytest.mark.anyio

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
TIMEOUT = httpx.Timeout(5.0)


class Seen:
    """What the server read: each request's head and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.connections = 0


Script = Callable[[Reader, Writer, Seen], Awaitable[None]]


async def read_request(reader: Reader, seen: Seen) -> bool:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return False
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    seen.requests.append((lines[0], headers, body))
    return True


def answer(status: str, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@asynccontextmanager
async def scripted(
    script: Callable[[asyncio.StreamReader, asyncio.StreamWriter, Seen], Awaitable[None]],
) -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()

    async def on_connection(reader: Reader, writer: Writer) -> None:
        seen.connections += 1
        try:
            await script(reader, writer, seen)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()


def json_server(status: str = "200 OK", body: object = None, *extra: str) -> Script:
    async def script(reader: Reader, writer: Writer, seen: Seen) -> None:
        while await read_request(reader, seen):
            payload = json.dumps(body if body is not None else {"ok": True}).encode()
            writer.write(answer(status, payload, "content-type: application/json", *extra))
            await writer.drain()

    return script


def replying(raw: bytes) -> Script:
    """Reads one request, writes `raw` (whatever it is), then hangs up."""

    async def script(reader: Reader, writer: Writer, seen: Seen) -> None:
        await read_request(reader, seen)
        writer.write(raw)
        await writer.drain()

    return script


def client_for(
    url: str, transport: AiohttpTransport, timeout: httpx.Timeout = TIMEOUT
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url, transport=transport, timeout=timeout, follow_redirects=False
    )


# -- what a good answer looks like -------------------------------------------------


async def test_a_request_and_its_answer_cross_as_httpx_would_send_and_read_them() -> None:
    script = json_server("201 Created", {"user_id": "auth0|1"}, "x-ratelimit-remaining: 9")
    async with scripted(script) as (url, seen), client_for(url, AiohttpTransport()) as http:
        response = await http.patch(
            "/api/v2/users/auth0%7C1",
            json={"password": "x"},
            headers={"authorization": "Bearer t", "user-agent": "resetrelay"},
        )
    assert response.status_code == 201
    assert response.json() == {"user_id": "auth0|1"}
    assert response.headers["x-ratelimit-remaining"] == "9"
    assert response.reason_phrase == "Created"
    line, headers, body = seen.requests[0]
    # The path as httpx encoded it (a user id's `|` stays %7C), httpx's headers only.
    assert line == "PATCH /api/v2/users/auth0%7C1 HTTP/1.1"
    assert headers["authorization"] == "Bearer t"
    assert headers["user-agent"] == "resetrelay"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"password": "x"}
    assert "cookie" not in headers


async def test_the_query_string_is_sent_as_httpx_encoded_it() -> None:
    async with (
        scripted(json_server(body=[])) as (url, seen),
        client_for(url, AiohttpTransport()) as http,
    ):
        await http.get("/api/v2/users-by-email", params={"email": "a+b@example.com"})
    assert seen.requests[0][0] == "GET /api/v2/users-by-email?email=a%2Bb%40example.com HTTP/1.1"


async def test_connections_are_kept_and_reused() -> None:
    async with scripted(json_server()) as (url, seen), client_for(url, AiohttpTransport()) as http:
        for _ in range(5):
            assert (await http.get("/x")).status_code == 200
    assert len(seen.requests) == 5
    assert seen.connections == 1


async def test_a_gzip_body_is_decoded_once() -> None:
    packed = gzip.compress(json.dumps({"users": [1, 2]}).encode())

    script = replying(answer("200 OK", packed, "content-encoding: gzip"))
    async with scripted(script) as (url, _), client_for(url, AiohttpTransport()) as http:
        response = await http.get("/x")
    assert response.json() == {"users": [1, 2]}


async def test_a_redirect_is_handed_back_not_followed() -> None:
    script = json_server("302 Found", {}, "location: http://127.0.0.1:9/elsewhere")
    async with scripted(script) as (url, seen), client_for(url, AiohttpTransport()) as http:
        response = await http.get("/x")
    assert response.status_code == 302
    assert len(seen.requests) == 1


async def test_cookies_the_server_sets_are_not_replayed_by_the_transport() -> None:
    async with scripted(json_server("200 OK", {}, "set-cookie: did=abc; Path=/")) as (url, seen):
        transport = AiohttpTransport()
        for _ in range(2):  # a fresh httpx client each time: only the transport could keep it
            async with client_for(url, transport) as http:
                await http.get("/x")
        await transport.aclose()
    assert all("cookie" not in headers for _, headers, _ in seen.requests)


# -- never sent: safe to repeat -------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once the socket is closed


async def test_a_refused_connection_is_a_connect_error_that_was_never_sent() -> None:
    async with client_for(f"http://127.0.0.1:{closed_port()}", AiohttpTransport()) as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get("/x")
    assert isinstance(caught.value, _NOT_SENT)
    assert caught.value.request.url.path == "/x"


async def test_no_free_connection_in_time_is_a_connect_timeout_that_was_never_sent() -> None:
    release = asyncio.Event()

    async def script(reader: Reader, writer: Writer, seen: Seen) -> None:
        await read_request(reader, seen)
        await release.wait()  # holds the only connection

    async with scripted(script) as (url, seen):
        transport = AiohttpTransport(max_connections=1)
        limits = httpx.Timeout(5.0, pool=0.2, connect=0.2)
        async with client_for(url, transport, limits) as http:
            first = asyncio.ensure_future(http.get("/first"))
            while not seen.requests:
                await asyncio.sleep(0.01)
            with pytest.raises(httpx.TimeoutException) as caught:
                await http.get("/second")
            release.set()
            first.cancel()
    assert isinstance(caught.value, _NOT_SENT)
    assert [r[0].split()[1] for r in seen.requests] == ["/first"]


# -- maybe sent: never repeated blindly ----------------------------------------------


async def test_a_hang_up_after_the_request_is_maybe_sent() -> None:
    async def script(reader: Reader, writer: Writer, seen: Seen) -> None:
        await read_request(reader, seen)  # read it, then hang up without a word

    async with scripted(script) as (url, seen), client_for(url, AiohttpTransport()) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.patch("/api/v2/users/u", json={"password": "x"})
    assert len(seen.requests) == 1
    assert not isinstance(caught.value, _NOT_SENT)
    assert isinstance(caught.value, httpx.RemoteProtocolError)


async def test_silence_after_the_request_is_a_read_timeout() -> None:
    async def script(reader: Reader, writer: Writer, seen: Seen) -> None:
        await read_request(reader, seen)
        await asyncio.sleep(5)

    quick = httpx.Timeout(0.2)
    async with scripted(script) as (url, _), client_for(url, AiohttpTransport(), quick) as http:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await http.get("/x")
    assert not isinstance(caught.value, _NOT_SENT)


async def test_a_body_cut_short_is_a_read_error() -> None:
    script = replying(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"users":')
    async with scripted(script) as (url, _), client_for(url, AiohttpTransport()) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.get("/x")
    assert not isinstance(caught.value, _NOT_SENT)


@pytest.mark.parametrize(
    "garbage",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n",
        b"\x00" * 64 + b"\r\n\r\n",
    ],
)
async def test_a_malformed_answer_is_a_protocol_error_and_names_no_url(garbage: bytes) -> None:
    script = replying(garbage)
    async with scripted(script) as (url, _), client_for(url, AiohttpTransport()) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.get("/api/v2/users-by-email", params={"email": "jane@example.com"})
    assert not isinstance(caught.value, _NOT_SENT)
    # The message goes to logs: it must not carry the URL, which can carry an address.
    assert "jane" not in str(caught.value)


async def test_an_oversized_header_block_is_refused_not_swallowed() -> None:
    script = replying(b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 100_000 + b"\r\n\r\n")
    async with scripted(script) as (url, _), client_for(url, AiohttpTransport()) as http:
        with pytest.raises(httpx.TransportError):
            await http.get("/x")


# -- its session's life ---------------------------------------------------------------


async def test_after_aclose_the_next_call_opens_a_new_session() -> None:
    async with scripted(json_server()) as (url, seen):
        transport = AiohttpTransport()
        http = client_for(url, transport)
        await http.get("/x")
        await transport.aclose()
        await http.get("/y")
        await http.aclose()
    assert seen.connections == 2


# -- what review found -----------------------------------------------------------------


async def test_a_failure_carries_no_url_address_or_token_anywhere_in_its_traceback() -> None:
    script = replying(b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n")
    async with scripted(script) as (url, _), client_for(url, AiohttpTransport()) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.get(
                "/api/v2/users-by-email",
                params={"email": "jane@example.com"},
                headers={"authorization": "Bearer s3cr3t-token"},
            )
    # What a logged exception prints: the error and every cause and context behind it.
    printed = "".join(traceback.format_exception(caught.value))
    for secret in ("jane", "example.com", "s3cr3t", "users-by-email"):
        assert secret not in printed


async def test_a_header_aiohttp_refuses_is_a_local_protocol_error_before_anything_is_sent() -> None:
    async with scripted(json_server()) as (url, seen), client_for(url, AiohttpTransport()) as http:
        with pytest.raises(httpx.LocalProtocolError):
            await http.get("/x", headers={"authorization": "Bearer a\r\nx-injected: 1"})
    assert seen.requests == []


async def test_a_request_is_sent_once_even_when_a_kept_alive_connection_dies_under_it() -> None:
    async def script(reader: Reader, writer: Writer, seen: Seen) -> None:
        await read_request(reader, seen)
        writer.write(answer("200 OK", b"{}"))  # the first answer keeps the connection
        await writer.drain()
        await read_request(reader, seen)  # the second request: hang up unanswered

    async with scripted(script) as (url, seen), client_for(url, AiohttpTransport()) as http:
        assert (await http.get("/first")).status_code == 200
        with pytest.raises(httpx.TransportError) as caught:
            await http.get("/second")  # a GET: aiohttp alone would have sent it again
    assert not isinstance(caught.value, _NOT_SENT)
    assert [r[0].split()[1] for r in seen.requests] == ["/first", "/second"]


async def test_an_empty_post_gets_no_content_type_of_aiohttps_making() -> None:
    async with scripted(json_server()) as (url, seen), client_for(url, AiohttpTransport()) as http:
        response = await http.post(
            "/api/v2/users/u/multifactor/actions/invalidate-remember-browser"
        )
    assert response.extensions["http_version"] == b"HTTP/1.1"
    headers = seen.requests[0][1]
    assert "content-type" not in headers
    assert headers.get("content-length", "0") == "0"
