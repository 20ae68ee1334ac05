from __future__ import annotations

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
