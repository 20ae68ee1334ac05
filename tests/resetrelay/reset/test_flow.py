"""The reset flow end to end.

The service runs in-process (httpx ASGITransport); the Auth0 emulator runs on
uvicorn on a loopback port, so every Management API call is real HTTP; mail
goes to a real aiosmtpd server on loopback. The clock is injected and frozen.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from devkit.emulator import create_emulator
from resetrelay.logs import quiet_libraries
from resetrelay.runtime import Runtime
from resetrelay.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Clock
from tests.mail.servers import Server
from tests.support import serve_in_thread

pytestmark = pytest.mark.anyio

KEY = __import__("base64").b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
JANE = "jane@example.com"
STRONG = "Corr3ct-Horse-Battery"
USERS = [
    {"email": JANE, "password": "Old-Passw0rd!", "user_id": "auth0|jane", "name": "Jane Doe"},
    {"email": "sam@example.com", "social": "google-oauth2", "user_id": "google-oauth2|sam"},
]


@dataclass
class Stack:
    client: httpx.AsyncClient
    runtime: Runtime
    auth0_url: str
    smtp: Server
    clock: Clock

    async def send(self, type_: str, event_id: str | None = None, **data: Any) -> httpx.Response:
        body = json.dumps(
            {"type": type_, "timestamp": "2026-11-28T10:00:00Z", "data": data}
        ).encode()
        headers = sign(
            KEY, event_id or f"msg_{uuid.uuid4().hex}", int(self.clock().timestamp()), body
        )
        return await self.client.post(
            "/hooks/website", content=body, headers={**headers, "content-type": "application/json"}
        )

    async def drain(self) -> None:
        await self.runtime.worker.drain()

    def mails(self) -> list[Any]:
        return [r.message() for r in self.smtp.handler.received]

    def ticket_from_last_mail(self) -> str:
        text_part = self.mails()[-1].get_body(("plain",)).get_content()
        link = next(
            line.strip()
            for line in text_part.splitlines()
            if line.strip().startswith("https://www.example.com/")
        )
        ticket: str = parse_qs(urlsplit(link).query)["ticket"][0]
        return ticket

    def emulator_requests(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.auth0_url}/__emulator/requests").json()
        requests: list[dict[str, Any]] = answer["requests"] if isinstance(answer, dict) else answer
        return requests

    def calls(self, method: str, fragment: str) -> list[dict[str, Any]]:
        return [
            r for r in self.emulator_requests() if r["method"] == method and fragment in r["path"]
        ]

    def smtp_down(self) -> None:
        self.smtp.controller.stop()

    def smtp_up(self) -> None:
        """A new server on the same port with the same mailbox (aiosmtpd cannot restart)."""
        controller = Controller(self.smtp.handler, hostname="127.0.0.1", port=self.smtp.port)
        controller.start()
        self.smtp = Server(controller, self.smtp.handler)

    def fault(self, **spec: Any) -> None:
        httpx.post(f"{self.auth0_url}/__emulator/faults", json=spec).raise_for_status()

    def auth0_patch(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """A Management API PATCH from elsewhere (an admin, the user's profile page)."""
        token = httpx.post(
            f"{self.auth0_url}/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "audience": "https://acme.eu.auth0.com/api/v2/",
            },
        ).json()["access_token"]
        answer = httpx.patch(
            f"{self.auth0_url}/api/v2/users/{user_id.replace('|', '%7C')}",
            json=body,
            headers={"authorization": f"Bearer {token}"},
        )
        answer.raise_for_status()
        user: dict[str, Any] = answer.json()
        return user

    def auth0_user(self, user_id: str) -> dict[str, Any]:
        user: dict[str, Any] = httpx.get(f"{self.auth0_url}/__emulator/users/{user_id}").json()
        return user

    def password_patches(self) -> list[dict[str, Any]]:
        return [c for c in self.calls("PATCH", "/users/") if "password" in (c.get("json") or {})]


@pytest.fixture
def emulator_url() -> Iterator[str]:
    app = create_emulator(domain="acme.eu.auth0.com", users=USERS)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
async def stack(
    service: Callable[[str], Any], emulator_url: str, clock: Clock
) -> AsyncIterator[Stack]:
    async with service(emulator_url) as (client, runtime, smtp):
        stack = Stack(client, runtime, emulator_url, smtp, clock)
        yield stack
    if stack.smtp is not smtp:
        stack.smtp_down()


async def request_ticket(stack: Stack, email: str = JANE, **extra: Any) -> str:
    answer = await stack.send("password_reset.requested", email=email, **extra)
    assert answer.status_code == 202
    await stack.drain()
    return stack.ticket_from_last_mail()


async def test_full_reset(stack: Stack) -> None:
    answer = await stack.send("password_reset.requested", email="Jane@Example.com", locale="de")
    assert (answer.status_code, answer.json()) == (202, {"status": "accepted"})
    assert stack.mails() == []  # nothing happens before the answer
    await stack.drain()
    (mail,) = stack.mails()
    assert mail["To"] == JANE
    ticket = stack.ticket_from_last_mail()
    assert len(ticket) >= 43

    verify = await stack.send("password_reset.verify", ticket=ticket)
    assert verify.status_code == 200
    body = verify.json()
    assert body["valid"] is True and body["email"] == "j***@example.com" and body["locale"] == "de"
    # verify does not consume: twice is fine
    assert (await stack.send("password_reset.verify", ticket=ticket)).json()["valid"] is True

    weak = await stack.send("password_reset.confirm", ticket=ticket, new_password="short")
    assert weak.status_code == 422
    assert weak.json()["error"] == "password_rejected" and weak.json()["rule"] == "strength"
    assert weak.json()["requirements"][0]["rule"] == "min_length"  # refused before Auth0

    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert (done.status_code, done.json()) == (200, {"status": "completed"})
    password_patches = [
        c
        for c in stack.calls("PATCH", "/api/v2/users/")
        if "password" in (c.get("json") or c.get("body") or {})
    ]
    assert len(password_patches) == 1  # the good one: the weak one never left
    await stack.drain()
    assert stack.calls("DELETE", "/api/v2/user-blocks/")
    assert stack.calls("POST", "/revoke-access") or stack.calls("DELETE", "/sessions")
    assert any("email_verified" in (c.get("json") or {}) for c in stack.calls("PATCH", "/users/"))
    assert len(stack.mails()) == 2  # reset + changed
    changed = stack.mails()[-1]
    assert changed["Content-Language"] == "de"

    again = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG + "x")
    assert again.status_code == 410 and again.json()["reason"] == "used"
    assert (await stack.send("password_reset.verify", ticket=ticket)).json() == {
        "valid": False,
        "reason": "used",
    }


async def test_same_answer_for_unknown_social_and_rate_limited(stack: Stack) -> None:
    answers = []
    for email in (JANE, "nobody@example.com", "sam@example.com", JANE, JANE, JANE):
        answer = await stack.send("password_reset.requested", email=email)
        answers.append(
            (
                answer.status_code,
                answer.content,
                sorted((k, v) for k, v in answer.headers.items() if k != "x-request-id"),
            )
        )
    assert len(set(map(repr, answers))) == 1
    await stack.drain()
    # 3/hour per address: three lookups for Jane, none for the fourth request; mail only
    # for Jane (a mail whose ticket a newer one superseded is not sent: its link is dead).
    lookups = stack.calls("GET", "/api/v2/users-by-email")
    assert len(lookups) == 5
    assert stack.mails()
    assert {m["To"] for m in stack.mails()} == {JANE}
    assert (
        'resetrelay_rate_limit_hits_total{scope="email"} 1.0'
        in (await stack.client.get("/metrics")).text
    )


async def test_per_ip_limit(stack: Stack) -> None:
    stack.runtime.settings = stack.runtime.settings  # (limits come from settings)
    for i in range(22):
        await stack.send(
            "password_reset.requested", email=f"u{i}@example.com", client_ip="192.0.2.1"
        )
    await stack.drain()
    assert len(stack.calls("GET", "/users-by-email")) == 20


async def test_replayed_webhook_id_gets_the_first_answer(stack: Stack) -> None:
    first = await stack.send("password_reset.requested", event_id="msg_same", email=JANE)
    second = await stack.send("password_reset.requested", event_id="msg_same", email=JANE)
    assert second.status_code == first.status_code and second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    await stack.drain()
    assert len(stack.mails()) == 1  # nothing happened twice

    ticket = stack.ticket_from_last_mail()
    ok = await stack.send(
        "password_reset.confirm", event_id="msg_c", ticket=ticket, new_password=STRONG
    )
    replay = await stack.send(
        "password_reset.confirm", event_id="msg_c", ticket=ticket, new_password=STRONG
    )
    assert ok.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    patches = [c for c in stack.calls("PATCH", "/users/") if "password" in (c.get("json") or {})]
    assert len(patches) == 1


async def test_new_ticket_voids_the_old_one(stack: Stack) -> None:
    old = await request_ticket(stack)
    new = await request_ticket(stack)
    assert old != new
    assert (await stack.send("password_reset.verify", ticket=old)).json() == {
        "valid": False,
        "reason": "revoked",
    }
    assert (await stack.send("password_reset.verify", ticket=new)).json()["valid"] is True


async def test_expiry_through_the_injected_clock(stack: Stack) -> None:
    ticket = await request_ticket(stack)
    stack.clock.advance(3601)
    assert (await stack.send("password_reset.verify", ticket=ticket)).json() == {
        "valid": False,
        "reason": "expired",
    }
    answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert answer.status_code == 410 and answer.json()["reason"] == "expired"


@pytest.mark.parametrize("ticket", ["", "x", "A" * 43, "A" * 500, "../../etc/passwd", "' OR 1=1"])
async def test_unknown_tickets(stack: Stack, ticket: str) -> None:
    verify = await stack.send("password_reset.verify", ticket=ticket)
    if ticket == "":
        assert verify.status_code == 400
        return
    assert verify.json() == {"valid": False, "reason": "unknown"}
    confirm = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert confirm.status_code == 410 and confirm.json()["reason"] == "unknown"


async def test_concurrent_confirms_call_auth0_once(stack: Stack) -> None:
    ticket = await request_ticket(stack)
    results: list[int] = []

    async def confirm() -> None:
        answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
        results.append(answer.status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(confirm)
    assert results.count(200) == 1
    assert set(results) <= {200, 409, 410}
    patches = [c for c in stack.calls("PATCH", "/users/") if "password" in (c.get("json") or {})]
    assert len(patches) == 1


async def test_upstream_down_during_confirm_keeps_the_ticket(stack: Stack) -> None:
    ticket = await request_ticket(stack)
    stack.fault(path_prefix="/api/v2/users/", status=503, times=100)
    answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert answer.status_code == 503 and answer.json()["error"] == "upstream_unavailable"
    assert int(answer.headers["retry-after"]) >= 1
    httpx.post(f"{stack.auth0_url}/__emulator/faults", json={"clear": True})
    httpx.delete(f"{stack.auth0_url}/__emulator/faults")
    retry = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert retry.status_code == 200


async def test_lookup_survives_429_and_5xx(stack: Stack) -> None:
    stack.fault(path_prefix="/api/v2/users-by-email", status=429, times=1)
    stack.fault(path_prefix="/api/v2/users-by-email", status=503, times=1)
    await stack.send("password_reset.requested", email=JANE)
    for _ in range(5):
        await stack.drain()
        if stack.mails():
            break
        stack.clock.advance(120)
    assert len(stack.mails()) == 1


# Ten of Auth0's refusals revoke the ticket: test_policy_flow.py (refusals of the
# local policy check spend no attempt).


async def test_ticket_never_stored_or_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    quiet_libraries()  # what `logs.configure()` does in every process
    caplog.set_level(logging.DEBUG)
    ticket = await request_ticket(stack)
    await stack.send("password_reset.verify", ticket=ticket)
    await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    await stack.drain()
    dump = []
    async with stack.runtime.db.begin() as conn:
        for table in ("tickets", "jobs", "mail_messages", "inbound_events", "rate_counters"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            dump.append(repr(rows))
    everything = "\n".join(dump)
    assert ticket not in everything
    assert STRONG not in everything
    # Everything our process logs, libraries included; the test's own SMTP server's
    # protocol trace (aiosmtpd's "mail.log") is the mailbox, not us.
    logged = "\n".join(
        r.getMessage() + repr(getattr(r, "fields", ""))
        for r in caplog.records
        if r.levelno >= logging.getLogger(r.name).getEffectiveLevel()
        and not r.name.startswith("mail.log")
    )
    assert ticket not in logged and STRONG not in logged and JANE not in logged


async def test_mail_for_an_expired_ticket_is_dropped(stack: Stack) -> None:
    stack.smtp_down()  # SMTP down when the mail is queued
    await stack.send("password_reset.requested", email=JANE)
    await stack.drain()
    stack.clock.advance(3601)
    stack.smtp_up()
    await stack.drain()
    assert stack.mails() == []
    assert (
        'resetrelay_mails_total{event="expired"} 1.0' in (await stack.client.get("/metrics")).text
    )


async def test_smtp_outage_then_delivered_once(stack: Stack) -> None:
    stack.smtp_down()
    await stack.send("password_reset.requested", email=JANE)
    await stack.drain()
    assert stack.mails() == []
    stack.smtp_up()
    stack.clock.advance(30)
    await stack.drain()
    assert len(stack.mails()) == 1
    stack.clock.advance(3000)
    await stack.drain()
    assert len(stack.mails()) == 1


def test_stack_uses_real_http(emulator_url: str) -> None:
    started = time.monotonic()
    assert httpx.get(f"{emulator_url}/__emulator/requests").status_code == 200
    assert time.monotonic() - started < 5


async def _crash_after_claim(stack: Stack, *, set_password: bool) -> str:
    """Run confirm up to Auth0's answer, then "die": nothing after it is committed."""
    ticket = await request_ticket(stack)
    confirms = stack.runtime.confirms
    row = await confirms.tickets.find(ticket)
    assert row is not None
    claim, _ = await confirms.claim(row, stack.clock())
    assert claim is not None
    if set_password:  # as confirm does: the claim's id in the same PATCH
        await stack.runtime.auth0.set_password(row.user_id, STRONG, app_metadata=claim.marker())
    return ticket


async def test_guard_settles_a_confirm_that_died_after_auth0_answered(stack: Stack) -> None:
    ticket = await _crash_after_claim(stack, set_password=True)
    busy = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert busy.status_code == 409  # the dead process still holds the claim
    stack.clock.advance(70)  # the claim lapses; the guard job comes due
    await stack.drain()
    assert (await stack.send("password_reset.verify", ticket=ticket)).json() == {
        "valid": False,
        "reason": "used",
    }
    assert stack.calls("DELETE", "/api/v2/user-blocks/")  # cleanup ran
    assert len(stack.mails()) == 2  # reset + changed


async def test_guard_releases_a_confirm_that_died_before_auth0_answered(stack: Stack) -> None:
    ticket = await _crash_after_claim(stack, set_password=False)
    stack.clock.advance(70)
    await stack.drain()
    assert (await stack.send("password_reset.verify", ticket=ticket)).json()["valid"] is True
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert done.status_code == 200


# -- the address changed at Auth0 after the link was mailed ---------------------------


async def test_a_link_to_an_old_address_is_void_after_the_address_changed(stack: Stack) -> None:
    ticket = await request_ticket(stack)
    # No `sce` from a log stream: the change is known only to Auth0.
    stack.auth0_patch("auth0|jane", {"email": "Jane.New@Example.com"})
    answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert (answer.status_code, answer.json()["error"], answer.json()["reason"]) == (
        410,
        "ticket_invalid",
        "revoked",
    )
    assert stack.password_patches() == []  # nothing set at Auth0
    await stack.drain()
    jane = stack.auth0_user("auth0|jane")
    assert jane["password_changed"] == 0 and jane["email_verified"] is False
    assert not any("email_verified" in (c.get("json") or {}) for c in stack.calls("PATCH", "/"))
    assert (await stack.send("password_reset.verify", ticket=ticket)).json() == {
        "valid": False,
        "reason": "revoked",
    }
    assert len(stack.mails()) == 1  # the reset mail only


async def test_an_address_change_racing_the_confirm(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = await request_ticket(stack)
    auth0 = stack.runtime.confirms.auth0
    set_password = auth0.set_password

    async def change_first(*args: Any, **kwargs: Any) -> Any:
        # The address changes between the confirm's GET and its PATCH.
        stack.auth0_patch("auth0|jane", {"email": "new-owner@example.com"})
        return await set_password(*args, **kwargs)

    monkeypatch.setattr(auth0, "set_password", change_first)
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert done.status_code == 200
    await stack.drain()
    # email_verified only ever for the address the link went to: not for the new one.
    assert not any("email_verified" in (c.get("json") or {}) for c in stack.calls("PATCH", "/"))
    assert stack.auth0_user("auth0|jane")["email_verified"] is False
    changed = [m["To"] for m in stack.mails()[1:]]
    assert sorted(changed) == [JANE, "new-owner@example.com"]  # both owners are told


# -- a confirm whose claim lapsed ------------------------------------------------------


def _slow_patch(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, before: Any = None, after: Any = None
) -> None:
    """The confirm's password PATCH takes longer than the claim's lease: `before` runs
    while it is on its way, `after` once Auth0 applied it (both only for the first one)."""
    auth0 = stack.runtime.confirms.auth0
    set_password = auth0.set_password
    first = [True]

    async def slow(*args: Any, **kwargs: Any) -> Any:
        if not first[0]:
            return await set_password(*args, **kwargs)
        first[0] = False
        if before is not None:
            await before()
        result = await set_password(*args, **kwargs)
        if after is not None:
            await after()
        return result

    monkeypatch.setattr(auth0, "set_password", slow)


async def test_lapsed_claim_released_by_the_guard_is_settled_on_a_fresh_claim(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = await request_ticket(stack)

    async def lease_runs_out() -> None:
        stack.clock.advance(70)
        await stack.drain()  # the guard looks before our PATCH landed: it releases

    _slow_patch(stack, monkeypatch, before=lease_runs_out)
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert (done.status_code, done.json()) == (200, {"status": "completed"})
    # 200 is true only if the ticket is used and what follows a reset happened.
    assert (await stack.send("password_reset.verify", ticket=ticket)).json() == {
        "valid": False,
        "reason": "used",
    }
    await stack.drain()
    assert [m["To"] for m in stack.mails()] == [JANE, JANE]  # reset + changed
    assert stack.calls("DELETE", "/api/v2/user-blocks/")


async def test_lapsed_claim_settled_by_the_guard_from_our_patch_answers_200(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = await request_ticket(stack)

    async def lease_runs_out() -> None:
        stack.clock.advance(70)
        await stack.drain()  # the guard finds our claim's id at Auth0: it settles

    _slow_patch(stack, monkeypatch, after=lease_runs_out)
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert (done.status_code, done.json()) == (200, {"status": "completed"})
    await stack.drain()
    assert len(stack.mails()) == 2  # reset + one "changed" (the guard's)
    assert (await stack.send("password_reset.verify", ticket=ticket)).json()["reason"] == "used"


async def test_lapsed_claim_overtaken_by_a_later_confirm_says_used(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = await request_ticket(stack)
    later: list[httpx.Response] = []

    async def lease_runs_out() -> None:
        stack.clock.advance(70)
        await stack.drain()  # the guard releases the ticket

    async def another_confirm() -> None:
        # The user, tired of waiting, submits again; that confirm's PATCH lands after ours.
        later.append(
            await stack.send("password_reset.confirm", ticket=ticket, new_password="An0ther-G00d-1")
        )

    _slow_patch(stack, monkeypatch, before=lease_runs_out, after=another_confirm)
    first = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert later[0].status_code == 200
    # Our password is not the one in force: the later confirm's is.
    assert (first.status_code, first.json()["reason"]) == (410, "used")
    assert len(stack.password_patches()) == 2


# -- the guard's proof is our own PATCH -------------------------------------------------


async def test_guard_does_not_take_a_change_made_elsewhere_for_ours(stack: Stack) -> None:
    ticket = await _crash_after_claim(stack, set_password=False)
    # Within the claim's minute, the password changes elsewhere (an admin, Auth0's page).
    stack.auth0_patch(
        "auth0|jane",
        {"password": "Admin-Ch0sen-1", "connection": "Username-Password-Authentication"},
    )
    stack.clock.advance(70)
    await stack.drain()
    assert not stack.calls("DELETE", "/api/v2/user-blocks/")  # none of our follow-ups
    assert not any("email_verified" in (c.get("json") or {}) for c in stack.calls("PATCH", "/"))
    assert len(stack.mails()) == 1  # no "changed" mail of ours
    # As an `scp` event would: the link from before the change is void.
    assert (await stack.send("password_reset.verify", ticket=ticket)).json() == {
        "valid": False,
        "reason": "revoked",
    }
