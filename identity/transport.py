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
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),  # SocketTimeoutError: sock_read
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # a malformed answer
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.ReadError),
    (OSError, httpx.ReadError),
    # aiohttp refuses a header value with a control character (a token that came
    # back with a line break in it) with a bare ValueError, before sending; httpx's
    # own transport raised LocalProtocolError, which the client retries and then
    # reports as Auth0 unavailable, never as a crash.
    (ValueError, httpx.LocalProtocolError),
)


@contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        for source, target in _NOT_SENT + _MAYBE_SENT:
            if isinstance(exc, source):
                # The class name only, and no chain (`from None`): aiohttp's
                # messages and reprs carry the URL, which can carry an address
                # (users-by-email?email=), and its request headers, the bearer
                # token among them; a logged traceback prints the whole chain.
                raise target(type(exc).__name__, request=request) from None
        raise  # pragma: no cover (the last entries catch every one of the three)


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
            if self._session is not None and not self._session.closed:
                # Its loop is gone (a process has one loop; tests make several):
                # that loop can no longer close it, so let it go without a warning.
                self._session.detach()
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_expiry,
                ssl=self._ssl,
                # Python before 3.12.8 can leave a TLS transport open after the
                # client closes it (aiohttp's NEEDS_CLEANUP_CLOSED); ignored after.
                enable_cleanup_closed=True,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
                # The headers are httpx's, all of them: aiohttp adds none of its own
                # (it would type an empty POST application/octet-stream).
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
            # aiohttp sends an idempotent request (GET, DELETE) a second time when a
            # kept-alive connection fails under it (RFC 9112 9.3.1). Here one httpx
            # request is at most one request on the wire: Auth0's calls are counted
            # and budgeted per request above this transport, and the client's own
            # retries (identity.retrying) already cover a dead connection. There is
            # no public switch; aiohttp's own test client sets the same attribute,
            # and tests/identity/test_transport.py fails if it stops working.
            session._retry_connection = False
            self._session, self._loop = session, loop
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
                spoken = answer.version
                version = f"{spoken.major}.{spoken.minor}" if spoken else "1.1"
        extensions: dict[str, object] = {"http_version": f"HTTP/{version}".encode()}
        if reason:
            extensions["reason_phrase"] = reason.encode("latin-1", "replace")
        return httpx.Response(
            status, headers=list(headers), content=content, request=request, extensions=extensions
        )

    async def aclose(self) -> None:
        # Taken out first: a call made while this one awaits opens a session of its
        # own, which the next aclose closes, instead of one nobody holds.
        session, self._session = self._session, None
        if session is not None:
            await session.close()
