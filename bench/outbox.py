"""5,000 mails through the outbox versus a bare aiosmtplib loop (issue: mail outbox).

Both send to the same aiosmtpd Sink running in its own process. The baseline
pre-renders the 5,000 messages and sends them over one connection in a loop;
the subject is the real path with the production defaults: outbox rows with
tickets in SQLite, the worker's mail lane claiming `mail.send` jobs in batches,
deriving each link from SECRET_KEY, rendering the branded template, sending
through the pooled SmtpMailer, and recording `sent` with each job's completion.
Timed from the worker's start until its counters say every mail is sent; the
table is then checked to hold exactly that many `sent` rows.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import anyio

from bench.harness import free_port, smtp_sink
from mail.message import build_message
from mail.preview import sample_context
from resetrelay.reset.requests import issue
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from resetrelay.webhooks import new_secret
from storage import outbox
from storage.migrate import upgrade


async def _baseline(runtime: Runtime, port: int, count: int) -> float:
    rendered = runtime.renderer.render("reset", "en", sample_context("reset"))
    messages = [
        build_message(
            rendered,
            to=f"user{i}@example.com",
            sender=runtime.settings.mail_from,
            message_id=f"<bench-{i}@bench.example>",
        )
        for i in range(count)
    ]
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await smtp.connect()
    started = time.perf_counter()
    for message in messages:
        await smtp.send_message(message)
    elapsed = time.perf_counter() - started
    await smtp.quit()
    return count / elapsed


async def _subject(runtime: Runtime, count: int) -> float:
    now = runtime.now()
    async with runtime.db.begin() as conn:
        for i in range(count):
            await issue(
                conn,
                runtime.settings,
                runtime.codec,
                user_id=f"auth0|{i}",
                email=f"user{i}@example.com",
                connection="db",
                locale="en",
                purpose="reset",
                now=now,
            )
    started = time.perf_counter()
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.worker.run, stop)
        # Watch the worker's own counters (bumped after each commit) rather than
        # query the table: a GROUP BY over the outbox 20 times a second would take
        # CPU from the path measured. The table is checked once at the end.
        registry = runtime.metrics.registry
        while True:
            sent = registry.get_sample_value("resetrelay_mails_total", {"event": "sent"})
            dead = registry.get_sample_value("resetrelay_mails_total", {"event": "dead"})
            if dead:
                raise SystemExit(f"bench: {dead:.0f} mails died")
            if (sent or 0) >= count:
                break
            await anyio.sleep(0.02)
        elapsed = time.perf_counter() - started
        stop.set()
    async with runtime.db.read() as conn:
        counts = await outbox.counts(conn)
    if counts != {outbox.SENT: count}:
        raise SystemExit(f"bench: the outbox does not hold {count} sent mails: {counts}")
    return count / elapsed


def run_outbox(count: int) -> float:
    port = free_port()
    sink = smtp_sink(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                "DATABASE_URL": f"sqlite:///{Path(tmp)}/outbox.db",
                "WEBHOOK_SECRET": new_secret(),
                "SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopq",
                "RESET_URL": "https://www.example.com/account/reset?ticket={ticket}",
                "MAIL_FROM": "Bench <no-reply@bench.example>",
                "SMTP_URL": f"smtp://127.0.0.1:{port}",
                "AUTH0_DOMAIN": "auth0.emulator.local",
                "AUTH0_CLIENT_ID": "bench-client",
                "AUTH0_CLIENT_SECRET": "bench-secret",
                "BRAND_NAME": "Bench",
                "TICKET_TTL_SECONDS": "86400",
                "PWNED_PASSWORDS_URL": "",  # no breach check: never the internet
            }
            settings = Settings.from_env(env)
            upgrade(settings.database_url)
            clock_start = datetime.now(UTC)

            def now() -> datetime:
                return clock_start + timedelta(seconds=time.monotonic() - mono_start)

            mono_start = time.monotonic()
            runtime = Runtime.build(settings, now=now, worker_poll_interval=0.05)

            async def main() -> tuple[float, float]:
                try:
                    base = await _baseline(runtime, port, count)
                    subject = await _subject(runtime, count)
                finally:
                    await runtime.aclose()
                return base, subject

            base, subject = anyio.run(main)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    ratio = subject / base
    print(
        f"outbox: {count} mails via the outbox at {subject:.0f} mails/s vs bare aiosmtplib "
        f"loop {base:.0f} mails/s -> ratio {ratio:.2f} (target >= 0.70)"
    )
    return ratio
