"""Auth0Client against the emulator (httpx.ASGITransport) and, for odd wire
answers, httpx.MockTransport: tokens, lookups, password policy, cleanup calls."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import anyio
import httpx
import pytest

from devkit.emulator import EmulatorState, Fault
from identity.client import Auth0Client
from identity.errors import Auth0Error, NotAvailable, PasswordRejected, UserNotFound
from tests.auth0_fixtures import (
    CLIENT_SECRET,
    CONNECTION,
    DOMAIN,
    ClientFactory,
    FakeTime,
    token_answer,
    wire,
)

pytestmark = pytest.mark.anyio

STRONG = "Corr3ct-Horse-Battery"


def token_posts(state: EmulatorState) -> list[dict[str, Any]]:
    return [r for r in state.requests() if r["path"] == "/oauth/token"]


# -- the token -----------------------------------------------------------------------


async def test_twenty_concurrent_lookups_fetch_one_token(
    auth0: Auth0Client, state: EmulatorState
) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(auth0.users_by_email, "jane@example.com")
    assert state.token_requests == 1
    assert len(token_posts(state)) == 1
    assert len([r for r in state.requests() if r["path"] == "/api/v2/users-by-email"]) == 20


async def test_concurrent_calls_wait_for_a_slow_token_request(make_client: ClientFactory) -> None:
    token_calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal token_calls
        if request.url.path == "/oauth/token":
            token_calls += 1
            await anyio.sleep(0.05)  # everyone else arrives while this is in flight
            return token_answer()
        return httpx.Response(200, json=[])

    async with make_client(httpx.MockTransport(handler)) as auth0, anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(auth0.users_by_email, "jane@example.com")
    assert token_calls == 1


async def test_token_request_uses_the_tenant_audience_not_the_base_url(
    make_client: ClientFactory,
) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            seen.append(json.loads(request.content))
            return token_answer()
        assert request.headers["authorization"] == "Bearer tok-1"
        return httpx.Response(200, json=[])

    async with make_client(httpx.MockTransport(handler), base_url="https://login.acme.com") as a:
        await a.users_by_email("jane@example.com")
    assert seen == [
        {
            "grant_type": "client_credentials",
            "client_id": "emulator-client",
            "client_secret": CLIENT_SECRET,
            "audience": f"https://{DOMAIN}/api/v2/",
        }
    ]


async def test_token_is_reused_until_shortly_before_expiry(
    auth0: Auth0Client, state: EmulatorState, fake_time: FakeTime
) -> None:
    await auth0.users_by_email("jane@example.com")
    fake_time.advance(86400 - 61)  # still inside the 60 s margin's safe side
    await auth0.users_by_email("jane@example.com")
    assert state.token_requests == 1
    fake_time.advance(2)  # now within 60 s of expiry: refresh before Auth0 says no
    await auth0.users_by_email("jane@example.com")
    assert state.token_requests == 2


async def test_short_lived_token_keeps_a_ten_percent_margin(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    tokens = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal tokens
        if request.url.path == "/oauth/token":
            tokens += 1
            return token_answer(f"tok-{tokens}", expires_in=100)
        return httpx.Response(200, json=[])

    async with make_client(httpx.MockTransport(handler)) as auth0:
        await auth0.users_by_email("a@example.com")
        fake_time.advance(89)
        await auth0.users_by_email("a@example.com")
        assert tokens == 1
        fake_time.advance(2)
        await auth0.users_by_email("a@example.com")
        assert tokens == 2


async def test_401_drops_the_token_and_retries_once(
    auth0: Auth0Client, state: EmulatorState
) -> None:
    await auth0.users_by_email("jane@example.com")
    state.revoke_tokens()  # a rotated signing key: the cached token is now refused
    users = await auth0.users_by_email("jane@example.com")
    assert [u.user_id for u in users] == ["auth0|jane"]
    assert state.token_requests == 2


async def test_401_twice_is_an_error_not_a_loop(make_client: ClientFactory) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/oauth/token":
            return token_answer()
        return httpx.Response(
            401, json={"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"}
        )

    async with make_client(httpx.MockTransport(handler)) as auth0:
        with pytest.raises(Auth0Error) as caught:
            await auth0.get_user("auth0|jane")
    assert caught.value.status == 401
    assert caught.value.message == "Invalid token"
    assert calls.count("/oauth/token") == 2
    assert calls.count("/api/v2/users/auth0|jane") == 2


async def test_wrong_client_secret_is_an_auth0_error(
    emulator_app: Any, make_client: ClientFactory
) -> None:
    transport = httpx.ASGITransport(app=emulator_app)
    async with make_client(transport, client_secret="wrong") as auth0:
        with pytest.raises(Auth0Error) as caught:
            await auth0.users_by_email("jane@example.com")
    assert (caught.value.status, caught.value.code) == (401, "access_denied")
    assert "wrong" not in str(caught.value)


async def test_wrong_domain_means_wrong_audience(
    emulator_app: Any, make_client: ClientFactory
) -> None:
    transport = httpx.ASGITransport(app=emulator_app)
    async with make_client(transport, domain="other.auth0.com") as auth0:
        with pytest.raises(Auth0Error) as caught:
            await auth0.users_by_email("jane@example.com")
    assert caught.value.status == 403
    assert "Service not enabled within domain" in caught.value.message


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={"token_type": "Bearer"}),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
)
async def test_malformed_token_answer_is_an_auth0_error(
    make_client: ClientFactory, answer: httpx.Response
) -> None:
    async with make_client(httpx.MockTransport(lambda request: answer)) as auth0:
        with pytest.raises(Auth0Error) as caught:
            await auth0.users_by_email("jane@example.com")
    assert caught.value.code == "bad_token_answer"


def test_repr_hides_the_secret(make_client: ClientFactory) -> None:
    client = make_client(wire(lambda request: httpx.Response(200)))
    assert CLIENT_SECRET not in repr(client)
    assert "emulator-client" in repr(client)


# -- finding users -------------------------------------------------------------------


async def test_database_user(auth0: Auth0Client) -> None:
    [jane] = await auth0.users_by_email("jane@example.com")
    assert jane.user_id == "auth0|jane"
    assert jane.is_database_user
    assert jane.connection == CONNECTION
    assert jane.locale == "en"
    assert jane.last_password_reset is None
    assert await auth0.find_database_user("jane@example.com") == jane


async def test_social_only_user_is_not_a_database_user(auth0: Auth0Client) -> None:
    [sam] = await auth0.users_by_email("sam@example.com")
    assert not sam.is_database_user
    assert sam.connection is None
    assert sam.locale == "fr"  # the top-level locale social providers set
    assert await auth0.find_database_user("sam@example.com") is None


async def test_unknown_address(auth0: Auth0Client) -> None:
    assert await auth0.users_by_email("nobody@example.com") == []
    assert await auth0.find_database_user("nobody@example.com") is None


async def test_linked_identities_in_one_user(auth0: Auth0Client) -> None:
    [lukas] = await auth0.users_by_email("lukas@example.com")
    assert lukas.is_database_user
    assert lukas.connection == CONNECTION
    assert lukas.locale == "de"


async def test_one_address_two_users_finds_the_database_one(auth0: Auth0Client) -> None:
    users = await auth0.users_by_email("kim@example.com")
    assert sorted(u.user_id for u in users) == ["auth0|kim", "github|kim"]
    found = await auth0.find_database_user("kim@example.com")
    assert found is not None
    assert found.user_id == "auth0|kim"


async def test_database_user_in_another_connection_is_not_ours(auth0: Auth0Client) -> None:
    [ops] = await auth0.users_by_email("ops@example.com")
    assert ops.connection == "Staff-Database"
    assert not ops.is_database_user
    assert await auth0.find_database_user("ops@example.com") is None


async def test_lookup_is_case_sensitive_but_find_asks_in_lower_case(auth0: Auth0Client) -> None:
    assert await auth0.users_by_email("Jane@Example.com") == []
    found = await auth0.find_database_user(" Jane@Example.com ")
    assert found is not None
    assert found.user_id == "auth0|jane"


async def test_get_user_and_unknown_user(auth0: Auth0Client) -> None:
    jane = await auth0.get_user("auth0|jane")
    assert jane.email == "jane@example.com"
    with pytest.raises(UserNotFound):
        await auth0.get_user("auth0|ghost")


async def test_user_id_is_percent_encoded_on_the_wire(
    auth0: Auth0Client, state: EmulatorState
) -> None:
    await auth0.get_user("auth0|jane")
    [call] = [r for r in state.requests() if r["method"] == "GET" and "/users/" in r["path"]]
    assert call["raw_path"] == "/api/v2/users/auth0%7Cjane"
    assert call["path"] == "/api/v2/users/auth0|jane"


async def test_odd_user_ids_stay_one_path_segment(make_client: ClientFactory) -> None:
    paths: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path)
        return httpx.Response(204)

    async with make_client(wire(handler)) as auth0:
        await auth0.unblock("samlp|acme/ja ne?x")
    assert paths == [b"/api/v2/user-blocks/samlp%7Cacme%2Fja%20ne%3Fx"]


async def test_non_json_answer_is_an_auth0_error(make_client: ClientFactory) -> None:
    async with make_client(wire(lambda request: httpx.Response(200, text="oops"))) as auth0:
        with pytest.raises(Auth0Error) as caught:
            await auth0.users_by_email("jane@example.com")
    assert caught.value.code == "invalid_json"


# -- setting the password ------------------------------------------------------------


async def test_set_password(auth0: Auth0Client, state: EmulatorState, http: Any) -> None:
    await auth0.set_password("auth0|jane", STRONG)
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert inspected["password_changed"] == 1
    [patch] = [r for r in state.requests() if r["method"] == "PATCH"]
    assert patch["json"] == {"password": "[redacted]", "connection": CONNECTION}
    jane = await auth0.get_user("auth0|jane")
    assert jane.last_password_reset is not None
    assert jane.last_password_reset.timestamp() == pytest.approx(state.clock(), abs=1)
    signed_in = await http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "jane@example.com", "password": STRONG,
              "client_id": "emulator-client"},
    )  # fmt: skip
    assert signed_in.status_code == 200


async def test_set_password_with_app_metadata_in_the_same_patch(
    auth0: Auth0Client, state: EmulatorState
) -> None:
    patched = await auth0.set_password("auth0|jane", STRONG, app_metadata={"resetrelay_claim": "c"})
    assert patched is not None
    assert patched.app_metadata == {"resetrelay_claim": "c"}
    assert patched.email == "jane@example.com" and patched.last_password_reset is not None
    [patch] = [r for r in state.requests() if r["method"] == "PATCH"]
    assert patch["json"] == {
        "password": "[redacted]",
        "connection": CONNECTION,
        "app_metadata": {"resetrelay_claim": "c"},
    }
    assert (await auth0.get_user("auth0|jane")).app_metadata == {"resetrelay_claim": "c"}


async def test_set_password_survives_an_odd_success_body(make_client: ClientFactory) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_answer()
        return httpx.Response(200, text="not json")

    async with make_client(httpx.MockTransport(answer)) as client:
        assert await client.set_password("auth0|jane", STRONG) is None


@pytest.mark.parametrize(
    ("password", "rule", "message"),
    [
        ("Sh0rt!x", "strength", "Password is too weak"),
        ("alllowercaseletters", "strength", "Password is too weak"),
        ("Password123!", "dictionary", "Password is too common"),
        ("Jane-Secret-99", "user_info", "Password contains user information"),
        ("Old-Passw0rd!", "history", "Password has previously been used"),
    ],
)
async def test_each_policy_rule_is_named(
    auth0: Auth0Client, state: EmulatorState, password: str, rule: str, message: str
) -> None:
    state.policy = replace(state.policy, patch_enforces="all")  # every rule on PATCH
    with pytest.raises(PasswordRejected) as caught:
        await auth0.set_password("auth0|jane", password)
    assert (caught.value.rule, caught.value.message) == (rule, message)
    assert password not in str(caught.value)
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert inspected["password_changed"] == 0


async def test_history_remembers_passwords_set_through_the_api(
    auth0: Auth0Client, state: EmulatorState
) -> None:
    state.policy = replace(state.policy, patch_enforces="all")
    await auth0.set_password("auth0|jane", STRONG)
    await auth0.set_password("auth0|jane", "An0ther-Good-One")
    with pytest.raises(PasswordRejected) as caught:
        await auth0.set_password("auth0|jane", STRONG)
    assert caught.value.rule == "history"


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ({"errorCode": "PasswordHistoryError", "message": "Nope"}, "history"),
        ({"error": "Bad Request", "message": "PasswordNoUserInfoError: blah"}, "user_info"),
        ({"code": "PasswordDictionaryError", "message": ""}, "dictionary"),
        ({"message": "password is too weak"}, "strength"),
        ({"message": "Password has previously been used"}, "history"),
        ({"message": "This password is too common"}, "dictionary"),
        ({"message": "Password contains user information"}, "user_info"),
        ({"message": "Password does not meet the policy"}, "unknown"),
    ],
)
async def test_password_errors_on_the_wire(
    make_client: ClientFactory, body: dict[str, Any], rule: str
) -> None:
    answer = httpx.Response(400, json={"statusCode": 400, **body})
    async with make_client(wire(lambda request: answer)) as auth0:
        with pytest.raises(PasswordRejected) as caught:
            await auth0.set_password("auth0|jane", STRONG)
    assert caught.value.rule == rule


@pytest.mark.parametrize(
    "message",
    [
        "Cannot update password and email_verified simultaneously",
        "Payload validation error: 'Additional properties not allowed: foo'",
    ],
)
async def test_other_400s_are_auth0_errors(make_client: ClientFactory, message: str) -> None:
    answer = httpx.Response(
        400, json={"statusCode": 400, "error": "Bad Request", "message": message}
    )
    async with make_client(wire(lambda request: answer)) as auth0:
        with pytest.raises(Auth0Error) as caught:
            await auth0.set_password("auth0|jane", STRONG)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400,
        "Bad Request",
        message,
    )


async def test_password_of_a_social_only_user_is_refused(auth0: Auth0Client) -> None:
    with pytest.raises(Auth0Error) as caught:
        await auth0.set_password("google-oauth2|sam", STRONG)
    assert caught.value.status == 400


async def test_password_of_unknown_user(auth0: Auth0Client) -> None:
    with pytest.raises(UserNotFound):
        await auth0.set_password("auth0|ghost", STRONG)


async def test_mark_email_verified_is_its_own_patch(
    auth0: Auth0Client, state: EmulatorState
) -> None:
    await auth0.set_password("auth0|jane", STRONG)
    await auth0.mark_email_verified("auth0|jane")
    patches = [r["json"] for r in state.requests() if r["method"] == "PATCH"]
    assert patches == [
        {"password": "[redacted]", "connection": CONNECTION},
        {"email_verified": True},
    ]
    assert (await auth0.get_user("auth0|jane")).email_verified
    with pytest.raises(UserNotFound):
        await auth0.mark_email_verified("auth0|ghost")


# -- after the reset -----------------------------------------------------------------


async def test_unblock_really_unblocks(auth0: Auth0Client, state: EmulatorState, http: Any) -> None:
    state.block("auth0|jane")
    await auth0.unblock("auth0|jane")
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert inspected["blocked"] is False
    [call] = [r for r in state.requests() if r["method"] == "DELETE"]
    assert call["raw_path"] == "/api/v2/user-blocks/auth0%7Cjane"
    with pytest.raises(UserNotFound):
        await auth0.unblock("auth0|ghost")


async def test_revoke_sessions_with_revoke_access(auth0: Auth0Client, state: EmulatorState) -> None:
    assert await auth0.revoke_sessions("auth0|jane") == "revoked"
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert (inspected["sessions_revoked"], inspected["refresh_tokens_revoked"]) == (1, 1)


async def test_revoke_sessions_falls_back_to_both_deletes(
    auth0: Auth0Client, state: EmulatorState
) -> None:
    state.add_fault(Fault("/api/v2/users/auth0|jane/revoke-access", 404))
    assert await auth0.revoke_sessions("auth0|jane") == "revoked"
    calls = [(r["method"], r["path"].rsplit("/", 1)[1]) for r in state.requests()[1:]]
    assert calls == [
        ("POST", "revoke-access"),
        ("DELETE", "sessions"),
        ("DELETE", "refresh-tokens"),
    ]


async def test_revoke_sessions_partial(auth0: Auth0Client, state: EmulatorState) -> None:
    state.add_fault(Fault("/api/v2/users/auth0|jane/revoke-access", 403))
    state.add_fault(Fault("/api/v2/users/auth0|jane/refresh-tokens", 403))
    assert await auth0.revoke_sessions("auth0|jane") == "partial"
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert (inspected["sessions_revoked"], inspected["refresh_tokens_revoked"]) == (1, 0)


async def test_revoke_sessions_not_available_on_this_plan(
    emulator_app: Any, make_client: ClientFactory
) -> None:
    state: EmulatorState = emulator_app.state.emulator
    state.revocation_available = False
    async with make_client(httpx.ASGITransport(app=emulator_app)) as auth0:
        assert await auth0.revoke_sessions("auth0|jane") == "not_available"
    assert [r["method"] for r in state.requests()[1:]] == ["POST", "DELETE", "DELETE"]


async def test_revoke_sessions_other_errors_raise(make_client: ClientFactory) -> None:
    answer = httpx.Response(400, json={"statusCode": 400, "message": "Bad id"})
    async with make_client(wire(lambda request: answer)) as auth0:
        with pytest.raises(Auth0Error):
            await auth0.revoke_sessions("auth0|jane")


async def test_invalidate_remember_browser(auth0: Auth0Client, state: EmulatorState) -> None:
    await auth0.invalidate_remember_browser("auth0|jane")
    inspected = state.inspect_user("auth0|jane")
    assert inspected is not None
    assert inspected["remember_browser_invalidated"] == 1
    state.add_fault(Fault("/api/v2/users/auth0|jane/multifactor", 403))
    with pytest.raises(NotAvailable) as caught:
        await auth0.invalidate_remember_browser("auth0|jane")
    assert (caught.value.endpoint, caught.value.status) == ("invalidate-remember-browser", 403)
