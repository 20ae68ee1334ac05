"""Fixtures for identity tests: a fake clock whose `sleep` records and advances
time, the emulator with a few users, and an `Auth0Client` wired to it through
`httpx.ASGITransport` (no sockets, no real sleeping)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from devkit.emulator import EmulatorState, create_emulator
from identity.client import Auth0Client

DOMAIN = "acme.eu.auth0.com"
BASE_URL = "http://auth0.test"  # not the domain: an emulator or custom domain
CLIENT_ID = "emulator-client"
CLIENT_SECRET = "emulator-secret"
CONNECTION = "Username-Password-Authentication"
START = 1_800_000_000.0

USERS: list[dict[str, Any]] = [
    {"email": "jane@example.com", "password": "Old-Passw0rd!", "user_id": "auth0|jane",
     "name": "Jane Doe", "locale": "en"},
    {"email": "sam@example.com", "social": "google-oauth2", "user_id": "google-oauth2|sam",
     "name": "Sam Social", "locale": "fr"},
    {"email": "lukas@example.com", "password": "Altes-Passw0rt!", "social": "google-oauth2",
     "user_id": "auth0|lukas", "name": "Lukas Becker", "locale": "de"},
    # One address, two unlinked users: a database one and a social one.
    {"email": "kim@example.com", "social": "github", "user_id": "github|kim", "name": "Kim"},
    {"email": "kim@example.com", "password": "Kims-Passw0rd!", "user_id": "auth0|kim",
     "name": "Kim Lee"},
    # A database user in another connection than ours.
    {"email": "ops@example.com", "password": "Ops-Passw0rd!", "user_id": "auth0|ops",
     "connection": "Staff-Database"},
]  # fmt: skip


class FakeTime:
    """`clock()` for every component; `sleep()` records the wait and moves time on."""

    def __init__(self, now: float = START, *, frozen: bool = False) -> None:
        self.now = now
        self.frozen = frozen
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if not self.frozen:
            self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def emulator_app(fake_time: FakeTime) -> Starlette:
    return create_emulator(domain=DOMAIN, users=USERS, clock=fake_time.clock)


@pytest.fixture
def state(emulator_app: Starlette) -> EmulatorState:
    found: EmulatorState = emulator_app.state.emulator
    return found


ClientFactory = Callable[..., Auth0Client]


@pytest.fixture
def make_client(fake_time: FakeTime) -> ClientFactory:
    def build(transport: httpx.AsyncBaseTransport, **overrides: Any) -> Auth0Client:
        options: dict[str, Any] = {
            "base_url": BASE_URL,
            "domain": DOMAIN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "connection": CONNECTION,
            "transport": transport,
            "clock": fake_time.clock,
            "sleep": fake_time.sleep,
        }
        options.update(overrides)
        return Auth0Client(**options)

    return build


@pytest.fixture
async def auth0(emulator_app: Starlette, make_client: ClientFactory) -> AsyncIterator[Auth0Client]:
    async with make_client(httpx.ASGITransport(app=emulator_app)) as client:
        yield client


@pytest.fixture
async def http(emulator_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client for the emulator."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator_app), base_url=BASE_URL
    ) as client:
        yield client


Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def token_answer(value: str = "tok-1", expires_in: int = 86400) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": value, "expires_in": expires_in, "token_type": "Bearer"}
    )


def wire(
    handler: Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]],
) -> httpx.MockTransport:
    """A MockTransport whose token endpoint always answers; `handler` gets the rest."""

    async def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_answer()
        answer = handler(request)
        return answer if isinstance(answer, httpx.Response) else await answer

    return httpx.MockTransport(route)
