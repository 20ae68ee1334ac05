"""The real Auth0 Action (integrations/auth0-action/post-change-password.js) run
under Node.js 22, the version Auth0 runs Actions on, by its driver `run-action.js`,
against the service listening on a loopback port (uvicorn in the test's event
loop, `tests.support.serve_in_loop`; Node runs as a subprocess awaited with
`anyio.run_process`, so the loop keeps answering while Node waits for it).

Node 22 comes from `scripts/ensure-node22` (run by `make tools`, so by `make test`)
into .tools/node22. A missing one fails here rather than skipping, so the Action
cannot silently go untested.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devkit.emulator import create_emulator
from hooks.actiontoken import verify
from hooks.app import create_app
from resetrelay.reset.requests import issue
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from storage import tickets
from tests.conftest import Clock
from tests.support import serve_in_loop, serve_in_thread

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "integrations" / "auth0-action" / "run-action.js"
NODE = ROOT / ".tools" / "node22" / "bin" / "node"
SECRET = "action-secret-node-5b8e1f2a3c4d5e6f7a8b9c0d"
DOMAIN = "acme.eu.auth0.com"


def node() -> str:
    if not NODE.exists():
        pytest.fail(
            "Node.js 22 is required to test the Auth0 Action: run `make tools` "
            "(scripts/ensure-node22 installs it into .tools/node22).",
            pytrace=False,
        )
    return str(NODE)


def test_the_action_runs_on_node_22() -> None:
    version = subprocess.run(
        [node(), "-p", "process.versions.node"], capture_output=True, text=True, check=True
    )
    assert version.stdout.split(".")[0] == "22"


async def run_action(url: str, user_id: str, *extra: str, secret: str = SECRET) -> tuple[int, str]:
    with anyio.fail_after(30):
        ran = await anyio.run_process(
            [node(), str(DRIVER), url, secret, DOMAIN, user_id, *extra], check=False
        )
    return ran.returncode, (ran.stdout + ran.stderr).decode()


async def test_the_action_under_node_voids_the_open_ticket(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(database_url, AUTH0_ACTION_SECRET=SECRET, AUTH0_DOMAIN=DOMAIN)
    runtime = Runtime.build(settings, now=clock)
    try:
        jane = await open_ticket(runtime, settings, clock, "auth0|jane", "jane@example.com")
        bob = await open_ticket(runtime, settings, clock, "auth0|bob", "bob@example.com")
        async with serve_in_loop(create_app(settings, runtime=runtime)) as url:
            assert await run_action(url, "auth0|jane") == (0, "ok\n")
            assert await state(runtime, jane) == "revoked"
            assert await state(runtime, bob) == "open"

            # The same Action with the wrong secret: resetrelay refuses, the Action throws.
            code, output = await run_action(url, "auth0|bob", secret="not-the-secret")
            assert code == 1 and "resetrelay answered 401" in output
            assert await state(runtime, bob) == "open"
    finally:
        await runtime.aclose()


async def test_an_event_without_user_id_is_resolved_by_address(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    # Auth0 marks event.user.user_id optional: the Action sends the address too, and
    # the service finds the user by it at Auth0 (the emulator, over real HTTP).
    emulator = create_emulator(
        domain=DOMAIN,
        users=[{"email": "jane@example.com", "password": "Old-Passw0rd!", "user_id": "auth0|jane"}],
    )
    with serve_in_thread(emulator) as auth0_url:
        settings = settings_for(
            database_url,
            AUTH0_ACTION_SECRET=SECRET,
            AUTH0_DOMAIN=DOMAIN,
            AUTH0_BASE_URL=auth0_url,
        )
        runtime = Runtime.build(settings, now=clock)
        try:
            jane = await open_ticket(runtime, settings, clock, "auth0|jane", "jane@example.com")
            async with serve_in_loop(create_app(settings, runtime=runtime)) as url:
                assert await run_action(url, "", "Jane@Example.com") == (0, "ok\n")
                await runtime.worker.drain()
                assert await state(runtime, jane) == "revoked"
            looked_up = [r["path"] for r in emulator.state.emulator.requests()]
            assert "/api/v2/users-by-email" in looked_up
        finally:
            await runtime.aclose()


async def test_one_failed_attempt_is_tried_again_with_a_fresh_token() -> None:
    seen: list[dict[str, object]] = []

    async def flaky(request: Request) -> Response:
        body = await request.body()
        token = request.headers["authorization"].removeprefix("Bearer ")
        claims = verify(token, body, secret=SECRET, issuer=f"https://{DOMAIN}/", now=time.time())
        seen.append({"jti": claims.jti, "body": body})
        if len(seen) == 1:
            return JSONResponse({"error": "storage_unavailable"}, 503)
        return JSONResponse({"status": "ok", "voided": 0})

    app = Starlette(routes=[Route("/hooks/auth0/actions", flaky, methods=["POST"])])
    async with serve_in_loop(app) as url:
        assert await run_action(url, "auth0|jane") == (0, "ok\n")
    first, second = seen
    assert first["jti"] != second["jti"] and first["body"] == second["body"]


async def test_a_silent_service_is_given_up_within_auths_20_seconds() -> None:
    released = anyio.Event()

    async def silent(request: Request) -> Response:
        with anyio.move_on_after(60):
            await released.wait()  # silent until the Action has given up
        return Response(status_code=200)

    app = Starlette(routes=[Route("/hooks/auth0/actions", silent, methods=["POST"])])
    async with serve_in_loop(app) as url:
        started = time.monotonic()
        code, output = await run_action(url, "auth0|jane")
        took = time.monotonic() - started
        released.set()  # so the server's shutdown need not wait for the sleepers
    assert code == 1 and "resetrelay unreachable: TimeoutError" in output
    assert took < 20  # Auth0 ends an Action run after 20 s


async def test_a_trailing_slash_in_the_url_is_fine(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(database_url, AUTH0_ACTION_SECRET=SECRET, AUTH0_DOMAIN=DOMAIN)
    runtime = Runtime.build(settings, now=clock)
    try:
        async with serve_in_loop(create_app(settings, runtime=runtime)) as url:
            assert await run_action(f"{url}/", "auth0|nobody") == (0, "ok\n")
    finally:
        await runtime.aclose()


async def open_ticket(
    runtime: Runtime, settings: Settings, clock: Clock, user_id: str, email: str
) -> str:
    async with runtime.db.begin() as conn:
        return await issue(
            conn,
            settings,
            runtime.codec,
            user_id=user_id,
            email=email,
            connection="Username-Password-Authentication",
            locale="en",
            purpose="reset",
            # The Action's iat is whole seconds of Node's wall clock: be clearly earlier.
            now=clock() - timedelta(seconds=2),
        )


async def state(runtime: Runtime, ticket_id: str) -> str:
    async with runtime.db.begin() as conn:
        row = await tickets.by_id(conn, ticket_id)
    assert row is not None
    return row.state
