"""The emulator's Management API as a real tenant sets it up: scopes checked per
endpoint, plans without the session endpoints, device credentials, and
revocations that take effect after Auth0 answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devkit.emulator import EmulatorState, create_emulator
from devkit.emulator.connections import DEFAULT_SCOPES
from tests.auth0_fixtures import BASE_URL, DOMAIN, USERS, FakeTime

pytestmark = pytest.mark.anyio

CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "emulator-client",
    "client_secret": "emulator-secret",
    "audience": f"https://{DOMAIN}/api/v2/",
}
JANE = "/api/v2/users/auth0%7Cjane"


async def bearer(http: httpx.AsyncClient) -> dict[str, str]:
    answer = await http.post("/oauth/token", json=CREDENTIALS)
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


class Tenant:
    def __init__(self, http: httpx.AsyncClient, state: EmulatorState) -> None:
        self.http = http
        self.state = state


@pytest.fixture
async def tenant(fake_time: FakeTime, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    async def make(**options: Any) -> Tenant:
        app = create_emulator(domain=DOMAIN, users=USERS, clock=fake_time.clock, **options)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        opened.append(http)
        return Tenant(http, app.state.emulator)

    opened: list[httpx.AsyncClient] = []
    yield make
    for http in opened:
        await http.aclose()


async def test_the_default_grant_covers_every_call_the_service_makes(tenant: Any) -> None:
    t = await tenant()
    token = await t.http.post("/oauth/token", json=CREDENTIALS)
    granted = set(token.json()["scope"].split())
    assert {"read:device_credentials", "delete:device_credentials", "delete:sessions"} <= granted
    assert set(DEFAULT_SCOPES) == granted


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/v2/users-by-email?email=jane@example.com", "read:users"),
        ("GET", JANE, "read:users"),
        ("PATCH", JANE, "update:users"),
        ("DELETE", "/api/v2/user-blocks/auth0%7Cjane", "update:users"),
        ("POST", f"{JANE}/multifactor/actions/invalidate-remember-browser", "update:users"),
        ("POST", f"{JANE}/revoke-access", "delete:sessions"),
        ("DELETE", f"{JANE}/sessions", "delete:sessions"),
        ("DELETE", f"{JANE}/refresh-tokens", "delete:refresh_tokens"),
        ("GET", "/api/v2/device-credentials?user_id=auth0%7Cjane", "read:device_credentials"),
        ("DELETE", "/api/v2/device-credentials/dcr_1", "delete:device_credentials"),
    ],
)
async def test_each_endpoint_checks_its_scope(
    tenant: Any, method: str, path: str, scope: str
) -> None:
    t = await tenant(scopes=[s for s in DEFAULT_SCOPES if s != scope])
    body = {"password": "x"} if method == "PATCH" else ({} if method == "POST" else None)
    answer = await t.http.request(method, path, json=body, headers=await bearer(t.http))
    # The Management API specification's 403 for a token without the scope.
    assert (answer.status_code, answer.json()) == (
        403,
        {
            "statusCode": 403,
            "error": "Forbidden",
            "message": f"Insufficient scope, expected any of: {scope}",
            "errorCode": "insufficient_scope",
        },
    )
    assert t.state.inspect_user("auth0|jane")["password_changed"] == 0


async def test_revoke_access_needs_both_scopes(tenant: Any) -> None:
    t = await tenant(scopes=[s for s in DEFAULT_SCOPES if s != "delete:refresh_tokens"])
    answer = await t.http.post(f"{JANE}/revoke-access", json={}, headers=await bearer(t.http))
    assert answer.json()["message"] == "Insufficient scope, expected any of: delete:refresh_tokens"


@pytest.mark.parametrize("plan", ["free", "essentials", "professional"])
async def test_below_enterprise_the_session_endpoints_are_missing(tenant: Any, plan: str) -> None:
    t = await tenant(plan=plan)
    headers = await bearer(t.http)
    for method, suffix in (
        ("POST", "revoke-access"),
        ("DELETE", "sessions"),
        ("DELETE", "refresh-tokens"),
    ):
        answer = await t.http.request(method, f"{JANE}/{suffix}", headers=headers, json=None)
        assert answer.status_code == 403
        assert "errorCode" not in answer.json()  # not insufficient_scope: a plan answer
    listing = await t.http.get("/api/v2/device-credentials", headers=headers)
    assert listing.status_code == 200  # device credentials exist on every plan


async def test_unknown_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="plan must be one of"):
        create_emulator(domain=DOMAIN, plan="platinum")


async def test_device_credentials_list_filter_page_and_delete(tenant: Any) -> None:
    t = await tenant()
    ids = [t.state.add_refresh_token("auth0|jane") for _ in range(3)]
    t.state.add_refresh_token("auth0|kim")
    headers = await bearer(t.http)
    query = {"user_id": "auth0|jane", "type": "refresh_token", "per_page": "2"}
    first = await t.http.get("/api/v2/device-credentials", params=query, headers=headers)
    second = await t.http.get(
        "/api/v2/device-credentials", params={**query, "page": "1"}, headers=headers
    )
    seen = [c["id"] for c in first.json() + second.json()]
    assert seen == ids
    assert set(first.json()[0]) == {
        "id",
        "device_name",
        "device_id",
        "type",
        "user_id",
        "client_id",
    }
    totals = await t.http.get(
        "/api/v2/device-credentials", params={**query, "include_totals": "true"}, headers=headers
    )
    assert totals.json()["total"] == 3
    bad = await t.http.get(
        "/api/v2/device-credentials", params={"per_page": "lots"}, headers=headers
    )
    assert bad.status_code == 400
    gone = await t.http.delete(f"/api/v2/device-credentials/{ids[0]}", headers=headers)
    assert gone.status_code == 204
    again = await t.http.delete(f"/api/v2/device-credentials/{ids[0]}", headers=headers)
    assert again.status_code == 404
    assert [c["id"] for c in t.state.refresh_tokens_of("auth0|jane")] == ids[1:]


async def test_revocation_takes_effect_after_the_answer(tenant: Any, fake_time: FakeTime) -> None:
    t = await tenant(revocation_delay=1.5)
    t.state.add_refresh_token("auth0|jane")
    headers = await bearer(t.http)
    answer = await t.http.delete(f"{JANE}/sessions", headers=headers)
    assert answer.status_code == 202
    seen = t.state.inspect_user("auth0|jane")
    assert (seen["sessions_revoked"], seen["revocations_pending"]) == (0, 1)
    fake_time.advance(1.5)
    seen = t.state.inspect_user("auth0|jane")
    assert (seen["sessions_revoked"], seen["revocations_pending"]) == (1, 0)
    assert seen["refresh_tokens"] == 1  # sessions only


async def test_patch_blocked_refuses_every_sign_in_until_lifted(tenant: Any) -> None:
    """The user attribute `blocked`: not a brute-force block (user-blocks leaves it),
    shown on the user, and only a PATCH `blocked: false` lifts it."""
    t = await tenant()
    auth = await bearer(t.http)
    grant = {
        "grant_type": "password",
        "username": "jane@example.com",
        "password": "Old-Passw0rd!",
        "client_id": "emulator-client",
    }
    assert (await t.http.post("/oauth/token", data=grant)).status_code == 200

    bad = await t.http.patch(JANE, json={"blocked": "yes"}, headers=auth)
    assert bad.status_code == 400 and "blocked" in bad.json()["message"]
    blocked = await t.http.patch(JANE, json={"blocked": True}, headers=auth)
    assert blocked.status_code == 200 and blocked.json()["blocked"] is True
    refused = await t.http.post("/oauth/token", data=grant)
    assert refused.status_code == 401
    assert refused.json() == {"error": "unauthorized", "error_description": "user is blocked"}
    # A wrong password is still a wrong password: nothing says the account exists.
    wrong = await t.http.post("/oauth/token", data={**grant, "password": "nope"})
    assert wrong.status_code == 403

    # Lifting brute-force blocks does not lift this one.
    assert (await t.http.delete("/api/v2/user-blocks/auth0%7Cjane", headers=auth)).is_success
    assert (await t.http.post("/oauth/token", data=grant)).status_code == 401

    lifted = await t.http.patch(JANE, json={"blocked": False}, headers=auth)
    assert lifted.status_code == 200 and "blocked" not in lifted.json()
    assert (await t.http.post("/oauth/token", data=grant)).status_code == 200
