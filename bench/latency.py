"""Latency of `requested` for existing versus unknown addresses, on a full service.

The service runs as `resetrelay serve` with its inline worker, the Auth0
emulator answers lookups over HTTP and a loopback SMTP sink takes the mail, so
the work an existing address causes (lookup, ticket, mail) really happens,
after the answer. Requests alternate between an existing and an unknown
address, one at a time; the medians and 90th percentiles are compared.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller

from bench.harness import free_port, key_of, server
from resetrelay.webhooks import new_secret, sign


class Sink:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


def run_latency(samples: int) -> float:
    from bench.run import service_env

    secret = new_secret()
    key = key_of(secret)
    users = [
        {"email": f"known{i}@example.com", "password": "Old-Passw0rd!"} for i in range(samples)
    ]
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        with tempfile.TemporaryDirectory() as tmp_text:
            tmp = Path(tmp_text)
            (tmp / "users.json").write_text(json.dumps(users))
            auth0_port, port = free_port(), free_port()
            env = service_env(
                tmp,
                secret,
                INLINE_WORKER="true",
                PORT=str(port),
                HOST="127.0.0.1",
                AUTH0_BASE_URL=f"http://127.0.0.1:{auth0_port}",
                AUTH0_CLIENT_ID="emulator-client",
                AUTH0_CLIENT_SECRET="emulator-secret",
                SMTP_URL=f"smtp://127.0.0.1:{smtp.port}",
            )
            emulator = [
                sys.executable,
                "-m",
                "resetrelay",
                "emulate-auth0",
                "--port",
                str(auth0_port),
                "--users",
                str(tmp / "users.json"),
            ]
            with (
                server(emulator, env, f"http://127.0.0.1:{auth0_port}/__emulator/requests"),
                server(
                    [sys.executable, "-m", "resetrelay", "serve"],
                    env,
                    f"http://127.0.0.1:{port}/healthz",
                ),
                httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
            ):
                timings: dict[str, list[float]] = {"existing": [], "unknown": []}
                for i in range(-20, samples):  # the first 20 of each warm up
                    for kind in ("existing", "unknown"):
                        email = (
                            f"known{abs(i)}@example.com"
                            if kind == "existing"
                            else f"nobody{uuid.uuid4().hex[:8]}@example.com"
                        )
                        body = json.dumps(
                            {"type": "password_reset.requested", "data": {"email": email}}
                        ).encode()
                        headers = sign(key, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
                        headers["content-type"] = "application/json"
                        started = time.perf_counter()
                        answer = client.post("/hooks/website", content=body, headers=headers)
                        elapsed = (time.perf_counter() - started) * 1000
                        if answer.status_code != 202:
                            raise SystemExit(f"bench: unexpected {answer.status_code}")
                        if i >= 0:
                            timings[kind].append(elapsed)
                        time.sleep(0.002)
                sent = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        smtp.stop()
    med = {k: statistics.median(v) for k, v in timings.items()}
    p90 = {k: statistics.quantiles(v, n=10)[-1] for k, v in timings.items()}
    ratio = med["existing"] / med["unknown"]
    mails = next(
        (
            line
            for line in sent.splitlines()
            if line.startswith('resetrelay_mails_total{event="sent"}')
        ),
        "none",
    )
    print(
        f"latency: existing median {med['existing']:.2f} ms (p90 {p90['existing']:.2f}) | "
        f"unknown median {med['unknown']:.2f} ms (p90 {p90['unknown']:.2f}) | "
        f"ratio {ratio:.2f} over {samples} pairs; worker meanwhile: {mails}"
    )
    return ratio
