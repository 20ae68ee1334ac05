""" "This wasn't me" end to end: the dispute link of the "password changed" mail.

As in test_flow.py: the service in-process (ASGITransport), the Auth0 emulator on
uvicorn (real HTTP), mail to a real aiosmtpd server, a frozen clock; the website's
event endpoint is a small app on loopback that keeps what it receives.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from resetrelay.reset.dispute_links import codec_for
from resetrelay.webhooks import verify
from storage.models import Dispute, OperatorAction
from storage.sql import table
from tests.conftest import Clock
from tests.resetrelay.reset.test_flow import JANE, STRONG, Stack, request_ticket
from tests.support import serve_in_thread

pytestmark = pytest.mark.anyio

DISPUTE_URL = "https://www.example.com/account/dispute?token={token}"
WEEK = 7 * 24 * 3600


class Received:
    """The website's `WEBSITE_EVENTS_URL`: keeps each request's headers and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def receive(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    def events(self, type_: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        found = []
        for headers, body in self.requests:
            event = json.loads(body)
            if event["type"] == type_:
                found.append((headers, event))
        return found


@pytest.fixture
def website() -> Iterator[tuple[str, Received]]:
    received = Received()
    app = Starlette(routes=[Route("/events", received.receive, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield f"{url}/events", received


@pytest.fixture
async def stack(
    service: Callable[..., Any],
    emulator_url: str,
    clock: Clock,
    website: tuple[str, Received],
) -> AsyncIterator[Stack]:
    async with service(emulator_url, DISPUTE_URL=DISPUTE_URL, WEBSITE_EVENTS_URL=website[0]) as (
        client,
        runtime,
        smtp,
    ):
        yield Stack(client, runtime, emulator_url, smtp, clock)


class PatchGate:
    """ASGI middleware before the emulator: once armed, the next Management API PATCH of
    a user waits until `release()`, so a test can act while a confirm is in flight."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.armed = False
        self.arrived = threading.Event()
        self.released = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            self.armed
            and scope["type"] == "http"
            and scope["method"] == "PATCH"
            and scope["path"].startswith("/api/v2/users/")
        ):
            self.armed = False
            self.arrived.set()
            await anyio.to_thread.run_sync(self.released.wait, 10)
        await self.app(scope, receive, send)


@pytest.fixture
def gate() -> PatchGate:
    from devkit.emulator import create_emulator
    from tests.resetrelay.reset.test_flow import USERS

    return PatchGate(create_emulator(domain="acme.eu.auth0.com", users=USERS))


@pytest.fixture
def emulator_url(gate: PatchGate) -> Iterator[str]:
    with serve_in_thread(gate) as url:
        yield url


def dispute_token(stack: Stack) -> str:
    """The token of the "Wasn't you?" link in the newest mail's text part."""
    text_part = stack.mails()[-1].get_body(("plain",)).get_content()
    link = next(
        word
        for line in text_part.splitlines()
        for word in line.split()
        if word.startswith("https://www.example.com/account/dispute")
    )
    token: str = parse_qs(urlsplit(link).query)["token"][0]
    return token


async def reset_password(stack: Stack, password: str = STRONG) -> str:
    """A completed reset; returns the dispute token of its "changed" mail."""
    ticket = await request_ticket(stack)
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=password)
    assert done.status_code == 200, done.text
    await stack.drain()
    return dispute_token(stack)


def sign_in(stack: Stack, password: str) -> httpx.Response:
    return httpx.post(
        f"{stack.auth0_url}/oauth/token",
        data={
            "grant_type": "password",
            "username": JANE,
            "password": password,
            "client_id": "emulator-client",
        },
    )


async def dispute(stack: Stack, token: str, *, confirm: bool) -> httpx.Response:
    return await stack.send("password_reset.dispute", token=token, confirm=confirm)


async def test_full_dispute(
    stack: Stack, website: tuple[str, Received], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resetrelay")
    token = await reset_password(stack)
    assert len(token) == 43  # 256 bits, base64url without padding
    changed = stack.mails()[-1]
    assert "Wasn't you? Secure your account:" in changed.get_body(("plain",)).get_content()
    assert "/account/dispute?token=" in changed.get_body(("html",)).get_content()
    assert sign_in(stack, STRONG).status_code == 200
    # An open link of the account, issued after the change: the dispute voids it.
    open_ticket = await request_ticket(stack)
    mails_before = len(stack.mails())

    # confirm false: what the page shows, twice, and nothing is spent.
    for _ in range(2):
        shown = await dispute(stack, token, confirm=False)
        assert shown.status_code == 200, shown.text
        body = shown.json()
        assert body == {
            "valid": True,
            "email": "j***@example.com",
            "changed_at": stack.clock().isoformat().replace("+00:00", "Z"),
            "locale": "en",
        }
    await stack.drain()
    assert not stack.auth0_user("auth0|jane").get("admin_blocked")
    assert len(stack.mails()) == mails_before

    answer = await dispute(stack, token, confirm=True)
    assert (answer.status_code, answer.json()) == (200, {"status": "disputed"})
    await stack.drain()

    user = stack.auth0_user("auth0|jane")
    assert user["admin_blocked"] is True and user["blocked"] is False  # not a brute-force block
    assert [c["json"] for c in stack.calls("PATCH", "/users/") if "blocked" in c["json"]] == [
        {"blocked": True}
    ]
    # Revoked after the reset, and again after the dispute.
    assert len(stack.calls("POST", "/revoke-access")) == 2
    refused = sign_in(stack, STRONG)
    assert refused.status_code == 401 and refused.json()["error_description"] == "user is blocked"
    verified = await stack.send("password_reset.verify", ticket=open_ticket)
    assert verified.json() == {"valid": False, "reason": "revoked"}

    # A fresh reset mail to the address the notice went to.
    fresh = stack.mails()[-1]
    assert fresh["To"] == JANE and len(stack.mails()) == mails_before + 1
    ticket = stack.ticket_from_last_mail()

    # The website hears of it, signed with WEBHOOK_SECRET.
    ((headers, event),) = website[1].events("password_reset.disputed")
    assert event["data"] == {
        "user_id": "auth0|jane",
        "email": JANE,
        "at": stack.clock().isoformat(),
    }
    body = json.dumps(event, separators=(",", ":")).encode()
    settings = stack.runtime.settings
    verify(
        headers, body, keys=settings.webhook_secrets, now=stack.clock().timestamp(), tolerance=300
    )

    # One audit line, about a pseudonym, not the person.
    async with stack.runtime.db.read() as conn:
        lines = (await conn.execute(select(table(OperatorAction)))).all()
    (line,) = [row for row in lines if row.action == "dispute"]
    assert line.actor == "website:dispute" and line.rows == 1
    assert "jane" not in (line.subject or "") and line.subject.startswith("user:")

    # Used once: a second confirm is 410 `used`, and the page says so.
    again = await dispute(stack, token, confirm=True)
    assert again.status_code == 410
    assert again.json()["error"] == "dispute_invalid" and again.json()["reason"] == "used"
    assert (await dispute(stack, token, confirm=False)).json() == {"valid": False, "reason": "used"}

    # The owner takes the account back: the fresh reset lifts the dispute's block.
    owner = "An0ther-Str0ng-Passphrase"
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=owner)
    assert done.status_code == 200, done.text
    await stack.drain()
    assert stack.auth0_user("auth0|jane")["admin_blocked"] is False
    assert [c["json"] for c in stack.calls("PATCH", "/users/") if "blocked" in c["json"]] == [
        {"blocked": True},
        {"blocked": False},
    ]
    assert sign_in(stack, owner).status_code == 200

    # A later reset lifts nothing more: the block was ours once, and it is lifted.
    later = dispute_token(stack)
    assert later != token
    done = await stack.send(
        "password_reset.confirm", ticket=await request_ticket(stack), new_password=STRONG + "x"
    )
    await stack.drain()
    assert len([c for c in stack.calls("PATCH", "/users/") if "blocked" in c["json"]]) == 2

    # Log hygiene: no token, ticket, password, whole address or link in any record.
    logged = "\n".join(r.getMessage() + " " + str(getattr(r, "fields", "")) for r in caplog.records)
    for secret in (token, later, ticket, open_ticket, STRONG, owner, JANE, "token="):
        assert secret not in logged


async def test_expired_link(stack: Stack) -> None:
    token = await reset_password(stack)
    stack.clock.advance(WEEK)  # DISPUTE_TTL_SECONDS' default
    assert (await dispute(stack, token, confirm=False)).json() == {
        "valid": False,
        "reason": "expired",
    }
    answer = await dispute(stack, token, confirm=True)
    assert answer.status_code == 410 and answer.json()["reason"] == "expired"
    await stack.drain()
    assert stack.auth0_user("auth0|jane")["admin_blocked"] is False


async def test_a_token_is_no_ticket_and_a_ticket_no_token(stack: Stack) -> None:
    token = await reset_password(stack)
    as_ticket = await stack.send("password_reset.verify", ticket=token)
    assert as_ticket.json() == {"valid": False, "reason": "unknown"}
    confirm = await stack.send("password_reset.confirm", ticket=token, new_password=STRONG + "1")
    assert confirm.status_code == 410 and confirm.json()["reason"] == "unknown"

    ticket = await request_ticket(stack)
    shown = await dispute(stack, ticket, confirm=False)
    assert shown.json() == {"valid": False, "reason": "unknown"}
    used = await dispute(stack, ticket, confirm=True)
    assert used.status_code == 410 and used.json()["reason"] == "unknown"
    # Both still work for what they are.
    assert (await dispute(stack, token, confirm=False)).json()["valid"] is True
    assert (await stack.send("password_reset.verify", ticket=ticket)).json()["valid"] is True


async def test_a_row_without_our_key_never_matches(stack: Stack) -> None:
    """The database alone (its hash) yields no usable token: a token whose hash is
    stored but was not made with SECRET_KEY for this id is unknown."""
    await reset_password(stack)
    forged = "A" * 43
    async with stack.runtime.db.begin() as conn:
        disputes = table(Dispute)
        await conn.execute(
            disputes.update().values(
                lookup_hash=codec_for(stack.runtime.settings).lookup_hash(forged)
            )
        )
    assert (await dispute(stack, forged, confirm=False)).json() == {
        "valid": False,
        "reason": "unknown",
    }


async def test_two_concurrent_confirms_dispute_once(stack: Stack) -> None:
    token = await reset_password(stack)
    mails_before = len(stack.mails())
    answers: list[httpx.Response] = []

    async def one() -> None:
        answers.append(await dispute(stack, token, confirm=True))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
    assert sorted(a.status_code for a in answers) == [200, 410]
    assert next(a for a in answers if a.status_code == 410).json()["reason"] == "used"
    await stack.drain()
    assert len(stack.mails()) == mails_before + 1  # one fresh reset mail
    assert len([c for c in stack.calls("PATCH", "/users/") if "blocked" in c["json"]]) == 1


async def test_a_reset_in_flight_at_the_dispute_does_not_lift_its_block(
    stack: Stack, gate: PatchGate
) -> None:
    # The race a dispute exists for: whoever changed the password holds another link and
    # is completing it (claimed, its PATCH on the way) when the owner confirms. The dispute
    # cannot void a claimed ticket; the reset then settles after the dispute. It must not
    # count as the owner taking the account back: its link was issued before the dispute,
    # so it lifts nothing and the account stays blocked until the fresh link is used.
    token = await reset_password(stack)
    intruder = "Intruder-Owns-This-1"
    in_flight = await request_ticket(stack)
    stack.clock.advance(5)
    gate.armed = True
    answers: dict[str, httpx.Response] = {}

    async def complete() -> None:
        answers["confirm"] = await stack.send(
            "password_reset.confirm", ticket=in_flight, new_password=intruder
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(complete)
        assert await anyio.to_thread.run_sync(gate.arrived.wait, 10)
        answers["dispute"] = await dispute(stack, token, confirm=True)
        gate.released.set()
    assert answers["dispute"].status_code == 200, answers["dispute"].text
    assert answers["confirm"].status_code == 200, answers["confirm"].text
    await stack.drain()

    assert stack.auth0_user("auth0|jane")["admin_blocked"] is True
    assert sign_in(stack, intruder).status_code == 401
    # The fresh link the dispute mailed is what lifts it.
    (ticket,) = [
        parse_qs(urlsplit(word).query)["ticket"][0]
        for mail in stack.mails()[-2:]
        for word in mail.get_body(("plain",)).get_content().split()
        if word.startswith("https://www.example.com/") and "ticket=" in word
    ]
    owner = "An0ther-Str0ng-Passphrase"
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=owner)
    assert done.status_code == 200, done.text
    await stack.drain()
    assert stack.auth0_user("auth0|jane")["admin_blocked"] is False
    assert sign_in(stack, owner).status_code == 200


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"token": "", "confirm": True}, "data.token"),
    ({"token": "a" * 42, "confirm": True}, "data.token"),
    ({"token": "a" * 44, "confirm": False}, "data.token"),
    ({"token": "a" * 20_000, "confirm": True}, "data.token"),
    ({"token": "../../../../etc/passwd" + "a" * 21, "confirm": True}, "data.token"),
    ({"token": "<script>alert(1)</script>" + "a" * 18, "confirm": True}, "data.token"),
    ({"token": "é" * 43, "confirm": True}, "data.token"),
    ({"token": "a" * 42 + "\n", "confirm": True}, "data.token"),
    ({"token": ["a" * 43], "confirm": True}, "data.token"),
    ({"token": 12345, "confirm": True}, "data.token"),
    ({"confirm": True}, "data.token"),
    ({"token": "a" * 43}, "data.confirm"),
    ({"token": "a" * 43, "confirm": "yes"}, "data.confirm"),
    ({"token": "a" * 43, "confirm": 1}, "data.confirm"),
]


async def test_malformed_tokens_are_400_naming_the_field(stack: Stack) -> None:
    # One stack for every case: each is one request, and none changes any state.
    for data, field in MALFORMED:
        answer = await stack.send("password_reset.dispute", **data)
        assert answer.status_code == 400, (data, answer.text)
        body = answer.json()
        assert body["error"] == "invalid_payload" and body["message"].startswith(field), body


async def test_replayed_event_gets_the_first_answer(stack: Stack) -> None:
    token = await reset_password(stack)
    first = await stack.send("password_reset.dispute", "msg_dispute_1", token=token, confirm=True)
    again = await stack.send("password_reset.dispute", "msg_dispute_1", token=token, confirm=True)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true"


async def test_no_dispute_url_no_link(
    service: Callable[..., Any], emulator_url: str, clock: Clock
) -> None:
    async with service(emulator_url) as (client, runtime, smtp):
        stack = Stack(client, runtime, emulator_url, smtp, clock)
        ticket = await request_ticket(stack)
        await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
        await stack.drain()
        text_part = stack.mails()[-1].get_body(("plain",)).get_content()
        assert "Wasn't you? Secure your account" not in text_part
        async with runtime.db.read() as conn:
            assert (await conn.execute(select(table(Dispute)))).all() == []
