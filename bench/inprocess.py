"""The request path without HTTP: CPU per signed `requested` event through the ASGI app.

`python -m bench.inprocess [--requests N] [--profile] [--postgres URL]` builds the
app on a SQLite database in a temporary directory (the settings `bench.run` gives
the service), or with `--postgres` on a database of its own on that PostgreSQL
server (made and dropped, as `bench.run` does), then calls it directly, 32 requests
at a time as wrk's connections would arrive, and prints the process's CPU time per
request. No uvicorn, no sockets, no other process (PostgreSQL's server runs, but its
CPU is not counted): what is left is our code and the database client, so a change
to them shows in a few seconds and moves this figure far more steadily than the wrk
rounds of `bench.run` (which stay the measure that counts). `--profile` prints
cProfile's top functions (its own overhead inflates every figure; read them as
proportions).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from bench.harness import postgres_database, signed_request_lines
from bench.run import service_env
from hooks.app import create_app
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from resetrelay.webhooks import new_secret
from storage.migrate import upgrade

CONCURRENT = 32
WARM_UP = 2_016  # a multiple of CONCURRENT


def _requests(secret: str, count: int) -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    emails = [f"user{i}@example.com" for i in range(1000)]
    out = []
    for line in signed_request_lines(secret, emails, count).splitlines():
        webhook_id, timestamp, signature, body = line.split("\t")
        raw = body.encode()
        headers = [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            (b"webhook-id", webhook_id.encode()),
            (b"webhook-timestamp", timestamp.encode()),
            (b"webhook-signature", signature.encode()),
        ]
        out.append((headers, raw))
    return out


async def _run(settings: Settings, requests: list[Any], profile: bool) -> float:
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime=runtime)
    gc.collect()
    gc.freeze()  # as `serve` does after start-up (hooks.app)
    statuses: dict[int, int] = {}

    async def one(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/hooks/website",
            "raw_path": b"/hooks/website",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async def waves(batch: list[Any]) -> None:
        for i in range(0, len(batch), CONCURRENT):
            await asyncio.gather(*(one(h, b) for h, b in batch[i : i + CONCURRENT]))

    try:
        await waves(requests[:WARM_UP])
        profiler = cProfile.Profile() if profile else None
        started = time.process_time()
        if profiler:
            profiler.enable()
        await waves(requests[WARM_UP:])
        if profiler:
            profiler.disable()
        cpu = time.process_time() - started
    finally:
        await runtime.aclose()
    if set(statuses) != {202}:
        raise SystemExit(f"bench: answers other than 202: {statuses}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return cpu / (len(requests) - WARM_UP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server instead of SQLite")
    args = parser.parse_args()
    secret = new_secret()
    with tempfile.TemporaryDirectory() as tmp, postgres_database(args.postgres) as url:
        if args.postgres and url is None:
            raise SystemExit(f"bench: no PostgreSQL answers at {args.postgres}")
        extra = {"DATABASE_URL": url} if url else {}
        settings = Settings.from_env(service_env(Path(tmp), secret, **extra))
        upgrade(settings.database_url)
        requests = _requests(secret, WARM_UP + args.requests)
        per_request = asyncio.run(_run(settings, requests, args.profile))
    print(f"inprocess: {per_request * 1e6:.1f} µs of CPU per signed requested event")


if __name__ == "__main__":
    main()
