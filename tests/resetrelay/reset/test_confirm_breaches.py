"""The breach check of `password_reset.confirm` through the real HTTP path: the service
in-process, the Auth0 emulator and a range API on loopback ports (the devkit's, or a
hostile one), a real SMTP server, on every test database.

A breached password is refused before any Auth0 call and before the claim: no attempt
spent, the link still works. When the range API gives no usable answer,
PWNED_PASSWORDS_ON_ERROR decides: `allow` sets the password, `reject` answers 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from devkit.emulator import create_emulator
from devkit.pwned import DEMO_CORPUS, create_range_api
from tests.conftest import Clock
from tests.resetrelay.reset.test_flow import STRONG, USERS, Stack, request_ticket
from tests.support import HOST, free_port, serve_in_thread

pytestmark = pytest.mark.anyio

BREACHED = "Passw0rd!"  # meets the emulator's default policy; the range API has it 14,207 times
FEW = "Acme2026!"  # 3 times: the lowest band


@pytest.fixture
def auth0() -> Iterator[str]:
    app = create_emulator(domain="acme.eu.auth0.com", users=USERS)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def range_api() -> Iterator[tuple[Starlette, str]]:
    app = create_range_api()
    with serve_in_thread(app) as url:
        yield app, url


StartStack = Callable[..., Any]


@pytest.fixture
def start(service: Callable[..., Any], auth0: str, clock: Clock) -> StartStack:
    """`async with start(**env) as stack`: the service pointed at the emulator."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(**env: str) -> AsyncIterator[Stack]:
        async with service(auth0, **env) as (client, runtime, smtp):
            yield Stack(client, runtime, auth0, smtp, clock)

    return run


def auth0_user_calls(stack: Stack) -> list[dict[str, Any]]:
    """Every call the service made about a user (GET or PATCH), the token aside."""
    return [r for r in stack.emulator_requests() if "/api/v2/users/" in r["path"]]


def counted(stack: Stack, outcome: str, reason: str = "") -> float:
    value = stack.runtime.metrics.registry.get_sample_value(
        "resetrelay_breach_checks_total", {"outcome": outcome, "reason": reason}
    )
    return value or 0.0


async def test_a_breached_password_is_refused_before_auth0_and_the_link_still_works(
    start: StartStack, range_api: tuple[Starlette, str]
) -> None:
    app, url = range_api
    async with start(PWNED_PASSWORDS_URL=url) as stack:
        ticket = await request_ticket(stack)
        before = auth0_user_calls(stack)
        for _ in range(11):  # more than the ten attempts a link allows: none is spent
            answer = await stack.send(
                "password_reset.confirm", ticket=ticket, new_password=BREACHED
            )
            assert answer.status_code == 422
        body = answer.json()
        assert body == {
            "error": "password_rejected",
            "message": "This password has appeared in a known data breach. Choose a different one.",
            "rule": "breached",
            "seen": "1000+",
            "requirements": [
                {"rule": "breached", "message": "Not a password found in known data breaches"}
            ],
        }
        few = await stack.send("password_reset.confirm", ticket=ticket, new_password=FEW)
        assert (few.status_code, few.json()["seen"]) == (422, "1-9")
        # No Auth0 call about the user: not the GET, not the PATCH.
        assert auth0_user_calls(stack) == before
        assert stack.password_patches() == []
        assert counted(stack, "breached") == 12
        # The link still works: a clean password completes through it.
        done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
        assert (done.status_code, done.json()) == (200, {"status": "completed"})
        assert len(stack.password_patches()) == 1
        assert counted(stack, "clean") == 1
    # Only 5 hex digits ever reached the range API, each time with padding asked for.
    received = app.state.requests
    assert len(received) == 13
    assert all(len(r["prefix"]) == 5 and r["padding"] for r in received)
    sent = {r["prefix"] for r in received}
    assert sent == {
        hashlib.sha1(p.encode()).hexdigest().upper()[:5] for p in (BREACHED, FEW, STRONG)
    }
    assert all(r["path"] == f"/range/{r['prefix']}" for r in received)


async def test_the_breached_message_is_in_the_readers_language(
    start: StartStack, range_api: tuple[Starlette, str]
) -> None:
    async with start(PWNED_PASSWORDS_URL=range_api[1]) as stack:
        ticket = await request_ticket(stack, locale="de")
        answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=BREACHED)
    body = answer.json()
    assert body["message"] == (
        "Dieses Passwort ist in einem bekannten Datenleck aufgetaucht. Wählen Sie ein anderes."
    )
    assert body["requirements"][0]["message"] == "Kein Passwort aus bekannten Datenlecks"


async def test_the_local_policy_is_checked_first(
    start: StartStack, range_api: tuple[Starlette, str]
) -> None:
    async with start(PWNED_PASSWORDS_URL=range_api[1]) as stack:
        ticket = await request_ticket(stack)
        answer = await stack.send("password_reset.confirm", ticket=ticket, new_password="password1")
    # In the corpus, but too weak for the policy: the policy answers, the corpus is not asked.
    assert answer.json()["rule"] == "strength"
    assert range_api[0].state.requests == []


async def test_an_empty_url_disables_the_check(start: StartStack) -> None:
    async with start(PWNED_PASSWORDS_URL="") as stack:
        assert stack.runtime.breaches is None
        ticket = await request_ticket(stack)
        done = await stack.send("password_reset.confirm", ticket=ticket, new_password=BREACHED)
        assert done.status_code == 200
        assert counted(stack, "clean") == counted(stack, "breached") == 0


# -- a range API that gives no usable answer ------------------------------------------------


class Hostile:
    """A range API that answers as `mode` says: status, garbage, oversized or slow."""

    def __init__(self) -> None:
        self.mode = "status"
        self.app = Starlette(routes=[Route("/range/{prefix}", self.range_)])

    async def range_(self, request: Request) -> Response:
        if self.mode == "status":
            return Response("oops", status_code=500)
        if self.mode == "garbage":
            return Response("<html><body>Please enable cookies</body></html>")
        if self.mode == "oversized":

            async def endless() -> AsyncIterator[bytes]:
                for _ in range(200):  # 12.8 MB, streamed without a length
                    yield b"A" * 35 + b":0\r\n" + b"0" * (64 * 1024 - 39)

            return StreamingResponse(endless())
        await asyncio.sleep(3)  # "slow": longer than the test's 0.3 s deadline
        return Response("")


@pytest.fixture
def hostile() -> Iterator[tuple[Hostile, str]]:
    server = Hostile()
    with serve_in_thread(server.app) as url:
        yield server, url


OUTAGES = ["down", "timeout", "status", "garbage", "oversized"]
REASONS = {"down": "unreachable", "timeout": "timeout", "status": "status"}


async def confirm_during(
    start: StartStack, hostile: tuple[Hostile, str], outage: str, on_error: str
) -> tuple[httpx.Response, Stack, dict[str, Any]]:
    server, url = hostile
    server.mode = outage
    if outage == "down":
        url = f"http://{HOST}:{free_port()}"  # nothing listens there
    async with start(
        PWNED_PASSWORDS_URL=url,
        PWNED_PASSWORDS_ON_ERROR=on_error,
        PWNED_PASSWORDS_TIMEOUT_SECONDS="0.3",
    ) as stack:
        ticket = await request_ticket(stack)
        answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
        verify = (await stack.send("password_reset.verify", ticket=ticket)).json()
        return answer, stack, verify


@pytest.mark.parametrize("outage", OUTAGES)
async def test_with_allow_an_outage_sets_the_password_unchecked(
    start: StartStack, hostile: tuple[Hostile, str], outage: str
) -> None:
    answer, stack, verify = await confirm_during(start, hostile, outage, "allow")
    assert (answer.status_code, answer.json()) == (200, {"status": "completed"})
    assert len(stack.password_patches()) == 1
    reason = REASONS.get(outage, outage)
    assert counted(stack, "error", reason) == 1
    assert verify == {"valid": False, "reason": "used"}


@pytest.mark.parametrize("outage", OUTAGES)
async def test_with_reject_an_outage_is_a_503_and_the_link_still_works(
    start: StartStack, hostile: tuple[Hostile, str], outage: str
) -> None:
    answer, stack, verify = await confirm_during(start, hostile, outage, "reject")
    assert answer.status_code == 503
    assert answer.json()["error"] == "upstream_unavailable"
    assert answer.headers["retry-after"] == "30"
    assert stack.password_patches() == []
    assert counted(stack, "error", REASONS.get(outage, outage)) == 1
    assert verify["valid"] is True


# -- concurrency and logs -------------------------------------------------------------------


async def test_two_confirms_at_once_set_the_password_once(
    start: StartStack, range_api: tuple[Starlette, str]
) -> None:
    async with start(PWNED_PASSWORDS_URL=range_api[1]) as stack:
        ticket = await request_ticket(stack)
        answers = await asyncio.gather(
            stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG),
            stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG),
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses[0] == 200 and statuses[1] in (409, 410), statuses
        assert len(stack.password_patches()) == 1


async def test_logs_hold_neither_the_password_nor_its_hash(
    start: StartStack,
    range_api: tuple[Starlette, str],
    hostile: tuple[Hostile, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with start(PWNED_PASSWORDS_URL=range_api[1]) as stack:
        ticket = await request_ticket(stack)
        await stack.send("password_reset.confirm", ticket=ticket, new_password=BREACHED)
        await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    hostile[0].mode = "garbage"
    async with start(PWNED_PASSWORDS_URL=hostile[1]) as stack:
        ticket = await request_ticket(stack)
        await stack.send("password_reset.confirm", ticket=ticket, new_password=BREACHED)
    logged = "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')} {r.exc_text or ''}" for r in caplog.records
    )
    assert "known breaches hold it" in logged and "no usable answer" in logged
    for password in (BREACHED, STRONG):
        digest = hashlib.sha1(password.encode()).hexdigest()
        for secret in (password, digest, digest.upper(), digest[5:].upper(), digest[5:]):
            assert secret not in logged
    assert str(DEMO_CORPUS[BREACHED]) not in logged  # the exact count: only its band
