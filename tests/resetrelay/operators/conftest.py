"""The operator commands' tests: the whole service in-process over the Auth0 emulator
(real HTTP) and a real aiosmtpd server, on the test's database (SQLite, and
PostgreSQL when TEST_DATABASE_URL is set), with the commands run as an operator
runs them: `python -m resetrelay ...` in a subprocess against the same database."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from devkit.emulator import create_emulator
from hooks.app import create_app
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from resetrelay.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Clock, make_env
from tests.mail.servers import RefusingRecipients, Server, StartServer
from tests.support import serve_in_thread

KEY = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
JANE = "jane@example.com"
STRONG = "Corr3ct-Horse-Battery"
USERS = [
    {"email": JANE, "password": "Old-Passw0rd!", "user_id": "auth0|jane", "name": "Jane Doe"},
    {"email": "sam@example.com", "social": "google-oauth2", "user_id": "google-oauth2|sam"},
    {"email": "kim@example.com", "password": "Old-Passw0rd!", "user_id": "auth0|kim"},
]


@dataclass
class Ops:
    client: httpx.AsyncClient
    runtime: Runtime
    smtp: Server
    clock: Clock
    database_url: str
    relay: RefusingRecipients  # the SMTP server's handler

    def refuse_next(self, n: int = 1) -> None:
        """The relay refuses the next `n` recipients for good (550)."""
        self.relay.times = n

    async def send(self, type_: str, **data: Any) -> httpx.Response:
        body = json.dumps({"type": type_, "data": data}).encode()
        headers = sign(KEY, f"msg_{uuid.uuid4().hex}", int(self.clock().timestamp()), body)
        return await self.client.post(
            "/hooks/website", content=body, headers={**headers, "content-type": "application/json"}
        )

    async def drain(self) -> None:
        await self.runtime.worker.drain()

    async def request(self, email: str = JANE, **extra: Any) -> None:
        assert (
            await self.send("password_reset.requested", email=email, **extra)
        ).status_code == 202
        await self.drain()

    def mails(self) -> list[Any]:
        return [r.message() for r in self.smtp.handler.received]

    def ticket_from_last_mail(self) -> str:
        text = self.mails()[-1].get_body(("plain",)).get_content()
        link = next(line.strip() for line in text.splitlines() if "ticket=" in line)
        ticket: str = parse_qs(urlsplit(link).query)["ticket"][0]
        return ticket

    async def cli(self, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
        """`resetrelay ARGS` in a subprocess, as an operator would run it."""
        env = make_env(
            DATABASE_URL=self.database_url, RESETRELAY_OPERATOR="ana@support", **env_vars
        )
        return await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [sys.executable, "-m", "resetrelay", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        )

    async def cli_json(self, *args: str) -> Any:
        result = await self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def emulator_url() -> Iterator[str]:
    with serve_in_thread(create_emulator(domain="acme.eu.auth0.com", users=USERS)) as url:
        yield url


@pytest.fixture
async def ops(
    database_url: str,
    clock: Clock,
    smtp_server: StartServer,
    settings_for: Callable[..., Settings],
    emulator_url: str,
) -> AsyncIterator[Ops]:
    """The service, its SMTP server refusing recipients when told (`Ops.refuse_next`)."""
    relay = RefusingRecipients(reply="550 5.1.1 mailbox unavailable", times=0)
    smtp = smtp_server(relay)
    settings = settings_for(
        database_url,
        AUTH0_BASE_URL=emulator_url,
        SMTP_URL=smtp.url(),
        MAIL_RETRY_INITIAL_SECONDS="1",
    )
    runtime = Runtime.build(settings, now=clock)
    app = create_app(settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://resetrelay.test") as client:
        yield Ops(client, runtime, smtp, clock, database_url, relay)
    await runtime.aclose()
