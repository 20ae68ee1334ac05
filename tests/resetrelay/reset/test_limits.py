"""Reset-request limits: networks, not strings; sliding windows; a global ceiling."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from resetrelay.metrics import Metrics
from resetrelay.reset.limits import RequestLimits, Scope, network_of
from resetrelay.settings import Settings
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # IPv4-mapped: the same host
        ("::ffff:cb00:7109", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # one /64, one attacker
        ("fe80::1%eth0", "fe80::/64"),  # zone ids are the website host's business
        ("fe80::1%2", "fe80::/64"),
        ("not an ip", None),
    ],
)
def test_network_of(ip: str, network: str | None) -> None:
    assert network_of(ip) == network


async def _refusals(
    database: Database, limits: RequestLimits, clock: Clock, calls: list[tuple[str, str | None]]
) -> list[Scope | None]:
    out: list[Scope | None] = []
    for email, ip in calls:
        async with database.begin() as conn:
            out.append(await limits.refused(conn, email, ip, now=clock()))
        clock.advance(0.1)
    return out


async def test_one_bucket_per_network(
    database: Database, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(RATE_LIMIT_PER_IP="2/hour", RATE_LIMIT_PER_EMAIL="100/hour")
    limits = RequestLimits(settings, Metrics(), b"k" * 32)
    calls: list[tuple[str, str | None]] = [
        ("a@example.com", "2001:db8::1"),
        ("b@example.com", "2001:db8::2%1"),
        ("c@example.com", "2001:db8::ffff"),
        ("d@example.com", "::ffff:198.51.100.1"),
        ("e@example.com", "198.51.100.1"),
        ("f@example.com", "198.51.100.1"),
    ]
    assert await _refusals(database, limits, clock, calls) == [None, None, "ip", None, None, "ip"]


async def test_a_window_boundary_lets_no_burst_through(
    database: Database, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(RATE_LIMIT_PER_EMAIL="3/minute")
    metrics = Metrics()
    limits = RequestLimits(settings, metrics, b"k" * 32)
    clock.current = clock.current.replace(second=58)
    calls: list[tuple[str, str | None]] = [("jane@example.com", None)] * 39  # 3.9 s
    refused = await _refusals(database, limits, clock, calls)
    assert refused.count(None) == 3
    assert (
        metrics.registry.get_sample_value("resetrelay_rate_limit_hits_total", {"scope": "email"})
        == 36
    )


async def test_the_global_ceiling_counts_every_address(
    database: Database, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(REQUESTS_CEILING="3/minute")
    limits = RequestLimits(settings, Metrics(), b"k" * 32)
    calls: list[tuple[str, str | None]] = [(f"u{i}@example.com", None) for i in range(5)]
    assert await _refusals(database, limits, clock, calls) == [None, None, None, "global", "global"]
    clock.advance(20)  # one more unit after 60/3 seconds
    assert await _refusals(database, limits, clock, calls[:2]) == [None, "global"]


async def test_the_ceiling_can_be_off(settings_for: Callable[..., Settings]) -> None:
    assert settings_for(REQUESTS_CEILING="off").requests_ceiling is None
