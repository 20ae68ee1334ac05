"""The shared Management API budget: jobs stop short of the live reserve."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from resetrelay.budget import BudgetTransport
from resetrelay.metrics import Metrics
from resetrelay.runtime import Runtime
from resetrelay.settings import RateLimit, Settings
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


def _auth0(calls: list[str]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={})

    return httpx.MockTransport(handle)


async def test_jobs_leave_the_reserve_to_the_live_path(database: Database, clock: Clock) -> None:
    calls: list[str] = []
    metrics = Metrics()

    def transport(live: bool) -> BudgetTransport:
        return BudgetTransport(
            _auth0(calls),
            database,
            clock,
            metrics,
            limit=RateLimit(4, 1),
            reserve_percent=50,
            live=live,
        )

    jobs = httpx.AsyncClient(transport=transport(False), base_url="https://acme.auth0.com")
    live = httpx.AsyncClient(transport=transport(True), base_url="https://acme.auth0.com")
    statuses = [(await jobs.get("/api/v2/users/x")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    held = await jobs.get("/api/v2/users/x")
    assert held.headers["x-resetrelay-budget"] == "exhausted"
    assert held.headers["retry-after"] == "1"
    assert [(await live.patch("/api/v2/users/x")).status_code for _ in range(3)] == [200, 200, 429]
    # The token endpoint has limits of its own and is not counted.
    assert (await jobs.post("/oauth/token")).status_code == 200
    assert len(calls) == 5
    assert (
        metrics.registry.get_sample_value("resetrelay_auth0_budget_waits_total", {"who": "jobs"})
        == 2
    )
    clock.advance(1)  # four more units a second
    assert (await jobs.get("/api/v2/users/x")).status_code == 200
    await jobs.aclose()
    await live.aclose()


async def test_the_confirm_uses_the_live_client(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(database_url, AUTH0_RATE_LIMIT="2/second")
    runtime = Runtime.build(settings, now=clock)
    try:
        assert runtime.confirms.auth0 is runtime.live_auth0
        assert runtime.requests.auth0 is runtime.auth0
        assert runtime.auth0 is not runtime.live_auth0
    finally:
        await runtime.aclose()


def test_the_reserve_is_a_percent(settings_for: Callable[..., Settings]) -> None:
    from resetrelay.settings import SettingsError

    with pytest.raises(SettingsError, match="AUTH0_LIVE_RESERVE"):
        settings_for(AUTH0_LIVE_RESERVE="95")
    assert settings_for().auth0_rate_limit is None


async def test_the_bulk_lane_waits_in_place_below_the_jobs_mark(database: Database) -> None:
    from datetime import UTC, datetime

    calls: list[str] = []
    metrics = Metrics()

    def transport(*, bulk: bool) -> BudgetTransport:
        return BudgetTransport(
            _auth0(calls),
            database,
            lambda: datetime.now(UTC),
            metrics,
            limit=RateLimit(8, 1),
            reserve_percent=50,
            live=False,
            bulk=bulk,
        )

    base = "https://acme.auth0.com"
    bulk = httpx.AsyncClient(transport=transport(bulk=True), base_url=base)
    jobs = httpx.AsyncClient(transport=transport(bulk=False), base_url=base)
    # Jobs may fill 4 of 8 units; the bulk lane 2. Its third call waits for a unit
    # (1/8 s) instead of answering 429, and never more than the limit's rate.
    started = datetime.now(UTC)
    assert [(await bulk.get("/api/v2/users/x")).status_code for _ in range(3)] == [200] * 3
    assert (datetime.now(UTC) - started).total_seconds() >= 0.1
    waits = metrics.registry.get_sample_value(
        "resetrelay_auth0_budget_waits_total", {"who": "bulk"}
    )
    assert waits is not None and waits >= 1
    # What the bulk lane left is there for a job at once.
    assert (await jobs.get("/api/v2/users/y")).status_code == 200
    assert len(calls) == 4
    await bulk.aclose()
    await jobs.aclose()
