"""The range API client on its own: what it sends, what it reads, and every way a
hostile or broken server's answer becomes a RangeError (httpx MockTransport: each
answer is exactly what a server could send)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from resetrelay.breaches import MAX_BODY, SEEN_BANDS, BreachCorpus, RangeError, band, range_prefix

pytestmark = pytest.mark.anyio

PASSWORD = "Passw0rd!"
DIGEST = hashlib.sha1(PASSWORD.encode()).hexdigest().upper()
PREFIX, SUFFIX = DIGEST[:5], DIGEST[5:]

Handler = Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]


def corpus(handler: Handler, timeout: float = 2.0) -> BreachCorpus:
    return BreachCorpus("https://range.test/api/", timeout, httpx.MockTransport(handler))


def answering(
    body: bytes | str, status: int = 200, headers: dict[str, str] | None = None
) -> Handler:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        content = body.encode() if isinstance(body, str) else body
        return httpx.Response(status, content=content, headers=headers or {})

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def test_the_prefix_is_the_first_five_digits_of_the_upper_case_sha1() -> None:
    assert range_prefix(PASSWORD) == (PREFIX, SUFFIX)
    assert len(PREFIX) == 5 and len(SUFFIX) == 35 and DIGEST.upper() == DIGEST


@pytest.mark.parametrize(
    ("count", "label"),
    [(1, "1-9"), (9, "1-9"), (10, "10-99"), (99, "10-99"), (100, "100-999"), (10**6, "1000+")],
)
def test_bands(count: int, label: str) -> None:
    assert band(count) == label and label in SEEN_BANDS


async def test_only_the_prefix_is_sent_with_padding_asked_for() -> None:
    rows = f"{'0' * 35}:0\r\n{SUFFIX}:14207\r\n{'F' * 35}:3\r\n"
    handler = answering(rows)
    client = corpus(handler)
    assert await client.count(PASSWORD) == 14207
    await client.aclose()
    (request,) = handler.seen  # type: ignore[attr-defined]
    assert str(request.url) == f"https://range.test/api/range/{PREFIX}"
    assert request.headers["add-padding"] == "true"
    assert request.method == "GET" and request.content == b""
    sent = str(request.url) + str(request.headers)
    assert SUFFIX not in sent and PASSWORD not in sent


async def test_padding_rows_and_lower_case_suffixes() -> None:
    padded = f"{SUFFIX}:0\r\n{'A' * 35}:2"  # the password's own suffix, as padding
    client = corpus(answering(padded))
    assert await client.count(PASSWORD) == 0
    lower = corpus(answering(f"{SUFFIX.lower()}:5\n"))  # LF only, lower case: still read
    assert await lower.count(PASSWORD) == 5
    empty = corpus(answering(""))  # a small self-hosted corpus may hold nothing here
    assert await empty.count(PASSWORD) == 0
    for c in (client, lower, empty):
        await c.aclose()


@pytest.mark.parametrize(
    "body",
    [
        "<html>Service unavailable</html>",
        f"{SUFFIX}:12\r\nnot a row\r\n",
        f"{SUFFIX}:-1",
        f"{SUFFIX}:12345678901",  # more digits than any count
        f"{SUFFIX[:-1]}:3",  # 34 digits
        f"{SUFFIX}G:3",
        f"{SUFFIX} 3",
        b"\xff\xfe" + SUFFIX.encode() + b":3",
        f"{SUFFIX}:3\x00",
    ],
)
async def test_garbage_is_an_error_not_a_count(body: str | bytes) -> None:
    client = corpus(answering(body))
    with pytest.raises(RangeError) as info:
        await client.count(PASSWORD)
    assert info.value.reason == "garbage"
    await client.aclose()


@pytest.mark.parametrize("status", [201, 204, 301, 302, 400, 404, 429, 500, 503])
async def test_any_status_but_200_is_an_error(status: int) -> None:
    client = corpus(answering(f"{SUFFIX}:3", status, {"location": "https://elsewhere.test/"}))
    with pytest.raises(RangeError) as info:
        await client.count(PASSWORD)
    assert info.value.reason == "status"
    await client.aclose()


async def test_an_oversized_body_is_cut_off() -> None:
    declared = corpus(answering("x", headers={"content-length": str(MAX_BODY + 1)}))
    with pytest.raises(RangeError) as info:
        await declared.count(PASSWORD)
    assert info.value.reason == "oversized"

    chunks_read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        for _ in range(10_000):  # 640 MB if it were all read
            chunks_read += 1
            yield (f"{'A' * 35}:0\r\n" * 1600)[: 64 * 1024].encode()

    async def streaming(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    streamed = corpus(streaming)
    with pytest.raises(RangeError) as info:
        await streamed.count(PASSWORD)
    assert info.value.reason == "oversized"
    assert chunks_read <= MAX_BODY // (64 * 1024) + 1
    for c in (declared, streamed):
        await c.aclose()


async def test_a_slow_server_meets_the_deadline() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(100):
            await asyncio.sleep(0.05)  # each read is quick; the whole is not
            yield b"A"

    async def slow(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    client = corpus(slow, timeout=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RangeError) as info:
        await client.count(PASSWORD)
    assert info.value.reason == "timeout"
    assert loop.time() - started < 1.5
    await client.aclose()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ConnectError("refused"), "unreachable"),
        (httpx.RemoteProtocolError("closed"), "unreachable"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
    ],
)
async def test_transport_failures(error: Exception, reason: str) -> None:
    async def failing(request: httpx.Request) -> httpx.Response:
        raise error

    client = corpus(failing)
    with pytest.raises(RangeError) as info:
        await client.count(PASSWORD)
    assert info.value.reason == reason
    assert PASSWORD not in str(info.value) and SUFFIX not in str(info.value)
    await client.aclose()


async def test_the_probe_asks_for_a_prefix_of_no_password() -> None:
    handler = answering(f"{'A' * 35}:0\r\n{'B' * 35}:0")
    client = corpus(handler)
    assert await client.probe() == 2  # padding rows count as rows here
    await client.aclose()
    assert handler.seen[0].url.path == "/api/range/00000"  # type: ignore[attr-defined]
