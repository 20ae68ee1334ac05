"""bulk-reset against a rate-limited tenant: users/s as a share of the limit.

The Auth0 emulator (real HTTP, in a thread) holds `users` database users and
answers the Management API at `rate` requests a second (Auth0's token bucket,
`x-ratelimit-*`); resetrelay is told the same limit (AUTH0_RATE_LIMIT). Two
`resetrelay worker` processes, warmed up, work through a list of every user
with `resetrelay bulk-reset`; mails go to an aiosmtpd sink. One user costs one
Management API request, so the ceiling is `rate` users a second; the figure is
the measured users/s (from the run's creation to its last line, as stored in
the database) divided by `rate`. The bar: >= 0.9.

    python -m bench.run --only bulk [--bulk-users 1500 --bulk-rate 50]
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from bench.harness import free_port
from bench.report import Row, verdict
from devkit.emulator import RateLimitConfig, create_emulator
from devkit.emulator.users import user_from_spec


class _Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@contextmanager
def _emulator(app: Any) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    while not served.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        thread.join(timeout=10)


def run_bulk(users: int, rate: int) -> list[Row]:
    app = create_emulator(rate_limit=RateLimitConfig(per_second=rate, burst=rate))
    state = app.state.emulator
    template = user_from_spec({"email": "x@example.com", "password": "Old-Passw0rd!"}, "")
    for i in range(users):
        user = dataclasses.replace(template, user_id=f"auth0|b{i}", email=f"user{i}@example.com")
        state.users[user.user_id] = user
    sink = Controller(_Sink(), hostname="127.0.0.1", port=free_port())
    sink.start()
    with tempfile.TemporaryDirectory() as tmp_text, _emulator(app) as auth0:
        tmp = Path(tmp_text)
        db = f"sqlite:///{tmp}/bulk.db"
        env = {
            "DATABASE_URL": db,
            "SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopq",
            "RESET_URL": "https://www.example.com/account/reset?ticket={ticket}",
            "MAIL_FROM": "Bench <no-reply@bench.example>",
            "BRAND_NAME": "Bench",
            "SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
            "AUTH0_DOMAIN": state.domain,
            "AUTH0_BASE_URL": auth0,
            "AUTH0_CLIENT_ID": "emulator-client",
            "AUTH0_CLIENT_SECRET": "emulator-secret",
            "AUTH0_RATE_LIMIT": f"{rate}/second",
            "BULK_MAILS_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
            "PWNED_PASSWORDS_URL": "",  # no breach check: never the internet
        }
        command = [sys.executable, "-m", "resetrelay"]
        subprocess.run([*command, "migrate"], env=env, check=True, capture_output=True)
        workers = [
            subprocess.Popen([*command, "worker"], env=env, stdout=subprocess.DEVNULL)
            for _ in range(2)
        ]
        try:
            time.sleep(8)  # the workers import and connect before the clock starts
            listing = tmp / "users.csv"
            listing.write_text("email\n" + "".join(f"user{i}@example.com\n" for i in range(users)))
            subprocess.run(
                [*command, "bulk-reset", "--from", str(listing), "--every", "5"],
                env=env,
                check=True,
            )
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=30)
        engine = create_engine(f"sqlite:///{tmp}/bulk.db")
        with engine.connect() as conn:
            started, ended, done = conn.execute(
                text(
                    "SELECT (SELECT created_at FROM bulk_runs), max(updated_at), count(*) "
                    "FROM bulk_rows WHERE outcome = 'mailed'"
                )
            ).one()
        engine.dispose()
    sink.stop()
    seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    per_second = float(done) / seconds
    ratio = per_second / rate
    print(
        f"bulk: {done} users mailed in {seconds:.1f} s = {per_second:.1f} users/s against a "
        f"limit of {rate} requests/s: ratio {ratio:.2f} (target >= 0.90)"
    )
    return [
        Row(
            f"`resetrelay bulk-reset` of {users} database users, two workers on SQLite, the "
            f"Auth0 emulator and `AUTH0_RATE_LIMIT` both at {rate} requests/s: users/s over "
            "the limit",
            f"{per_second:.1f} users/s: **{ratio:.2f}**",
            verdict(">= 0.9", ratio >= 0.9),
        )
    ]
