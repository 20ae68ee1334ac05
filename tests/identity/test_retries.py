"""Retries, rate limits and the deadline: waits are asserted on a fake clock
whose `sleep` records the requested duration and moves time on."""

from __future__ import annotations

import math
import time

import anyio
import httpx
import pytest

from devkit.emulator import EmulatorState, Fault, RateLimitConfig, create_emulator
from identity.client import Auth0Client
from identity.errors import IdentityError, RateLimited, UpstreamUnavailable
from tests.auth0_fixtures import USERS, ClientFactory, FakeTime, token_answer, wire

pytestmark = pytest.mark.anyio

LOOKUP = "/api/v2/users-by-email"


def lookups(state: EmulatorState) -> int:
    return len([r for r in state.requests() if r["path"] == LOOKUP])


async def test_429_then_success_waits_until_the_reset(
    auth0: Auth0Client, state: EmulatorState, fake_time: FakeTime
) -> None:
    state.add_fault(Fault(LOOKUP, 429, reset_after=3))
    users = await auth0.users_by_email("jane@example.com")
    assert [u.user_id for u in users] == ["auth0|jane"]
    assert fake_time.sleeps == [3.0]
    assert lookups(state) == 2


async def test_free_plan_bucket_is_honoured(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    app = create_emulator(
        domain="acme.eu.auth0.com",
        users=USERS,
        clock=fake_time.clock,
        rate_limit=RateLimitConfig.free_plan(),
    )
    async with make_client(httpx.ASGITransport(app=app)) as auth0:
        for _ in range(3):  # at one instant: the third finds the bucket empty
            await auth0.users_by_email("jane@example.com")
    # One request comes back after 0.5 s; Auth0 names whole seconds, so 1 s.
    assert fake_time.sleeps == [1.0]


async def test_429_past_the_deadline_raises_at_once(
    auth0: Auth0Client, state: EmulatorState, fake_time: FakeTime
) -> None:
    state.add_fault(Fault(LOOKUP, 429, reset_after=30))
    with pytest.raises(RateLimited) as caught:
        await auth0.users_by_email("jane@example.com")
    assert caught.value.retry_after == 30.0
    assert fake_time.sleeps == []
    assert lookups(state) == 1


async def test_429_retry_after_header(make_client: ClientFactory, fake_time: FakeTime) -> None:
    answers = iter(
        [httpx.Response(429, headers={"retry-after": "2"}), httpx.Response(200, json=[])]
    )
    async with make_client(wire(lambda request: next(answers))) as auth0:
        assert await auth0.users_by_email("a@example.com") == []
    assert fake_time.sleeps == [2.0]


async def test_429_longer_of_both_headers(make_client: ClientFactory, fake_time: FakeTime) -> None:
    headers = {"retry-after": "1", "x-ratelimit-reset": str(int(fake_time.now) + 4)}
    answers = iter([httpx.Response(429, headers=headers), httpx.Response(200, json=[])])
    async with make_client(wire(lambda request: next(answers))) as auth0:
        await auth0.users_by_email("a@example.com")
    assert fake_time.sleeps == [4.0]


async def test_429_without_headers_backs_off(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    answers = iter([httpx.Response(429), httpx.Response(200, json=[])])
    async with make_client(wire(lambda request: next(answers))) as auth0:
        await auth0.users_by_email("a@example.com")
    [wait] = fake_time.sleeps
    assert 0.25 <= wait <= 0.5


async def test_429_every_time_ends_as_rate_limited(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    def always(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"x-ratelimit-reset": str(math.ceil(fake_time.now + 1))})

    async with make_client(wire(always)) as auth0:
        with pytest.raises(RateLimited) as caught:
            await auth0.users_by_email("a@example.com")
    assert caught.value.retry_after == 1.0


async def test_503_twice_then_success(
    auth0: Auth0Client, state: EmulatorState, fake_time: FakeTime
) -> None:
    state.add_fault(Fault(LOOKUP, 503, times=2))
    users = await auth0.users_by_email("jane@example.com")
    assert len(users) == 1
    assert lookups(state) == 3
    first, second = fake_time.sleeps
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 0.75  # exponential, with jitter


async def test_5xx_forever_gives_up_within_the_deadline(
    auth0: Auth0Client, state: EmulatorState, fake_time: FakeTime
) -> None:
    state.add_fault(Fault(LOOKUP, 503, times=1000))
    with pytest.raises(UpstreamUnavailable) as caught:
        await auth0.users_by_email("jane@example.com")
    assert "503" in caught.value.reason
    assert sum(fake_time.sleeps) <= 10.0
    assert 1 < lookups(state) <= 6


async def test_503_retry_after_is_passed_on(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    answer = httpx.Response(503, headers={"retry-after": "120"})
    async with make_client(wire(lambda request: answer)) as auth0:
        with pytest.raises(UpstreamUnavailable) as caught:
            await auth0.users_by_email("a@example.com")
    assert caught.value.retry_after == 120.0
    assert fake_time.sleeps == []  # 120 s would not fit the 10 s deadline


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.ConnectError("refused"), "ConnectError"),
        (httpx.RemoteProtocolError("closed"), "RemoteProtocolError"),
    ],
)
async def test_network_failures_retry_then_upstream_unavailable(
    make_client: ClientFactory, fake_time: FakeTime, failure: httpx.HTTPError, reason: str
) -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise failure

    async with make_client(wire(handler)) as auth0:
        with pytest.raises(UpstreamUnavailable) as caught:
            await auth0.users_by_email("a@example.com")
    assert caught.value.reason == reason
    assert caught.value.retry_after > 0
    assert isinstance(caught.value.__cause__, httpx.HTTPError)  # mapped `from exc`
    assert attempts > 1
    assert len(fake_time.sleeps) == attempts - 1


async def test_network_failure_then_success(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    failures = [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop(0)
        return httpx.Response(200, json=[])

    async with make_client(wire(handler)) as auth0:
        assert await auth0.users_by_email("a@example.com") == []
    assert len(fake_time.sleeps) == 2


async def test_token_endpoint_outage_is_retried_too(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    token_answers = [httpx.Response(503), httpx.Response(429, headers={"retry-after": "2"})]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_answers.pop(0) if token_answers else token_answer()
        return httpx.Response(200, json=[])

    async with make_client(httpx.MockTransport(handler)) as auth0:
        assert await auth0.users_by_email("a@example.com") == []
    assert len(fake_time.sleeps) == 2
    assert fake_time.sleeps[1] == 2.0


async def test_a_frozen_clock_still_meets_the_deadline(make_client: ClientFactory) -> None:
    frozen = FakeTime(frozen=True)  # sleeps are recorded but time stands still
    async with make_client(
        wire(lambda request: httpx.Response(502)), clock=frozen.clock, sleep=frozen.sleep
    ) as auth0:
        with pytest.raises(UpstreamUnavailable):
            await auth0.users_by_email("a@example.com")
    assert 1 <= len(frozen.sleeps) <= 5
    assert sum(frozen.sleeps) <= 10.0


async def test_deadline_is_configurable(make_client: ClientFactory, fake_time: FakeTime) -> None:
    async with make_client(
        wire(lambda request: httpx.Response(500)), deadline_seconds=1.0
    ) as auth0:
        with pytest.raises(UpstreamUnavailable):
            await auth0.users_by_email("a@example.com")
    assert sum(fake_time.sleeps) <= 1.0


async def test_real_sleep_default_is_anyio(make_client: ClientFactory) -> None:
    """With the defaults (real clock, anyio.sleep) a short outage costs real, short waits."""
    answers = iter([httpx.Response(503), httpx.Response(200, json=[])])
    async with make_client(
        wire(lambda request: next(answers)), clock=time.time, sleep=anyio.sleep
    ) as auth0:
        with anyio.fail_after(5):
            assert await auth0.users_by_email("a@example.com") == []


async def test_callers_only_ever_see_identity_errors(make_client: ClientFactory) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError("bad gzip")

    async with make_client(wire(broken)) as auth0:
        with pytest.raises(IdentityError) as caught:
            await auth0.get_user("auth0|jane")
    assert isinstance(caught.value, UpstreamUnavailable)
