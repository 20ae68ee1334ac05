"""`POST /hooks/auth0` (the Auth0 log stream) over real HTTP, end to end.

Setup, and why it looks like this: the Auth0 emulator streams its log events to
the service over HTTP, so the service must listen on a real socket. It runs on
uvicorn *inside the test's own event loop* (`tests.support.serve_in_loop`), not
in a thread: then one Runtime (one database engine, one worker, one frozen
clock) answers the requests and runs `runtime.worker.drain()` for the test, with
no engine shared across event loops (psycopg and aiosqlite connections belong to
the loop that made them). The emulator runs on uvicorn in a thread
(`serve_in_thread`) with the test's clock, so its event dates and our ticket
times are on one timeline; mail goes to a real aiosmtpd server on loopback.

One rule follows from sharing the loop: anything that makes the emulator call
the service (`/__emulator/logs`, a password PATCH, sign-ins) must be awaited
through the async client, never a blocking `httpx.post`, or the loop that should
answer the emulator is the one waiting for it.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import httpx
import pytest
from sqlalchemy import text

from devkit.emulator import EmulatorState, Fault, create_emulator
from hooks.app import create_app
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from resetrelay.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Clock
from tests.mail.servers import Recorder, Server, StartServer
from tests.support import free_port, serve_in_loop, serve_in_thread

pytestmark = pytest.mark.anyio

KEY = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
TOKEN = "log-stream-token-3c1f0a9b7e"
DB = "Username-Password-Authentication"
DOMAIN = "acme.eu.auth0.com"
JANE, BOB = "jane@example.com", "bob@example.com"
STRONG = "Corr3ct-Horse-Battery"
USERS = [
    {"email": JANE, "password": "Old-Passw0rd!", "user_id": "auth0|jane", "name": "Jane Doe"},
    {"email": BOB, "password": "Old-Passw0rd!", "user_id": "auth0|bob", "name": "Bob Roe"},
    {"email": "sam@example.com", "social": "google-oauth2", "user_id": "google-oauth2|sam"},
    {
        "email": "olga@example.com",
        "password": "Old-Passw0rd!",
        "user_id": "auth0|olga",
        "connection": "Other-DB",
    },
]
BREACHED_SUBJECT = "Action needed"
BLOCKED_SUBJECT = "was blocked"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jsonlines(events: list[Any]) -> bytes:
    return "\n".join(json.dumps(e) for e in events).encode()


@dataclass
class Stack:
    url: str
    client: httpx.AsyncClient  # the service, over real HTTP
    auth0: httpx.AsyncClient  # the emulator, over real HTTP
    emulator: EmulatorState
    runtime: Runtime
    smtp: Server
    clock: Clock

    # -- the log stream ---------------------------------------------------------------

    def event(
        self, kind: str, user_id: str | None = "auth0|jane", log_id: str | None = None, **data: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"type": kind, "date": iso(self.clock()), "connection": DB}
        if user_id is not None:
            body["user_id"] = user_id
        body.update(data)
        return {"log_id": log_id or f"90020{uuid.uuid4().hex}", "data": body}

    async def stream(
        self, body: bytes | list[Any] | dict[str, Any], *, authorization: str | None = TOKEN
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        if authorization is not None:
            headers["authorization"] = authorization
        return await self.client.post("/hooks/auth0", content=content, headers=headers)

    async def deliver(self, *events: dict[str, Any]) -> dict[str, Any]:
        answer = await self.stream(jsonlines(list(events)))
        assert answer.status_code == 200, answer.text
        summary: dict[str, Any] = answer.json()
        await self.drain()
        return summary

    async def drain(self) -> None:
        await self.runtime.worker.drain()

    # -- the website ------------------------------------------------------------------

    async def send(self, type_: str, **data: Any) -> httpx.Response:
        body = json.dumps({"type": type_, "timestamp": iso(self.clock()), "data": data}).encode()
        headers = sign(KEY, f"msg_{uuid.uuid4().hex}", int(self.clock().timestamp()), body)
        return await self.client.post(
            "/hooks/website", content=body, headers={**headers, "content-type": "application/json"}
        )

    async def request_ticket(self, email: str = JANE) -> str:
        answer = await self.send("password_reset.requested", email=email)
        assert answer.status_code == 202
        await self.drain()
        return self.ticket_from_last_mail()

    async def verify(self, ticket: str) -> dict[str, Any]:
        answer = await self.send("password_reset.verify", ticket=ticket)
        assert answer.status_code == 200
        result: dict[str, Any] = answer.json()
        return result

    # -- what came out ----------------------------------------------------------------

    def mails(self) -> list[Any]:
        return [r.message() for r in self.smtp.handler.received]

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.mails()]

    def ticket_from_last_mail(self) -> str:
        text_part: str = self.mails()[-1].get_body(("plain",)).get_content()
        link = next(
            line.strip()
            for line in text_part.splitlines()
            if line.strip().startswith("https://www.example.com/")
        )
        return parse_qs(urlsplit(link).query)["ticket"][0]

    def calls(self, method: str, fragment: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.emulator.requests()
            if r["method"] == method and fragment in r["raw_path"] + r["path"]
        ]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.runtime.db.begin() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def stored(self) -> int:
        return int(await self.scalar("SELECT count(*) FROM inbound_events WHERE source = 'auth0'"))

    async def log_jobs(self) -> list[str]:
        async with self.runtime.db.begin() as conn:
            rows = await conn.execute(
                text("SELECT status FROM jobs WHERE kind = 'auth0.log_event' ORDER BY id")
            )
            return [row.status for row in rows]

    async def wait_until_stored(self, count: int, timeout: float = 10) -> None:
        """The emulator delivers after its answer (a background task): wait for it."""
        with anyio.fail_after(timeout):
            while await self.stored() < count:
                await anyio.sleep(0.02)

    async def management_token(self) -> str:
        answer = await self.auth0.post(
            "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "audience": f"https://{DOMAIN}/api/v2/",
            },
        )
        assert answer.status_code == 200
        token: str = answer.json()["access_token"]
        return token


@pytest.fixture
async def stack(
    database_url: str,
    clock: Clock,
    smtp_server: StartServer,
    settings_for: Callable[..., Settings],
) -> AsyncIterator[Stack]:
    smtp = smtp_server(Recorder())
    port = free_port()
    emulator = create_emulator(
        domain=DOMAIN,
        users=USERS,
        clock=lambda: clock().timestamp(),
        log_stream_url=f"http://127.0.0.1:{port}/hooks/auth0",
        log_stream_token=TOKEN,
    )
    with serve_in_thread(emulator) as auth0_url:
        settings = settings_for(
            database_url,
            AUTH0_BASE_URL=auth0_url,
            SMTP_URL=smtp.url(),
            AUTH0_LOG_STREAM_TOKEN=TOKEN,
        )
        runtime = Runtime.build(settings, now=clock)
        try:
            async with (
                serve_in_loop(create_app(settings, runtime=runtime), port) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as client,
                httpx.AsyncClient(base_url=auth0_url, timeout=30) as auth0,
            ):
                yield Stack(url, client, auth0, emulator.state.emulator, runtime, smtp, clock)
        finally:
            await runtime.aclose()


# -- the door ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["jsonlines", "array", "object"])
async def test_each_content_format(stack: Stack, shape: str) -> None:
    events = [stack.event("scp"), stack.event("sce", "auth0|bob"), stack.event("s")]
    bodies: dict[str, bytes | list[Any] | dict[str, Any]] = {
        "jsonlines": jsonlines(events) + b"\n",
        "array": events,
        "object": events[0],
    }
    answer = await stack.stream(bodies[shape])
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    expected = 1 if shape == "object" else 2
    assert answer.json() == {
        "received": 1 if shape == "object" else 3,
        "stored": expected,
        "duplicates": 0,
        "ignored": 0 if shape == "object" else 1,
        "malformed": 0,
    }
    assert await stack.stored() == expected
    assert await stack.log_jobs() == ["queued"] * expected


async def test_a_wrapper_object_is_not_guessed_at(stack: Stack) -> None:
    # No source shows a wrapper around the items: it is one malformed item, counted in
    # the metric an operator alerts on, rather than a shape we made up.
    answer = await stack.stream({"logs": [stack.event("scp")]})
    assert answer.status_code == 200
    assert answer.json()["malformed"] == 1 and answer.json()["stored"] == 0
    metrics = (await stack.client.get("/metrics")).text
    assert 'resetrelay_log_stream_malformed_total{what="item"} 1.0' in metrics


UNPARSEABLE: list[bytes] = [
    b"",
    b"   \n\n",
    b"{not json",
    b'{"log_id": "x", "data": {"type": "scp"',  # cut off in transit
    b"[" * 200_000,
    b"{" * 200_000,
    b'{"a":' * 100_000,
    b"\x00" * 10_000,
    b"\xff" * 10_000,
    b"\n" * 100_000,
    "é".encode("latin-1") * 1000,
]


@pytest.mark.parametrize("body", UNPARSEABLE, ids=[f"unparseable{i}" for i in range(11)])
async def test_a_body_where_nothing_parses_gets_400(stack: Stack, body: bytes) -> None:
    # Auth0 treats any non-2xx as a failed delivery: it retries and shows it in the
    # stream's health, where a 200 would have hidden the loss.
    answer = await stack.stream(body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_payload"
    assert await stack.stored() == 0
    metrics = (await stack.client.get("/metrics")).text
    assert 'resetrelay_log_stream_malformed_total{what="body"} 1.0' in metrics


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "wrong",
        "Bearer wrong",
        f"{TOKEN}x",
        TOKEN[:-1],
        f"Basic {TOKEN}",
        f"Bearer  {TOKEN}",
        TOKEN.upper(),
        "Bearer",
    ],
)
async def test_wrong_or_missing_authorization(stack: Stack, authorization: str | None) -> None:
    answer = await stack.stream([stack.event("scp")], authorization=authorization)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "error": "unauthorized",
        "message": "The Authorization header is missing or wrong.",
    }
    assert await stack.stored() == 0


async def test_bearer_form_is_accepted_when_the_token_has_no_scheme(stack: Stack) -> None:
    exact = await stack.stream([stack.event("scp")], authorization=TOKEN)
    bearer = await stack.stream([stack.event("scp")], authorization=f"Bearer {TOKEN}")
    assert exact.status_code == bearer.status_code == 200
    assert await stack.stored() == 2


async def test_a_configured_value_with_a_scheme_must_match_exactly(
    database_url: str, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(database_url, AUTH0_LOG_STREAM_TOKEN=f"Bearer {TOKEN}")
    runtime = Runtime.build(settings)
    async with (
        serve_in_loop(create_app(settings, runtime=runtime)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        body = b'{"log_id": "1", "data": {"type": "s"}}'
        for value, status in (
            (f"Bearer {TOKEN}", 200),
            (TOKEN, 401),
            (f"Bearer Bearer {TOKEN}", 401),
        ):
            answer = await client.post(
                "/hooks/auth0", content=body, headers={"authorization": value}
            )
            assert answer.status_code == status, value
    await runtime.aclose()


@pytest.mark.parametrize("value", [None, ""])
async def test_unset_token_means_the_route_does_not_exist(
    database_url: str, settings_for: Callable[..., Settings], value: str | None
) -> None:
    overrides = {} if value is None else {"AUTH0_LOG_STREAM_TOKEN": value}
    settings = settings_for(database_url, **overrides)
    runtime = Runtime.build(settings)
    async with (
        serve_in_loop(create_app(settings, runtime=runtime)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for authorization in ("", "anything", "Bearer x"):
            answer = await client.post(
                "/hooks/auth0",
                content=b'{"log_id": "1", "data": {"type": "scp"}}',
                headers={"authorization": authorization},
            )
            assert answer.status_code == 404
            assert answer.json() == {"error": "not_found", "message": "Not Found"}
    await runtime.aclose()


async def test_body_over_5_mib_is_refused(stack: Stack) -> None:
    limit = 5 * 1024 * 1024
    event = json.dumps(stack.event("scp")).encode() + b"\n"
    at_limit = event * (limit // len(event))
    at_limit += b" " * (limit - len(at_limit))
    assert len(at_limit) == limit
    ok = await stack.stream(at_limit)
    assert ok.status_code == 200  # 5 MiB exactly is allowed
    declared = await stack.stream(at_limit + b" ")
    assert declared.status_code == 413
    assert declared.json()["error"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut off while reading
        for _ in range(6):
            yield b" " * (1024 * 1024)

    chunked = await stack.client.post(
        "/hooks/auth0", content=chunks(), headers={"authorization": TOKEN}
    )
    assert chunked.status_code == 413
    assert chunked.json()["error"] == "payload_too_large"


async def test_duplicates_are_stored_once(stack: Stack) -> None:
    first = stack.event("scp", log_id="dup-1")
    batch = [first, first, stack.event("pwd_leak", log_id="dup-2"), {**first}]
    answer = await stack.stream(jsonlines(batch))
    assert answer.json() | {"malformed": 0} == {
        "received": 4,
        "stored": 2,
        "duplicates": 2,
        "ignored": 0,
        "malformed": 0,
    }
    # Auth0 delivers at least once: the same batch again, in another format, stores nothing.
    again = await stack.stream(batch)
    assert again.status_code == 200
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 4
    assert await stack.stored() == 2
    assert len(await stack.log_jobs()) == 2
    await stack.drain()
    (subject,) = stack.subjects()  # one breached mail
    assert BREACHED_SUBJECT in subject


async def test_a_thousand_irrelevant_events_store_nothing(stack: Stack) -> None:
    kinds = ["s", "f", "seacft", "sapi", "fp", "slo", "fcp", "scpr"]
    events = [stack.event(kinds[i % len(kinds)]) for i in range(1000)]
    answer = await stack.stream(jsonlines(events))
    assert answer.status_code == 200
    assert answer.json() == {
        "received": 1000,
        "stored": 0,
        "duplicates": 0,
        "ignored": 1000,
        "malformed": 0,
    }
    assert await stack.stored() == 0
    assert await stack.log_jobs() == []
    metrics = (await stack.client.get("/metrics")).text
    # sapi is named (a password PATCH of a user is acted on); these name no user.
    assert 'resetrelay_log_events_total{type="other"} 875.0' in metrics
    assert 'resetrelay_log_events_total{type="sapi"} 125.0' in metrics


async def test_malformed_lines_beside_valid_ones(stack: Stack) -> None:
    lines = [
        json.dumps(stack.event("scp", log_id="good-1")).encode(),
        b"{not json",
        b'"a string"',
        json.dumps({"log_id": "no-data"}).encode(),
        json.dumps({"log_id": "x", "data": {"type": ["scp"]}}).encode(),
        json.dumps({"log_id": "", "data": {"type": "scp"}}).encode(),
        b"\xff\xfe\x00",
        b"",
        b"   ",
        json.dumps(stack.event("sdu", log_id="good-2")).encode(),
    ]
    answer = await stack.stream(b"\n".join(lines))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["stored"], body["malformed"]) == (2, 6)
    assert await stack.stored() == 2


def dated(date: str) -> bytes:
    """An scp whose `date` is this JSON text; auth0|j has no tickets and needs no lookup,
    so it goes straight to the job's date handling."""
    return b'{"log_id": "x", "data": {"type": "scp", "user_id": "auth0|j", "date": %s}}' % (
        date.encode()
    )


HOSTILE: list[bytes] = [
    b'{"logs": {"logs": []}}',
    b'{"logs": [[[]]], "more": [1]}',
    b"null",
    b"123",
    b"1e999",
    b'"scp"',
    b"[]",
    b"{}",
    b"[" * 500 + b"]" * 500,
    b'{"log_id": "x", "data": null}',
    b'{"log_id": "x", "data": "scp"}',
    b'{"log_id": ["x"], "data": {"type": "scp"}}',
    b'{"log_id": "x", "data": {"type": "scp", "user_id": NaN}}',
    b'{"log_id": "x", "data": {"type": "pwd_leak", "user_name": Infinity}}',
    dated("-Infinity"),
    b'{"log_id": "x\\u0000", "data": {"type": "scp"}}',
    b'{"log_id": "x", "data": {"type": "scp\\u0000"}}',
    b'{"log_id": "x", "data": {"type": "scp", "user_id": "auth0|\\u0000"}}',
    b'{"log_id": "x", "data": {"type": "pwd_leak", "user_name": "a\\u0000@example.com"}}',
    b'{"log_id": "\\ud800", "data": {"type": "scp"}}',
    b'{"log_id": "x", "data": {"type": "\\udfff"}}',
    b'{"log_id": "x", "data": {"type": "scp", "user_id": "auth0|\\ud800"}}',
    b'{"log_id": "x", "data": {"type": "pwd_leak", "user_name": "\\udbff@example.com"}}',
    dated('"9999-12-31T23:59:59-05:00"'),
    dated('"0001-01-01T00:00:00+05:00"'),
    dated('"2026-13-45T99:99:99Z"'),
    dated("1700000000"),
    b'{"log_id": "x", "data": {"type": "scp", "user_id": {"$ne": null}}}',
    b'{"log_id": "x", "data": {"type": "scp", "user_id": 12345678901234567890123}}',
    b'{"log_id": "x", "data": {"type": "pwd_leak", "user_id": ["auth0|jane"]}}',
    b'{"log_id": "x", "data": {"type": "pwd_leak", "connection": {"a": 1}}}',
    b'{"log_id": "x", "data": {"type": "pwd_leak", "user_id": ""}}',
    b'{"log_id": "x", "data": {"type": "limit_wc", "user_name": "@"}}',
    b'{"log_id": "x", "data": {"type": "scp", "user_id": "' + b"a" * 100_000 + b'"}}',
    b'{"log_id": "' + b"a" * 256 + b'", "data": {"type": "scp"}}',
    b'{"log_id": "x", "data": {"type": "' + b"a" * 65 + b'"}}',
    b'{"log_id": "x", "data": {"type": "pwd_leak", "user_name": "' + b"a" * 100_000 + b'@x"}}',
    b'{"log_id": "x", "data": {"type": "scp", "log_id": {"nested": true}}}',
    json.dumps({"log_id": "x", "data": {"type": "scp", "user_id": "auth0|../../etc"}}).encode(),
    json.dumps({"log_id": "x", "data": {"type": "sdu", "user_id": "' OR 1=1 --"}}).encode(),
]


@pytest.mark.parametrize("body", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
async def test_no_input_gets_a_5xx(stack: Stack, body: bytes) -> None:
    answer = await stack.stream(body)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"received", "stored", "duplicates", "ignored", "malformed"}
    # Whatever was stored is handled without a crash: no job is left to retry or dead.
    await stack.drain()
    assert set(await stack.log_jobs()) <= {"done"}
    assert stack.mails() == []


async def test_hostile_requests_around_the_body(stack: Stack) -> None:
    events = jsonlines([stack.event("scp")])
    for headers in (
        {"authorization": TOKEN, "content-type": "text/plain"},
        {"authorization": TOKEN, "content-type": "application/x-ndjson"},
        {"authorization": TOKEN},
    ):
        answer = await stack.client.post("/hooks/auth0", content=events, headers=headers)
        assert answer.status_code == 200  # Auth0 chooses the content type; we accept any
    other = await stack.client.get("/hooks/auth0", headers={"authorization": TOKEN})
    assert other.status_code == 405 and other.json()["error"] == "method_not_allowed"
    non_ascii = await stack.client.post(
        "/hooks/auth0",
        content=events,
        headers={b"authorization": "Bearer \xe9\xe8".encode("latin-1")},
    )
    assert non_ascii.status_code == 401


# -- what events set in motion -------------------------------------------------------------


async def test_pwd_leak_sends_a_breached_mail_whose_ticket_works(stack: Stack) -> None:
    await stack.deliver(stack.event("pwd_leak"))
    (mail,) = stack.mails()
    assert mail["To"] == JANE and BREACHED_SUBJECT in mail["Subject"]
    ticket = stack.ticket_from_last_mail()
    verify = await stack.verify(ticket)
    assert verify["valid"] is True and verify["email"] == "j***@example.com"
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert (done.status_code, done.json()) == (200, {"status": "completed"})
    assert stack.emulator.inspect_user("auth0|jane")["password_changed"] == 1  # type: ignore[index]
    # Our PATCH comes back from the emulator's stream as `sapi` after its answer (a
    # background delivery): wait for it, so the check does not race that delivery.
    await stack.wait_until_stored(2)
    await stack.drain()
    assert await stack.log_jobs() == ["done", "done"]


async def test_one_breached_mail_per_user_per_day(stack: Stack) -> None:
    await stack.deliver(stack.event("pwd_leak"))
    stack.clock.advance(23 * 3600)
    await stack.deliver(stack.event("pwd_leak"))
    assert len(stack.mails()) == 1
    stack.clock.advance(3601)
    await stack.deliver(stack.event("pwd_leak"))
    assert len(stack.mails()) == 2
    assert all(BREACHED_SUBJECT in s for s in stack.subjects())


async def test_two_leaks_in_one_batch_send_one_mail(stack: Stack) -> None:
    # Auth0 logs pwd_leak once per hour per IP: two IPs, two events, one user.
    summary = await stack.deliver(stack.event("pwd_leak"), stack.event("pwd_leak", ip="192.0.2.9"))
    assert summary["stored"] == 2
    assert len(stack.mails()) == 1
    assert await stack.scalar("SELECT count(*) FROM tickets") == 1


async def test_limit_wc_sends_a_blocked_mail_and_confirm_lifts_the_block(stack: Stack) -> None:
    stack.emulator.block("auth0|jane")
    await stack.deliver(stack.event("limit_wc"))
    (mail,) = stack.mails()
    assert mail["To"] == JANE and BLOCKED_SUBJECT in mail["Subject"]
    ticket = stack.ticket_from_last_mail()
    assert (await stack.verify(ticket))["valid"] is True
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert done.status_code == 200
    await stack.drain()
    assert stack.calls("DELETE", "/api/v2/user-blocks/")
    assert stack.emulator.inspect_user("auth0|jane")["blocked"] is False  # type: ignore[index]


async def test_one_blocked_mail_per_user_per_hour(stack: Stack) -> None:
    await stack.deliver(stack.event("limit_wc"))
    stack.clock.advance(59 * 60)
    await stack.deliver(stack.event("limit_wc"))
    assert len(stack.mails()) == 1
    stack.clock.advance(61)
    await stack.deliver(stack.event("limit_wc"))
    assert len(stack.mails()) == 2
    assert all(BLOCKED_SUBJECT in s for s in stack.subjects())


async def test_limit_sul_is_a_throttle_counted_not_mailed(stack: Stack) -> None:
    # 20 logins a minute from one IP to one account: Auth0 lifts it by itself within
    # the minute and DELETE /user-blocks does not touch it. No "blocked" mail.
    summary = await stack.deliver(stack.event("limit_sul"), stack.event("limit_sul"))
    assert (summary["stored"], summary["ignored"]) == (0, 2)
    assert stack.mails() == [] and stack.emulator.requests() == []
    metrics = (await stack.client.get("/metrics")).text
    assert 'resetrelay_log_events_total{type="limit_sul"} 2.0' in metrics


@pytest.mark.parametrize("kind", ["scp", "sce", "sdu"])
async def test_a_change_elsewhere_voids_the_open_ticket(stack: Stack, kind: str) -> None:
    ticket = await stack.request_ticket()
    bobs = await stack.request_ticket(BOB)
    stack.clock.advance(5)
    await stack.deliver(stack.event(kind))
    assert await stack.verify(ticket) == {"valid": False, "reason": "revoked"}
    assert (await stack.verify(bobs))["valid"] is True  # only that user's tickets
    confirm = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert confirm.status_code == 410


async def test_an_event_older_than_the_ticket_does_not_void_it(stack: Stack) -> None:
    before = stack.clock()
    stack.clock.advance(60)
    ticket = await stack.request_ticket()
    stack.clock.advance(60)
    # Delivered late (out of order, or a retry): the change it reports predates the ticket.
    await stack.deliver(stack.event("scp", date=iso(before)))
    assert (await stack.verify(ticket))["valid"] is True
    # Another offset, same instant: compared as instants, not as text.
    await stack.deliver(
        stack.event(
            "scp", date=(before + timedelta(seconds=30)).isoformat().replace("+00:00", "+02:00")
        )
    )
    # 30 s after `before` in UTC written as +02:00 is two hours *earlier*: still kept.
    assert (await stack.verify(ticket))["valid"] is True
    await stack.deliver(stack.event("scp"))  # now: voids
    assert (await stack.verify(ticket))["reason"] == "revoked"


async def test_events_of_other_connections_and_social_users_do_nothing(stack: Stack) -> None:
    ticket = await stack.request_ticket()
    stack.clock.advance(5)
    stack.emulator.reset()
    await stack.deliver(
        stack.event("pwd_leak", "google-oauth2|sam", connection="google-oauth2"),
        stack.event("limit_wc", "google-oauth2|sam", connection=None, strategy_type="social"),
        stack.event("pwd_leak", "auth0|olga", connection="Other-DB"),
        stack.event("scp", "auth0|jane", connection="Other-DB"),
        stack.event("sdu", "google-oauth2|jane"),
    )
    assert len(stack.mails()) == 1  # only the reset mail from the start
    assert stack.emulator.requests() == []  # filtered before any lookup
    assert (await stack.verify(ticket))["valid"] is True  # (verify reads the policy)
    # Without a connection in the event the lookup decides: olga's is another database.
    await stack.deliver({"log_id": "olga-2", "data": {"type": "pwd_leak", "user_id": "auth0|olga"}})
    assert len(stack.mails()) == 1
    assert stack.calls("GET", "/api/v2/users/")
    assert await stack.log_jobs() == ["done"] * 6


async def test_an_event_with_only_an_email_is_resolved_by_lookup(stack: Stack) -> None:
    leak = stack.event("pwd_leak", user_id=None, user_name="Jane@Example.com")
    await stack.deliver(leak)
    (mail,) = stack.mails()
    assert mail["To"] == JANE and BREACHED_SUBJECT in mail["Subject"]
    assert stack.calls("GET", "/api/v2/users-by-email")
    ticket = stack.ticket_from_last_mail()
    stack.clock.advance(5)
    await stack.deliver(stack.event("scp", user_id=None, user_name=JANE))
    assert await stack.verify(ticket) == {"valid": False, "reason": "revoked"}
    # A masked (hashed) user_name cannot be looked up: nothing happens, nothing fails.
    await stack.deliver(stack.event("limit_wc", user_id=None, user_name="4f1a9c0e" * 8))
    assert len(stack.mails()) == 1
    assert set(await stack.log_jobs()) == {"done"}


async def test_an_unknown_user_is_nobody(stack: Stack) -> None:
    await stack.deliver(
        stack.event("pwd_leak", "auth0|nobody"),
        stack.event("limit_wc", user_id=None, user_name="nobody@example.com"),
    )
    assert stack.mails() == []
    assert set(await stack.log_jobs()) == {"done"}


async def test_auth0_rate_limit_reschedules_the_job(stack: Stack) -> None:
    # A 429 whose reset is two minutes away: the job comes back then, nothing is lost.
    stack.emulator.add_fault(Fault("/api/v2/users/", 429, times=1, reset_after=120))
    await stack.deliver(stack.event("pwd_leak"))
    assert stack.mails() == []
    assert await stack.log_jobs() == ["queued"]
    stack.clock.advance(60)
    await stack.drain()
    assert stack.mails() == []  # not before Auth0's reset
    stack.clock.advance(61)
    await stack.drain()
    assert len(stack.mails()) == 1
    assert await stack.log_jobs() == ["done"]


# -- the emulator streams to the service over HTTP ------------------------------------------


@pytest.mark.parametrize("log_format", ["jsonlines", "array", "object"])
async def test_a_password_change_at_auth0_voids_the_open_ticket(
    stack: Stack, log_format: str
) -> None:
    stack.emulator.logs.format = log_format
    ticket = await stack.request_ticket()
    stack.clock.advance(5)
    token = await stack.management_token()
    patch = await stack.auth0.patch(
        f"/api/v2/users/{quote('auth0|jane', safe='')}",
        json={"password": STRONG, "connection": DB},
        headers={"authorization": f"Bearer {token}"},
    )
    assert patch.status_code == 200
    # As set up here (and as Auth0 documents it), the API write logs `sapi` only.
    await stack.wait_until_stored(1)
    await stack.drain()
    assert await stack.verify(ticket) == {"valid": False, "reason": "revoked"}
    sent = [e["data"]["type"] for e in stack.emulator.logs.sent]
    assert sent == ["sapi"]
    assert await stack.scalar("SELECT event_type FROM inbound_events") == "sapi"


@pytest.mark.parametrize("log_format", ["jsonlines", "array", "object"])
async def test_an_injected_leak_arrives_as_mail(stack: Stack, log_format: str) -> None:
    stack.emulator.logs.format = log_format
    injected = await stack.auth0.post(
        "/__emulator/logs", json={"type": "pwd_leak", "user_id": "auth0|jane"}
    )
    assert injected.status_code == 201
    assert await stack.stored() == 1  # delivered before the emulator answered
    await stack.drain()
    (mail,) = stack.mails()
    assert mail["To"] == JANE and BREACHED_SUBJECT in mail["Subject"]
    # Auth0 retries deliveries: the same event again changes nothing.
    await stack.emulator.logs.deliver(stack.emulator.logs.sent[-1:])
    await stack.drain()
    assert len(stack.mails()) == 1 and await stack.stored() == 1


async def test_ten_failed_sign_ins_block_and_the_mail_unblocks(stack: Stack) -> None:
    for _ in range(10):
        answer = await stack.auth0.post(
            "/oauth/token",
            json={
                "grant_type": "password",
                "client_id": "emulator-client",
                "username": JANE,
                "password": "not-her-password",
            },
        )
        assert answer.status_code == 403
    assert stack.emulator.inspect_user("auth0|jane")["blocked"] is True  # type: ignore[index]
    await stack.wait_until_stored(1)
    await stack.drain()
    (mail,) = stack.mails()
    assert BLOCKED_SUBJECT in mail["Subject"]
    done = await stack.send(
        "password_reset.confirm", ticket=stack.ticket_from_last_mail(), new_password=STRONG
    )
    assert done.status_code == 200
    await stack.drain()
    assert stack.calls("DELETE", "/api/v2/user-blocks/")
    assert stack.emulator.inspect_user("auth0|jane")["blocked"] is False  # type: ignore[index]
    # Our own PATCH comes back as sapi; it must not void anything new.
    await stack.wait_until_stored(2)
    await stack.drain()
    assert set(await stack.log_jobs()) == {"done"}


# -- what Auth0's failure logs leave out ----------------------------------------------------


async def test_a_block_logged_without_user_id_is_resolved_by_address(stack: Stack) -> None:
    # Failure logs may carry no user_id (auth0-log-schemas): the user is found by the
    # address in user_name, and the mail goes to the address Auth0 holds.
    stack.emulator.logs.omit_failure_user_id = True
    for _ in range(10):
        await stack.auth0.post(
            "/oauth/token",
            json={
                "grant_type": "password",
                "client_id": "emulator-client",
                "username": JANE,
                "password": "not-her-password",
            },
        )
    await stack.wait_until_stored(1)
    (sent,) = stack.emulator.logs.sent
    assert "user_id" not in sent["data"]
    await stack.drain()
    (mail,) = stack.mails()
    assert mail["To"] == JANE and BLOCKED_SUBJECT in mail["Subject"]


@pytest.mark.parametrize("pii", ["mask", "hash"])
async def test_a_masked_or_hashed_name_is_counted_and_never_mailed(stack: Stack, pii: str) -> None:
    stack.emulator.logs.omit_failure_user_id = True
    stack.emulator.logs.pii = pii
    injected = await stack.auth0.post(
        "/__emulator/logs", json={"type": "pwd_leak", "user_id": "auth0|jane"}
    )
    assert injected.status_code == 201
    assert await stack.stored() == 1
    await stack.drain()
    assert stack.mails() == []
    assert stack.emulator.requests() == []  # nothing to look up
    assert set(await stack.log_jobs()) == {"done"}
    metrics = (await stack.client.get("/metrics")).text
    assert 'resetrelay_log_events_skipped_total{reason="no_user",type="pwd_leak"} 1.0' in metrics


async def test_an_event_of_a_social_primary_with_our_database_identity(stack: Stack) -> None:
    # After linking, the account's user_id is the social one; the event names our
    # connection, so it is ours, and the lookup confirms the database identity.
    stack.emulator.add_user(
        {
            "email": "lena@example.com",
            "password": "Old-Passw0rd!",
            "social": "google-oauth2",
            "primary": "social",
            "user_id": "google-oauth2|1057",
        }
    )
    await stack.deliver(stack.event("pwd_leak", "google-oauth2|1057"))
    (mail,) = stack.mails()
    assert mail["To"] == "lena@example.com" and BREACHED_SUBJECT in mail["Subject"]


def sapi(path: str, body: dict[str, Any], actor: str = "") -> dict[str, Any]:
    """A `sapi` entry as observed in tenant logs: the actor in user_id, the write in
    details.request."""
    return {
        "log_id": f"90020{uuid.uuid4().hex}",
        "data": {
            "type": "sapi",
            "date": iso(datetime.now(UTC)),
            "description": "Update a User",
            "user_id": actor,
            "details": {
                "request": {"method": "patch", "path": path, "query": {}, "body": body},
                "response": {"statusCode": 200},
            },
        },
    }


async def test_sapi_voids_only_for_a_password_patch_of_that_user(stack: Stack) -> None:
    ticket = await stack.request_ticket()
    admins = await stack.request_ticket(BOB)  # bob is the admin doing the write
    stack.clock.advance(5)
    jane = "/api/v2/users/auth0%7Cjane"
    summary = await stack.deliver(
        sapi(jane, {"email": "new@example.com"}, actor="auth0|bob"),
        sapi("/api/v2/users/auth0%7Cjane/multifactor/actions/x", {"password": "x"}),
        {**sapi(jane, {"password": "[redacted]"}), "data": {"type": "sapi"}},
    )
    assert (summary["stored"], summary["ignored"]) == (0, 3)
    assert (await stack.verify(ticket))["valid"] is True
    entry = sapi(jane, {"password": "[redacted]", "connection": DB}, actor="auth0|bob")
    entry["data"]["date"] = iso(stack.clock())
    summary = await stack.deliver(entry)
    assert summary["stored"] == 1
    assert await stack.verify(ticket) == {"valid": False, "reason": "revoked"}
    assert (await stack.verify(admins))["valid"] is True  # not the actor's tickets
