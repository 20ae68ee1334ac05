"""Time-to-200 of Auth0 log-stream batches against `resetrelay serve`.

Each batch is 1,000 JSON Lines events shaped like Auth0's (full `data` objects,
about 600 bytes each), mostly types we only count (`s`, `f`, `seacft`, `sapi`,
...) with about 5 % that are stored with a job each (`scp`, `pwd_leak`,
`limit_wc`); every batch has fresh `log_id`s, so nothing is a duplicate. The
service is the web process alone (SQLite, INLINE_WORKER=false, as on a Procfile
`web` dyno), started as a subprocess like `bench.run`'s `requested`; batches go
one at a time over one keep-alive connection, as Auth0's stream sends them.
The bar: median time-to-200 under 50 ms.

    python -m bench.logstream --batches 200      (or: python -m bench.run --only logstream)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.harness import free_port, server
from resetrelay.webhooks import new_secret

EVENTS_PER_BATCH = 1000
TOKEN = "bench-log-stream-token-0123456789"
IRRELEVANT = ("s", "f", "seacft", "sapi", "fp", "slo", "seccft", "fu", "ssa", "sv")
# (type, share of a batch): about 5 % of events are actionable.
ACTIONABLE = (("scp", 0.025), ("pwd_leak", 0.015), ("limit_wc", 0.01))
WARM_UP = 5
TARGET_MEDIAN_MS = 50.0


@dataclass(frozen=True)
class LogstreamResult:
    batches: int
    median_ms: float
    p90_ms: float
    max_ms: float
    events_per_second: float
    stored: int


def _event(rng: random.Random, batch: int, index: int, at: datetime) -> dict[str, object]:
    draw = rng.random()
    kind = rng.choice(IRRELEVANT)
    for actionable, share in ACTIONABLE:
        if draw < share:
            kind = actionable
            break
        draw -= share
    user = rng.randrange(5000)
    log_id = f"9002026{batch:06d}{index:04d}{uuid.uuid4().hex[:16]}"
    return {
        "log_id": log_id,
        "data": {
            "date": (at + timedelta(milliseconds=index)).isoformat(timespec="milliseconds")[:-6]
            + "Z",
            "type": kind,
            "description": "",
            "client_id": "AaiyAPdpYdesoKnqjj8HJqRn4T5titww",
            "client_name": "Acme Website",
            "ip": f"192.0.2.{rng.randrange(1, 255)}",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
            "details": {"prompts": [], "initiatedAt": 1732788000000, "completedAt": 1732788000400},
            "hostname": "acme.eu.auth0.com",
            "user_id": f"auth0|{user:024x}",
            "user_name": f"user{user}@example.com",
            "connection": "Username-Password-Authentication",
            "connection_id": "con_4Jp3Wz0bP6Q8r2Xv",
            "strategy": "auth0",
            "strategy_type": "database",
            "log_id": log_id,
            "tenant_name": "acme",
        },
    }


def make_batch(batch: int, seed: int = 7) -> bytes:
    rng = random.Random(seed * 1_000_003 + batch)
    at = datetime.now(UTC)
    return "\n".join(
        json.dumps(_event(rng, batch, i, at), separators=(",", ":"))
        for i in range(EVENTS_PER_BATCH)
    ).encode()


def run_logstream(batches: int) -> LogstreamResult:
    from bench.run import service_env

    bodies = [make_batch(i) for i in range(WARM_UP + batches)]
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        port = free_port()
        env = service_env(
            tmp,
            new_secret(),
            AUTH0_LOG_STREAM_TOKEN=TOKEN,
            PORT=str(port),
            HOST="127.0.0.1",
        )
        with (
            server(
                [sys.executable, "-m", "resetrelay", "serve"],
                env,
                f"http://127.0.0.1:{port}/healthz",
            ),
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"authorization": TOKEN, "content-type": "application/json"},
                timeout=30,
            ) as client,
        ):
            timings: list[float] = []
            stored = 0
            started = time.perf_counter()
            for index, body in enumerate(bodies):
                if index == WARM_UP:
                    started = time.perf_counter()
                sent = time.perf_counter()
                answer = client.post("/hooks/auth0", content=body)
                elapsed = time.perf_counter() - sent
                if answer.status_code != 200:
                    raise SystemExit(f"bench: batch {index} answered {answer.status_code}")
                summary = answer.json()
                if summary["received"] != EVENTS_PER_BATCH or summary["malformed"]:
                    raise SystemExit(f"bench: batch {index} was not read whole: {summary}")
                if index >= WARM_UP:
                    timings.append(elapsed * 1000)
                    stored += summary["stored"]
            total = time.perf_counter() - started
    result = LogstreamResult(
        batches=batches,
        median_ms=statistics.median(timings),
        p90_ms=statistics.quantiles(timings, n=10)[8] if len(timings) > 1 else timings[0],
        max_ms=max(timings),
        events_per_second=batches * EVENTS_PER_BATCH / total,
        stored=stored,
    )
    verdict = "ok" if result.median_ms < TARGET_MEDIAN_MS else "OVER"
    print(
        f"logstream: {batches} batches of {EVENTS_PER_BATCH} events "
        f"({len(bodies[-1]) / 1024:.0f} KiB each, {stored} events stored in all): "
        f"time-to-200 median {result.median_ms:.1f} ms, p90 {result.p90_ms:.1f} ms, "
        f"max {result.max_ms:.1f} ms; {result.events_per_second:,.0f} events/s "
        f"(bar: median < {TARGET_MEDIAN_MS:.0f} ms -> {verdict})"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logstream")
    parser.add_argument("--batches", type=int, default=200)
    run_logstream(parser.parse_args().batches)


if __name__ == "__main__":
    main()
