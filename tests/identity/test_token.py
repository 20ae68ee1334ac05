"""identity.token.TokenCache over httpx.MockTransport: one client-credentials request,
the token cached until shortly before it expires, failures never cached."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from identity.errors import Auth0Error
from identity.retrying import Transient
from identity.token import TokenCache
from tests.auth0_fixtures import BASE_URL, CLIENT_ID, CLIENT_SECRET, DOMAIN, FakeTime, token_answer

pytestmark = pytest.mark.anyio
TIMEOUT = httpx.Timeout(5.0)


class Auth0:
    """The token endpoint: answers from a queue and records each request body."""

    def __init__(self) -> None:
        self.answers: list[Callable[[], httpx.Response]] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/oauth/token")
        self.bodies.append(json.loads(request.content))
        return self.answers.pop(0)()


@pytest.fixture
def auth0() -> Auth0:
    return Auth0()


@pytest.fixture
async def http(auth0: Auth0) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(auth0), base_url=BASE_URL) as c:
        yield c


@pytest.fixture
def cache(fake_time: FakeTime) -> TokenCache:
    return TokenCache(
        domain=DOMAIN, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=fake_time.clock
    )


async def test_cached_until_a_minute_before_expiry(
    cache: TokenCache, http: httpx.AsyncClient, auth0: Auth0, fake_time: FakeTime
) -> None:
    auth0.answers += [lambda: token_answer("tok-1", 3600), lambda: token_answer("tok-2", 3600)]
    assert await cache.get(http, TIMEOUT) == "tok-1"
    fake_time.advance(3539)
    assert await cache.get(http, TIMEOUT) == "tok-1"
    fake_time.advance(1)
    assert await cache.get(http, TIMEOUT) == "tok-2"
    assert auth0.bodies[0] == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "audience": f"https://{DOMAIN}/api/v2/",
    }
    assert len(auth0.bodies) == 2


async def test_a_short_lifetime_refreshes_at_ninety_percent(
    cache: TokenCache, http: httpx.AsyncClient, auth0: Auth0, fake_time: FakeTime
) -> None:
    auth0.answers += [lambda: token_answer("a", 100), lambda: token_answer("b", 100)]
    assert await cache.get(http, TIMEOUT) == "a"
    fake_time.advance(89)
    assert await cache.get(http, TIMEOUT) == "a"
    fake_time.advance(1)
    assert await cache.get(http, TIMEOUT) == "b"


async def test_drop_forgets_only_the_current_token(
    cache: TokenCache, http: httpx.AsyncClient, auth0: Auth0
) -> None:
    auth0.answers += [lambda: token_answer("a"), lambda: token_answer("b")]
    assert await cache.get(http, TIMEOUT) == "a"
    cache.drop("stale")
    assert await cache.get(http, TIMEOUT) == "a"
    cache.drop("a")
    assert await cache.get(http, TIMEOUT) == "b"


async def test_a_missing_or_odd_lifetime_means_a_day(
    cache: TokenCache, http: httpx.AsyncClient, auth0: Auth0, fake_time: FakeTime
) -> None:
    auth0.answers += [
        lambda: httpx.Response(200, json={"access_token": "a", "expires_in": "soon"}),
        lambda: httpx.Response(200, json={"access_token": "b"}),
    ]
    assert await cache.get(http, TIMEOUT) == "a"
    fake_time.advance(86400 - 61)
    assert await cache.get(http, TIMEOUT) == "a"
    fake_time.advance(1)
    assert await cache.get(http, TIMEOUT) == "b"
    fake_time.advance(86400 - 61)
    assert await cache.get(http, TIMEOUT) == "b"
    assert len(auth0.bodies) == 2


async def test_failures_raise_and_are_not_cached(
    cache: TokenCache, http: httpx.AsyncClient, auth0: Auth0
) -> None:
    auth0.answers += [
        lambda: httpx.Response(403, json={"error": "access_denied", "error_description": "no"}),
        lambda: httpx.Response(200, json={"token_type": "Bearer"}),
        lambda: httpx.Response(503),
        lambda: token_answer("ok"),
    ]
    with pytest.raises(Auth0Error) as denied:
        await cache.get(http, TIMEOUT)
    assert (denied.value.status, denied.value.code, denied.value.message) == (
        403,
        "access_denied",
        "no",
    )
    with pytest.raises(Auth0Error) as empty:
        await cache.get(http, TIMEOUT)
    assert empty.value.code == "bad_token_answer"
    with pytest.raises(Transient):
        await cache.get(http, TIMEOUT)
    assert await cache.get(http, TIMEOUT) == "ok"


def test_repr_leaves_the_secret_out(cache: TokenCache) -> None:
    assert CLIENT_SECRET not in repr(cache)
    assert CLIENT_ID in repr(cache)
