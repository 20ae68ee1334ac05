"""One dyno's end-to-end capacity, and the memory of `serve` and `worker`.

capacity: `resetrelay serve` with its inline worker (one dyno: the web process and
the worker in one), on SQLite, the Auth0 emulator answering lookups over HTTP and
an aiosmtpd sink in its own process taking the mail. wrk floods it with signed
`requested` events for addresses that exist, so every request is a reset that
ends in a sent mail. While it runs, `/metrics` is read once a second: the mails
sent, the job queue's depth and the age of its oldest due job (the gauge an
operator alerts on). Then the flood stops and the worker drains alone for a
while: its rate then is what one dyno completes when nobody is knocking.
The emulator holds 500 users (each costs it a scrypt hash at start), so requests
repeat addresses: a newer ticket supersedes an older one whose mail is then not
sent, and only sent mails count as completed resets. The figures are therefore
conservative, and vary with how the lanes interleave.

drain: 10,000 reset mails queued in the outbox, then a `resetrelay worker`
process sends them all to the sink; its peak resident memory, and the rate.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx

from bench.harness import free_port, server, signed_request_lines, smtp_sink, wrk
from bench.report import Row, verdict
from resetrelay.reset.requests import issue
from resetrelay.runtime import Runtime
from resetrelay.settings import WORKER, Settings
from resetrelay.webhooks import new_secret
from storage.migrate import upgrade


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    sent: float
    depth: float
    oldest_age: float


def _value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def sample(url: str) -> Sample:
    text = httpx.get(url, timeout=10).text
    return Sample(
        time.monotonic(),
        _value(text, 'resetrelay_mails_total{event="sent"}'),
        _value(text, "resetrelay_job_queue_depth"),
        _value(text, "resetrelay_job_queue_oldest_age_seconds"),
    )


class Sampler(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[Sample] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(sample(self.url))
            self.stop.wait(1.0)


def _rate(first: Sample, last: Sample) -> float:
    return (last.sent - first.sent) / (last.at - first.at)


def run_capacity(flood_seconds: int, drain_seconds: int, users: int = 500) -> list[Row]:
    from bench.run import service_env

    secret = new_secret()
    smtp_port = free_port()
    smtp = smtp_sink(smtp_port)
    try:
        with tempfile.TemporaryDirectory() as tmp_text:
            tmp = Path(tmp_text)
            known = [f"known{i}@example.com" for i in range(users)]
            users_file = tmp / "users.json"
            users_file.write_text(
                json.dumps([{"email": e, "password": "Old-Passw0rd!"} for e in known])
            )
            requests_file = tmp / "requests.tsv"
            requests_file.write_text(signed_request_lines(secret, known, 100_000))
            auth0_port, port = free_port(), free_port()
            env = service_env(
                tmp,
                secret,
                INLINE_WORKER="true",
                PORT=str(port),
                HOST="127.0.0.1",
                AUTH0_BASE_URL=f"http://127.0.0.1:{auth0_port}",
                SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
            )
            emulator = [sys.executable, "-m", "resetrelay", "emulate-auth0"]
            emulator += ["--port", str(auth0_port), "--users", str(users_file)]
            url = f"http://127.0.0.1:{port}"
            with (
                server(emulator, env, f"http://127.0.0.1:{auth0_port}/__emulator/requests"),
                server(
                    [sys.executable, "-m", "resetrelay", "serve"], env, url + "/healthz"
                ) as dyno,
            ):
                sampler = Sampler(url + "/metrics")
                sampler.start()
                flood = wrk(url, requests_file, seconds=flood_seconds, connections=32)
                sampler.stop.set()
                sampler.join()
                during = sampler.samples
                time.sleep(1.0)
                drain = [sample(url + "/metrics")]
                cpu_before = dyno.cpu_seconds()
                time.sleep(drain_seconds)
                drain.append(sample(url + "/metrics"))
                cpu = dyno.cpu_seconds() - cpu_before
                rss = dyno.peak_rss_mb()
    finally:
        smtp.terminate()
        smtp.wait(timeout=10)
    if flood.non_2xx or flood.errors:
        raise SystemExit(f"bench: {flood.non_2xx} error answers, {flood.errors} socket errors")
    first, last = during[0], during[-1]
    flood_mails = _rate(first, last)
    growth = (last.depth - first.depth) / (last.at - first.at)
    alone = _rate(*drain)
    # The dyno's own CPU per reset while it drains (the emulator and the sink are other
    # processes): what one core would complete on a quiet machine is 1 s / this.
    cpu_ms = cpu / (drain[1].sent - drain[0].sent) * 1000 if drain[1].sent > drain[0].sent else 0.0
    print(
        f"capacity: flood {flood.requests_per_second:.0f} req/s answered, "
        f"{flood_mails:.1f} resets to a sent mail/s meanwhile; backlog +{growth:.0f} jobs/s, "
        f"oldest due job {last.oldest_age:.1f} s old after {flood_seconds} s; "
        f"worker alone {alone:.1f} resets/s at {cpu_ms:.1f} ms of dyno CPU each "
        f"(one core: {1000 / cpu_ms if cpu_ms else 0:.0f}/s); dyno peak RSS {rss:.0f} MB"
    )
    how = (
        "one dyno (`serve` with its inline worker, SQLite), Auth0 emulator, aiosmtpd "
        f"sink; wrk 32 connections for {flood_seconds} s, existing addresses"
    )
    return [
        Row(
            f"requests answered under a flood ({how})",
            f"**{flood.requests_per_second:,.0f}** req/s",
            "—",
        ),
        Row(
            "resets completed to a sent mail, during that flood / after it (worker alone, "
            f"{drain_seconds} s)",
            f"{flood_mails:.0f} / **{alone:.0f}** resets/s",
            verdict("≥ 150/s", alone >= 150),
        ),
        Row(
            "the dyno's CPU per reset while it drains (Auth0 emulator and sink excluded), "
            "and the rate one whole core would give at that cost",
            f"{cpu_ms:.1f} ms: **{1000 / cpu_ms if cpu_ms else 0:.0f} resets/s** per core",
            verdict("≥ 150/s", cpu_ms > 0 and 1000 / cpu_ms >= 150),
        ),
        Row(
            "backlog during that flood: growth of `resetrelay_job_queue_depth`, and "
            "`resetrelay_job_queue_oldest_age_seconds` at its end",
            f"**+{growth:,.0f} jobs/s**; oldest due job {last.oldest_age:.0f} s old",
            "an alert fires (docs/deploy.md)",
        ),
        Row(
            "peak RSS of the dyno (`serve` with inline worker) through flood and drain",
            f"**{rss:.0f} MB**",
            verdict("< 150 MB", rss < 150),
        ),
    ]


def _queue(settings: Settings, count: int) -> None:
    async def main() -> None:
        runtime = Runtime.build(settings)
        try:
            now = datetime.now(UTC)
            async with runtime.db.begin() as conn:
                for i in range(count):
                    await issue(
                        conn,
                        settings,
                        runtime.codec,
                        user_id=f"auth0|{i}",
                        email=f"user{i}@example.com",
                        connection="db",
                        locale="en",
                        purpose="reset",
                        now=now,
                    )
        finally:
            await runtime.aclose()

    anyio.run(main)


def run_drain(count: int) -> list[Row]:
    from bench.run import service_env

    smtp_port = free_port()
    smtp = smtp_sink(smtp_port)
    try:
        with tempfile.TemporaryDirectory() as tmp_text:
            tmp = Path(tmp_text)
            metrics_port = free_port()
            env = service_env(
                tmp,
                new_secret(),
                SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
                METRICS_PORT=str(metrics_port),
                TICKET_TTL_SECONDS="86400",
            )
            settings = Settings.from_env(env, roles=(WORKER,))
            upgrade(settings.database_url)
            _queue(settings, count)
            url = f"http://127.0.0.1:{metrics_port}"
            with server(
                [sys.executable, "-m", "resetrelay", "worker"], env, url + "/healthz"
            ) as worker:
                started = first = sample(url + "/metrics")
                while first.sent < count:
                    time.sleep(0.5)
                    first = sample(url + "/metrics")
                rss = worker.peak_rss_mb()
    finally:
        smtp.terminate()
        smtp.wait(timeout=10)
    rate = (first.sent - started.sent) / (first.at - started.at)
    print(
        f"drain: {count} mails by `resetrelay worker` at {rate:.0f} mails/s, peak RSS {rss:.0f} MB"
    )
    return [
        Row(
            f"peak RSS of `resetrelay worker` sending {count:,} queued reset mails to an "
            f"aiosmtpd sink (SQLite; {rate:.0f} mails/s)",
            f"**{rss:.0f} MB**",
            verdict("< 150 MB", rss < 150),
        )
    ]
