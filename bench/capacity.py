"""One dyno's end-to-end capacity, and the memory of `serve` and `worker`.

capacity: one dyno is `resetrelay serve` with its inline worker (the web process
and the worker in one), on SQLite, pinned to CPU 0; the Auth0 emulator answers
lookups over HTTP and an aiosmtpd sink in its own process takes the mail, both on
CPU 1 with wrk. The emulator holds one user per reset (`--resets`), and the
service runs with no global ceiling (REQUESTS_CEILING=off), so every request is a
reset that ends in a sent mail.

- flood: wrk floods the dyno with signed `requested` events for those addresses.
  While it runs, `/metrics` is read once a second: the mails sent, the job queue's
  depth and the age of its oldest due job (the gauge an operator alerts on). The
  flood repeats the addresses, so a newer ticket can supersede an older one before
  its mail goes out; only sent mails count, which makes the resets completed during
  the flood a conservative figure.
- drain: every address asks once, through the web process alone
  (INLINE_WORKER=false), so the backlog is one job per address. Then a fresh dyno
  starts on that database and is timed until its last mail is sent: the wall
  clock, and its CPU time per reset from the moment it answers /healthz: what one
  core completes when nobody is knocking. Its start-up (imports, the migration
  check), a one-off, is shown beside that figure rather than spread over the
  resets, where it would count for less the longer the drain.

drain (the `drain` benchmark): 10,000 reset mails queued in the outbox, then a
`resetrelay worker` process sends them all to the sink; its peak resident
memory, and the rate.
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

from bench.harness import (
    LOAD_CPU,
    SERVER_CPU,
    free_port,
    server,
    signed_request_lines,
    smtp_sink,
    wrk,
)
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


def _post_all(url: str, lines: str, concurrency: int = 16) -> None:
    """Send every pre-signed request of `lines` once; each must be answered 202."""

    async def main() -> None:
        items = [line.split("\t") for line in lines.splitlines()]
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def lane(start: int) -> None:
                for wid, ts, sig, body in items[start::concurrency]:
                    headers = {
                        "content-type": "application/json",
                        "webhook-id": wid,
                        "webhook-timestamp": ts,
                        "webhook-signature": sig,
                    }
                    answer = await client.post("/hooks/website", content=body, headers=headers)
                    if answer.status_code != 202:
                        raise SystemExit(f"bench: a queued request got {answer.status_code}")

            async with anyio.create_task_group() as tg:
                for start in range(concurrency):
                    tg.start_soon(lane, start)

    anyio.run(main)


@dataclass(frozen=True)
class Flood:
    rate: float  # requests answered a second
    mails: float  # resets completed to a sent mail a second, meanwhile
    growth: float  # job queue depth's growth a second
    oldest_age: float  # the oldest due job's age at the end, seconds
    rss: float


@dataclass(frozen=True)
class Drain:
    resets: int
    seconds: float  # wall clock, from the dyno's start to its last mail
    cpu: float  # the dyno's CPU seconds meanwhile, every thread
    rss: float
    startup_cpu: float  # CPU seconds until it answered /healthz (imports, migrations)
    after_ready: int  # the resets that completed after that

    @property
    def steady_ms(self) -> float:
        """CPU per reset once the dyno is up: what a running dyno spends on each."""
        return (self.cpu - self.startup_cpu) / self.after_ready * 1000

    @property
    def with_startup_ms(self) -> float:
        return self.cpu / self.resets * 1000


def _flood(env: dict[str, str], known: list[str], secret: str, tmp: Path, seconds: int) -> Flood:
    """The dyno under a flood of signed `requested` events for existing addresses."""
    requests_file = tmp / "flood.tsv"
    requests_file.write_text(signed_request_lines(secret, known, 100_000))
    url = f"http://127.0.0.1:{env['PORT']}"
    with server(
        [sys.executable, "-m", "resetrelay", "serve"], env, url + "/healthz", cpu=SERVER_CPU
    ) as dyno:
        sampler = Sampler(url + "/metrics")
        sampler.start()
        flood = wrk(url, requests_file, seconds=seconds, connections=32, cpu=LOAD_CPU)
        sampler.stop.set()
        sampler.join()
        rss = dyno.peak_rss_mb()
    if flood.non_2xx or flood.errors:
        raise SystemExit(f"bench: {flood.non_2xx} error answers, {flood.errors} socket errors")
    first, last = sampler.samples[0], sampler.samples[-1]
    growth = (last.depth - first.depth) / (last.at - first.at)
    return Flood(flood.requests_per_second, _rate(first, last), growth, last.oldest_age, rss)


def _drain(env: dict[str, str], known: list[str], secret: str) -> Drain:
    """Every address of `known` asks once (the web process alone queues the jobs);
    then a dyno starts on that backlog and is timed until the last mail is sent."""
    url = f"http://127.0.0.1:{env['PORT']}"
    web = {**env, "INLINE_WORKER": "false"}
    with server([sys.executable, "-m", "resetrelay", "serve"], web, url + "/healthz"):
        _post_all(url, signed_request_lines(secret, known, len(known)))
    started = time.monotonic()
    with server(
        [sys.executable, "-m", "resetrelay", "serve"], env, url + "/healthz", cpu=SERVER_CPU
    ) as dyno:
        # Up: what it spent so far is start-up, less the few resets already done.
        startup_cpu = dyno.cpu_seconds()
        at_ready = sample(url + "/metrics").sent
        while (last := sample(url + "/metrics")).sent < len(known):
            if time.monotonic() - started > 600:
                raise SystemExit(f"bench: {last.sent:.0f} of {len(known)} mails after 600 s")
            time.sleep(0.2)
        cpu = dyno.cpu_seconds()  # since its start; `steady_ms` takes the start-up out
        rss = dyno.peak_rss_mb()
    return Drain(len(known), last.at - started, cpu, rss, startup_cpu, len(known) - int(at_ready))


def run_capacity(flood_seconds: int, resets: int) -> list[Row]:
    """One dyno (`serve` with its inline worker, SQLite) on CPU 0; the Auth0 emulator,
    the aiosmtpd sink and wrk share CPU 1. See the module docstring."""
    from bench.run import service_env

    secret = new_secret()
    smtp_port = free_port()
    smtp = smtp_sink(smtp_port, cpu=LOAD_CPU)
    try:
        with tempfile.TemporaryDirectory() as tmp_text:
            tmp = Path(tmp_text)
            known = [f"known{i}@example.com" for i in range(resets)]
            users_file = tmp / "users.json"
            users_file.write_text(
                json.dumps([{"email": e, "password": "Old-Passw0rd!"} for e in known])
            )
            auth0_port = free_port()
            emulator = [sys.executable, "-m", "resetrelay", "emulate-auth0"]
            emulator += ["--port", str(auth0_port), "--users", str(users_file)]
            with server(
                emulator,
                {},
                f"http://127.0.0.1:{auth0_port}/__emulator/requests",
                cpu=LOAD_CPU,
            ):

                def env(name: str) -> dict[str, str]:
                    (tmp / name).mkdir()
                    return service_env(
                        tmp / name,
                        secret,
                        INLINE_WORKER="true",
                        PORT=str(free_port()),
                        HOST="127.0.0.1",
                        AUTH0_BASE_URL=f"http://127.0.0.1:{auth0_port}",
                        SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
                    )

                flood = _flood(env("flood"), known, secret, tmp, flood_seconds)
                drain = _drain(env("drain"), known, secret)
    finally:
        smtp.terminate()
        smtp.wait(timeout=10)
    cpu_ms = drain.steady_ms
    per_core = 1000 / cpu_ms
    print(
        f"capacity: flood {flood.rate:.0f} req/s answered, {flood.mails:.1f} resets to a "
        f"sent mail/s meanwhile; backlog +{flood.growth:.0f} jobs/s, oldest due job "
        f"{flood.oldest_age:.1f} s old after {flood_seconds} s; peak RSS {flood.rss:.0f} MB. "
        f"drain: {drain.resets} resets in {drain.seconds:.1f} s "
        f"({drain.resets / drain.seconds:.0f}/s), {cpu_ms:.2f} ms of dyno CPU each once up "
        f"(one core: {per_core:.0f}/s; {drain.with_startup_ms:.2f} ms with its "
        f"{drain.startup_cpu:.2f} s start-up); peak RSS {drain.rss:.0f} MB"
    )
    how = (
        "one dyno (`serve` with its inline worker, SQLite) on one core; the Auth0 emulator, "
        "aiosmtpd sink and wrk on the other"
    )
    return [
        Row(
            f"requests answered under a flood of existing addresses ({how}; wrk 32 "
            f"connections, {flood_seconds} s), and resets completed to a sent mail meanwhile",
            f"**{flood.rate:,.0f}** req/s; {flood.mails:.0f} resets/s",
            "—",
        ),
        Row(
            "backlog during that flood: growth of `resetrelay_job_queue_depth`, and "
            "`resetrelay_job_queue_oldest_age_seconds` at its end",
            f"**+{flood.growth:,.0f} jobs/s**; oldest due job {flood.oldest_age:.0f} s old",
            "an alert fires (docs/deploy.md)",
        ),
        Row(
            f"{drain.resets:,} resets queued by as many requests from different addresses, "
            "then a fresh dyno started on them: each to a sent mail (an Auth0 lookup, a "
            "ticket, a mail rendered and sent), wall clock from the dyno's start",
            f"{drain.seconds:.1f} s: **{drain.resets / drain.seconds:.0f} resets/s**",
            "—",
        ),
        Row(
            "the dyno's CPU per reset in that drain once it answered /healthz (the emulator "
            "and sink excluded), and the rate one whole core would give at that cost; "
            "in brackets, the same with its start-up (imports, migration check) included",
            f"{cpu_ms:.2f} ms: **{per_core:.0f} resets/s** per core "
            f"({drain.with_startup_ms:.2f} ms with a {drain.startup_cpu:.1f} s start-up)",
            verdict("≥ 150/s", per_core >= 150),
        ),
        Row(
            "peak RSS of the dyno (`serve` with inline worker) under that flood, and in the drain",
            f"**{flood.rss:.0f} MB**, {drain.rss:.0f} MB",
            verdict("< 150 MB", max(flood.rss, drain.rss) < 150),
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
