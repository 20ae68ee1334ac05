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
import tempfile
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


SERVER_CPU, LOAD_CPU = 0, 1  # the request benchmarks' pinning (bench/run.py)


def _pinned(args: list[str], cpu: int | None) -> list[str]:
    """`args` run on CPU `cpu` only (taskset), when the machine has two or more. The
    request benchmarks put the server on one and wrk on the other, so the load
    generator never takes the server's core, and baseline and subject alike get one
    core, as a dyno's web process would. BENCH_PIN=0 turns it off."""
    if cpu is None or os.environ.get("BENCH_PIN", "1") == "0" or shutil.which("taskset") is None:
        return args
    if len(os.sched_getaffinity(0)) < 2:
        return args
    return ["taskset", "-c", str(cpu), *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Usage:
    """A running server's CPU time and peak memory, read from Linux's /proc (every
    thread of the process counts: the SQLite writer's too).

    CPU seconds per request are what the benchmarks compare besides the rate: on a
    shared machine the rate falls when a neighbour takes the core, but the CPU a
    request costs stays close to what it is on a quiet one."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        # utime and stime: fields 14 and 15 of proc(5), counted after the command name.
        return (int(fields[11]) + int(fields[12])) / self._ticks

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):  # the resident set's high-water mark, in kB
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc: peak memory is measured on Linux only")


@contextmanager
def server(
    args: list[str], env: Mapping[str, str], probe: str, *, cpu: int | None = None
) -> Iterator[Usage]:
    # Its log goes to a file, never to a pipe nobody reads: a busy server (the inline
    # worker logs every reset) would fill the pipe and stall on its next log line.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            _pinned(args, cpu),
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            try:
                wait_until_up(probe)
            except RuntimeError:
                log.seek(0)
                sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
                raise
            yield Usage(process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def smtp_sink(port: int, *, cpu: int | None = None) -> subprocess.Popen[bytes]:
    """aiosmtpd's Sink handler (accepts and drops every mail) in its own process."""
    args = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    process = subprocess.Popen(
        _pinned([*args, "-l", f"127.0.0.1:{port}"], cpu),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    return process


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


def client_ip(person: int) -> str:
    """The address the `person`-th address of a benchmark asks from: one of its own,
    in 198.18.0.0/15 (RFC 2544's benchmarking range), as people ask from their own
    networks. From one IP, under the limits the benchmarks lift so that every
    request counts (service_env in bench/run.py), that IP's window would hold every
    request of the run, and each request's per-IP count would read them all: a
    cost no deployment has, where RATE_LIMIT_PER_IP keeps a window to its limit."""
    if not 0 <= person < 2**17:
        raise ValueError("198.18.0.0/15 holds 131,072 addresses")
    return f"198.{18 + (person >> 16)}.{(person >> 8) & 255}.{person & 255}"


def signed_request_lines(secret: str, emails: list[str], count: int) -> str:
    """Tab-separated id, timestamp, signature, body: one fresh webhook-id each; each
    address always asks from the same IP of its own (`client_ip`)."""
    key = key_of(secret)
    now = int(time.time())
    lines = []
    for i in range(count):
        person = i % len(emails)
        body = json.dumps(
            {
                "type": "password_reset.requested",
                "timestamp": "2026-11-28T10:00:00Z",
                "data": {
                    "email": emails[person],
                    "locale": "en",
                    "client_ip": client_ip(person),
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
    requests: int
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


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit(
            "bench: wrk is not installed, so the request benchmarks cannot run "
            "(Debian/Ubuntu: apt-get install wrk)"
        )


@contextmanager
def postgres_database(url: str | None) -> Iterator[str | None]:
    """A database of the benchmark's own on the PostgreSQL server at `url`, dropped
    afterwards; None when no server answers there (the PostgreSQL rows are skipped)."""
    if not url:
        yield None
        return
    import psycopg

    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    name = f"resetrelay_bench_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_postgres(url: str) -> None:
    """The bench's own database (from `postgres_database`) back to empty, as SQLite's
    rounds start from a new file: its tables go, and the service's migration makes
    them again. Otherwise each round would start on the rows of the rounds before."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def wrk(
    url: str,
    requests_file: Path,
    *,
    seconds: int,
    connections: int,
    threads: int = 1,
    cpu: int | None = None,
) -> WrkResult:
    require_wrk()
    out = subprocess.run(
        _pinned(
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
            cpu,
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    try:
        count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        raise SystemExit(f"bench: could not read wrk's output:\n{out}") from None
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        count,
        rate,
        p50,
        p99,
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
    )
