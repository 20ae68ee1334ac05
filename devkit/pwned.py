"""A local Pwned Passwords-compatible range API, for the demo and the tests.

    GET /range/{5 hex digits}     `SUFFIX:COUNT` rows, CRLF, of the corpus's hashes
                                  under that prefix; with `Add-Padding: true`, padding
                                  rows (random suffixes, count 0) up to 800-1,000 rows,
                                  as the public API pads
    GET /__pwned/requests         the requests it received: path, prefix, padding
                                  (what the tests and the curious check: only 5 hex
                                  digits ever arrive)

The corpus is a handful of passwords every breach list holds; the counts are
illustrative (same order of magnitude as the public API's, not its figures). It
is not a breach corpus: it is there so that `resetrelay demo` shows a breached
refusal with no internet.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["DEMO_CORPUS", "create_range_api"]

DEMO_CORPUS: Final[Mapping[str, int]] = {
    "password1": 2_413_945,
    "Passw0rd!": 14_207,
    "P@ssw0rd123": 3_514,
    "Summer2024!": 412,
    "Welcome123!": 1_863,
    "Qwerty123!": 6_037,
    "Letmein1!": 87,
    "Acme2026!": 3,
}
_PREFIX: Final = re.compile(r"[0-9A-Fa-f]{5}")


def _sha1(password: str) -> str:
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()


def create_range_api(corpus: Mapping[str, int] = DEMO_CORPUS) -> Starlette:
    """The range API as an ASGI app; `app.state.requests` lists what it received."""
    by_hash = {_sha1(password): count for password, count in corpus.items()}
    received: list[dict[str, Any]] = []

    async def range_(request: Request) -> Response:
        prefix = request.path_params["prefix"]
        padding = request.headers.get("add-padding", "").lower() == "true"
        received.append({"path": request.url.path, "prefix": prefix, "padding": padding})
        if not _PREFIX.fullmatch(prefix):
            # The public API's answer to a prefix that is not 5 hex digits.
            return PlainTextResponse("The hash prefix was not in a valid format", status_code=400)
        prefix = prefix.upper()
        rows = {h[5:]: count for h, count in by_hash.items() if h.startswith(prefix)}
        if padding:
            for _ in range(800 + secrets.randbelow(201) - len(rows)):
                rows.setdefault(secrets.token_hex(18)[:35].upper(), 0)
        body = "\r\n".join(f"{suffix}:{count}" for suffix, count in sorted(rows.items()))
        return PlainTextResponse(body)

    async def requests(request: Request) -> Response:
        return JSONResponse({"requests": received})

    app = Starlette(
        routes=[
            Route("/range/{prefix}", range_, methods=["GET"]),
            Route("/__pwned/requests", requests, methods=["GET"]),
        ]
    )
    app.state.requests = received
    return app
