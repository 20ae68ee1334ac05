"""The real Auth0 Action (integrations/auth0-action/post-change-password.js) run
under Node.js by its driver `run-action.js`, against the service listening on a
loopback port (uvicorn in the test's event loop, `tests.support.serve_in_loop`;
Node runs as a subprocess awaited with `anyio.run_process`, so the loop keeps
answering while Node waits for it).

Node is required: CI installs it, and a missing `node` fails here rather than
skipping, so the Action cannot silently go untested.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from hooks.app import create_app
from resetrelay.reset.requests import issue
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from storage import tickets
from tests.conftest import Clock
from tests.support import serve_in_loop

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "integrations" / "auth0-action" / "run-action.js"
SECRET = "action-secret-node-5b8e1f2a3c4d5e6f7a8b9c0d"
DOMAIN = "acme.eu.auth0.com"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail(
            "Node.js is required to test the Auth0 Action: install `node` (18 or newer) "
            "and put it on PATH; CI installs it.",
            pytrace=False,
        )
    return found


async def test_the_action_under_node_voids_the_open_ticket(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    executable = node()
    settings = settings_for(database_url, AUTH0_ACTION_SECRET=SECRET, AUTH0_DOMAIN=DOMAIN)
    runtime = Runtime.build(settings, now=clock)

    async def open_ticket(user_id: str) -> str:
        async with runtime.db.begin() as conn:
            return await issue(
                conn,
                settings,
                runtime.codec,
                user_id=user_id,
                email="someone@example.com",
                connection="Username-Password-Authentication",
                locale="en",
                purpose="reset",
                # The Action's iat is whole seconds of Node's wall clock: be clearly earlier.
                now=clock() - timedelta(seconds=2),
            )

    async def state(ticket_id: str) -> str:
        async with runtime.db.begin() as conn:
            row = await tickets.by_id(conn, ticket_id)
        assert row is not None
        return row.state

    try:
        jane = await open_ticket("auth0|jane")
        bob = await open_ticket("auth0|bob")
        async with serve_in_loop(create_app(settings, runtime=runtime)) as url:
            with anyio.fail_after(30):
                ran = await anyio.run_process(
                    [executable, str(DRIVER), url, SECRET, DOMAIN, "auth0|jane"], check=False
                )
            assert ran.returncode == 0, ran.stderr.decode()
            assert ran.stdout.decode().strip() == "ok"
            assert await state(jane) == "revoked"
            assert await state(bob) == "open"

            # The same Action with the wrong secret: resetrelay refuses, the Action throws.
            with anyio.fail_after(30):
                refused = await anyio.run_process(
                    [executable, str(DRIVER), url, "not-the-secret", DOMAIN, "auth0|bob"],
                    check=False,
                )
            assert refused.returncode == 1
            assert "resetrelay answered 401" in refused.stderr.decode()
            assert await state(bob) == "open"
    finally:
        await runtime.aclose()


async def test_a_trailing_slash_in_the_url_is_fine(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    executable = node()
    settings = settings_for(database_url, AUTH0_ACTION_SECRET=SECRET, AUTH0_DOMAIN=DOMAIN)
    runtime = Runtime.build(settings, now=clock)
    try:
        async with serve_in_loop(create_app(settings, runtime=runtime)) as url:
            with anyio.fail_after(30):
                ran = await anyio.run_process(
                    [executable, str(DRIVER), f"{url}/", SECRET, DOMAIN, "auth0|nobody"],
                    check=False,
                )
            assert ran.returncode == 0, ran.stderr.decode()
    finally:
        await runtime.aclose()
