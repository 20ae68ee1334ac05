from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from storage import ratelimits
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


async def test_counts_per_key_and_window(database: Database, clock: Clock) -> None:
    clock.current = clock.current.replace(minute=0, second=0)
    async with database.begin() as conn:
        counts = [
            await ratelimits.hit(conn, "k", now=clock(), window_seconds=3600) for _ in range(3)
        ]
        other = await ratelimits.hit(conn, "other", now=clock(), window_seconds=3600)
    assert counts == [1, 2, 3]
    assert other == 1
    clock.advance(3600)
    async with database.begin() as conn:
        assert await ratelimits.hit(conn, "k", now=clock(), window_seconds=3600) == 1


async def test_admit_is_exact_in_every_window(database: Database, clock: Clock) -> None:
    # A fixed window let 3/minute through twice around its boundary; a sliding one never.
    clock.current = clock.current.replace(second=58)
    admitted = []
    for _ in range(8):
        async with database.begin() as conn:
            admitted.append(
                await ratelimits.admit(conn, "k", now=clock(), limit=3, window_seconds=60)
            )
        clock.advance(0.5)
    assert admitted == [True, True, True, False, False, False, False, False]
    clock.advance(60 - 4)  # 60 s after the first admitted event (which was at :58.0)
    async with database.begin() as conn:
        assert await ratelimits.admit(conn, "k", now=clock(), limit=3, window_seconds=60)
        assert not await ratelimits.admit(conn, "k", now=clock(), limit=3, window_seconds=60)
        assert await ratelimits.admit(conn, "other", now=clock(), limit=3, window_seconds=60)


async def test_take_spends_a_burst_then_the_rate(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        waits = [await ratelimits.take(conn, "b", now=clock(), rate=2.0, burst=4) for _ in range(5)]
    assert waits[:4] == [0.0, 0.0, 0.0, 0.0]
    assert waits[4] == pytest.approx(0.5)
    clock.advance(0.5)
    async with database.begin() as conn:
        assert await ratelimits.take(conn, "b", now=clock(), rate=2.0, burst=4) == 0.0
        assert await ratelimits.take(conn, "b", now=clock(), rate=2.0, burst=4) > 0


async def test_concurrent_admits_never_pass_the_limit(
    database: Database, database_url: str, clock: Clock
) -> None:
    other = Database(database_url)
    results: list[bool] = []

    async def one(db: Database) -> None:
        async with db.begin() as conn:
            results.append(
                await ratelimits.admit(conn, "race", now=clock(), limit=1, window_seconds=60)
            )

    try:
        async with anyio.create_task_group() as tg:
            for db in (database, other) * 4:
                tg.start_soon(one, db)
    finally:
        await other.dispose()
    assert sorted(results) == [False] * 7 + [True]


async def test_prune_forgets_old_events(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        await ratelimits.admit(conn, "k", now=clock(), limit=3, window_seconds=60)
        clock.advance(3 * 86400)
        assert await ratelimits.prune(conn, now=clock(), keep=timedelta(days=2)) == 1
