"""The HTTP transport under the Auth0 client: httpx's interface, aiohttp's connections.

`Auth0Client` speaks httpx (its tests swap the transport for `MockTransport` or
an ASGI app), but httpx's own transport costs about twice aiohttp's CPU per call:
its pool checks every pooled connection's socket on each request and again on
each response, and its HTTP/1.1 parser is pure Python where aiohttp's is C. A
reset is one Auth0 lookup, so that difference decides how many resets a core
completes (bench/capacity.py; the figures are in docs/benchmarks.md).

What this module owns is the line between the two: which aiohttp error becomes
which httpx error. `Auth0Client.set_password` repeats a PATCH only when the
request never left (`httpx.ConnectError`, `ConnectTimeout`, `PoolTimeout`), so
only failures before a connection was ours map to those; a connection that
breaks or times out after that maps to an error that says "maybe sent".

Otherwise it does what httpx's transport does for the client above it: no
redirects followed (the client decides; it follows none), no proxy from the
environment (an explicit transport never took one), no cookies kept (httpx's
client keeps its own), the body left encoded (httpx decodes it by its
Content-Encoding, once), and the URL sent as httpx encoded it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import httpx
import yarl

__all__ = ["AiohttpTransport"]

# Never sent: the connection was not ours yet (DNS, refused, TLS handshake, or no
# free connection in time). Checked before the "maybe sent" kinds below, since
# both are ClientConnectionError.
_NOT_SENT: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
)
# Maybe sent: the request may have reached the server, so nothing may repeat it
# blindly. Order matters (subclasses first).
_MAYBE_SENT: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # a malformed answer
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.ReadError),
    (OSError, httpx.ReadError),
)


@contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, OSError) as exc:
        for source, target in _NOT_SENT + _MAYBE_SENT:
            if isinstance(exc, source):
                # The class name, not str(exc): aiohttp's messages carry the URL,
                # and a URL of ours can carry an address (users-by-email?email=).
                raise target(f"{type(exc).__name__}", request=request) from exc
        raise  # pragma: no cover (the last entries catch every ClientError and OSError)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends through one `aiohttp.ClientSession`, made on first
    use inside the running loop (aiohttp binds a session to its loop), and made again
    if a later call runs on another loop."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # httpx's defaults: 100 connections, idle ones closed after 5 s; TLS
        # verified against certifi's roots, as httpx verifies.
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_expiry,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
                # The headers are httpx's, all of them: aiohttp adds none of its own.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
            self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        pool, connect = timeout.get("pool"), timeout.get("connect")
        limits = aiohttp.ClientTimeout(
            total=None,
            # aiohttp's `connect` spans waiting for a pooled connection and making
            # one, which httpx times apart: their sum bounds both.
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=timeout.get("read"),
        )
        body = await request.aread()
        with _as_httpx(request):
            async with self._client().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # as httpx encoded it
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                data=body or None,
                allow_redirects=False,
                timeout=limits,
            ) as answer:
                content = await answer.read()
                status, headers, reason = answer.status, answer.raw_headers, answer.reason
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if reason:
            extensions["reason_phrase"] = reason.encode("latin-1", "replace")
        return httpx.Response(
            status, headers=list(headers), content=content, request=request, extensions=extensions
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
