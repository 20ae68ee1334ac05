"""Reading the database connection (its password policy) through the emulator and
through hand-made answers."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from devkit.emulator.connections import directory
from identity.client import Auth0Client
from identity.connections import Connection
from identity.errors import InsufficientScope
from tests.auth0_fixtures import ClientFactory, token_answer

pytestmark = pytest.mark.anyio


async def test_our_connection_with_its_policy(auth0: Auth0Client) -> None:
    found = await auth0.database_connection()
    assert found is not None
    assert (found.name, found.strategy) == ("Username-Password-Authentication", "auth0")
    assert found.id.startswith("con_")
    assert found.options is not None and found.options["passwordPolicy"] == "good"
    assert found.options["password_history"] == {"enable": True, "size": 5}


async def test_without_the_options_scope_the_options_are_not_shown(
    auth0: Auth0Client, emulator_app: Starlette
) -> None:
    grant = directory(emulator_app)
    grant.grant([s for s in grant.scopes if s != "read:connections_options"])
    found = await auth0.database_connection()
    assert found is not None and found.options is None


async def test_without_read_connections_it_is_an_error_naming_the_scope(
    auth0: Auth0Client, emulator_app: Starlette
) -> None:
    grant = directory(emulator_app)
    grant.grant([s for s in grant.scopes if not s.startswith("read:connections")])
    with pytest.raises(InsufficientScope) as caught:
        await auth0.database_connection()
    assert caught.value.endpoint == "GET /api/v2/connections"
    assert "read:connections" in caught.value.scopes


async def test_the_request_and_an_exact_name(make_client: ClientFactory) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_answer()
        seen.append(request)
        # A list that also holds a connection of a similar name: only the exact one counts.
        return httpx.Response(
            200,
            json=[
                {"id": "con_1", "name": "username-password-authentication", "options": {}},
                {"id": "con_2", "name": "Username-Password-Authentication", "strategy": "auth0",
                 "options": {"passwordPolicy": "fair"}},
            ],
        )  # fmt: skip

    async with make_client(httpx.MockTransport(answer)) as client:
        found = await client.database_connection()
    assert found == Connection(
        "con_2", "Username-Password-Authentication", "auth0", {"passwordPolicy": "fair"}
    )
    (request,) = seen
    assert (request.method, request.url.path) == ("GET", "/api/v2/connections")
    assert dict(request.url.params) == {
        "name": "Username-Password-Authentication",
        "strategy": "auth0",
    }


@pytest.mark.parametrize("body", [[], {}, "nope", [{"name": 3}]])
async def test_no_such_connection_is_none(make_client: ClientFactory, body: object) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_answer()
        return httpx.Response(200, json=body)

    async with make_client(httpx.MockTransport(answer)) as client:
        assert await client.database_connection() is None
