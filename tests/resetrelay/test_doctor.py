"""`resetrelay check` against real servers on loopback: the Auth0 emulator over HTTP
(uvicorn in a thread), aiosmtpd, and SQLite files; through the console script for
the all-good case and a failing one, in-process for each fault."""

from __future__ import annotations

import ast
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jose import jwt
from starlette.applications import Starlette

from devkit.emulator import create_emulator
from devkit.emulator.connections import DEFAULT_SCOPES, directory
from devkit.pwned import create_range_api
from resetrelay.doctor import CALLS, Report, check_reset_url, granted_scopes, run_checks
from resetrelay.settings import normalise_database_url
from storage import auth0_findings
from storage.database import Database
from tests.conftest import SECRET_KEY, WEBHOOK_SECRET, make_env
from tests.mail.servers import Recorder, Server, StartServer
from tests.support import HOST, free_port, serve_in_thread

DOMAIN = "acme.eu.auth0.com"
CLIENT_SECRET = "emulator-secret"
USERS: list[dict[str, Any]] = [
    {"email": "jane@example.com", "password": "Old-Passw0rd!", "user_id": "auth0|jane"},
    {"email": "sam@example.com", "social": "google-oauth2", "user_id": "google-oauth2|sam"},
]


@dataclass
class Deployment:
    """Everything a deployment talks to, on loopback, and its environment."""

    emulator: Starlette
    auth0_url: str
    relay: Server
    database: Path

    def env(self, **overrides: str) -> dict[str, str]:
        here = {
            "DATABASE_URL": f"sqlite:///{self.database}",
            "AUTH0_DOMAIN": DOMAIN,
            "AUTH0_BASE_URL": self.auth0_url,
            "SMTP_URL": self.relay.url(),
        }
        return make_env(**{**here, **overrides})


@pytest.fixture
def deployment(
    tmp_path: Path, sqlite_template: Path, smtp_server: StartServer
) -> Iterator[Deployment]:
    database = tmp_path / "resetrelay.db"
    shutil.copy(sqlite_template, database)
    app = create_emulator(domain=DOMAIN, users=USERS)
    with serve_in_thread(app) as url:
        yield Deployment(app, url, smtp_server(), database)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resetrelay", "check", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def rows(report: Report) -> dict[str, Any]:
    """name -> row (the last of that name: settings problems share theirs)."""
    return {row.name: row for row in report.rows}


def secrets_of(env: dict[str, str]) -> list[str]:
    return [env["AUTH0_CLIENT_SECRET"], SECRET_KEY, WEBHOOK_SECRET]


# -- through the console script --------------------------------------------------------


def test_all_good_exits_0_with_a_tick_on_every_row(deployment: Deployment) -> None:
    env = deployment.env(AUTH0_LOG_STREAM_TOKEN="stream-token-1234", DEV_MODE="false")
    result = cli(env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    table = lines[:-1]
    assert len(table) == 14  # the breach check and the dispute link add a row each
    assert all(line.startswith("✓ ") for line in table), result.stdout
    assert lines[-1] == "resetrelay: every check holds"
    names = ("settings", "database schema", "Auth0 scopes", "Auth0 answers", "connection")
    for name in (*names, "MAIL FROM"):
        assert any(line.startswith(f"✓ {name} ") for line in table)
    assert "AUTH0_LOG_STREAM_TOKEN set" in result.stdout
    assert "AUTH0_ACTION_SECRET not set (route answers 404)" in result.stdout
    assert any(line.startswith("✓ breach check ") and "disabled" in line for line in table)
    # Unset, DISPUTE_URL is a warning in words, not a failure: the mail still goes out.
    assert 'DISPUTE_URL not set: the "password changed" mail has no' in result.stdout
    for secret in [*secrets_of(env), "stream-token-1234"]:
        assert secret not in result.stdout
    assert deployment.relay.handler.received == []  # nothing was sent


def test_wrong_secret_exits_1_and_json_names_the_fix(deployment: Deployment) -> None:
    env = deployment.env(AUTH0_CLIENT_SECRET="not-the-secret-at-all")
    result = cli(env, "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    found = {row["name"]: row for row in report["checks"]}
    token = found["Auth0 token"]
    assert token["ok"] is False
    assert "401 access_denied" in token["detail"]
    assert "AUTH0_CLIENT_SECRET" in token["fix"]
    assert found["Auth0 scopes"]["status"] == "skipped"
    assert found["connection"]["status"] == "skipped"
    assert found["database schema"]["ok"] is True
    assert found["MAIL FROM"]["ok"] is True
    assert found["log stream"] == {
        "name": "log stream",
        "ok": True,
        "status": "ok",
        "detail": found["log stream"]["detail"],
        "fix": None,
        "info": True,
    }
    assert "not-the-secret-at-all" not in result.stdout


def test_table_gives_a_fix_line_under_each_cross(deployment: Deployment) -> None:
    env = deployment.env(RESET_URL="http://www.example.com/reset#{ticket}")
    result = cli(env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    crosses = [i for i, line in enumerate(lines) if line.startswith("✗ ")]
    assert crosses
    for i in crosses:
        assert lines[i + 1].lstrip().startswith("fix: ")
    assert lines[-1].startswith("resetrelay: ") and "do not hold" in lines[-1]


# -- each fault, in-process -----------------------------------------------------------


@pytest.mark.anyio
async def test_unmigrated_database(deployment: Deployment, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    report = await run_checks(deployment.env(DATABASE_URL=f"sqlite:///{empty}"))
    found = rows(report)
    assert found["database"].ok
    schema = found["database schema"]
    assert not schema.ok
    assert "no schema yet" in schema.detail
    assert schema.fix == "run `resetrelay migrate`"
    assert not report.ok


@pytest.mark.anyio
async def test_missing_sqlite_file_is_not_created(deployment: Deployment, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    report = await run_checks(deployment.env(DATABASE_URL=f"sqlite:///{missing}"))
    found = rows(report)
    assert "does not exist" in found["database"].detail
    assert found["database schema"].status == "skipped"
    assert not missing.exists()


@pytest.mark.anyio
async def test_auth0_unreachable(deployment: Deployment) -> None:
    dead = f"http://{HOST}:{free_port()}"
    report = await run_checks(deployment.env(AUTH0_BASE_URL=dead))
    found = rows(report)
    assert not found["Auth0 token"].ok
    assert f"{dead} does not answer" in found["Auth0 token"].detail
    assert "AUTH0_DOMAIN" in found["Auth0 token"].fix
    assert found["Auth0 scopes"].status == "skipped"
    assert found["connection"].status == "skipped"
    assert found["database schema"].ok and found["MAIL FROM"].ok  # the others still ran


@pytest.mark.anyio
async def test_wrong_client_secret(deployment: Deployment) -> None:
    report = await run_checks(deployment.env(AUTH0_CLIENT_SECRET="wrong-secret-value"))
    token = rows(report)["Auth0 token"]
    assert not token.ok
    assert "wrong client ID or secret" in token.detail
    assert "wrong-secret-value" not in report.table() + report.json()


@pytest.mark.anyio
async def test_a_missing_scope_is_named_with_the_dashboard_step(deployment: Deployment) -> None:
    directory(deployment.emulator).grant(
        [
            *("read:users", "update:users", "delete:sessions", "read:connections"),
            "read:connections_options",
            *("read:device_credentials", "delete:device_credentials"),
        ]
    )
    report = await run_checks(deployment.env())
    scopes = rows(report)["Auth0 scopes"]
    assert not scopes.ok
    assert scopes.detail == (
        "missing delete:refresh_tokens for POST /api/v2/users/{id}/revoke-access"
    )
    assert "Applications → APIs → Auth0 Management API → Machine to Machine Applications" in (
        scopes.fix
    )
    assert "(emulator-client) → tick delete:refresh_tokens" in scopes.fix
    assert scopes.fix.endswith("(or set REVOKE_SESSIONS=device_credentials: refresh tokens only)")
    assert rows(report)["connection"].ok


@pytest.mark.anyio
async def test_revocation_scopes_are_not_needed_without_revocation(
    deployment: Deployment,
) -> None:
    directory(deployment.emulator).grant(
        ["read:users", "update:users", "read:connections", "read:connections_options"]
    )
    for off in ("off", "false"):  # `false` still means off
        found = rows(await run_checks(deployment.env(REVOKE_SESSIONS=off)))
        assert found["Auth0 scopes"].ok
        assert "REVOKE_SESSIONS=off" in found["Auth0 scopes"].detail


@pytest.mark.anyio
async def test_device_credentials_mode_needs_no_session_scopes(deployment: Deployment) -> None:
    directory(deployment.emulator).grant(
        [
            "read:users",
            "update:users",
            "read:connections",
            "read:connections_options",
            "read:device_credentials",
        ]
    )
    scopes = rows(await run_checks(deployment.env(REVOKE_SESSIONS="device_credentials")))
    assert scopes["Auth0 scopes"].detail == (
        "missing delete:device_credentials for DELETE /api/v2/device-credentials/{id}"
    )
    assert scopes["Auth0 scopes"].fix.endswith(
        "(or set REVOKE_SESSIONS=off: nothing is revoked after a reset)"
    )


@pytest.mark.anyio
async def test_a_scope_the_service_was_refused_is_named(deployment: Deployment) -> None:
    # What the workers met, recorded in the database, even where the token check
    # passes (a grant changed after the fact, a scope this check does not know).
    db = Database(normalise_database_url(deployment.env()["DATABASE_URL"]))
    async with db.begin() as conn:
        await auth0_findings.record(
            conn,
            auth0_findings.SCOPE,
            "POST /api/v2/users/{id}/revoke-access",
            detail="delete:sessions",
            now=datetime.now(UTC),
        )
        await auth0_findings.record(
            conn,
            auth0_findings.PLAN,
            "invalidate-remember-browser",
            detail="answered 403",
            now=datetime.now(UTC),
            until=datetime.now(UTC) + timedelta(days=1),
        )
    await db.dispose()
    found = rows(await run_checks(deployment.env()))["Auth0 answers"]
    assert not found.ok
    assert found.detail.startswith(
        "Auth0 refused POST /api/v2/users/{id}/revoke-access: the application lacks "
        "delete:sessions (last at "
    )
    assert "tick delete:sessions" in found.fix


@pytest.mark.anyio
async def test_a_plan_limit_is_information(deployment: Deployment) -> None:
    db = Database(normalise_database_url(deployment.env()["DATABASE_URL"]))
    async with db.begin() as conn:
        await auth0_findings.record(
            conn,
            auth0_findings.PLAN,
            "revoke-access",
            detail="answered 403",
            now=datetime.now(UTC),
            until=datetime.now(UTC) + timedelta(days=1),
        )
    await db.dispose()
    found = rows(await run_checks(deployment.env()))["Auth0 answers"]
    assert found.ok
    assert found.detail.startswith("revoke-access not on this plan (answered 403")


@pytest.mark.anyio
async def test_missing_read_users_is_fatal_without_a_way_out(deployment: Deployment) -> None:
    directory(deployment.emulator).grant(["update:users", "read:connections"])
    scopes = rows(await run_checks(deployment.env(REVOKE_SESSIONS="false")))["Auth0 scopes"]
    assert scopes.detail.startswith("missing read:users for GET /api/v2/users-by-email")
    assert "REVOKE_SESSIONS" not in scopes.fix


@pytest.mark.anyio
async def test_the_policy_needs_read_connections_options(deployment: Deployment) -> None:
    directory(deployment.emulator).grant(
        [s for s in DEFAULT_SCOPES if s != "read:connections_options"]
    )
    found = rows(await run_checks(deployment.env()))
    scopes = found["Auth0 scopes"]
    assert scopes.detail == "missing read:connections_options for GET /api/v2/connections"
    assert "tick read:connections_options" in scopes.fix


@pytest.mark.anyio
async def test_connection_check_needs_read_connections(deployment: Deployment) -> None:
    directory(deployment.emulator).grant([s for s in DEFAULT_SCOPES if s != "read:connections"])
    found = rows(await run_checks(deployment.env()))
    # The service reads the password policy there: a missing scope, named.
    assert found["Auth0 scopes"].detail == "missing read:connections for GET /api/v2/connections"
    connection = found["connection"]
    assert not connection.ok
    assert "lacks read:connections" in connection.detail
    assert "tick read:connections" in connection.fix


@pytest.mark.anyio
async def test_unknown_connection(deployment: Deployment) -> None:
    connection = rows(await run_checks(deployment.env(AUTH0_CONNECTION="Customers")))["connection"]
    assert not connection.ok
    assert connection.detail == "no connection named 'Customers' in this tenant"
    assert "AUTH0_CONNECTION" in connection.fix


@pytest.mark.anyio
async def test_a_social_connection_is_not_a_database_one(deployment: Deployment) -> None:
    connection = rows(await run_checks(deployment.env(AUTH0_CONNECTION="google-oauth2")))[
        "connection"
    ]
    assert not connection.ok
    assert connection.detail == (
        "'google-oauth2' is a google-oauth2 connection, not a database connection"
    )


@pytest.mark.anyio
async def test_smtp_unreachable(deployment: Deployment) -> None:
    url = f"smtp://apikey:smtp-pa55word@{HOST}:{free_port()}"
    report = await run_checks(deployment.env(SMTP_URL=url))
    found = rows(report)
    assert not found["SMTP relay"].ok
    assert f"{HOST}:" in found["SMTP relay"].detail
    assert found["MAIL FROM"].status == "skipped"
    assert "smtp-pa55word" not in report.table() + report.json()


@dataclass
class RefusingMail(Recorder):
    """Answers MAIL FROM with 550, as a relay does for a sender it may not send as."""

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return "550 5.7.1 Sender address rejected: not owned by user"


@pytest.mark.anyio
async def test_mail_from_refused(deployment: Deployment, smtp_server: StartServer) -> None:
    refusing = smtp_server(RefusingMail())
    found = rows(await run_checks(deployment.env(SMTP_URL=refusing.url())))
    assert found["SMTP relay"].ok
    mail_from = found["MAIL FROM"]
    assert not mail_from.ok
    assert mail_from.detail == (
        "the relay refused <no-reply@acme.example>: 550 5.7.1 Sender address rejected: "
        "not owned by user"
    )
    assert "MAIL_FROM" in mail_from.fix
    assert refusing.handler.received == []


@pytest.mark.anyio
async def test_mail_from_accepted_sends_nothing(deployment: Deployment) -> None:
    found = rows(await run_checks(deployment.env()))
    assert found["SMTP relay"].detail.endswith("answers (no TLS)")
    assert found["MAIL FROM"].detail == (
        "the relay accepts <no-reply@acme.example> (nothing was sent)"
    )
    assert deployment.relay.handler.received == []


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never says a word (a dead host's stand-in)."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.mark.anyio
async def test_a_silent_host_cannot_hang_the_check(
    deployment: Deployment, silent_port: int
) -> None:
    env = deployment.env(
        AUTH0_BASE_URL=f"http://{HOST}:{silent_port}", SMTP_URL=f"smtp://{HOST}:{silent_port}"
    )
    started = time.monotonic()
    found = rows(await run_checks(env, step_seconds=0.5))
    assert time.monotonic() - started < 5
    assert "ReadTimeout" in found["Auth0 token"].detail
    assert not found["SMTP relay"].ok


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://www.example.com/reset?ticket={ticket}", "is http: links must be https"),
        ("https://www.example.com/reset?ticket={ticket}#top", "has a fragment"),
        ("https://www.example.com/reset#{ticket}", "has no {ticket} in its path or query"),
        ("https://{ticket}.example.com/reset", "has no {ticket} in its path or query"),
        ("ftp://www.example.com/{ticket}", "must start with https://"),
        ("https:///reset/{ticket}", "has no host"),
        ("https://user:pw@www.example.com/{ticket}", "carries a user or password"),
    ],
)
def test_bad_reset_urls(url: str, problem: str) -> None:
    row = check_reset_url(url)
    assert not row.ok
    assert problem in row.detail
    assert "RESET_URL" in row.fix


@pytest.mark.parametrize(
    "url",
    [
        "https://www.example.com/account/reset?ticket={ticket}",
        "https://www.example.com/reset/{ticket}",
        "http://localhost:8080/reset?ticket={ticket}",
        "http://127.0.0.1:8080/reset/{ticket}",
    ],
)
def test_good_reset_urls(url: str) -> None:
    assert check_reset_url(url).ok


@pytest.mark.anyio
async def test_bad_reset_url_in_a_deployment(deployment: Deployment) -> None:
    report = await run_checks(deployment.env(RESET_URL="http://www.example.com/reset/{ticket}"))
    assert not rows(report)["RESET_URL"].ok
    assert not report.ok


@pytest.mark.anyio
async def test_settings_problems_are_listed_and_the_rest_still_runs(
    deployment: Deployment,
) -> None:
    env = deployment.env(LOG_LEVEL="LOUD")
    del env["AUTH0_CLIENT_SECRET"], env["SMTP_URL"]
    report = await run_checks(env)
    problems = [row.detail for row in report.rows if row.name == "settings"]
    assert "AUTH0_CLIENT_SECRET is required but not set" in problems
    assert "SMTP_URL is required but not set" in problems
    assert "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR" in problems
    found = rows(report)
    assert found["database schema"].ok
    assert found["Auth0 token"].status == "skipped"
    assert "AUTH0_CLIENT_SECRET" in found["Auth0 token"].detail
    assert found["SMTP relay"].status == "skipped"
    assert found["RESET_URL"].ok
    assert not report.ok


@pytest.mark.anyio
async def test_a_malformed_database_url_is_not_replaced_by_the_default(
    deployment: Deployment,
) -> None:
    report = await run_checks(deployment.env(DATABASE_URL="mysql://u:dbpa55@host/db"))
    found = rows(report)
    assert found["database"].status == "skipped"
    assert found["Auth0 token"].ok
    assert "dbpa55" not in report.table()


def test_every_path_in_the_client_is_in_the_scope_table() -> None:
    # A call added to identity/client.py without a row in CALLS fails here.
    tree = ast.parse((Path(__file__).resolve().parents[2] / "identity" / "client.py").read_text())
    paths = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("/")
    }
    assert "/revoke-access" in paths and "/api/v2/users-by-email" in paths
    endpoints = " ".join(call.endpoint for call in CALLS)
    assert [path for path in paths if path not in endpoints] == []
    assert all(call.scopes for call in CALLS)


def test_scopes_come_from_the_answer_or_else_the_jwt() -> None:
    assert granted_scopes({"access_token": "opaque", "scope": "read:users update:users"}) == {
        "read:users",
        "update:users",
    }
    token = jwt.encode({"scope": "read:users delete:sessions"}, "k" * 32, algorithm="HS256")
    assert granted_scopes({"access_token": token}) == {"read:users", "delete:sessions"}
    assert granted_scopes({"access_token": "opaque"}) is None


# -- the emulator's GET /api/v2/connections, over HTTP -----------------------------------


def _token(http: httpx.Client) -> dict[str, str]:
    answer = http.post(
        "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": "emulator-client",
            "client_secret": CLIENT_SECRET,
            "audience": f"https://{DOMAIN}/api/v2/",
        },
    )
    assert answer.status_code == 200
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


def test_emulator_lists_connections_as_auth0(deployment: Deployment) -> None:
    with httpx.Client(base_url=deployment.auth0_url) as http:
        headers = _token(http)
        everything = http.get("/api/v2/connections", headers=headers).json()
        assert {(c["name"], c["strategy"]) for c in everything} == {
            ("Username-Password-Authentication", "auth0"),
            ("google-oauth2", "google-oauth2"),
        }
        found = http.get(
            "/api/v2/connections",
            params={"name": "Username-Password-Authentication", "strategy": "auth0"},
            headers=headers,
        ).json()
        assert len(found) == 1
        assert found[0]["id"].startswith("con_")
        assert found[0]["enabled_clients"] == ["emulator-client"]
        assert set(found[0]) >= {"id", "name", "strategy", "options", "realms", "display_name"}
        social = http.get("/api/v2/connections", params={"strategy": "auth0", "name": "nope"})
        assert social.status_code == 401  # no token
        totals = http.get(
            "/api/v2/connections", params={"include_totals": "true"}, headers=headers
        ).json()
        assert totals["total"] == 2 and totals["start"] == 0 and len(totals["connections"]) == 2


def test_emulator_grant_narrows_later_tokens(deployment: Deployment) -> None:
    with httpx.Client(base_url=deployment.auth0_url) as http:
        before = _token(http)
        assert http.get("/__emulator/grant").json()["scope"] == " ".join(DEFAULT_SCOPES)
        assert http.post("/__emulator/grant", json={"scope": "read:users"}).status_code == 200
        answer = http.post(
            "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "emulator-client",
                "client_secret": CLIENT_SECRET,
                "audience": f"https://{DOMAIN}/api/v2/",
            },
        )
        assert answer.json()["scope"] == "read:users"
        after = {"authorization": f"Bearer {answer.json()['access_token']}"}
        refused = http.get("/api/v2/connections", headers=after)
        assert refused.status_code == 403
        assert refused.json() == {
            "statusCode": 403,
            "error": "Forbidden",
            "message": "Insufficient scope, expected any of: read:connections",
            "errorCode": "insufficient_scope",
        }
        assert http.get("/api/v2/connections", headers=before).status_code == 200
        added = http.post("/__emulator/connections", json={"name": "Staff"})
        assert added.status_code == 201 and added.json()["strategy"] == "auth0"
        assert {c["name"] for c in http.get("/api/v2/connections", headers=before).json()} >= {
            "Staff"
        }


# -- the breach check ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_breach_range_api_answers(deployment: Deployment) -> None:
    range_api = create_range_api()
    with serve_in_thread(range_api) as url:
        report = await run_checks(deployment.env(PWNED_PASSWORDS_URL=url))
    row = rows(report)["breach check"]
    assert row.ok and not row.info and "answers range queries" in row.detail
    # The probe's prefix is fixed: it stands for no password.
    assert range_api.state.requests == [
        {"path": "/range/00000", "prefix": "00000", "padding": True}
    ]


@pytest.mark.anyio
async def test_an_unreachable_breach_range_api_is_a_cross(deployment: Deployment) -> None:
    closed = f"http://{HOST}:{free_port()}"
    for mode, consequence in (("allow", "set unchecked"), ("reject", "answer 503")):
        env = deployment.env(PWNED_PASSWORDS_URL=closed, PWNED_PASSWORDS_ON_ERROR=mode)
        row = rows(await run_checks(env))["breach check"]
        assert row.status == "fail" and "(unreachable)" in row.detail
        assert consequence in row.detail and "PWNED_PASSWORDS_URL" in row.fix


@pytest.mark.anyio
async def test_a_malformed_breach_url_is_not_checked(deployment: Deployment) -> None:
    report = await run_checks(deployment.env(PWNED_PASSWORDS_URL="ftp://nowhere"))
    assert rows(report)["breach check"].status == "skipped"
