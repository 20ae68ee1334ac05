"""`POST /hooks/website` at the HTTP boundary: every hostile input gets a clear 4xx,
never a 5xx. The service runs in-process (ASGITransport); Auth0 is never reached by
these requests, so its transport is a MockTransport that fails the test if called."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from hooks.app import create_app
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from resetrelay.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Clock

pytestmark = pytest.mark.anyio
KEY = __import__("base64").b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")


def no_auth0(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"request handler called Auth0: {request.url}")


@pytest.fixture
async def client(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(database_url, DEV_MODE="true")
    runtime = Runtime.build(settings, now=clock, auth0_transport=httpx.MockTransport(no_auth0))
    app = create_app(settings, runtime=runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://resetrelay.test"
    ) as c:
        c.runtime = runtime  # type: ignore[attr-defined]
        c.clock = clock  # type: ignore[attr-defined]
        yield c
    await runtime.aclose()


def signed(
    body: bytes, clock: Clock, *, key: bytes = KEY, event_id: str | None = None, ts_offset: int = 0
) -> dict[str, str]:
    headers = sign(
        key, event_id or f"msg_{uuid.uuid4().hex}", int(clock().timestamp()) + ts_offset, body
    )
    return {**headers, "content-type": "application/json"}


def event(type_: str = "password_reset.requested", **data: Any) -> bytes:
    data = data or {"email": "jane@example.com"}
    return json.dumps({"type": type_, "data": data}).encode()


async def post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/hooks/website", content=body, headers=headers)


def assert_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]


async def test_signed_request_is_accepted(client: httpx.AsyncClient) -> None:
    body = event()
    answer = await post(client, body, signed(body, client.clock))  # type: ignore[attr-defined]
    assert answer.status_code == 202 and answer.json() == {"status": "accepted"}
    assert answer.headers["x-request-id"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: {k: v for k, v in h.items() if k != "webhook-signature"},
        lambda h: {k: v for k, v in h.items() if k != "webhook-id"},
        lambda h: {k: v for k, v in h.items() if k != "webhook-timestamp"},
        lambda h: {**h, "webhook-signature": "v1,bm9wZQ=="},
        lambda h: {**h, "webhook-signature": "garbage,,, \x7f"},
        lambda h: {**h, "webhook-timestamp": "yesterday"},
        lambda h: {**h, "webhook-id": "other"},
    ],
)
async def test_every_signature_failure_is_one_401(
    client: httpx.AsyncClient, mutate: Callable[[dict[str, str]], dict[str, str]]
) -> None:
    body = event()
    answer = await post(client, body, mutate(signed(body, client.clock)))  # type: ignore[attr-defined]
    assert_error(answer, 401, "invalid_signature")
    assert answer.json()["message"] == "The webhook signature is missing, invalid or too old."


async def test_tampered_body_wrong_secret_and_stale_timestamps(client: httpx.AsyncClient) -> None:
    clock = client.clock  # type: ignore[attr-defined]
    body = event()
    headers = signed(body, clock)
    assert_error(
        await post(client, body.replace(b"jane", b"john"), headers), 401, "invalid_signature"
    )
    assert_error(
        await post(client, body, signed(body, clock, key=b"k" * 32)), 401, "invalid_signature"
    )
    assert_error(
        await post(client, body, signed(body, clock, ts_offset=-301)), 401, "invalid_signature"
    )
    assert_error(
        await post(client, body, signed(body, clock, ts_offset=301)), 401, "invalid_signature"
    )


async def test_rotated_secrets_both_pass(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    old = "whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA=="
    settings = settings_for(database_url, WEBHOOK_SECRET=f"{WEBHOOK_SECRET} {old}")
    runtime = Runtime.build(settings, now=clock, auth0_transport=httpx.MockTransport(no_auth0))
    app = create_app(settings, runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for key in (KEY, __import__("base64").b64decode(old.removeprefix("whsec_"))):
            body = event()
            assert (await post(c, body, signed(body, clock, key=key))).status_code == 202
    await runtime.aclose()


async def test_oversized_bodies_are_413(client: httpx.AsyncClient) -> None:
    clock = client.clock  # type: ignore[attr-defined]
    body = event(email="a@b.co", user_agent="x" * (70 * 1024))
    assert_error(await post(client, body, signed(body, clock)), 413, "payload_too_large")

    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: cut off while reading
        for _ in range(100):
            yield b"x" * 1024

    answer = await client.post("/hooks/website", content=stream(), headers=signed(b"", clock))
    assert_error(answer, 413, "payload_too_large")


@pytest.mark.parametrize(
    "content_type",
    ["", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_wrong_media_type_is_415(client: httpx.AsyncClient, content_type: str) -> None:
    body = event()
    headers = {**signed(body, client.clock), "content-type": content_type}  # type: ignore[attr-defined]
    assert_error(await post(client, body, headers), 415, "unsupported_media_type")


async def test_json_with_charset_is_fine(client: httpx.AsyncClient) -> None:
    body = event()
    headers = {
        **signed(body, client.clock),  # type: ignore[attr-defined]
        "content-type": "application/json; charset=utf-8",
    }
    assert (await post(client, body, headers)).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "JSON"),
        (b'{"type": "password_reset.requested"}', "data"),
        (event(email=None), "data.email"),
        (event(email="nope"), "data.email"),
        (
            json.dumps(
                {"type": "password_reset.requested", "data": {"email": "a@b.co"}, "timestamp": 5}
            ).encode(),
            "timestamp",
        ),
        (b"[" * 10_000, "JSON"),
        (b"\x00\xff" * 100, "JSON"),
    ],
)
async def test_malformed_payloads_are_400_naming_the_field(
    client: httpx.AsyncClient, body: bytes, field: str
) -> None:
    answer = await post(client, body, signed(body, client.clock))  # type: ignore[attr-defined]
    assert_error(answer, 400, "invalid_payload")
    assert field in answer.json()["message"]


async def test_unknown_event_type_is_422(client: httpx.AsyncClient) -> None:
    body = event("user.deleted", id=1)
    assert_error(
        await post(client, body, signed(body, client.clock)),  # type: ignore[attr-defined]
        422,
        "unknown_event_type",
    )


async def test_replay_is_answered_from_the_store(client: httpx.AsyncClient) -> None:
    clock = client.clock  # type: ignore[attr-defined]
    body = event()
    headers = signed(body, clock, event_id="msg_fixed")
    first = await post(client, body, headers)
    second = await post(client, body, headers)
    assert first.status_code == second.status_code == 202
    assert second.headers["idempotent-replayed"] == "true"
    async with client.runtime.db.begin() as conn:  # type: ignore[attr-defined]
        from storage import jobs

        stats = await jobs.stats(conn, now=clock())
    assert stats.depth == 1  # one job, not two


async def test_http_errors_use_the_json_error_body(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nope"), 404, "not_found")
    assert_error(await client.get("/hooks/website"), 405, "method_not_allowed")


async def test_ops_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "resetrelay_job_queue_depth" in metrics.text
    for name in (
        "resetrelay_requests_total",
        "resetrelay_tickets_total",
        "resetrelay_mails_total",
        "resetrelay_auth0_calls_total",
        "resetrelay_rate_limit_hits_total",
        "resetrelay_log_events_total",
        "resetrelay_job_queue_oldest_age_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in metrics.text


async def test_readyz_is_503_when_the_database_is_gone(
    tmp_path: Any,
    clock: Clock,
    settings_for: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    runtime = Runtime.build(settings, now=clock, auth0_transport=httpx.MockTransport(no_auth0))
    app = create_app(settings, runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert_error(await c.get("/readyz"), 503, "storage_unavailable")
        body = event()
        with caplog.at_level(logging.WARNING, logger="resetrelay.app"):
            answer = await post(c, body, signed(body, clock))
        assert_error(answer, 503, "storage_unavailable")
        assert answer.headers["retry-after"]
    await runtime.aclose()
    # The log names the driver's error class, which says what to fix.
    logged = [r.__dict__.get("fields") for r in caplog.records if r.msg == "storage unavailable"]
    assert logged == [{"error": "StorageUnavailable", "cause": "OperationalError"}]


async def test_openapi_lists_exactly_the_routes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    app = client._transport.app  # type: ignore[attr-defined]
    routes = {r.path for r in app.routes if not r.path.startswith("/preview")}
    assert set(document["paths"]) == routes


async def test_preview_renders_in_dev_mode(client: httpx.AsyncClient) -> None:
    answer = await client.get("/preview/mail/reset", params={"locale": "fr"})
    assert answer.status_code == 200 and "<html" in answer.text
    assert_error(await client.get("/preview/mail/nope"), 404, "not_found")


@pytest.mark.parametrize(
    ("template", "params", "expected"),
    [
        ("social", {"locale": "de"}, "Sie melden sich bei Acme mit Google an."),
        ("unknown", {"part": "text"}, "there is no Acme account with this address"),
    ],
)
async def test_preview_knows_the_courtesy_mails(
    client: httpx.AsyncClient, template: str, params: dict[str, str], expected: str
) -> None:
    answer = await client.get(f"/preview/mail/{template}", params=params)
    assert answer.status_code == 200 and expected in answer.text
    assert "ticket" not in answer.text  # no reset link, only the sample sign-in page


async def test_preview_answers_carry_the_security_headers(client: httpx.AsyncClient) -> None:
    """A preview is a rendered mail with a sample link: tight CSP, no Referer, no
    sniffing, never cached."""
    for params in ({"locale": "fr"}, {"part": "text"}):
        answer = await client.get("/preview/mail/reset", params=params)
        assert answer.status_code == 200
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        csp = answer.headers["content-security-policy"]
        for directive in (
            "default-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ):
            assert directive in csp
        assert "script-src" not in csp
