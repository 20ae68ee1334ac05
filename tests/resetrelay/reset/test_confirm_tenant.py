"""A reset on tenants set up the way real ones are: an application without a scope,
a plan without the session endpoints, a disabled connection. The service runs
in-process; the Auth0 emulator (set to that tenant) on loopback over real HTTP;
mail to a real SMTP server. Each runs on both databases when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from devkit.emulator import EmulatorState, create_emulator
from devkit.emulator.connections import DEFAULT_SCOPES, directory
from storage import auth0_findings, tickets
from tests.conftest import Clock
from tests.resetrelay.reset.test_flow import JANE, STRONG, USERS, Stack, request_ticket
from tests.support import serve_in_thread

pytestmark = pytest.mark.anyio

WITHOUT_DELETE_SESSIONS = [s for s in DEFAULT_SCOPES if s != "delete:sessions"]


@pytest.fixture
def emulator() -> Callable[..., Any]:
    """`with emulator(**create_emulator options) as (app, url)`."""

    @contextmanager
    def start(**options: Any) -> Iterator[tuple[Starlette, str]]:
        app = create_emulator(domain="acme.eu.auth0.com", users=USERS, **options)
        with serve_in_thread(app) as url:
            yield app, url

    return start


@pytest.fixture
def tenant(
    emulator: Callable[..., Any], service: Callable[[str], Any], clock: Clock
) -> Callable[..., Any]:
    """`async with tenant(env=settings, **emulator options) as (stack, state, app)`."""

    @asynccontextmanager
    async def start(
        env: dict[str, str] | None = None, **options: Any
    ) -> AsyncIterator[tuple[Stack, EmulatorState, Starlette]]:
        with emulator(**options) as (app, url):
            async with service(url, **(env or {})) as (client, runtime, smtp):
                yield Stack(client, runtime, url, smtp, clock), app.state.emulator, app

    return start


def metric(stack: Stack, name: str, **labels: str) -> float:
    value = stack.runtime.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def reset(stack: Stack, password: str = STRONG) -> httpx.Response:
    ticket = await request_ticket(stack)
    answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=password)
    await stack.drain()
    return answer


# -- a missing scope: the reset completes, and the service says so loudly ----------------


async def test_without_delete_sessions_the_reset_completes_and_says_so(
    tenant: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with tenant(scopes=WITHOUT_DELETE_SESSIONS) as (stack, state, _app):
        token = state.add_refresh_token("auth0|jane")
        answer = await reset(stack)
        assert (answer.status_code, answer.json()) == (200, {"status": "completed"})
        # Refused for the scope, then refresh tokens one by one (which the grant allows).
        assert len(stack.calls("POST", "/revoke-access")) == 1
        assert token not in state.device_credentials
        assert state.inspect_user("auth0|jane")["sessions_revoked"] == 0
        # Loudly: an error line naming the scope, a metric, readiness detail.
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert [r.getMessage() for r in errors] == ["auth0 application lacks a scope"]
        fields = errors[0].fields  # type: ignore[attr-defined]
        assert fields["scopes"] == "delete:sessions"
        assert fields["call"] == "POST /api/v2/users/{id}/revoke-access"
        assert JANE not in repr(fields) and "auth0|jane" not in repr(fields)
        assert metric(stack, "resetrelay_auth0_misconfigured_total", scope="delete:sessions") == 1
        ready = await stack.client.get("/readyz")
        assert ready.status_code == 200  # resets still complete
        [warning] = ready.json()["warnings"]
        assert "lacks delete:sessions" in warning and "revoke-access" in warning


async def test_granting_the_scope_clears_the_warning(tenant: Callable[..., Any]) -> None:
    async with tenant(scopes=WITHOUT_DELETE_SESSIONS) as (stack, state, app):
        await reset(stack)
        assert "warnings" in (await stack.client.get("/readyz")).json()
        directory(app).grant(DEFAULT_SCOPES)
        stack.clock.advance(3600)  # past the per-address request limit's window
        await reset(stack, "An0ther-Good-Passw0rd")
        # The hour-old token, refused once more, was replaced and the call repeated
        # with a fresh one, which carries the new grant: no restart, no waiting a day.
        assert len(stack.calls("POST", "/revoke-access")) == 3
        assert state.inspect_user("auth0|jane")["sessions_revoked"] == 1
        assert (await stack.client.get("/readyz")).json() == {"status": "ready"}


async def test_without_update_users_the_confirm_is_an_operator_problem(
    tenant: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    async with tenant(scopes=[s for s in DEFAULT_SCOPES if s != "update:users"]) as (
        stack,
        state,
        app,
    ):
        ticket = await request_ticket(stack)
        for _ in range(12):  # more than the attempts a ticket allows: none is counted
            answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
            assert answer.status_code == 503
            assert answer.json()["error"] == "service_misconfigured"
            assert answer.json()["reason"] == "auth0_scope"
            assert int(answer.headers["retry-after"]) >= 60
        assert any("update:users" in repr(getattr(r, "fields", "")) for r in caplog.records)
        ready = await stack.client.get("/readyz")
        assert ready.status_code == 503
        assert any("lacks update:users" in p for p in ready.json()["problems"])
        assert metric(stack, "resetrelay_auth0_misconfigured_total", scope="update:users") == 12
        async with stack.runtime.db.begin() as conn:
            [row] = [r for r in await _tickets(conn) if r.state != tickets.USED]
        assert row.attempts == 0
        directory(app).grant(DEFAULT_SCOPES)
        done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
        assert done.status_code == 200
        assert (await stack.client.get("/readyz")).status_code == 200
        assert state.inspect_user("auth0|jane")["password_changed"] == 1


async def _tickets(conn: Any) -> list[Any]:
    rows = []
    for ticket_id in (await conn.exec_driver_sql("SELECT id FROM tickets")).scalars():
        rows.append(await tickets.by_id(conn, ticket_id))
    return rows


async def test_without_read_users_no_mail_goes_and_readiness_says_why(
    tenant: Callable[..., Any],
) -> None:
    async with tenant(scopes=[s for s in DEFAULT_SCOPES if s != "read:users"]) as (
        stack,
        _state,
        app,
    ):
        answer = await stack.send("password_reset.requested", email=JANE)
        assert answer.status_code == 202  # the same answer for everyone, as always
        await stack.drain()
        assert stack.mails() == []
        ready = await stack.client.get("/readyz")
        assert ready.status_code == 503
        assert any("lacks read:users" in p for p in ready.json()["problems"])
        directory(app).grant(DEFAULT_SCOPES)
        stack.clock.advance(301)  # the job's retry after an operator problem
        await stack.drain()
        assert len(stack.mails()) == 1  # nothing lost
        stack.clock.advance(31)  # past this process's recheck of recorded problems
        assert (await stack.client.get("/readyz")).json() == {"status": "ready"}


# -- a plan without the session endpoints ------------------------------------------------


async def test_a_plan_without_revoke_access_is_asked_once_a_day(
    tenant: Callable[..., Any],
) -> None:
    async with tenant(plan="free") as (stack, state, _app):
        state.add_refresh_token("auth0|jane")
        assert (await reset(stack)).status_code == 200
        assert len(stack.calls("POST", "/revoke-access")) == 1
        assert len(stack.calls("GET", "/device-credentials")) == 1
        assert state.refresh_tokens_of("auth0|jane") == []
        # Nothing more for the plan's missing endpoints (before: three calls a reset).
        assert stack.calls("DELETE", "/sessions") == []
        assert stack.calls("DELETE", "/refresh-tokens") == []
        async with stack.runtime.db.begin() as conn:
            [plan] = await auth0_findings.active(conn, now=stack.clock(), kind=auth0_findings.PLAN)
        assert plan.name == "revoke-access"

        stack.clock.advance(3600)
        state.add_refresh_token("auth0|jane")
        assert (await reset(stack, "An0ther-Good-Passw0rd")).status_code == 200
        assert len(stack.calls("POST", "/revoke-access")) == 1  # remembered: not asked again
        assert len(stack.calls("GET", "/device-credentials")) == 2
        assert state.refresh_tokens_of("auth0|jane") == []
        # No scope problem: readiness says nothing about a plan limit.
        assert (await stack.client.get("/readyz")).json() == {"status": "ready"}

        stack.clock.advance(86400)  # a day later the plan may have changed: asked again
        assert (await reset(stack, "Thrid-Good-Passw0rd")).status_code == 200
        assert len(stack.calls("POST", "/revoke-access")) == 2


async def test_revoke_sessions_device_credentials_never_calls_revoke_access(
    tenant: Callable[..., Any],
) -> None:
    async with tenant(env={"REVOKE_SESSIONS": "device_credentials"}) as (stack, state, _app):
        state.add_refresh_token("auth0|jane")
        assert (await reset(stack)).status_code == 200
        assert stack.calls("POST", "/revoke-access") == []
        assert state.refresh_tokens_of("auth0|jane") == []


# -- after a reset: MFA's remembered browsers (issue 14) ---------------------------------


async def test_a_reset_forgets_remembered_browsers(tenant: Callable[..., Any]) -> None:
    async with tenant() as (stack, state, _app):
        assert (await reset(stack)).status_code == 200
        assert len(stack.calls("POST", "/invalidate-remember-browser")) == 1
        seen = state.inspect_user("auth0|jane")
        assert seen is not None and seen["remember_browser_invalidated"] == 1


# -- a 400 that is not a policy rejection ------------------------------------------------


async def test_a_disabled_connection_is_not_the_users_fault(
    tenant: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    async with tenant() as (stack, state, _app):
        ticket = await request_ticket(stack)
        state.disabled_connections.add("Username-Password-Authentication")
        for _ in range(11):  # before: 422 rule "unknown", and the tenth revoked the link
            answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
            assert answer.status_code == 503
            assert answer.json()["reason"] == "auth0_refused"
        [line] = {r.getMessage() for r in caplog.records if r.levelno == logging.ERROR}
        assert line == "auth0 refused the password change; the setup needs fixing"
        state.disabled_connections.clear()
        done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
        assert done.status_code == 200
