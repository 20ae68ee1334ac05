"""One address string must never become several recipients, through the real flow.

An Auth0 user's `email` can hold a list, a display name, a group or a line break
(an admin, an import, the Management API put it there); the website can send the
same shapes. Each path that ends in a mail is driven here with such strings: the
website's request at the door, a request job already queued (by a release that did
not check yet), an Auth0 log event that mails a user found by id. Every one ends
with exactly one `RCPT TO` (the one mailbox) or none.

The service runs in-process, the Auth0 emulator on uvicorn over HTTP, mail goes to
a real aiosmtpd Recorder on loopback; the clock is frozen.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from devkit.emulator import create_emulator
from hooks.logstream import LogItem
from resetrelay.runtime import Runtime
from resetrelay.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Clock
from tests.mail.servers import Server
from tests.support import serve_in_thread

pytestmark = pytest.mark.anyio

KEY = __import__("base64").b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
JANE = "jane@example.com"
PASSWORD = "Old-Passw0rd!"
# Stored addresses that name more than one mailbox (or one a header would break on).
# The emulator, as Auth0 does, keeps database users' addresses in lower case.
HOSTILE = {
    "auth0|list": "list@example.com, evil@attacker.example",
    "auth0|tight": "tight@example.com,evil@attacker.example",
    "auth0|named": "name <evil@attacker.example>",
    "auth0|group": "friends: group@example.com, evil@attacker.example;",
    "auth0|quoted": '"quoted@example.com" <evil@attacker.example>',
    "auth0|break": "break@example.com\r\nbcc: evil@attacker.example",
}
USERS = [
    {"email": JANE, "password": PASSWORD, "user_id": "auth0|jane"},
    *({"email": email, "password": PASSWORD, "user_id": uid} for uid, email in HOSTILE.items()),
]


@dataclass
class Stack:
    client: httpx.AsyncClient
    runtime: Runtime
    auth0_url: str
    smtp: Server
    clock: Clock

    async def send(self, **data: Any) -> httpx.Response:
        body = json.dumps({"type": "password_reset.requested", "data": data}).encode()
        headers = sign(KEY, f"msg_{uuid.uuid4().hex}", int(self.clock().timestamp()), body)
        return await self.client.post(
            "/hooks/website", content=body, headers={**headers, "content-type": "application/json"}
        )

    async def drain(self) -> None:
        for _ in range(3):  # the request or event job, then the mail job (and its retries)
            await self.runtime.worker.drain()
            self.clock.advance(3600)

    def rcpt_tos(self) -> list[list[str]]:
        return [r.rcpt_tos for r in self.smtp.handler.received]

    def lookups(self, fragment: str) -> int:
        answer = httpx.get(f"{self.auth0_url}/__emulator/requests").json()
        requests = answer["requests"] if isinstance(answer, dict) else answer
        return sum(1 for r in requests if fragment in r["path"])

    def metric(self, line: str) -> bool:
        return line in self.runtime.metrics.render().decode()


@pytest.fixture
def emulator_url() -> Iterator[str]:
    with serve_in_thread(create_emulator(domain="acme.eu.auth0.com", users=USERS)) as url:
        yield url


@pytest.fixture
async def stack(
    service: Callable[[str], Any], emulator_url: str, clock: Clock
) -> AsyncIterator[Stack]:
    async with service(emulator_url) as (client, runtime, smtp):
        yield Stack(client, runtime, emulator_url, smtp, clock)


def _no_address_in(records: list[logging.LogRecord]) -> None:
    for record in records:
        text = record.getMessage() + json.dumps(getattr(record, "fields", {}), default=str)
        assert "evil" not in text and "attacker" not in text, text


# -- the door ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "jane@example.com,evil@attacker.example",
        "jane@example.com, evil@attacker.example",
        "Jane <evil@attacker.example>",
        "friends: jane@example.com, evil@attacker.example;",
        '"jane@example.com" <evil@attacker.example>',
        "jane@example.com\r\nbcc: evil@attacker.example",
        *HOSTILE.values(),
    ],
)
async def test_the_website_cannot_ask_for_a_list(stack: Stack, email: str) -> None:
    answer = await stack.send(email=email)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_payload"
    assert answer.json()["message"].startswith("data.email:")
    await stack.drain()
    assert stack.lookups("users-by-email") == 0
    assert stack.rcpt_tos() == []


async def test_one_address_gets_one_rcpt_to(stack: Stack) -> None:
    answer = await stack.send(email="Jane@Example.com")
    assert answer.status_code == 202
    await stack.drain()
    assert stack.rcpt_tos() == [[JANE]]


# -- what Auth0 returns -----------------------------------------------------------------


@pytest.mark.parametrize("user_id", list(HOSTILE))
async def test_a_queued_request_for_a_hostile_stored_address_mails_no_one(
    stack: Stack, user_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A job queued before the door checked addresses: Auth0 finds the user by it.
    await stack.runtime.requests.submit(f"msg_{uuid.uuid4().hex}", HOSTILE[user_id], None, None)
    with caplog.at_level(logging.INFO):
        await stack.drain()
    assert stack.lookups("users-by-email") == 1  # the user was found
    assert stack.rcpt_tos() == []
    assert stack.metric('resetrelay_mails_total{event="bad_address"} 1.0')
    warnings = [r for r in caplog.records if r.name == "resetrelay.requests"]
    assert [(r.levelno, r.getMessage()) for r in warnings] == [
        (logging.WARNING, "user's address is not one mailbox; no mail")
    ]
    _no_address_in([r for r in caplog.records if r.name.startswith("resetrelay")])
    async with stack.runtime.db.begin() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM tickets"))).scalar() == 0


@pytest.mark.parametrize("user_id", list(HOSTILE))
async def test_a_leak_event_for_a_user_with_a_hostile_address_mails_no_one(
    stack: Stack, user_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    # pwd_leak: Auth0's log stream names the user by id; get_user returns the address.
    item = LogItem(f"log_{uuid.uuid4().hex}", "pwd_leak", {"type": "pwd_leak", "user_id": user_id})
    assert (await stack.runtime.auth0_events.store([item]))["stored"] == 1
    with caplog.at_level(logging.INFO):
        await stack.drain()
    assert stack.lookups(f"/api/v2/users/{user_id}") >= 1
    assert stack.rcpt_tos() == []
    assert stack.metric('resetrelay_mails_total{event="bad_address"} 1.0')
    _no_address_in([r for r in caplog.records if r.name.startswith("resetrelay")])


async def test_a_leak_event_for_a_plain_address_gets_one_rcpt_to(stack: Stack) -> None:
    item = LogItem("log_jane", "pwd_leak", {"type": "pwd_leak", "user_id": "auth0|jane"})
    await stack.runtime.auth0_events.store([item])
    await stack.drain()
    assert stack.rcpt_tos() == [[JANE]]
