"""Process plumbing for the benchmarks: free ports, servers in subprocesses, wrk."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from resetrelay.webhooks import sign

ROOT = Path(__file__).resolve().parent.parent
UVICORN_KWARGS = "log_config=None, access_log=False, proxy_headers=False, server_header=False"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def server(args: list[str], env: Mapping[str, str], probe: str) -> Iterator[None]:
    process = subprocess.Popen(
        args,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(probe)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def uvicorn_server(target: str, port: int, env: Mapping[str, str]) -> list[str]:
    """The baseline started exactly as `resetrelay serve` starts uvicorn."""
    module, _, attr = target.partition(":")
    code = (
        f"import uvicorn; from {module} import {attr}; "
        f"uvicorn.run({attr}, host='127.0.0.1', port={port}, {UVICORN_KWARGS})"
    )
    return [sys.executable, "-c", code]


def key_of(secret: str) -> bytes:
    text = secret.removeprefix("whsec_")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def signed_request_lines(secret: str, emails: list[str], count: int) -> str:
    """Tab-separated id, timestamp, signature, body: one fresh webhook-id each."""
    key = key_of(secret)
    now = int(time.time())
    lines = []
    for i in range(count):
        body = json.dumps(
            {
                "type": "password_reset.requested",
                "timestamp": "2026-11-28T10:00:00Z",
                "data": {
                    "email": emails[i % len(emails)],
                    "locale": "en",
                    "client_ip": "192.0.2.7",
                },
            },
            separators=(",", ":"),
        )
        headers = sign(key, f"msg_{uuid.uuid4().hex}", now, body.encode())
        lines.append(
            "\t".join(
                (
                    headers["webhook-id"],
                    headers["webhook-timestamp"],
                    headers["webhook-signature"],
                    body,
                )
            )
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    non_2xx: int
    errors: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ValueError(f"wrk printed a latency we cannot read: {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]


def wrk(
    url: str, requests_file: Path, *, seconds: int, connections: int, threads: int = 1
) -> WrkResult:
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is needed (apt-get install wrk)")
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "signed.lua"),
            url,
            "--",
            str(requests_file),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    try:
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        raise SystemExit(f"bench: could not read wrk's output:\n{out}") from None
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rate,
        p50,
        p99,
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
    )
