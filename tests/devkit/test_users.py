"""The emulator's users as Auth0 holds them: brute-force blocks per IP, and a social
primary account with a linked database identity (devkit/emulator/users.py)."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from devkit.emulator import EmulatorState, create_emulator
from tests.auth0_fixtures import DOMAIN

pytestmark = pytest.mark.anyio

DB = "Username-Password-Authentication"
STRONG = "Corr3ct-Horse-Battery"
ATTACKER, HOME = "198.51.100.7", "203.0.113.5"
LINKED = {
    "email": "lena@example.com",
    "password": "Old-Passw0rd!",
    "social": "google-oauth2",
    "primary": "social",
    "user_id": "google-oauth2|1057",
    "database_user_id": "65f0c2",
}


@pytest.fixture
async def auth0() -> httpx.AsyncClient:
    app = create_emulator(
        domain=DOMAIN,
        users=[
            {"email": "jane@example.com", "password": "Old-Passw0rd!", "user_id": "auth0|jane"},
            LINKED,
        ],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth0")


def state_of(http: httpx.AsyncClient) -> EmulatorState:
    transport = http._transport
    assert isinstance(transport, httpx.ASGITransport)
    state: EmulatorState = transport.app.state.emulator  # type: ignore[attr-defined]
    return state


async def bearer(http: httpx.AsyncClient) -> dict[str, str]:
    answer = await http.post(
        "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": "emulator-client",
            "client_secret": "emulator-secret",
            "audience": f"https://{DOMAIN}/api/v2/",
        },
    )
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


async def sign_in(http: httpx.AsyncClient, password: str, ip: str, user: str) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": "emulator-client",
            "username": user,
            "password": password,
        },
        headers={"auth0-forwarded-for": ip},
    )


async def test_a_brute_force_block_holds_one_ip_not_the_account(auth0: httpx.AsyncClient) -> None:
    for _ in range(10):
        assert (await sign_in(auth0, "nope", ATTACKER, "jane@example.com")).status_code == 403
    # Blocked from the attacker's IP only; the owner still signs in from home.
    blocked = await sign_in(auth0, "Old-Passw0rd!", ATTACKER, "jane@example.com")
    assert (blocked.status_code, blocked.json()["error"]) == (429, "too_many_attempts")
    assert (await sign_in(auth0, "Old-Passw0rd!", HOME, "jane@example.com")).status_code == 200
    headers = await bearer(auth0)
    listed = await auth0.get("/api/v2/user-blocks/auth0%7Cjane", headers=headers)
    assert listed.json() == {
        "blocked_for": [{"identifier": "jane@example.com", "ip": ATTACKER, "connection": DB}]
    }
    # Failures from another IP count on their own: nine from home block nothing.
    for _ in range(9):
        await sign_in(auth0, "nope", HOME, "jane@example.com")
    assert state_of(auth0).users["auth0|jane"].blocked_ips == [ATTACKER]
    lifted = await auth0.delete(
        "/api/v2/user-blocks", params={"identifier": "jane@example.com"}, headers=headers
    )
    assert lifted.status_code == 204
    assert (await sign_in(auth0, "Old-Passw0rd!", ATTACKER, "jane@example.com")).status_code == 200
    after = await auth0.get("/api/v2/user-blocks/auth0%7Cjane", headers=headers)
    assert after.json() == {"blocked_for": []}


async def test_the_block_event_names_the_ip(auth0: httpx.AsyncClient) -> None:
    logs = state_of(auth0).logs
    event = logs.event("limit_wc", state_of(auth0).users["auth0|jane"], "Blocked", ip=ATTACKER)
    assert event["data"]["ip"] == ATTACKER and event["data"]["type"] == "limit_wc"


async def test_a_social_primary_account_with_a_linked_database_identity(
    auth0: httpx.AsyncClient,
) -> None:
    headers = await bearer(auth0)
    found = await auth0.get(
        "/api/v2/users-by-email", params={"email": "lena@example.com"}, headers=headers
    )
    (user,) = found.json()
    assert user["user_id"] == "google-oauth2|1057"
    assert user["identities"] == [
        {"connection": "google-oauth2", "provider": "google-oauth2", "user_id": "1057",
         "isSocial": True},
        {"connection": DB, "provider": "auth0", "user_id": "65f0c2", "isSocial": False,
         "profileData": {"email": "lena@example.com", "email_verified": False}},
    ]  # fmt: skip
    path = f"/api/v2/users/{quote('google-oauth2|1057', safe='')}"
    # The database identity's password is set on the primary user, naming the connection.
    without = await auth0.patch(path, json={"password": STRONG}, headers=headers)
    assert without.status_code == 400
    patched = await auth0.patch(path, json={"password": STRONG, "connection": DB}, headers=headers)
    assert patched.status_code == 200
    assert (await sign_in(auth0, STRONG, HOME, "lena@example.com")).status_code == 200


async def test_a_social_primary_needs_both_identities() -> None:
    with pytest.raises(ValueError, match="social primary"):
        create_emulator(users=[{"email": "a@example.com", "social": "github", "primary": "social"}])


def test_users_loaded_together_hash_each_distinct_password_once() -> None:
    # A bench loads thousands of users with one password: one scrypt, not thousands.
    # Each user still signs in with their own password and no other.
    from devkit.emulator.policy import check_password

    users = [{"email": f"u{i}@example.com", "password": "Same-Passw0rd!"} for i in range(3)]
    users.append({"email": "other@example.com", "password": "Other-Passw0rd!"})
    state = create_emulator(users=users).state.emulator
    hashes = {u.email: u.password_hash for u in state.users.values()}
    assert len(set(hashes.values())) == 2
    assert all(check_password("Same-Passw0rd!", hashes[f"u{i}@example.com"]) for i in range(3))
    assert check_password("Other-Passw0rd!", hashes["other@example.com"])
    assert not check_password("Same-Passw0rd!", hashes["other@example.com"])
