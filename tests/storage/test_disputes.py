"""storage.disputes: a link is spent once (two concurrent spends: one wins), expiry
is by time, a confirmed dispute's block is lifted once; retention keeps a used link
whose block is still up."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import anyio
import pytest
from sqlalchemy import select

from storage import disputes, retention
from storage.database import Database
from storage.models import Dispute
from storage.sql import table
from tests.conftest import Clock

pytestmark = pytest.mark.anyio
WEEK = timedelta(days=7)


async def insert(db: Database, clock: Clock, name: str, user_id: str = "auth0|jane") -> None:
    async with db.begin() as conn:
        await disputes.insert(
            conn,
            dispute_id=name,
            lookup_hash=f"hash-{name}",
            user_id=user_id,
            email="jane@example.com",
            connection="Username-Password-Authentication",
            locale="de",
            changed_at=clock(),
            now=clock(),
            ttl=WEEK,
        )


async def test_a_link_is_spent_once_even_by_two_at_once(database: Database, clock: Clock) -> None:
    await insert(database, clock, "d1")
    won: list[bool] = []

    async def spend() -> None:
        async with database.begin() as conn:
            won.append(await disputes.use(conn, "d1", now=clock()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(spend)
        tg.start_soon(spend)
    assert sorted(won) == [False, True]
    async with database.read() as conn:
        row = await disputes.by_hash(conn, "hash-d1")
    assert row is not None and row.status(clock()) == "used" and row.used_at == clock()
    assert row.locale == "de" and row.expires_at == clock() + WEEK


async def test_an_expired_link_cannot_be_spent(database: Database, clock: Clock) -> None:
    await insert(database, clock, "d1")
    clock.advance(WEEK.total_seconds())
    async with database.begin() as conn:
        assert not await disputes.use(conn, "d1", now=clock())
        row = await disputes.by_id(conn, "d1")
    assert row is not None and row.status(clock()) == "expired"


async def test_the_block_is_lifted_once_and_only_after_a_dispute(
    database: Database, clock: Clock
) -> None:
    await insert(database, clock, "d1")
    await insert(database, clock, "other", user_id="auth0|sam")
    async with database.begin() as conn:
        now = clock()
        assert await disputes.lift_pending(conn, "auth0|jane", issued_at=now, now=now) == 0
        assert await disputes.use(conn, "d1", now=now)
        assert not await disputes.lifted_since(conn, "d1")
        # A link made before the dispute was confirmed lifts nothing (it may be the
        # intruder's, settled after the dispute).
        early = now - timedelta(seconds=1)
        assert await disputes.lift_pending(conn, "auth0|jane", issued_at=early, now=now) == 0
        assert await disputes.lift_pending(conn, "auth0|jane", issued_at=now, now=now) == 1
        assert await disputes.lift_pending(conn, "auth0|jane", issued_at=now, now=now) == 0
        assert await disputes.lifted_since(conn, "d1")
        assert await disputes.lift_pending(conn, "auth0|sam", issued_at=now, now=now) == 0


async def test_retention_keeps_a_block_not_yet_lifted(database: Database, clock: Clock) -> None:
    for name in ("open", "used", "lifted"):
        await insert(database, clock, name, user_id=f"auth0|{name}")
    async with database.begin() as conn:
        await disputes.use(conn, "used", now=clock())
        await disputes.use(conn, "lifted", now=clock())
        await disputes.lift_pending(conn, "auth0|lifted", issued_at=clock(), now=clock())
    step = next(i for i, (name, _) in enumerate(retention.STATEMENTS) if name == "disputes")
    later = clock() + WEEK + timedelta(days=31)
    deleted = await database.run(
        partial(
            retention.delete_batch_sync,
            step=step,
            now=later,
            retention=timedelta(days=30),
            batch=10,
        )
    )
    assert deleted == 2
    async with database.read() as conn:
        left = [row.id for row in await conn.execute(select(table(Dispute).c.id))]
    assert left == ["used"]
