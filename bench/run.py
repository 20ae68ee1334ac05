"""Benchmarks, as ratios against a baseline measured in the same run (machines here
are noisy). `python -m bench.run` (or `make bench`) runs them all and writes the
table to docs/benchmarks.md; `--only NAME` runs one of requested, postgres,
latency, logstream, outbox, limits, capacity, drain, bulk and prints its rows.

requested: signed `password_reset.requested` events against `resetrelay serve`
(SQLite, the web process alone as on a Procfile `web` dyno: INLINE_WORKER=false)
versus a bare Starlette JSON echo on the same uvicorn settings, with wrk and the
same pre-signed requests; each server on CPU 0 and wrk on CPU 1 (taskset, on a
machine with two or more), so wrk never takes the server's core. Rounds alternate
baseline and subject; the ratio is of the medians, by rate and by the server's CPU
per request. The bars: >= 0.6,
p99 <= 30 ms at 32 connections. A minimal honest receiver (bench/minimal_app.py) runs
in the same rounds on SQLite, as a reference: what the least a receiver must do
(verify, dedupe, commit before the answer) costs on the same machine. postgres: the
same on a PostgreSQL database the bench creates and drops (--postgres,
BENCH_POSTGRES_URL), left out when none answers.

latency: existing versus unknown addresses against a full service (inline
worker on, the Auth0 emulator answering lookups, a local SMTP sink), requests
interleaved one at a time. The bar: the same latency for both.

outbox: 5,000 mails through the outbox (the worker with its production
defaults) versus a bare aiosmtplib loop over one connection, both to an
aiosmtpd Sink in its own process (bench/outbox.py); median of `--rounds`
rounds. The bar: >= 0.7.

capacity, drain: one dyno's end-to-end capacity under a flood, the backlog it
builds, and peak memory of `serve` and `worker` (bench/capacity.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    LOAD_CPU,
    SERVER_CPU,
    Usage,
    empty_postgres,
    free_port,
    postgres_database,
    require_wrk,
    server,
    signed_request_lines,
    uvicorn_server,
    wrk,
)
from bench.report import Row, verdict, write
from resetrelay.webhooks import new_secret


def service_env(tmp: Path, secret: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
        "WEBHOOK_SECRET": secret,
        "SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopq",
        "RESET_URL": "https://www.example.com/account/reset?ticket={ticket}",
        "MAIL_FROM": "Bench <no-reply@bench.example>",
        "SMTP_URL": "smtp://127.0.0.1:9",
        "AUTH0_DOMAIN": "auth0.emulator.local",
        "AUTH0_CLIENT_ID": "emulator-client",
        "AUTH0_CLIENT_SECRET": "emulator-secret",
        "BRAND_NAME": "Bench",
        "INLINE_WORKER": "false",
        "AUTO_MIGRATE": "true",
        "RATE_LIMIT_PER_EMAIL": "1000000/hour",
        "RATE_LIMIT_PER_IP": "1000000/hour",
        "REQUESTS_CEILING": "off",  # over it a request gets no lookup and no mail
        "PWNED_PASSWORDS_URL": "",  # no breach check: never the internet
        **extra,
    }


@dataclass(frozen=True)
class Measured:
    rate: float  # requests per second
    p99_ms: float
    cpu_us: float  # the server process's CPU time per request, every thread


def _measure(
    url: str, requests_file: Path, usage: Usage, seconds: int, connections: int
) -> Measured:
    cpu_before = usage.cpu_seconds()
    result = wrk(url, requests_file, seconds=seconds, connections=connections, cpu=LOAD_CPU)
    cpu = usage.cpu_seconds() - cpu_before
    if result.non_2xx or result.errors:
        raise SystemExit(
            f"bench: {result.non_2xx} error answers and {result.errors} socket errors; "
            "the rate is not comparable"
        )
    return Measured(result.requests_per_second, result.latency_p99_ms, cpu / result.requests * 1e6)


def bench_requested(
    seconds: int, connections: int, rounds: int, database_url: str | None = None
) -> list[Row]:
    """`database_url` None: SQLite in a temporary directory; else that PostgreSQL
    database, which every round empties (`empty_postgres` drops its public schema):
    the bench's own, which the caller makes and drops (`postgres_database`)."""
    secret = new_secret()
    label = "SQLite" if database_url is None else "PostgreSQL"
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        emails = [f"user{i}@example.com" for i in range(1000)]
        # Warm-up and measured runs get ids of their own: wrk starts each run at the
        # top of its file, and a measured run that resent the warm-up's ids would
        # time replays (an early answer) instead of new events.
        requests_file = tmp / "requests.tsv"
        requests_file.write_text(signed_request_lines(secret, emails, 150_000))
        warmup_file = tmp / "warmup.tsv"
        warmup_file.write_text(signed_request_lines(secret, emails, 30_000))
        env = service_env(tmp, secret)
        if database_url is not None:
            env["DATABASE_URL"] = database_url
        base: list[Measured] = []
        minimal: list[Measured] = []  # the reference receiver, on SQLite only
        subject: list[Measured] = []
        rss: list[float] = []

        def baseline(target: str, extra: dict[str, str]) -> Measured:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with server(
                uvicorn_server(target, port, env), {**env, **extra}, url + "/", cpu=SERVER_CPU
            ) as usage:
                wrk(url, warmup_file, seconds=2, connections=connections, cpu=LOAD_CPU)
                return _measure(url, requests_file, usage, seconds, connections)

        for round_ in range(1, rounds + 1):
            base.append(baseline("bench.echo_app:app", {}))
            if database_url is None:
                db = tmp / "minimal.db"
                db.unlink(missing_ok=True)
                minimal.append(baseline("bench.minimal_app:app", {"MINIMAL_DB": str(db)}))
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            # Every round starts on an empty database, as the baselines' rounds do.
            (tmp / "bench.db").unlink(missing_ok=True)
            if database_url is not None:
                empty_postgres(database_url)
            with server(
                [sys.executable, "-m", "resetrelay", "serve"],
                {**env, "PORT": str(port), "HOST": "127.0.0.1"},
                url + "/healthz",
                cpu=SERVER_CPU,
            ) as usage:
                wrk(url, warmup_file, seconds=2, connections=connections, cpu=LOAD_CPU)
                subject.append(_measure(url, requests_file, usage, seconds, connections))
                rss.append(usage.peak_rss_mb())
            b, s = base[-1], subject[-1]
            reference = ""
            if minimal:
                m = minimal[-1]
                reference = f" | minimal {m.rate:8.0f} req/s ({m.cpu_us:.0f} µs CPU/req)"
            print(
                f"requested ({label}) round {round_}: echo {b.rate:8.0f} req/s "
                f"(p99 {b.p99_ms:.2f} ms, {b.cpu_us:.0f} µs CPU/req){reference} | resetrelay "
                f"{s.rate:8.0f} req/s (p99 {s.p99_ms:.2f} ms, {s.cpu_us:.0f} µs CPU/req)"
            )
    median = statistics.median
    ratio = median(m.rate for m in subject) / median(m.rate for m in base)
    cpu_ratio = median(m.cpu_us for m in base) / median(m.cpu_us for m in subject)
    p99 = median(m.p99_ms for m in subject)
    print(
        f"requested ({label}): {median(m.rate for m in subject):.0f} vs echo "
        f"{median(m.rate for m in base):.0f} req/s -> ratio {ratio:.2f}; by CPU per "
        f"request {cpu_ratio:.2f}; p99 {p99:.1f} ms (bars: >= 0.60, p99 <= 30 ms)"
    )
    rates = ", ".join(f"{m.rate:,.0f}" for m in subject)
    base_rates = ", ".join(f"{m.rate:,.0f}" for m in base)
    cpus = ", ".join(f"{m.cpu_us:.0f}" for m in subject)
    base_cpus = ", ".join(f"{m.cpu_us:.0f}" for m in base)
    how = (
        f"`resetrelay serve` (web alone) vs a bare Starlette JSON echo, wrk {connections} "
        f"connections, {rounds} rounds of {seconds} s"
    )
    return [
        Row(
            f"signed `requested` events, {label}: rate ({how})",
            f"{rates} vs {base_rates} req/s: **{ratio:.2f}**",
            verdict("≥ 0.6", ratio >= 0.6),
        ),
        Row(
            f"signed `requested` events, {label}: server CPU per request, every thread "
            "(the rate a core would give, less sensitive to a busy machine)",
            f"{cpus} vs {base_cpus} µs: **{cpu_ratio:.2f}**",
            verdict("≥ 0.6", cpu_ratio >= 0.6),
        ),
        Row(
            f"signed `requested` events, {label}: p99 latency at {connections} connections",
            ", ".join(f"{m.p99_ms:.1f}" for m in subject)
            + f" ms (echo {', '.join(f'{m.p99_ms:.1f}' for m in base)} ms): **{p99:.1f} ms**",
            verdict("≤ 30 ms", p99 <= 30),
        ),
        *_minimal_row(minimal, base, subject, connections),
        Row(
            f"peak RSS of `resetrelay serve` (web alone, {label}) under that flood",
            f"**{max(rss):.0f} MB**",
            verdict("< 150 MB", max(rss) < 150),
        ),
    ]


def _minimal_row(
    minimal: list[Measured], base: list[Measured], subject: list[Measured], connections: int
) -> list[Row]:
    """The reference receiver (bench/minimal_app.py) in the same rounds: what the
    least an honest receiver does costs on this machine, against the same echo."""
    if not minimal:
        return []
    median = statistics.median
    of_echo = median(m.rate for m in minimal) / median(m.rate for m in base)
    ours = median(m.rate for m in subject) / median(m.rate for m in minimal)
    rates = ", ".join(f"{m.rate:,.0f}" for m in minimal)
    cpus = ", ".join(f"{m.cpu_us:.0f}" for m in minimal)
    return [
        Row(
            "reference, same rounds: a minimal honest receiver (plain ASGI, the official "
            "`standardwebhooks` check, one SQLite WAL insert keyed by the id and committed "
            f"per request; bench/minimal_app.py), wrk {connections} connections: its rate "
            "vs the echo, and `resetrelay serve`'s vs its",
            f"{rates} req/s ({cpus} µs CPU/req): **{of_echo:.2f}** of the echo; "
            f"resetrelay **{ours:.2f}** of it",
            "—",
        )
    ]


def bench_latency(samples: int) -> list[Row]:
    from bench.latency import run_latency

    ratio = run_latency(samples)
    return [
        Row(
            "`requested` latency, existing vs unknown address, full service with worker "
            f"and emulator, {samples} pairs: median ratio",
            f"**{ratio:.2f}**",
            verdict("the same (0.9 to 1.1)", 0.9 <= ratio <= 1.1),
        )
    ]


def bench_logstream() -> list[Row]:
    from bench.logstream import TARGET_MEDIAN_MS, run_logstream

    result = run_logstream(200)
    return [
        Row(
            "a 1,000-event log-stream batch to its 200, `serve` on SQLite, 200 batches",
            f"median **{result.median_ms:.1f} ms**, p90 {result.p90_ms:.1f} ms; "
            f"{result.events_per_second:,.0f} events/s",
            verdict(f"median < {TARGET_MEDIAN_MS:.0f} ms", result.median_ms < TARGET_MEDIAN_MS),
        )
    ]


def bench_outbox(mails: int, rounds: int) -> list[Row]:
    """Each round runs the baseline and the outbox afresh (new database, new sink);
    the median ratio is the result, as the machines are noisy."""
    from bench.outbox import run_outbox

    ratios = sorted(run_outbox(mails) for _ in range(rounds))
    ratio = ratios[len(ratios) // 2]
    print(f"outbox: median ratio over {rounds} rounds {ratio:.2f} (target >= 0.70)")
    return [
        Row(
            f"{mails:,} mails through the outbox vs a bare aiosmtplib loop, both to an "
            f"aiosmtpd sink, {rounds} rounds",
            ", ".join(f"{r:.2f}" for r in ratios) + f": median **{ratio:.2f}**",
            verdict("≥ 0.7", ratio >= 0.7),
        )
    ]


def bench_limits() -> list[Row]:
    from bench.limits import COUNT, LIMIT, run_limits

    fixed, sliding = run_limits()
    return [
        Row(
            f"{COUNT} requests for one address across a minute boundary, limit {LIMIT}/minute",
            f"fixed window {fixed}, sliding window **{sliding}** let through",
            verdict(f"≤ {LIMIT}", sliding <= LIMIT),
        )
    ]


BENCHES = [
    "requested",
    "postgres",
    "latency",
    "logstream",
    "outbox",
    "limits",
    "capacity",
    "drain",
    "bulk",
]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--only", choices=BENCHES)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--bulk-users", type=int, default=1500)
    parser.add_argument("--bulk-rate", type=int, default=50)
    parser.add_argument("--drain-mails", type=int, default=10_000)
    parser.add_argument("--resets", type=int, default=3_000, help="capacity's drain size")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server where the bench may create (and drop) a database of its "
        "own; when none answers there, the PostgreSQL row is left out",
    )
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[Row] = []
    if args.only in (None, "requested", "postgres"):
        require_wrk()
    if args.only in (None, "requested"):
        rows += bench_requested(args.seconds, args.connections, args.rounds)
    if args.only in (None, "postgres"):
        with postgres_database(args.postgres) as url:
            if url is None:
                print(f"bench: no PostgreSQL answers at {args.postgres}: its row is left out")
            else:
                rows += bench_requested(args.seconds, args.connections, args.rounds, url)
    if args.only in (None, "latency"):
        rows += bench_latency(args.samples)
    if args.only in (None, "logstream"):
        rows += bench_logstream()
    if args.only in (None, "outbox"):
        rows += bench_outbox(args.mails, args.rounds)
    if args.only in (None, "limits"):
        rows += bench_limits()
    if args.only in (None, "capacity"):
        from bench.capacity import run_capacity

        rows += run_capacity(flood_seconds=15, resets=args.resets)
    if args.only in (None, "drain"):
        from bench.capacity import run_drain

        rows += run_drain(args.drain_mails)
    if args.only in (None, "bulk"):
        from bench.bulk import run_bulk

        rows += run_bulk(args.bulk_users, args.bulk_rate)
    print(f"bench finished in {time.monotonic() - started:.0f} s")
    for row in rows:
        print(f"- {row.figure}: {row.result} ({row.bar})")
    # The table in docs/ is the whole suite's: one benchmark alone does not replace it.
    if args.only is None:
        write(rows, "make bench")


if __name__ == "__main__":
    main()
