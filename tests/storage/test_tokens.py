"""storage.tokens: a `jti` is spent once, replays are refused, expired ones pruned."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import tokens
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


async def spend(db: Database, jti: str, clock: Clock, ttl: float = 300) -> bool:
    async with db.begin() as conn:
        return await tokens.spend(conn, jti, expires_at=clock() + timedelta(seconds=ttl))


async def prune(db: Database, clock: Clock) -> int:
    async with db.begin() as conn:
        return await tokens.prune(conn, now=clock())


async def test_a_jti_is_spent_once(database: Database, clock: Clock) -> None:
    assert await spend(database, "jti-1", clock)
    assert not await spend(database, "jti-1", clock)
    assert not await spend(database, "jti-1", clock, ttl=3600)  # a new expiry is no excuse
    assert await spend(database, "jti-2", clock)


async def test_a_replay_in_a_rolled_back_transaction_leaves_nothing(
    database: Database, clock: Clock
) -> None:
    async def spend_then_fail() -> None:
        async with database.begin() as conn:
            assert await tokens.spend(conn, "jti-1", expires_at=clock())
            raise RuntimeError("the request failed after spending")

    with pytest.raises(RuntimeError):
        await spend_then_fail()
    assert await spend(database, "jti-1", clock)


async def test_prune_removes_only_expired(database: Database, clock: Clock) -> None:
    await spend(database, "short", clock, ttl=60)
    await spend(database, "long", clock, ttl=600)
    assert await prune(database, clock) == 0
    clock.advance(60)
    assert await prune(database, clock) == 0  # expiring now is not expired yet
    clock.advance(1)
    assert await prune(database, clock) == 1
    assert await spend(database, "short", clock)  # forgotten once it could not be valid
    assert not await spend(database, "long", clock)
