"""`POST /hooks/auth0/actions` over real HTTP: the service on uvicorn in the test's
event loop (`tests.support.serve_in_loop`), so the test reads and writes tickets
through the same Runtime and frozen clock that answer the requests. Tokens are
made with python-jose, as any HS256 signer would make them; the real Action
under Node.js is in tests/integrations/test_auth0_action.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt
from sqlalchemy import text

from hooks.app import create_app
from resetrelay.reset.requests import issue
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from storage import tickets
from tests.conftest import Clock
from tests.support import serve_in_loop

pytestmark = pytest.mark.anyio

SECRET = "action-secret-7f3b2c9d0e1a4b5c6d7e8f90"
DOMAIN = "acme.eu.auth0.com"
UNAUTHORIZED = {"error": "unauthorized", "message": "The bearer token is missing or invalid."}


def change(user_id: str = "auth0|jane", **extra: Any) -> bytes:
    return json.dumps(
        {"type": "post_change_password", "user": {"user_id": user_id}, **extra}
    ).encode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Service:
    client: httpx.AsyncClient
    runtime: Runtime
    clock: Clock

    def claims(self, body: bytes, **overrides: Any) -> dict[str, Any]:
        now = int(self.clock().timestamp())
        claims: dict[str, Any] = {
            "iss": f"https://{DOMAIN}/",
            "aud": "resetrelay",
            "iat": now,
            "exp": now + 120,
            "jti": str(uuid.uuid4()),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, body: bytes, *, secret: str = SECRET, **overrides: Any) -> str:
        return jwt.encode(self.claims(body, **overrides), secret, algorithm="HS256")

    async def post(
        self,
        body: bytes,
        token: str | None = None,
        *,
        authorization: str | None = None,
        content_type: str = "application/json",
    ) -> httpx.Response:
        headers = {"content-type": content_type}
        if authorization is not None:
            headers["authorization"] = authorization
        elif token is not None:
            headers["authorization"] = f"Bearer {token}"
        return await self.client.post("/hooks/auth0/actions", content=body, headers=headers)

    async def ticket(self, user_id: str = "auth0|jane", at: datetime | None = None) -> str:
        """A ticket as the flow issues it; returns its id (the value is never seen)."""
        async with self.runtime.db.begin() as conn:
            return await issue(
                conn,
                self.runtime.settings,
                self.runtime.codec,
                user_id=user_id,
                email=f"{user_id.partition('|')[2]}@example.com",
                connection="Username-Password-Authentication",
                locale="en",
                purpose="reset",
                now=at or self.clock(),
            )

    async def state(self, ticket_id: str) -> str:
        async with self.runtime.db.begin() as conn:
            row = await tickets.by_id(conn, ticket_id)
        assert row is not None
        return row.state


async def running(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings], **env: str
) -> AsyncIterator[Service]:
    settings = settings_for(database_url, **env)
    runtime = Runtime.build(settings, now=clock)
    try:
        async with (
            serve_in_loop(create_app(settings, runtime=runtime)) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            yield Service(client, runtime, clock)
    finally:
        await runtime.aclose()


@pytest.fixture
async def service(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> AsyncIterator[Service]:
    async for found in running(database_url, clock, settings_for, AUTH0_ACTION_SECRET=SECRET):
        yield found


async def test_a_valid_token_voids_the_users_older_tickets(service: Service) -> None:
    jane = await service.ticket("auth0|jane")
    bob = await service.ticket("auth0|bob")
    service.clock.advance(10)
    body = change("auth0|jane")
    answer = await service.post(body, service.token(body))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"status": "ok", "voided": 1}
    assert await service.state(jane) == "revoked"
    assert await service.state(bob) == "open"
    metrics = (await service.client.get("/metrics")).text
    assert 'resetrelay_tickets_total{event="voided"} 1.0' in metrics


async def test_a_ticket_issued_after_iat_survives(service: Service) -> None:
    # The Action reports a change made before this ticket was issued (delivered late).
    issued_at = int(service.clock().timestamp())
    service.clock.advance(20)
    newer = await service.ticket()
    body = change()
    answer = await service.post(body, service.token(body, iat=issued_at, exp=issued_at + 120))
    assert answer.json() == {"status": "ok", "voided": 0}
    assert await service.state(newer) == "open"


async def test_a_replayed_token_is_refused_and_voids_nothing(service: Service) -> None:
    first = await service.ticket()
    service.clock.advance(10)
    body = change()
    token = service.token(body)
    assert (await service.post(body, token)).json() == {"status": "ok", "voided": 1}
    assert await service.state(first) == "revoked"
    # A second ticket that the first delivery would have voided too (issued before iat).
    service.clock.advance(-5)
    second = await service.ticket()
    service.clock.advance(5)
    replay = await service.post(body, token)
    assert (replay.status_code, replay.json()) == (401, UNAUTHORIZED)
    assert await service.state(second) == "open"


async def test_concurrent_uses_of_one_token_count_once(service: Service) -> None:
    tickets_ = [await service.ticket(f"auth0|u{i}") for i in range(3)]
    service.clock.advance(10)
    body = change("auth0|u0")
    token = service.token(body)
    statuses: list[int] = []

    async def use() -> None:
        statuses.append((await service.post(body, token)).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(use)
    assert sorted(statuses) == [200] + [401] * 7
    assert [await service.state(t) for t in tickets_] == ["revoked", "open", "open"]


async def test_a_spent_jti_outlives_the_tokens_leeway(service: Service) -> None:
    """The token is accepted until `exp` + leeway; the spent `jti` must be kept at
    least that long, or housekeeping forgets it while the token still verifies."""
    await service.ticket()
    service.clock.advance(10)
    body = change()
    token = service.token(body)
    assert (await service.post(body, token)).status_code == 200
    service.clock.advance(125)  # past exp (iat + 120), still inside the 30 s leeway
    await service.runtime.housekeeping.run()  # prunes spent jtis
    service.clock.advance(-5)
    fresh = await service.ticket()
    service.clock.advance(5)
    replay = await service.post(body, token)
    assert (replay.status_code, replay.json()) == (401, UNAUTHORIZED)
    assert await service.state(fresh) == "open"


def _alg_none(service: Service, body: bytes) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(service.claims(body)).encode())}."


def _rs256(service: Service, body: bytes) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return jwt.encode(service.claims(body), pem, algorithm="RS256")


def _hand_signed(service: Service, header: Any, payload: Any) -> str:
    head = b64(json.dumps(header).encode())
    claims = b64(json.dumps(payload).encode())
    import hmac

    signature = hmac.new(SECRET.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
    return f"{head}.{claims}.{b64(signature)}"


BAD_TOKENS: dict[str, Callable[[Service, bytes], str]] = {
    "expired": lambda s, b: s.token(
        b, iat=int(s.clock().timestamp()) - 200, exp=int(s.clock().timestamp()) - 80
    ),
    "lifetime over 300 s": lambda s, b: s.token(b, exp=int(s.clock().timestamp()) + 301),
    "issued in the future": lambda s, b: s.token(
        b, iat=int(s.clock().timestamp()) + 120, exp=int(s.clock().timestamp()) + 180
    ),
    "wrong aud": lambda s, b: s.token(b, aud="someone-else"),
    "no aud": lambda s, b: s.token(b, aud=None),
    "wrong iss": lambda s, b: s.token(b, iss="https://evil.example/"),
    "iss without the slash": lambda s, b: s.token(b, iss=f"https://{DOMAIN}"),
    "no jti": lambda s, b: s.token(b, jti=None),
    "jti not a string": lambda s, b: s.token(b, jti=123),
    "iat as a float": lambda s, b: s.token(b, iat=s.clock().timestamp() + 0.5),
    "no body_sha256": lambda s, b: s.token(b, body_sha256=None),
    "tampered body": lambda s, b: s.token(change("auth0|someone-else")),
    "wrong secret": lambda s, b: s.token(b, secret="not-the-secret-0123456789abcdef"),
    "alg none": _alg_none,
    "RS256": _rs256,
    "HS512": lambda s, b: jwt.encode(s.claims(b), SECRET, algorithm="HS512"),
    "claims not an object": lambda s, b: _hand_signed(s, {"alg": "HS256"}, [s.claims(b)]),
    "header not an object": lambda s, b: _hand_signed(s, ["HS256"], s.claims(b)),
    "not a JWT": lambda s, b: "not-a-jwt",
    "two parts": lambda s, b: "a.b",
    "garbage parts": lambda s, b: "%%%.###.!!!",
    "too long": lambda s, b: "a." + "b" * 5000 + ".c",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_get_one_401(service: Service, case: str) -> None:
    ticket = await service.ticket()
    service.clock.advance(10)
    body = change()
    answer = await service.post(body, BAD_TOKENS[case](service, body))
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)
    assert await service.state(ticket) == "open"


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer ", "Basic abc", "token-without-scheme"]
)
async def test_a_missing_bearer_gets_the_same_401(
    service: Service, authorization: str | None
) -> None:
    body = change()
    token = service.token(body)
    value = authorization.replace("abc", token) if authorization else authorization
    if value == "token-without-scheme":
        value = token
    headers = {"content-type": "application/json"}
    if value is not None:
        headers["authorization"] = value.strip()
    answer = await service.client.post("/hooks/auth0/actions", content=body, headers=headers)
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)


async def test_lowercase_bearer_scheme_is_fine(service: Service) -> None:
    body = change()
    answer = await service.post(body, authorization=f"bearer {service.token(body)}")
    assert answer.status_code == 200


@pytest.mark.parametrize("value", [None, ""])
async def test_unset_secret_means_the_route_does_not_exist(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings], value: str | None
) -> None:
    env = {} if value is None else {"AUTH0_ACTION_SECRET": value}
    async for service in running(database_url, clock, settings_for, **env):
        body = change()
        answer = await service.post(body, service.token(body))
        assert (answer.status_code, answer.json()) == (
            404,
            {"error": "not_found", "message": "Not Found"},
        )


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type_is_415(service: Service, content_type: str) -> None:
    body = change()
    answer = await service.post(body, service.token(body), content_type=content_type)
    assert answer.status_code == 415
    assert answer.json()["error"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"x"', b"null", b"{" * 10_000]
)
async def test_bad_json_is_400(service: Service, body: bytes) -> None:
    answer = await service.post(body, service.token(body))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_payload"
    assert set(answer.json()) == {"error", "message"}


@pytest.mark.parametrize(
    "event",
    [
        {"type": "post_change_password"},
        {"type": "post_change_password", "user": "auth0|jane"},
        {"type": "post_change_password", "user": {"user_id": 5}},
        {"type": "post_change_password", "user": {"user_id": ""}},
        {"type": "post_change_password", "user": {"user_id": "a" * 256}},
        {"type": "post_change_password", "user": {"user_id": "auth0|\u0000"}},
        {"type": "post_change_password", "user": {"user_id": "auth0|\ud800"}},
        {"type": "post_change_password", "user": {}},
        {"type": "post_change_password", "user": {"email": "not an address"}},
        {"type": "post_change_password", "user": {"email": "a@example.com, b@example.com"}},
        {"type": "post_change_password", "user": {"email": "Jane <jane@example.com>"}},
        {"type": "post_change_password", "user": {"email": ["jane@example.com"]}},
    ],
)
async def test_a_bad_user_is_400(service: Service, event: dict[str, Any]) -> None:
    body = json.dumps(event).encode()
    answer = await service.post(body, service.token(body))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_payload"


@pytest.mark.parametrize("kind", ["post_login", "pre_user_registration", "", None, 7])
async def test_unknown_type_is_422(service: Service, kind: Any) -> None:
    body = json.dumps({"type": kind, "user": {"user_id": "auth0|jane"}}).encode()
    answer = await service.post(body, service.token(body))
    assert answer.status_code == 422
    assert answer.json()["error"] == "unknown_event_type"


async def test_body_over_64_kib_is_413(service: Service) -> None:
    body = change(padding="x" * 70_000)
    answer = await service.post(body, service.token(body))
    assert answer.status_code == 413
    assert answer.json()["error"] == "payload_too_large"


@pytest.mark.parametrize("jti", ["j\u0000ti", "\udfff", "x" * 256])
async def test_unstorable_jti_is_a_401_not_a_5xx(service: Service, jti: str) -> None:
    body = change()
    answer = await service.post(body, service.token(body, jti=jti))
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)


@pytest.mark.parametrize("depth", [976, 30_000])
async def test_deeply_nested_json_is_400_not_500(
    service: Service, depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A correctly signed body nested past the interpreter's recursion limit: json.loads
    raises RecursionError, which must end as 400 invalid_payload, quietly."""
    body = b'{"type": "post_change_password", "user": ' + b"[" * depth + b"]" * depth + b"}"
    answer = await service.post(body, service.token(body))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_payload"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_only_an_address_is_accepted_and_resolved_in_a_job(service: Service) -> None:
    # Auth0 marks event.user.user_id optional: with only the address, the lookup is an
    # Auth0 call, made by a job after the answer (202), never inside the request.
    body = json.dumps(
        {"type": "post_change_password", "user": {"email": "Jane@Example.com"}}
    ).encode()
    token = service.token(body)
    answer = await service.post(body, token)
    assert (answer.status_code, answer.json()) == (202, {"status": "accepted"})
    async with service.runtime.db.begin() as conn:
        rows = (
            await conn.execute(text("SELECT payload FROM jobs WHERE kind = 'auth0.log_event'"))
        ).all()
    ((payload,),) = rows
    stored = payload if isinstance(payload, dict) else json.loads(payload)
    assert stored["type"] == "scp" and stored["user_name"] == "jane@example.com"
    assert "user_id" not in stored or stored["user_id"] is None
    replayed = await service.post(body, token)
    assert replayed.status_code == 401  # the jti was spent with the job, once
