"""schemathesis against the app's own `GET /openapi.json`, in-process.

The schema is loaded with `schemathesis.openapi.from_asgi`, so every generated
request goes through schemathesis's ASGI transport straight into the app (no
socket). The app runs with a migrated database, a frozen clock and an Auth0
transport that no request may reach.

Credentials are added to the request as `requests` will send it (a
`requests.auth.AuthBase`, given to `case.call`), because two of them bind the
exact body bytes: the Standard Webhooks signature of `/hooks/website` and the
Action JWT's `body_sha256`. So generated bodies get past the 401 and reach the
parsers, positive ones (valid per the schema) and negative ones (broken on
purpose) alike. What is checked for every answer: no 5xx, status code, content
type, headers and body as the schema declares them, and no ERROR log line
(tests/fuzz/conftest.py).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import schemathesis
from hypothesis import given, settings
from jose import jwt
from schemathesis import GenerationMode
from schemathesis.python import asgi

from hooks.app import create_app
from hooks.openapi import document
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings, normalise_database_url
from resetrelay.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Clock
from tests.fuzz.conftest import FUZZ
from tests.fuzz.tally import answered

KEY = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
DOMAIN = "acme.eu.auth0.com"
LOG_STREAM_TOKEN = "log-stream-token-fuzz-4e2a91"
ACTION_SECRET = "action-secret-fuzz-0b8d7c6e5f4a3b2c1d0e"
METRICS_TOKEN = "metrics-token-fuzz-9a8b7c"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]

# Requests per operation and generation mode. The log stream's bodies (arrays of
# nested items) cost the most to generate. These run on SQLite only: the contract
# is the same on every backend, and what differs (the text each database can
# hold) is fuzzed on every backend by tests/fuzz/test_routes.py.
BUDGET: list[tuple[str, str, GenerationMode, int]] = [
    ("/hooks/website", "POST", GenerationMode.POSITIVE, 1500),
    ("/hooks/website", "POST", GenerationMode.NEGATIVE, 1250),
    ("/hooks/auth0", "POST", GenerationMode.POSITIVE, 300),
    ("/hooks/auth0", "POST", GenerationMode.NEGATIVE, 300),
    ("/hooks/auth0/actions", "POST", GenerationMode.POSITIVE, 1400),
    ("/hooks/auth0/actions", "POST", GenerationMode.NEGATIVE, 1250),
    # No parameters: one request each says all there is to say.
    ("/metrics", "GET", GenerationMode.POSITIVE, 1),
    ("/readyz", "GET", GenerationMode.POSITIVE, 1),
    ("/healthz", "GET", GenerationMode.POSITIVE, 1),
    ("/openapi.json", "GET", GenerationMode.POSITIVE, 1),
]


# Credentials are made by `Credentials` over the final body, so generating these
# headers (255-character patterns, security parameters) would only cost time:
# placeholders stand in, and the generated part of each request is its body.
PLACEHOLDERS: dict[str, dict[str, str]] = {
    "/hooks/website": {
        "webhook-id": "msg_placeholder",
        "webhook-timestamp": "0",
        "webhook-signature": "v1,placeholder",
    },
    "/hooks/auth0": {"Authorization": "placeholder"},
    "/hooks/auth0/actions": {"Authorization": "Bearer placeholder"},
}


def no_auth0(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a request handler called Auth0: {request.url}")


class Credentials(requests.auth.AuthBase):
    """What each route's caller adds, computed over the body exactly as it is sent:
    a fresh `webhook-id` and the app clock's timestamp for the website's events, the
    log stream's token, a one-use Action JWT bound to the body, the metrics token."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()  # the ASGI transport sends a str body as UTF-8
        assert isinstance(body, bytes), f"cannot sign a streamed body: {body!r}"
        now = int(self.clock().timestamp())
        path = urlsplit(request.url or "").path
        if path == "/hooks/website":
            request.headers.update(sign(KEY, f"msg_fuzz_{uuid.uuid4().hex}", now, body))
        elif path == "/hooks/auth0":
            request.headers["Authorization"] = LOG_STREAM_TOKEN
        elif path == "/hooks/auth0/actions":
            claims = {
                "iss": f"https://{DOMAIN}/",
                "aud": "resetrelay",
                "iat": now,
                "exp": now + 120,
                "jti": uuid.uuid4().hex,
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
            token = jwt.encode(claims, ACTION_SECRET, algorithm="HS256")
            request.headers["Authorization"] = f"Bearer {token}"
        elif path == "/metrics":
            request.headers["Authorization"] = f"Bearer {METRICS_TOKEN}"
        return request


def closing(app: ASGIApp, runtime: Runtime) -> ASGIApp:
    """`app`, closing `runtime` when its lifespan ends: the runtime's database engine
    lives in the event loop of schemathesis's ASGI transport, so it is closed there."""

    async def wrapped(
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await runtime.aclose()
            await send(message)

        await app(scope, receive, send_closing)

    return wrapped


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "resetrelay.db"
    shutil.copy(sqlite_template, path)
    return normalise_database_url(f"sqlite:///{path}")


@pytest.fixture
def api(
    sqlite_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> Iterator[schemathesis.BaseSchema]:
    settings_ = settings_for(
        sqlite_url,
        AUTH0_DOMAIN=DOMAIN,
        AUTH0_LOG_STREAM_TOKEN=LOG_STREAM_TOKEN,
        AUTH0_ACTION_SECRET=ACTION_SECRET,
        METRICS_TOKEN=METRICS_TOKEN,
    )
    runtime = Runtime.build(settings_, now=clock, auth0_transport=httpx.MockTransport(no_auth0))
    app = closing(create_app(settings_, runtime=runtime), runtime)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asgi.shutdown_lifespans()


@pytest.mark.parametrize(
    ("path", "method", "mode", "examples"),
    BUDGET,
    ids=[f"{method} {path} {mode.value}" for path, method, mode, _ in BUDGET],
)
def test_operation_keeps_its_contract(
    api: schemathesis.BaseSchema,
    clock: Clock,
    path: str,
    method: str,
    mode: GenerationMode,
    examples: int,
) -> None:
    operation = api[path][method]
    credentials = Credentials(clock)

    @settings(FUZZ, max_examples=examples)
    @given(case=operation.as_strategy(mode, headers=PLACEHOLDERS.get(path)))
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call(auth=credentials)
        answered(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_documented_operation_is_fuzzed() -> None:
    documented = {
        (path, method.upper()) for path, item in document()["paths"].items() for method in item
    }
    assert {(path, method) for path, method, _, _ in BUDGET} == documented
    assert sum(examples for *_, examples in BUDGET) >= 6000
