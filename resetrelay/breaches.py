"""Known breaches: how often a password appears in a Pwned Passwords-compatible
corpus, asked by k-anonymity (NIST SP 800-63B asks for this check on every new
password; Auth0's Management API PATCH does not make it).

    GET {PWNED_PASSWORDS_URL}/range/{first 5 hex digits of the upper-case SHA-1}
    Add-Padding: true

The answer lists every suffix of that prefix the corpus holds, `SUFFIX:COUNT` a
line (35 hex digits, CRLF). Only the 5-digit prefix leaves this process: never
the password, never the rest of its hash. Padding rows (count 0) make every
answer about the same size, so the size does not hint at the prefix either.

The server is treated as untrusted: one attempt (a person is waiting), a deadline
for the whole exchange, at most `MAX_BODY` bytes read, and any answer that is not
exactly the documented format is an error of the range API (`RangeError`), never
a count.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final, Literal

import anyio
import httpx

__all__ = [
    "BAND_EDGES",
    "MAX_BODY",
    "SEEN_BANDS",
    "BreachCorpus",
    "RangeError",
    "band",
    "range_prefix",
]

# A real answer is 800-1,000 padded rows of about 40 bytes (some 40 KB); the cap leaves
# ample room and stops a hostile server (or a decompression bomb) from filling memory.
MAX_BODY: Final = 512 * 1024
# A row: 35 hex digits, a colon, a count. Ten digits is far above any real count.
_ROW: Final = re.compile(r"([0-9A-Fa-f]{35}):([0-9]{1,10})")
# The `seen` bands a breached refusal reports (docs/routes.md), and their lower edges.
SEEN_BANDS: Final = ("1-9", "10-99", "100-999", "1000+")
BAND_EDGES: Final = ((1000, "1000+"), (100, "100-999"), (10, "10-99"), (1, "1-9"))

Failure = Literal["unreachable", "timeout", "status", "garbage", "oversized"]


class RangeError(Exception):
    """The range API gave no usable answer: `reason` says how (a metric label)."""

    def __init__(self, reason: Failure, detail: str = "") -> None:
        self.reason: Failure = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def range_prefix(password: str) -> tuple[str, str]:
    """(prefix, suffix) of the password's upper-case SHA-1 hex digest: 5 and 35 digits.
    SHA-1 is the corpus's own key, not a way of storing the password."""
    digest = hashlib.sha1(password.encode("utf-8"), usedforsecurity=False).hexdigest().upper()
    return digest[:5], digest[5:]


def band(count: int) -> str:
    """The band of a breach count the answer names (an exact count says no more to the
    reader, and a band keeps the answer stable as the corpus grows)."""
    return next(label for edge, label in BAND_EDGES if count >= edge)


@dataclass
class BreachCorpus:
    """A Pwned Passwords-compatible range API at `base_url` (its origin, or a path
    prefix before `/range/`). `transport` is the tests' seam; `timeout` bounds the
    whole exchange (connect, headers and body together)."""

    base_url: str
    timeout: float = 2.0
    transport: httpx.AsyncBaseTransport | None = None

    def __post_init__(self) -> None:
        self._client = httpx.AsyncClient(
            transport=self.transport,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,  # a redirect is not the documented answer
            headers={"User-Agent": "resetrelay", "Add-Padding": "true"},
        )

    async def count(self, password: str) -> int:
        """How often the corpus has seen `password` (0: not at all); RangeError when the
        API gives no usable answer."""
        prefix, suffix = range_prefix(password)
        counts, _ = await self._range(prefix)
        return counts.get(suffix, 0)

    async def probe(self) -> int:
        """One range query for a fixed prefix (it says nothing of any password): the
        number of rows answered, padding included; RangeError as for `count`."""
        _, rows = await self._range("00000")
        return rows

    async def _range(self, prefix: str) -> tuple[dict[str, int], int]:
        url = f"{self.base_url.rstrip('/')}/range/{prefix}"
        try:
            # httpx's timeout bounds each read; the deadline bounds them all together, so
            # a server trickling bytes cannot hold a person's confirm for long.
            with anyio.fail_after(self.timeout):
                async with self._client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise RangeError("status", str(response.status_code))
                    body = await _read_capped(response)
        except TimeoutError as exc:
            raise RangeError("timeout") from exc
        except httpx.TimeoutException as exc:
            raise RangeError("timeout") from exc
        except httpx.HTTPError as exc:
            raise RangeError("unreachable", type(exc).__name__) from exc
        return _rows(body)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_capped(response: httpx.Response) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise RangeError("oversized", f"content-length {declared}")
    body = bytearray()
    async for chunk in response.aiter_bytes():  # decoded: the cap holds after gzip too
        body += chunk
        if len(body) > MAX_BODY:
            raise RangeError("oversized", f"more than {MAX_BODY} bytes")
    return bytes(body)


def _rows(body: bytes) -> tuple[dict[str, int], int]:
    """`SUFFIX:COUNT` rows by upper-case suffix, padding rows (count 0) dropped, and how
    many rows there were. Any
    line that is not a row makes the whole answer garbage: a half-understood answer
    is not evidence that a password is clean."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise RangeError("garbage", "not ASCII") from exc
    counts: dict[str, int] = {}
    rows = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        match = _ROW.fullmatch(line)
        if match is None:
            raise RangeError("garbage", "a line is not SUFFIX:COUNT")
        rows += 1
        count = int(match.group(2))
        if count:
            counts[match.group(1).upper()] = count
    # An empty answer is allowed: a self-hosted corpus may hold nothing under a prefix.
    return counts, rows
