"""The emulator over HTTP (httpx.ASGITransport): tokens, auth, shapes and
messages, the password policy through PATCH, rate limits, faults, sign-in,
and the inspection endpoints."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

import devkit.emulator
from devkit.emulator import (
    DEMO_USERS,
    EmulatorState,
    PasswordPolicy,
    RateLimitConfig,
    create_emulator,
)
from tests.auth0_fixtures import BASE_URL, DOMAIN, USERS, FakeTime

pytestmark = pytest.mark.anyio

CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "emulator-client",
    "client_secret": "emulator-secret",
    "audience": f"https://{DOMAIN}/api/v2/",
}
STRONG = "Corr3ct-Horse-Battery"


async def bearer(http: httpx.AsyncClient) -> dict[str, str]:
    answer = await http.post("/oauth/token", json=CREDENTIALS)
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


def test_docstring_says_it_is_not_auth0() -> None:
    assert "It is NOT Auth0" in (devkit.emulator.__doc__ or "")


# -- /oauth/token --------------------------------------------------------------------


async def test_client_credentials_json(http: httpx.AsyncClient) -> None:
    answer = await http.post("/oauth/token", json=CREDENTIALS)
    assert answer.status_code == 200
    body = answer.json()
    assert body["expires_in"] == 86400
    assert body["token_type"] == "Bearer"
    assert "update:users" in body["scope"].split()
    assert body["access_token"]


async def test_client_credentials_form(http: httpx.AsyncClient) -> None:
    answer = await http.post("/oauth/token", data=CREDENTIALS)
    assert answer.status_code == 200


async def test_wrong_secret(http: httpx.AsyncClient) -> None:
    answer = await http.post("/oauth/token", json={**CREDENTIALS, "client_secret": "nope"})
    assert answer.status_code == 401
    assert answer.json() == {"error": "access_denied", "error_description": "Unauthorized"}


async def test_wrong_audience(http: httpx.AsyncClient) -> None:
    audience = "http://auth0.test/api/v2/"
    answer = await http.post("/oauth/token", json={**CREDENTIALS, "audience": audience})
    assert answer.status_code == 403
    assert answer.json()["error_description"] == f"Service not enabled within domain: {audience}"


async def test_unknown_grant(http: httpx.AsyncClient) -> None:
    answer = await http.post("/oauth/token", json={"grant_type": "implicit"})
    assert answer.status_code == 403
    assert answer.json()["error"] == "unsupported_grant_type"


# -- auth on /api/v2 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing authentication"),
        ({"authorization": "Basic abc"}, "Missing authentication"),
        ({"authorization": "Bearer forged"}, "Invalid token"),
    ],
)
async def test_api_needs_a_bearer_token(
    http: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    answer = await http.get("/api/v2/users/auth0|jane", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"statusCode": 401, "error": "Unauthorized", "message": message}


async def test_tokens_expire(http: httpx.AsyncClient, fake_time: FakeTime) -> None:
    headers = await bearer(http)
    assert (await http.get("/api/v2/users/auth0|jane", headers=headers)).status_code == 200
    fake_time.advance(86400)
    answer = await http.get("/api/v2/users/auth0|jane", headers=headers)
    assert answer.status_code == 401
    assert "Expired token" in answer.json()["message"]


# -- users ---------------------------------------------------------------------------


async def test_users_by_email_shapes(http: httpx.AsyncClient) -> None:
    headers = await bearer(http)
    answer = await http.get(
        "/api/v2/users-by-email", params={"email": "lukas@example.com"}, headers=headers
    )
    [lukas] = answer.json()
    assert lukas["user_id"] == "auth0|lukas"
    assert lukas["identities"] == [
        {
            "connection": "Username-Password-Authentication",
            "provider": "auth0",
            "user_id": "lukas",
            "isSocial": False,
        },
        {"connection": "google-oauth2", "provider": "google-oauth2", "user_id": "lukas",
         "isSocial": True},
    ]  # fmt: skip
    assert lukas["user_metadata"] == {"locale": "de"}
    assert "Altes-Passw0rt!" not in json.dumps(lukas)
    assert not {"password", "password_hash", "history"} & set(lukas)


async def test_users_by_email_is_case_sensitive_and_an_array(http: httpx.AsyncClient) -> None:
    headers = await bearer(http)
    upper = await http.get(
        "/api/v2/users-by-email", params={"email": "JANE@example.com"}, headers=headers
    )
    assert upper.json() == []
    both = await http.get(
        "/api/v2/users-by-email", params={"email": "kim@example.com"}, headers=headers
    )
    assert len(both.json()) == 2
    missing = await http.get("/api/v2/users-by-email", headers=headers)
    assert missing.status_code == 400


async def test_database_addresses_are_stored_in_lower_case() -> None:
    app = create_emulator(users=[{"email": "Mia@Example.com", "password": STRONG}])
    state: EmulatorState = app.state.emulator
    assert [u.email for u in state.users.values()] == ["mia@example.com"]


async def test_unknown_user_shape(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/v2/users/auth0%7Cghost", headers=await bearer(http))
    assert answer.status_code == 404
    assert answer.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "The user does not exist.",
        "errorCode": "inexistent_user",
    }


async def test_patch_password_with_email_verified_is_refused(
    http: httpx.AsyncClient, state: EmulatorState
) -> None:
    body = {"password": STRONG, "connection": "Username-Password-Authentication"}
    for other in ("email_verified", "email", "username"):
        answer = await http.patch(
            "/api/v2/users/auth0%7Cjane", json={**body, other: True}, headers=await bearer(http)
        )
        assert answer.status_code == 400
        assert answer.json()["message"] == f"Cannot update password and {other} simultaneously"
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert inspected["password_changed"] == 0
    assert inspected["email_verified"] is False


async def test_patch_email_verified_alone(http: httpx.AsyncClient, fake_time: FakeTime) -> None:
    fake_time.advance(60)
    answer = await http.patch(
        "/api/v2/users/auth0%7Cjane", json={"email_verified": True}, headers=await bearer(http)
    )
    assert answer.status_code == 200
    assert answer.json()["email_verified"] is True
    assert answer.json()["updated_at"] == "2027-01-15T08:01:00.000Z"
    assert "last_password_reset" not in answer.json()


async def test_patch_email_as_auth0_does(http: httpx.AsyncClient, state: EmulatorState) -> None:
    headers = await bearer(http)
    state.users["auth0|jane"].email_verified = True
    answer = await http.patch(
        "/api/v2/users/auth0%7Cjane", json={"email": "Jane.New@Example.COM"}, headers=headers
    )
    assert answer.status_code == 200
    # Lower-cased for a database user; a new address is not verified.
    assert answer.json()["email"] == "jane.new@example.com"
    assert answer.json()["email_verified"] is False
    found = await http.get(
        "/api/v2/users-by-email", params={"email": "jane.new@example.com"}, headers=headers
    )
    assert [u["user_id"] for u in found.json()] == ["auth0|jane"]
    old = await http.get(
        "/api/v2/users-by-email", params={"email": "jane@example.com"}, headers=headers
    )
    assert old.json() == []
    verified = await http.patch(
        "/api/v2/users/auth0%7Cjane",
        json={"email": "jane@example.com", "email_verified": True},
        headers=headers,
    )
    assert verified.json()["email_verified"] is True


async def test_patch_email_refusals(http: httpx.AsyncClient, state: EmulatorState) -> None:
    headers = await bearer(http)
    taken = await http.patch(
        "/api/v2/users/auth0%7Cjane", json={"email": "Kim@example.com"}, headers=headers
    )
    assert taken.status_code == 409
    assert taken.json()["message"] == "The specified new email already exists"
    for body in ({"email": "not-an-address"}, {"email": 7}):
        answer = await http.patch("/api/v2/users/auth0%7Cjane", json=body, headers=headers)
        assert answer.status_code == 400
    both = await http.patch(
        "/api/v2/users/auth0%7Cjane",
        json={"email": "new@example.com", "username": "jane"},
        headers=headers,
    )
    assert both.json()["message"] == "Cannot update username and email simultaneously"
    assert state.users["auth0|jane"].email == "jane@example.com"


async def test_app_metadata_is_merged_on_the_first_level(
    http: httpx.AsyncClient, state: EmulatorState
) -> None:
    headers = await bearer(http)
    path = "/api/v2/users/auth0%7Cjane"
    await http.patch(path, json={"app_metadata": {"plan": "full", "a": {"x": 1}}}, headers=headers)
    answer = await http.patch(path, json={"app_metadata": {"a": {"y": 2}}}, headers=headers)
    assert answer.json()["app_metadata"] == {"plan": "full", "a": {"y": 2}}
    answer = await http.patch(path, json={"app_metadata": {"plan": None}}, headers=headers)
    assert answer.json()["app_metadata"] == {"a": {"y": 2}}
    answer = await http.patch(path, json={"app_metadata": {}}, headers=headers)
    assert answer.json()["app_metadata"] == {}
    bad = await http.patch(path, json={"app_metadata": "x"}, headers=headers)
    assert bad.status_code == 400


async def test_app_metadata_goes_with_the_password_or_not_at_all(
    http: httpx.AsyncClient, state: EmulatorState
) -> None:
    headers = await bearer(http)
    path = "/api/v2/users/auth0%7Cjane"
    body = {"connection": "Username-Password-Authentication", "app_metadata": {"m": "1"}}
    weak = await http.patch(path, json={**body, "password": "weak"}, headers=headers)
    assert weak.status_code == 400
    assert state.users["auth0|jane"].app_metadata == {}
    done = await http.patch(path, json={**body, "password": STRONG}, headers=headers)
    assert done.status_code == 200
    assert done.json()["app_metadata"] == {"m": "1"}
    assert "last_password_reset" in done.json()


async def test_patch_password_needs_the_users_connection(http: httpx.AsyncClient) -> None:
    headers = await bearer(http)
    for body in ({"password": STRONG}, {"password": STRONG, "connection": "Other"}):
        answer = await http.patch("/api/v2/users/auth0%7Cjane", json=body, headers=headers)
        assert answer.status_code == 400


async def test_patch_password_sets_last_password_reset(
    http: httpx.AsyncClient, state: EmulatorState
) -> None:
    answer = await http.patch(
        "/api/v2/users/auth0%7Cjane",
        json={"password": STRONG, "connection": "Username-Password-Authentication"},
        headers=await bearer(http),
    )
    assert answer.status_code == 200
    assert answer.json()["last_password_reset"] == "2027-01-15T08:00:00.000Z"
    user = state.users["auth0|jane"]
    assert STRONG not in (user.password_hash or "")
    assert user.password_hash is not None
    assert user.password_hash.count("$") == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("weak", "PasswordStrengthError: Password is too weak"),
        ("Password123!", "PasswordDictionaryError: Password is too common"),
        ("Doe-Family-2027", "PasswordNoUserInfoError: Password contains user information"),
        ("Old-Passw0rd!", "PasswordHistoryError: Password has previously been used"),
    ],
)
async def test_policy_errors_have_auth0s_shape(
    http: httpx.AsyncClient, state: EmulatorState, password: str, message: str
) -> None:
    state.policy = replace(state.policy, patch_enforces="all")  # every rule on PATCH
    answer = await http.patch(
        "/api/v2/users/auth0%7Cjane",
        json={"password": password, "connection": "Username-Password-Authentication"},
        headers=await bearer(http),
    )
    assert answer.status_code == 400
    assert answer.json() == {"statusCode": 400, "error": "Bad Request", "message": message}


# -- blocks, sessions ----------------------------------------------------------------


async def test_user_blocks(http: httpx.AsyncClient, state: EmulatorState) -> None:
    headers = await bearer(http)
    state.block("auth0|jane")
    blocked = await http.get("/api/v2/user-blocks/auth0%7Cjane", headers=headers)
    assert blocked.json() == {
        "blocked_for": [
            {
                "identifier": "jane@example.com",
                "ip": "127.0.0.1",
                "connection": "Username-Password-Authentication",
            }
        ]
    }
    by_identifier = await http.get(
        "/api/v2/user-blocks", params={"identifier": "jane@example.com"}, headers=headers
    )
    assert by_identifier.json() == blocked.json()
    assert (
        await http.delete("/api/v2/user-blocks/auth0%7Cjane", headers=headers)
    ).status_code == 204
    after = await http.get("/api/v2/user-blocks/auth0%7Cjane", headers=headers)
    assert after.json() == {"blocked_for": []}


async def test_a_password_patch_does_not_lift_a_block(
    http: httpx.AsyncClient, state: EmulatorState
) -> None:
    state.block("auth0|jane")
    await http.patch(
        "/api/v2/users/auth0%7Cjane",
        json={"password": STRONG, "connection": "Username-Password-Authentication"},
        headers=await bearer(http),
    )
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert inspected["blocked"] is True


@pytest.mark.parametrize(
    ("method", "suffix", "sessions", "refresh_tokens"),
    [
        ("POST", "revoke-access", 1, 1),
        ("DELETE", "sessions", 1, 0),
        ("DELETE", "refresh-tokens", 0, 1),
    ],
)
async def test_revocation(
    http: httpx.AsyncClient,
    state: EmulatorState,
    method: str,
    suffix: str,
    sessions: int,
    refresh_tokens: int,
) -> None:
    answer = await http.request(
        method, f"/api/v2/users/auth0%7Cjane/{suffix}", headers=await bearer(http)
    )
    assert answer.status_code == 202
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert (inspected["sessions_revoked"], inspected["refresh_tokens_revoked"]) == (
        sessions,
        refresh_tokens,
    )


async def test_revocation_unavailable_on_the_plan(fake_time: FakeTime) -> None:
    app = create_emulator(
        domain=DOMAIN, users=USERS, clock=fake_time.clock, revocation_available=False
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        headers = await bearer(c)
        for method, suffix in (("POST", "revoke-access"), ("DELETE", "sessions")):
            answer = await c.request(
                method, f"/api/v2/users/auth0%7Cjane/{suffix}", headers=headers
            )
            assert answer.status_code == 403


async def test_invalidate_remember_browser(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/api/v2/users/auth0%7Cjane/multifactor/actions/invalidate-remember-browser",
        headers=await bearer(http),
    )
    assert answer.status_code == 204


# -- rate limits and faults ----------------------------------------------------------


async def test_rate_limit_headers_and_429(fake_time: FakeTime) -> None:
    app = create_emulator(
        domain=DOMAIN, users=USERS, clock=fake_time.clock, rate_limit=RateLimitConfig.free_plan()
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        headers = await bearer(c)
        answers = [await c.get("/api/v2/users/auth0%7Cjane", headers=headers) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
        assert {a.headers["x-ratelimit-limit"] for a in answers} == {"2"}
        assert answers[2].headers["x-ratelimit-reset"] == str(int(fake_time.now) + 1)
        assert answers[2].json() == {
            "statusCode": 429,
            "error": "Too Many Requests",
            "message": "Global limit has been reached",
            "errorCode": "too_many_requests",
        }
        fake_time.advance(0.5)  # 2/s: one request back
        assert (await c.get("/api/v2/users/auth0%7Cjane", headers=headers)).status_code == 200
        unauthenticated = await c.get("/api/v2/users/auth0%7Cjane")
        assert "x-ratelimit-reset" in unauthenticated.headers


async def test_no_rate_limit_by_default(http: httpx.AsyncClient) -> None:
    headers = await bearer(http)
    answers = [await http.get("/api/v2/users/auth0%7Cjane", headers=headers) for _ in range(10)]
    assert {a.status_code for a in answers} == {200}
    assert "x-ratelimit-limit" not in answers[0].headers


async def test_faults_over_http(http: httpx.AsyncClient, fake_time: FakeTime) -> None:
    headers = await bearer(http)
    spec = {"path_prefix": "/api/v2/users", "status": 503, "times": 2}
    assert (await http.post("/__emulator/faults", json=spec)).status_code == 201
    limited = {"path_prefix": "/api/v2/users", "status": 429, "reset_after": 5, "method": "GET"}
    await http.post("/__emulator/faults", json=limited)
    statuses = [(await http.get("/api/v2/users/auth0|jane", headers=headers)) for _ in range(4)]
    assert [a.status_code for a in statuses] == [503, 503, 429, 200]
    assert statuses[2].headers["x-ratelimit-reset"] == str(int(fake_time.now) + 5)
    assert statuses[2].json()["errorCode"] == "too_many_requests"
    await http.post("/__emulator/faults", json={**spec, "times": 5})
    assert (await http.post("/__emulator/faults", json={"clear": True})).status_code == 204
    assert (await http.get("/api/v2/users/auth0|jane", headers=headers)).status_code == 200
    assert (await http.post("/__emulator/faults", json={"status": 503})).status_code == 400


# -- sign-in (the demo website) ------------------------------------------------------


def sign_in_form(password: str, username: str = "jane@example.com") -> dict[str, str]:
    return {
        "grant_type": "password",
        "username": username,
        "password": password,
        "client_id": "emulator-client",
        "scope": "openid profile email",
    }


async def test_sign_in(http: httpx.AsyncClient, state: EmulatorState) -> None:
    ok = await http.post("/oauth/token", data=sign_in_form("Old-Passw0rd!", "Jane@example.com"))
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "Bearer"
    wrong = await http.post("/oauth/token", data=sign_in_form("nope"))
    assert wrong.status_code == 403
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "Wrong email or password.",
    }
    social = await http.post("/oauth/token", data=sign_in_form("x", "sam@example.com"))
    assert social.status_code == 403
    logged = [r for r in state.requests() if r["path"] == "/oauth/token"]
    assert all(r["json"]["password"] == "[redacted]" for r in logged)


async def test_sign_in_blocks_after_ten_failures(
    http: httpx.AsyncClient, state: EmulatorState
) -> None:
    for _ in range(10):
        await http.post("/oauth/token", data=sign_in_form("nope"))
    blocked = await http.post("/oauth/token", data=sign_in_form("Old-Passw0rd!"))
    assert blocked.status_code == 429
    assert blocked.json()["error"] == "too_many_attempts"
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert inspected["blocked"] is True


# -- inspection ----------------------------------------------------------------------


async def test_request_log_redacts_secrets_and_resets(http: httpx.AsyncClient) -> None:
    headers = await bearer(http)
    await http.patch(
        "/api/v2/users/auth0%7Cjane",
        json={"password": STRONG, "connection": "Username-Password-Authentication"},
        headers=headers,
    )
    log = (await http.get("/__emulator/requests")).json()
    assert [(r["method"], r["path"]) for r in log] == [
        ("POST", "/oauth/token"),
        ("PATCH", "/api/v2/users/auth0|jane"),
    ]
    assert log[0]["json"]["client_secret"] == "[redacted]"
    assert log[1]["json"] == {
        "password": "[redacted]",
        "connection": "Username-Password-Authentication",
    }
    assert STRONG not in json.dumps(log)
    assert "emulator-secret" not in json.dumps(log)
    assert (await http.post("/__emulator/reset")).status_code == 204
    assert (await http.get("/__emulator/requests")).json() == []


async def test_inspection_of_users_over_http(http: httpx.AsyncClient) -> None:
    added = await http.post(
        "/__emulator/users",
        json={"email": "neo@example.com", "password": STRONG, "user_id": "auth0|neo"},
    )
    assert added.status_code == 201
    assert (await http.post("/__emulator/blocks/auth0|neo")).json()["blocked"] is True
    seen = (await http.get("/__emulator/users/auth0|neo")).json()
    assert seen["blocked"] is True
    assert seen["password_changed"] == 0
    assert seen["sessions_revoked"] == 0
    assert seen.get("last_password_reset") is None
    assert (await http.get("/__emulator/users/auth0|nobody")).status_code == 404
    assert (await http.post("/__emulator/users", json={"email": "x"})).status_code == 400


async def test_token_revocation_over_http(http: httpx.AsyncClient) -> None:
    headers = await bearer(http)
    await http.post("/__emulator/tokens/revoke")
    assert (await http.get("/api/v2/users/auth0%7Cjane", headers=headers)).status_code == 401


async def test_home_page_says_not_auth0(http: httpx.AsyncClient) -> None:
    assert "NOT Auth0" in (await http.get("/")).text


# -- users files ---------------------------------------------------------------------


def test_demo_users() -> None:
    users = json.loads(DEMO_USERS.read_text())
    state: EmulatorState = create_emulator(users_file=str(DEMO_USERS)).state.emulator
    assert len(users) == len(state.users) == 3
    jane, sam, lukas = (state.users[u["user_id"]] for u in users)
    assert (jane.connection, jane.social) == ("Username-Password-Authentication", None)
    assert (sam.connection, sam.social) == (None, "google-oauth2")
    assert len(lukas.identities()) == 2


def test_users_file_and_list_combine(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps([{"email": "a@example.com", "password": STRONG, "blocked": True}]))
    app = create_emulator(
        users=[{"email": "b@example.com", "social": "github"}], users_file=str(path)
    )
    state: EmulatorState = app.state.emulator
    by_email: dict[str, Any] = {u.email: u for u in state.users.values()}
    assert by_email["a@example.com"].user_id.startswith("auth0|")
    assert by_email["a@example.com"].blocked
    assert by_email["b@example.com"].user_id.startswith("github|")


def test_bad_users_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="password, a social provider"):
        create_emulator(users=[{"email": "a@example.com"}])
    path = tmp_path / "users.json"
    path.write_text('{"email": "a@example.com"}')
    with pytest.raises(ValueError, match="JSON list"):
        create_emulator(users_file=str(path))


def test_policy_is_configurable() -> None:
    app = create_emulator(policy=PasswordPolicy.low())
    assert app.state.emulator.policy.min_length == 6
