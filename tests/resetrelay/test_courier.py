"""The outbox behind the flow: a reset mail is delivered once through faults, dead at
once on a permanent refusal, and survives a worker that stops before sending.

Real aiosmtpd servers on loopback, the Auth0 emulator on uvicorn over HTTP, the
service in-process; TLS certificates come from a throwaway CA made here.
"""

from __future__ import annotations

import json
import logging
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import httpx
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import text

from devkit.emulator import create_emulator
from hooks.app import create_app
from mail.smtp import SmtpMailer
from resetrelay import courier
from resetrelay.reset.requests import issue
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from resetrelay.webhooks import sign
from storage import jobs, outbox
from tests.conftest import WEBHOOK_SECRET, Clock, make_env
from tests.mail.servers import Recorder, RefusingRecipients
from tests.support import free_port, serve_in_thread

pytestmark = pytest.mark.anyio
KEY = __import__("base64").b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
JANE = "jane@example.com"


@pytest.fixture
def emulator_url() -> Iterator[str]:
    users = [{"email": JANE, "password": "Old-Passw0rd!", "user_id": "auth0|jane"}]
    with serve_in_thread(create_emulator(domain="acme.eu.auth0.com", users=users)) as url:
        yield url


class Service:
    def __init__(self, runtime: Runtime, client: httpx.AsyncClient, clock: Clock) -> None:
        self.runtime, self.client, self.clock = runtime, client, clock

    async def request_reset(self) -> None:
        body = json.dumps({"type": "password_reset.requested", "data": {"email": JANE}}).encode()
        headers = sign(KEY, f"msg_{uuid.uuid4().hex}", int(self.clock().timestamp()), body)
        answer = await self.client.post(
            "/hooks/website", content=body, headers={**headers, "content-type": "application/json"}
        )
        assert answer.status_code == 202

    async def mail_states(self) -> dict[str, int]:
        async with self.runtime.db.begin() as conn:
            return await outbox.counts(conn)

    async def metric(self, name: str) -> str:
        return (await self.client.get("/metrics")).text


Build = Callable[..., Any]


@pytest.fixture
async def build(
    database_url: str, clock: Clock, emulator_url: str, settings_for: Callable[..., Settings]
) -> AsyncIterator[Build]:
    made: list[tuple[Runtime, httpx.AsyncClient]] = []

    async def make(smtp_url: str, *, tls: ssl.SSLContext | None = None) -> Service:
        settings = settings_for(
            database_url,
            AUTH0_BASE_URL=emulator_url,
            SMTP_URL=smtp_url,
            MAIL_RETRY_INITIAL_SECONDS="10",
        )
        mailer = SmtpMailer(smtp_url, tls_context=tls, timeout=5)
        runtime = Runtime.build(settings, now=clock, mailer=mailer)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, runtime=runtime)),
            base_url="http://resetrelay.test",
        )
        made.append((runtime, client))
        return Service(runtime, client, clock)

    yield make
    for runtime, client in made:
        await client.aclose()
        await runtime.aclose()


@pytest.fixture
def smtp() -> Iterator[Callable[..., Controller]]:
    started: list[Controller] = []

    def start(handler: Any, **kwargs: Any) -> Controller:
        controller = Controller(
            handler, hostname="127.0.0.1", port=free_port(), server_hostname="mx.test", **kwargs
        )
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


async def test_451_twice_then_delivered_once(build: Build, smtp: Any, clock: Clock) -> None:
    handler = RefusingRecipients(times=2)
    server = smtp(handler)
    service = await build(f"smtp://127.0.0.1:{server.port}")
    await service.request_reset()
    for _ in range(6):
        await service.runtime.worker.drain()
        clock.advance(60)
    assert len(handler.received) == 1
    assert await service.mail_states() == {"sent": 1}
    metrics = await service.metric("")
    assert 'resetrelay_mails_total{event="retried"} 2.0' in metrics
    assert 'resetrelay_mails_total{event="sent"} 1.0' in metrics


async def test_550_is_dead_at_once(build: Build, smtp: Any, clock: Clock) -> None:
    handler = RefusingRecipients(reply="550 5.1.1 no such mailbox", times=100)
    server = smtp(handler)
    service = await build(f"smtp://127.0.0.1:{server.port}")
    await service.request_reset()
    for _ in range(3):
        await service.runtime.worker.drain()
        clock.advance(3600)
    assert handler.times == 99  # one attempt, never retried
    assert await service.mail_states() == {"dead": 1}
    assert 'resetrelay_mails_total{event="dead"} 1.0' in await service.metric("")


async def test_worker_stopped_after_queueing_delivers_after_restart(
    build: Build, smtp: Any, clock: Clock
) -> None:
    handler = Recorder()
    server = smtp(handler)
    url = f"smtp://127.0.0.1:{server.port}"
    first = await build(url)
    await first.request_reset()
    # The first process looks the user up and queues the mail, then "dies" (its
    # worker never runs the send job; it may even have claimed it).
    job = await first.runtime.worker.claim(10)
    await first.runtime.worker.execute(job[0])
    claimed = await first.runtime.worker.claim(10)
    assert [j.kind for j in claimed] == ["mail.send"]
    assert handler.received == []
    second = await build(url)  # a new process on the same database
    await second.runtime.worker.drain()
    assert handler.received == []  # the dead worker's lease still holds
    clock.advance(second.runtime.worker.lease.total_seconds() + 1)
    await second.runtime.worker.drain()
    await second.runtime.worker.drain()
    assert len(handler.received) == 1
    assert await second.mail_states() == {"sent": 1}


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return server, client


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"relay"
        and auth_data.password == b"s3cret"
    )
    return AuthResult(success=ok, auth_data=auth_data if ok else None)


async def test_starttls_required_with_auth(
    build: Build, smtp: Any, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    handler = Recorder()
    server = smtp(
        handler,
        tls_context=tls[0],
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    service = await build(f"smtp+starttls://relay:s3cret@127.0.0.1:{server.port}", tls=tls[1])
    await service.request_reset()
    await service.runtime.worker.drain()
    assert len(handler.received) == 1
    assert handler.received[0].tls and handler.received[0].login == "relay"


async def test_implicit_tls(
    build: Build, smtp: Any, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    handler = Recorder()
    server = smtp(handler, ssl_context=tls[0])
    service = await build(f"smtps://127.0.0.1:{server.port}", tls=tls[1])
    await service.request_reset()
    await service.runtime.worker.drain()
    # The server speaks TLS from the first byte, so a delivery is a TLS delivery
    # (aiosmtpd records `session.ssl` for STARTTLS only).
    assert len(handler.received) == 1


async def issue_mail(runtime: Runtime, user: str, now: datetime) -> None:
    """A reset ticket and its queued mail for `user`, as the requested job makes them."""
    async with runtime.db.begin() as conn:
        await issue(
            conn,
            runtime.settings,
            runtime.codec,
            user_id=f"auth0|{user}",
            email=f"{user}@example.com",
            connection="Username-Password-Authentication",
            locale="en",
            purpose="reset",
            now=now,
        )


async def test_one_batch_sends_each_live_mail_once_and_drops_the_superseded(
    build: Build, smtp: Any, clock: Clock
) -> None:
    server = smtp(Recorder())
    service = await build(f"smtp://127.0.0.1:{server.port}")
    runtime = service.runtime
    for user in ("ann", "bob", "cy", "bob"):  # bob's second ticket voids his first
        await issue_mail(runtime, user, clock())
    assert await runtime.worker.run_once() == 4  # the four mail jobs, one batch
    assert await service.mail_states() == {"sent": 3, "expired": 1}
    recipients = sorted(r.rcpt_tos[0] for r in server.handler.received)
    assert recipients == ["ann@example.com", "bob@example.com", "cy@example.com"]
    async with runtime.db.begin() as conn:
        stats = await jobs.stats(conn, now=clock())
    assert stats.depth == 0


async def test_one_batch_sends_each_live_mail_once_and_marks_the_expired_one(
    build: Build, smtp: Any, clock: Clock
) -> None:
    server = smtp(Recorder())
    service = await build(f"smtp://127.0.0.1:{server.port}")
    runtime = service.runtime
    await issue_mail(runtime, "old", clock())
    clock.advance(runtime.settings.ticket_ttl_seconds - 60)
    for user in ("ann", "bob", "cy"):
        await issue_mail(runtime, user, clock())
    clock.advance(120)  # the first ticket has expired by the time its mail goes out
    assert await runtime.worker.run_once() == 4  # every mail job, from one claim
    received = sorted(item.rcpt_tos[0] for item in server.handler.received)
    assert received == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert await service.mail_states() == {"sent": 3, "expired": 1}
    async with runtime.db.begin() as conn:
        stats = await jobs.stats(conn, now=clock())
    assert (stats.depth, stats.dead) == (0, 0)  # all four jobs done
    assert await runtime.worker.drain() == 0
    assert len(server.handler.received) == 3  # and nothing goes out a second time
    assert 'resetrelay_mails_total{event="expired"} 1.0' in await service.metric("")


# -- recipients: exactly one RCPT TO, from the row, or none ------------------------------


async def issue_to(runtime: Runtime, address: str, now: datetime) -> None:
    """A reset mail whose stored recipient is `address`, as an older release (or a
    stored user address before it was checked) could have left it in the outbox."""
    async with runtime.db.begin() as conn:
        await issue(
            conn,
            runtime.settings,
            runtime.codec,
            user_id="auth0|someone",
            email=address,
            connection="Username-Password-Authentication",
            locale="en",
            purpose="reset",
            now=now,
        )


async def last_errors(runtime: Runtime) -> list[str | None]:
    async with runtime.db.begin() as conn:
        rows = await conn.execute(text("SELECT last_error FROM mail_messages ORDER BY id"))
        return [row[0] for row in rows]


# Each names more than one mailbox, or none a relay could take; the header route
# (aiosmtplib reading To) sent the live link to every one of them.
UNBUILDABLE = [
    "jane@example.com, evil@y.example",
    "jane@example.com,evil@y.example",
    "Jane <evil@y.example>",
    "friends: jane@example.com, evil@y.example;",
    '"jane@example.com" <evil@y.example>',
    "jane@example.com\r\nBcc: evil@y.example",
    "jane@example.com\n",
    "jane\u2028@example.com",
    "user@[127.0.0.1]",
]


@pytest.mark.parametrize("address", UNBUILDABLE)
async def test_a_mail_that_cannot_be_built_is_dead_at_once_with_one_warning(
    build: Build, smtp: Any, clock: Clock, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtp(Recorder())
    service = await build(f"smtp://127.0.0.1:{server.port}")
    runtime = service.runtime
    await issue_to(runtime, address, clock())
    with caplog.at_level(logging.INFO):
        assert await runtime.worker.run_once() == 1
    clock.advance(3600)
    assert await runtime.worker.drain() == 0  # not retried
    assert server.handler.received == []  # no RCPT TO at all
    assert await service.mail_states() == {"dead": 1}
    async with runtime.db.begin() as conn:
        stats = await jobs.stats(conn, now=clock())
    assert (stats.depth, stats.dead) == (0, 0)  # the job is done, not buried
    [error] = await last_errors(runtime)
    assert error is not None and error.startswith("cannot be built")
    assert "evil" not in error and "jane" not in error
    ours = [r for r in caplog.records if r.name == "resetrelay.courier"]
    assert [(r.levelno, r.getMessage()) for r in ours] == [
        (logging.WARNING, "mail cannot be built; dead")
    ]
    assert all(r.exc_info is None for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    for record in caplog.records:
        assert "evil" not in record.getMessage() and "evil" not in str(
            getattr(record, "fields", "")
        )
    metrics = await service.metric("")
    assert 'resetrelay_mails_total{event="unbuildable"} 1.0' in metrics
    assert 'resetrelay_mails_total{event="dead"} 1.0' in metrics


async def test_one_bad_mail_does_not_hold_back_its_batch(
    build: Build, smtp: Any, clock: Clock
) -> None:
    server = smtp(Recorder())
    service = await build(f"smtp://127.0.0.1:{server.port}")
    await issue_mail(service.runtime, "ann", clock())
    await issue_to(service.runtime, "bob@example.com,\nevil@y.example", clock())
    await issue_mail(service.runtime, "cy", clock())
    assert await service.runtime.worker.run_once() == 3
    assert sorted(r.rcpt_tos[0] for r in server.handler.received) == [
        "ann@example.com",
        "cy@example.com",
    ]
    assert all(len(r.rcpt_tos) == 1 for r in server.handler.received)
    assert await service.mail_states() == {"sent": 2, "dead": 1}


async def test_the_envelope_is_the_rows_one_recipient(
    build: Build, smtp: Any, clock: Clock
) -> None:
    server = smtp(Recorder())
    service = await build(f"smtp://127.0.0.1:{server.port}")
    await issue_to(service.runtime, "o'brien+reset@example.com", clock())
    await service.runtime.worker.drain()
    [received] = server.handler.received
    assert received.rcpt_tos == ["o'brien+reset@example.com"]
    assert received.message()["To"] == "o'brien+reset@example.com"


async def test_a_refusal_that_echoes_the_address_is_stored_and_logged_masked(
    build: Build, smtp: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    address = "john.smith&evil@example.com"
    handler = RefusingRecipients(reply=f"550 5.1.1 <{address}>: Recipient rejected", times=9)
    server = smtp(handler)
    service = await build(f"smtp://127.0.0.1:{server.port}")
    await issue_to(service.runtime, address, clock())
    with caplog.at_level(logging.INFO):
        await service.runtime.worker.drain()
    assert await service.mail_states() == {"dead": 1}
    [error] = await last_errors(service.runtime)
    assert error == "recipient refused: 550 5.1.1 <j***@example.com>: Recipient rejected"
    async with service.runtime.db.begin() as conn:
        job_errors = [row[0] for row in await conn.execute(text("SELECT last_error FROM jobs"))]
    ours = [r for r in caplog.records if r.name.startswith("resetrelay")]  # not the test relay's
    assert ours
    for logged in [*job_errors, *(r.getMessage() for r in ours)] + [
        str(getattr(r, "fields", "")) for r in ours
    ]:
        assert "smith" not in str(logged) and "evil" not in str(logged)


@dataclass
class KillsTheSender(Recorder):
    """Takes the message, then SIGKILLs the worker process that sent it before the
    worker hears the 250: the relay has the mail, the outbox never learns it."""

    victim: subprocess.Popen[bytes] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if self.victim is not None and self.victim.poll() is None:
            self.victim.kill()
            self.victim.wait()
        return answer


async def test_a_worker_killed_between_smtp_accept_and_the_status_write_resends_once_counted(
    build: Build,
    smtp: Any,
    clock: Clock,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = KillsTheSender()
    server = smtp(handler)
    url = f"smtp://127.0.0.1:{server.port}"
    service = await build(url)
    async with service.runtime.db.begin() as conn:
        mail_id = await courier.queue(
            conn,
            template="changed",
            recipient=JANE,
            locale="en",
            context={"changed_at": clock().isoformat()},
            message_id=courier.new_message_id("no-reply@acme.example"),
            now=clock(),
        )
    worker = subprocess.Popen(
        [sys.executable, "-m", "resetrelay", "worker"],
        env=make_env(DATABASE_URL=database_url, SMTP_URL=url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    handler.victim = worker
    try:
        with anyio.fail_after(60):
            while worker.poll() is None:
                await anyio.sleep(0.05)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -signal.SIGKILL
    assert len(handler.received) == 1
    (row,) = (
        await service.runtime.db.run_read(lambda c: outbox.get_many_sync(c, [mail_id]))
    ).values()
    assert (row.status, row.attempts) == (outbox.SENDING, 0)  # durable before SMTP began

    # Another worker, once the dead one's lease has lapsed.
    clock.advance(service.runtime.worker.lease.total_seconds() * 2)
    with caplog.at_level(logging.WARNING, logger="resetrelay.courier"):
        await service.runtime.worker.drain()
    assert len(handler.received) == 2
    first, second = (item.message() for item in handler.received)
    assert first["Message-ID"] == second["Message-ID"] == row.message_id
    (row,) = (
        await service.runtime.db.run_read(lambda c: outbox.get_many_sync(c, [mail_id]))
    ).values()
    assert (row.status, row.resends, row.attempts) == (outbox.SENT, 1, 1)
    assert "resetrelay_mail_resent_total 1.0" in await service.metric("")
    (line,) = [r for r in caplog.records if "sent again" in r.getMessage()]
    assert JANE not in line.getMessage() and JANE not in str(getattr(line, "fields", ""))


async def test_a_mail_whose_workers_all_died_is_given_up_not_kept_sending(
    build: Build, smtp: Any, clock: Clock
) -> None:
    handler = Recorder()
    service = await build(f"smtp://127.0.0.1:{smtp(handler).port}")
    worker = service.runtime.worker
    async with service.runtime.db.begin() as conn:
        mail_id = await courier.queue(
            conn,
            template="changed",
            recipient=JANE,
            locale="en",
            context={"changed_at": clock().isoformat()},
            message_id=courier.new_message_id("no-reply@acme.example"),
            now=clock(),
        )
    for _ in range(courier.SEND.max_attempts):  # each claim's worker "dies" at once
        assert len(await worker.claim(10)) == 1
        clock.advance(worker.lease.total_seconds() + 1)
    await worker.drain()  # the next claim finds the attempts used up: buried unrun
    assert handler.received == []
    (row,) = (
        await service.runtime.db.run_read(lambda c: outbox.get_many_sync(c, [mail_id]))
    ).values()
    assert row.status == outbox.DEAD
    async with service.runtime.db.read() as conn:
        assert (await jobs.stats(conn, now=clock())).dead == 1
