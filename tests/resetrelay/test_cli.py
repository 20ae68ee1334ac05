from __future__ import annotations

import argparse
import base64
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

from resetrelay.webhooks import verify
from tests.conftest import WEBHOOK_SECRET, make_env
from tests.support import free_port


def run(
    *args: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "resetrelay", *args],
        env=env or make_env(),
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def test_sign_prints_headers_that_verify(tmp_path: Path) -> None:
    body = b'{"type":"password_reset.requested","data":{"email":"jane@example.com"}}'
    (tmp_path / "body.json").write_bytes(body)
    result = run("sign", str(tmp_path / "body.json"))
    assert result.returncode == 0, result.stderr
    headers = dict(line.split(": ", 1) for line in result.stdout.decode().splitlines())
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
    assert verify(headers, body, keys=(key,), now=time.time(), tolerance=300)[0].startswith("msg_")


def test_sign_reads_stdin_and_prints_curl_arguments() -> None:
    result = run("sign", "--curl", "--id", "msg_1", "--timestamp", "1800000000", stdin=b"{}")
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "-H 'webhook-id: msg_1'"
    assert lines[1] == "-H 'webhook-timestamp: 1800000000'"
    assert lines[2].startswith("-H 'webhook-signature: v1,")


def test_secret_prints_fresh_values() -> None:
    first, second = run("secret").stdout.strip(), run("secret").stdout.strip()
    assert first.startswith(b"whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix(b"whsec_"))) == 32
    assert len(run("secret", "--key").stdout.strip()) >= 43


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    env = make_env(DATABASE_URL=f"sqlite:///{tmp_path}/x.db")
    for _ in range(2):
        result = run("migrate", env=env)
        assert result.returncode == 0, result.stderr
        assert b"up to date" in result.stdout


def _stops_on_sigterm(args: list[str], env: dict[str, str], ready: bytes | None) -> float:
    process = subprocess.Popen(
        [sys.executable, "-m", "resetrelay", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    time.sleep(3 if ready is None else 0)
    if ready is not None:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        seen = b""
        while ready not in seen and time.monotonic() < deadline:
            seen += process.stdout.readline()
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=25)
    elapsed = time.monotonic() - started
    assert process.stdout is not None
    rest = process.stdout.read()
    if ready is None:
        assert code == 0, rest
    else:
        # uvicorn shuts down gracefully, then re-raises the signal it caught, so the
        # exit status says "terminated by SIGTERM" as the platform expects.
        assert code in (0, -signal.SIGTERM), rest
        assert b"Application shutdown complete" in rest
    return elapsed


def test_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = make_env(DATABASE_URL=f"sqlite:///{tmp_path}/w.db")
    assert run("migrate", env=env).returncode == 0
    assert _stops_on_sigterm(["worker"], env, None) < 25


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = str(free_port())
    env = make_env(
        DATABASE_URL=f"sqlite:///{tmp_path}/s.db",
        PORT=port,
        HOST="127.0.0.1",
        AUTO_MIGRATE="true",
        INLINE_WORKER="true",
    )
    assert _stops_on_sigterm(["serve"], env, b"Application startup complete") < 25


def test_version_and_help_on_every_command() -> None:
    from resetrelay import __version__
    from resetrelay.cli import parser

    assert run("--version").stdout.decode().strip() == f"resetrelay {__version__}"
    group = parser()._subparsers
    assert group is not None
    commands = cast("dict[str, argparse.ArgumentParser]", group._group_actions[0].choices)
    for name, sub in commands.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"{name} {action.dest}"


def test_sign_with_a_missing_file_says_so_in_one_line(tmp_path: Path) -> None:
    result = run("sign", str(tmp_path / "nope.json"))
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        f"resetrelay: cannot read {tmp_path / 'nope.json'}: No such file or directory"
    )


def test_migrate_against_an_unreachable_database_is_one_line() -> None:
    port = free_port()
    result = run("migrate", env={"DATABASE_URL": f"postgres://u:hunter2@127.0.0.1:{port}/x"})
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "does not answer" in lines[0], lines
    assert "hunter2" not in lines[0] and "u:***@" in lines[0]


def test_a_worker_on_an_unmigrated_database_says_so_and_exits(tmp_path: Path) -> None:
    result = run("worker", env=make_env(DATABASE_URL=f"sqlite:///{tmp_path}/new.db"))
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        "resetrelay: the database has no schema yet: run `resetrelay migrate`"
    )


def test_send_test_mail_to_an_unreachable_relay_is_one_line() -> None:
    env = make_env(SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    result = run("send-test-mail", "--to", "jane@example.com", env=env)
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resetrelay: the mail was not sent:"), lines


def test_a_worker_serves_its_own_metrics_on_metrics_port(tmp_path: Path) -> None:
    import httpx

    port = free_port()
    env = make_env(DATABASE_URL=f"sqlite:///{tmp_path}/wm.db", METRICS_PORT=str(port))
    assert run("migrate", env=env).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "resetrelay", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200
        assert "resetrelay_mails_total" in answer.text or "# TYPE resetrelay_mails" in answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=25) == 0
