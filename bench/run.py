"""Benchmarks, as ratios against a baseline measured in the same run (machines here
are noisy). `python -m bench.run` (or `make bench`); `--only NAME` runs one of
requested, latency, logstream, outbox, limits, bulk.

requested: signed `password_reset.requested` events against `resetrelay serve`
(SQLite, the web process alone as on a Procfile `web` dyno: INLINE_WORKER=false)
versus a bare Starlette JSON echo on the same uvicorn settings, with wrk and the
same pre-signed requests. Rounds alternate baseline and subject; the ratio is
of the medians. The bar: >= 0.6.

latency: existing versus unknown addresses against a full service (inline
worker on, the Auth0 emulator answering lookups, a local SMTP sink), requests
interleaved one at a time. The bar: the same latency for both.

outbox: 5,000 mails through the outbox (the worker with its production
defaults) versus a bare aiosmtplib loop over one connection, both to an
aiosmtpd Sink in its own process (bench/outbox.py); median of `--rounds`
rounds. The bar: >= 0.7.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (
    free_port,
    server,
    signed_request_lines,
    uvicorn_server,
    wrk,
)
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
        **extra,
    }


def bench_requested(seconds: int, connections: int, rounds: int) -> float:
    secret = new_secret()
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
        base_rates: list[float] = []
        subject_rates: list[float] = []
        for round_ in range(1, rounds + 1):
            port = free_port()
            with server(
                uvicorn_server("bench.echo_app:app", port, env), env, f"http://127.0.0.1:{port}/"
            ):
                url = f"http://127.0.0.1:{port}"
                wrk(url, warmup_file, seconds=2, connections=connections)  # warm-up
                base = wrk(url, requests_file, seconds=seconds, connections=connections)
            port = free_port()
            (tmp / "bench.db").unlink(missing_ok=True)
            with server(
                [sys.executable, "-m", "resetrelay", "serve"],
                {**env, "PORT": str(port), "HOST": "127.0.0.1"},
                f"http://127.0.0.1:{port}/healthz",
            ):
                url = f"http://127.0.0.1:{port}"
                wrk(url, warmup_file, seconds=2, connections=connections)
                subject = wrk(url, requests_file, seconds=seconds, connections=connections)
            base_rates.append(base.requests_per_second)
            subject_rates.append(subject.requests_per_second)
            print(
                f"round {round_}: echo {base.requests_per_second:8.0f} req/s "
                f"(p50 {base.latency_p50_ms:.2f} ms, p99 {base.latency_p99_ms:.2f} ms) | "
                f"resetrelay {subject.requests_per_second:8.0f} req/s "
                f"(p50 {subject.latency_p50_ms:.2f} ms, p99 {subject.latency_p99_ms:.2f} ms, "
                f"non-2xx {subject.non_2xx}, socket errors {subject.errors})"
            )
            if subject.non_2xx or subject.errors:
                raise SystemExit("bench: resetrelay answered errors; the rate is not comparable")
    ratio = statistics.median(subject_rates) / statistics.median(base_rates)
    print(
        f"requested: median {statistics.median(subject_rates):.0f} req/s vs echo "
        f"{statistics.median(base_rates):.0f} req/s -> ratio {ratio:.2f} (bar >= 0.60)"
    )
    return ratio


def bench_latency(samples: int) -> float:
    from bench.latency import run_latency

    return run_latency(samples)


def bench_outbox(mails: int, rounds: int) -> float:
    """Each round runs the baseline and the outbox afresh (new database, new sink);
    the median ratio is the result, as the machines are noisy."""
    from bench.outbox import run_outbox

    ratios = sorted(run_outbox(mails) for _ in range(rounds))
    ratio = ratios[len(ratios) // 2]
    print(f"outbox: median ratio over {rounds} rounds {ratio:.2f} (target >= 0.70)")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument(
        "--only", choices=["requested", "latency", "logstream", "outbox", "limits", "bulk"]
    )
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--bulk-users", type=int, default=1500)
    parser.add_argument("--bulk-rate", type=int, default=50)
    args = parser.parse_args()
    started = time.monotonic()
    if args.only in (None, "requested"):
        bench_requested(args.seconds, args.connections, args.rounds)
    if args.only in (None, "latency"):
        bench_latency(args.samples)
    if args.only in (None, "logstream"):
        from bench.logstream import run_logstream

        run_logstream(200)
    if args.only in (None, "outbox"):
        bench_outbox(args.mails, args.rounds)
    if args.only in (None, "limits"):
        from bench.limits import run_limits

        run_limits()
    if args.only in (None, "bulk"):
        from bench.bulk import run_bulk

        run_bulk(args.bulk_users, args.bulk_rate)
    print(f"bench finished in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
