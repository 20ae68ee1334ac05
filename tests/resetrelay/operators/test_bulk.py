"""`resetrelay bulk-reset` through the real console script, on SQLite and PostgreSQL:
a real web process, real workers, the Auth0 emulator over real HTTP (rate limited,
with bursts of 429s) and a real aiosmtpd server that counts the mails."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from devkit.emulator import Fault, RateLimitConfig, create_emulator
from devkit.emulator.state import EmulatorState
from devkit.emulator.users import user_from_spec
from resetrelay.operators.bulk import BulkError, parse_breach_list
from resetrelay.webhooks import sign
from storage.migrate import sync_url
from tests.conftest import WEBHOOK_SECRET, make_env
from tests.mail.servers import Recorder, StartServer
from tests.support import free_port, serve_in_thread

RATE = 200  # Management API requests a second, at the emulator and in AUTH0_RATE_LIMIT


# -- the file -----------------------------------------------------------------------


def test_a_file_without_an_email_or_user_id_column_is_refused() -> None:
    with pytest.raises(BulkError, match=r"no email or user_id column .*line 1: 'name', 'mail'"):
        parse_breach_list("name,mail\nJane,jane@example.com\n", "0" * 64)


def test_malformed_lines_are_reported_by_line_number_and_never_looked_up() -> None:
    text_ = (
        "\ufeffName,Email\n"  # a spreadsheet's header, BOM already stripped by the reader
        "Jane,jane@example.com\n"
        "\n"
        "Bob,not-an-address\n"
        "Ann,\n"
        "Jane again,JANE@example.com\n"
        "Short\n"
        "Eve,eve@example.com\n"
    ).removeprefix("\ufeff")
    breach = parse_breach_list(text_, "0" * 64)
    assert breach.key_column == "email"
    assert breach.lines == [(2, "jane@example.com"), (8, "eve@example.com")]
    assert breach.skipped == [
        (4, "invalid", "not one email address"),
        (5, "invalid", "no email"),
        (6, "duplicate", "same email as line 2"),
        (7, "invalid", "no email"),
    ]
    assert breach.total == 6


def test_a_user_id_column_is_taken_as_it_is() -> None:
    breach = parse_breach_list('user_id\nauth0|a\n"google-oauth2|b"\n', "0" * 64)
    assert breach.key_column == "user_id"
    assert breach.lines == [(2, "auth0|a"), (3, "google-oauth2|b")]


def test_a_file_that_is_not_csv_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(b'email\n"a@example.com\n')
    env = make_env(DATABASE_URL=f"sqlite:///{tmp_path}/unused.db")
    result = _run("bulk-reset", "--from", str(path), env=env)
    assert result.returncode == 1
    assert re.fullmatch(
        r"resetrelay: .*list\.csv line \d+: not CSV \(.*\)\n", result.stderr.decode()
    ), result.stderr
    path.write_bytes(b"email\n\xff\xfe@example.com\n")
    result = _run("bulk-reset", "--from", str(path), env=env)
    assert result.stderr.decode() == f"resetrelay: {path} is not UTF-8 text (line 2)\n"


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "resetrelay", *args], env=env, capture_output=True, timeout=120
    )


# -- a whole run --------------------------------------------------------------------


@dataclasses.dataclass
class Tenant:
    url: str
    state: EmulatorState
    database: list[str]  # addresses of database users on the list
    social: list[str]
    unknown: list[str]
    live: str  # a database user who asks for a reset on the website meanwhile


@pytest.fixture
def tenant(database_url: str) -> Iterator[Tenant]:
    # The 5,000 users on PostgreSQL, production's database; a fifth of them on
    # SQLite, where the same run, kill and resume would double the suite's slowest test.
    scale = 1 if database_url.startswith("postgresql") else 5
    app = create_emulator(rate_limit=RateLimitConfig(per_second=RATE, burst=RATE))
    state: EmulatorState = app.state.emulator
    # One scrypt hash for every user: hashing thousands would take a minute.
    template = user_from_spec({"email": "x@example.com", "password": "Old-Passw0rd!"}, "")
    database = [f"user{i}@example.com" for i in range(3000 // scale)]
    for i, address in enumerate([*database, "live@example.com"]):
        user = dataclasses.replace(template, user_id=f"auth0|bulk{i}", email=address, name=address)
        state.users[user.user_id] = user
    social = [f"social{i}@example.com" for i in range(1000 // scale)]
    for address in social:
        state.add_user({"email": address, "social": "google-oauth2"})
    unknown = [f"nobody{i}@example.com" for i in range(1000 // scale)]
    with serve_in_thread(app) as url:
        yield Tenant(url, state, database, social, unknown, "live@example.com")


class Bursts:
    """Bursts of 429s from the emulator while a run goes on (beside its own limit)."""

    def __init__(self, state: EmulatorState) -> None:
        self._state, self._stop = state, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(5.0):
            self._state.add_fault(Fault("/api/v2/users-by-email", 429, times=10, reset_after=1))

    def __enter__(self) -> Bursts:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _done(database_url: str, run_id: str) -> int:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM bulk_rows WHERE run_id = :r AND state = 'done'"),
                    {"r": run_id},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "resetrelay", *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _request_reset(web: str, address: str) -> None:
    body = json.dumps(
        {
            "type": "password_reset.requested",
            "timestamp": "2026-12-01T00:00:00Z",
            "data": {"email": address},
        }
    ).encode()
    key = __import__("base64").b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
    headers = sign(key, "msg_live_1", int(time.time()), body)
    answer = httpx.post(
        f"{web}/hooks/website",
        content=body,
        headers={**headers, "content-type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


def _wait_for(what: str, check: object, timeout: float) -> float:
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_breach_list_survives_sigkill_and_mails_each_user_once(
    database_url: str, tenant: Tenant, smtp_server: StartServer, tmp_path: Path
) -> None:
    smtp = smtp_server(Recorder())
    web_port = free_port()
    env = make_env(
        DATABASE_URL=database_url,
        AUTH0_BASE_URL=tenant.url,
        AUTH0_DOMAIN=tenant.state.domain,
        AUTH0_RATE_LIMIT=f"{RATE}/second",
        AUTH0_LIVE_RESERVE="20",
        BULK_MAILS_PER_MINUTE=str(RATE * 60 * 2),
        SMTP_URL=smtp.url(),
        MAIL_RETRY_INITIAL_SECONDS="1",
        PORT=str(web_port),
        HOST="127.0.0.1",
        REQUESTS_CEILING="off",
        LOG_LEVEL="WARNING",
    )
    lines = [*tenant.database, *tenant.social, *tenant.unknown]
    lines.insert(10, "not an address")  # line 12: invalid
    lines.insert(20, tenant.database[0].upper())  # line 22: the same user again
    breach = tmp_path / "breach.csv"
    breach.write_text("email,name\n" + "".join(f"{a},x\n" for a in lines))
    total = len(lines)

    dry = _run("bulk-reset", "--from", str(breach), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout.decode()
    assert f"lines                 {total:>8}" in out
    assert "invalid                      1" in out and "duplicate in the file        1" in out
    assert "u***@example.com" in out and "user0@example.com" not in out

    logs = tmp_path
    web = _start(["serve"], {**env, "INLINE_WORKER": "false"}, logs / "web.log")
    workers = [_start(["worker"], env, logs / f"worker{i}.log") for i in range(2)]
    cli = workers[0]
    try:
        # Bursts of 429s while the first half runs (a lone request in the second
        # half would meet every injected 429 and only test the retry budget).
        with Bursts(tenant.state):
            cli = _start(["bulk-reset", "--from", str(breach), "--every", "1"], env, logs / "a.log")
            run_id = "br-" + __import__("hashlib").sha256(breach.read_bytes()).hexdigest()[:16]
            _wait_for("half the run", lambda: _done(database_url, run_id) >= total // 2, 300)
            # Halfway: the command and one worker die at once, mid-transaction maybe.
            cli.send_signal(signal.SIGKILL)
            workers[0].send_signal(signal.SIGKILL)
            cli.wait(), workers[0].wait()
        halfway = _done(database_url, run_id)
        assert halfway < total

        # The website's own flow keeps working while the list is worked through.
        _request_reset(f"http://127.0.0.1:{web_port}", tenant.live)
        live_wait = _wait_for(
            "the live mail",
            lambda: any(tenant.live in r.rcpt_tos for r in smtp.handler.received),
            15,
        )

        resumed = subprocess.run(
            [
                sys.executable,
                "-m",
                "resetrelay",
                "bulk-reset",
                "--from",
                str(breach),
                "--every",
                "1",
            ],
            env=env,
            capture_output=True,
            timeout=400,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        expected = len(tenant.database) + 1
        _wait_for(
            "every mail",
            lambda: len({r for i in smtp.handler.received for r in i.rcpt_tos}) >= expected,
            120,
        )
        time.sleep(1.0)  # anything extra would arrive now
    finally:
        if cli.poll() is None:
            cli.kill()
        for process in [web, *workers]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [web, *workers]:
            process.wait(timeout=30)

    # One mail per user and run: one Message-ID each. A worker killed between the
    # relay's 250 and recording "sent" makes the courier send that same message
    # again (at-least-once delivery, same Message-ID); those re-sends are counted
    # and bounded by what one worker had in flight, never a second ticket or mail.
    deliveries = [
        (r, item.message()["message-id"]) for item in smtp.handler.received for r in item.rcpt_tos
    ]
    mails = {r: {m for rr, m in deliveries if rr == r} for r, _ in deliveries}
    assert len(mails[tenant.live]) == 1
    del mails[tenant.live]
    assert sorted(mails) == sorted(tenant.database)  # every database user; nobody else
    assert all(len(ids) == 1 for ids in mails.values()), [a for a, i in mails.items() if len(i) > 1]
    resent = len(deliveries) - len(tenant.database) - 1
    assert resent <= 32  # at most one claim of the courier's lane in the killed worker
    subjects = {
        item.message()["subject"]
        for item in smtp.handler.received
        if tenant.live not in item.rcpt_tos
    }
    assert len(subjects) == 1  # all of them the breached mail

    first = (logs / "a.log").read_text()
    assert re.search(r"bulk-reset: \d+/\d+ lines \(\d+\.\d%\), \d+\.\d users/s, ETA \d+s", first)
    out = resumed.stdout.decode()
    assert f"bulk-reset run {run_id} continues" in out
    assert f"{total}/{total} lines (100.0%)" in out
    table = dict(
        (m.group(1).strip(), int(m.group(2)))
        for m in re.finditer(r"^  ([a-z (),-]+?)\s+(\d+)$", out, re.M)
    )
    assert table["mailed"] == len(tenant.database)
    assert table["not found"] == len(tenant.unknown)
    assert table["social-only"] == len(tenant.social)
    assert table["duplicate"] == 1 and table["invalid"] == 1
    assert table["failed"] == 0 and table["total"] == total
    assert table["(already done before)"] >= halfway
    assert "line 12" in out and "not one email address" in out
    assert "line 22" in out and "same email as line 2" in out
    print(
        f"live mail after {live_wait:.1f}s; halfway at {halfway}; {resent} re-sent after SIGKILL",
        file=sys.stderr,
    )
