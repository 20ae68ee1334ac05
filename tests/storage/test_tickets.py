from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from storage import tickets
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio
LEASE = timedelta(seconds=60)
TTL = timedelta(hours=1)


async def new(db: Database, clock: Clock, ticket_id: str = "t1", user: str = "auth0|1") -> None:
    async with db.begin() as conn:
        await tickets.insert(
            conn,
            ticket_id=ticket_id,
            lookup_hash="h-" + ticket_id,
            user_id=user,
            email="jane@example.com",
            connection="db",
            locale="en",
            purpose="reset",
            now=clock(),
            ttl=TTL,
        )


async def get(db: Database, ticket_id: str = "t1") -> tickets.TicketRow:
    async with db.begin() as conn:
        row = await tickets.by_id(conn, ticket_id)
    assert row is not None
    return row


async def claim(db: Database, clock: Clock, ticket_id: str = "t1") -> bool:
    async with db.begin() as conn:
        return await tickets.claim(conn, ticket_id, now=clock(), lease=LEASE)


async def test_lookup_by_hash(database: Database, clock: Clock) -> None:
    await new(database, clock)
    async with database.begin() as conn:
        row = await tickets.by_hash(conn, "h-t1")
        assert await tickets.by_hash(conn, "h-nope") is None
    assert row is not None
    assert row.status(clock()) == "valid"


async def test_double_spend_is_impossible(database: Database, clock: Clock) -> None:
    await new(database, clock)
    assert await claim(database, clock)
    assert not await claim(database, clock)  # busy
    async with database.begin() as conn:
        assert await tickets.mark_used(conn, "t1", now=clock())
        assert not await tickets.mark_used(conn, "t1", now=clock())
    assert not await claim(database, clock)
    assert (await get(database)).status(clock()) == "used"


async def test_concurrent_claims_one_winner(database: Database, clock: Clock) -> None:
    await new(database, clock)
    results: list[bool] = []
    dbs = [Database(database.url) for _ in range(7)]

    async def one(db: Database) -> None:
        results.append(await claim(db, clock))

    try:
        async with anyio.create_task_group() as tg:
            for db in [database, *dbs]:
                tg.start_soon(one, db)
    finally:
        for db in dbs:
            await db.dispose()
    assert results.count(True) == 1
    assert len(results) == 8


async def test_lapsed_claim_can_be_taken_again(database: Database, clock: Clock) -> None:
    await new(database, clock)
    assert await claim(database, clock)
    assert (await get(database)).busy(clock())
    clock.advance(LEASE.total_seconds() + 1)
    assert not (await get(database)).busy(clock())
    assert await claim(database, clock)


async def test_release_counts_attempts_and_revokes_at_limit(
    database: Database, clock: Clock
) -> None:
    await new(database, clock)
    for attempt in range(1, 4):
        assert await claim(database, clock)
        async with database.begin() as conn:
            state = await tickets.release(conn, "t1", count_attempt=True, max_attempts=3)
        assert state == ("revoked" if attempt == 3 else "open")
    row = await get(database)
    assert row.attempts == 3
    assert row.status(clock()) == "revoked"
    assert not await claim(database, clock)


async def test_release_without_counting(database: Database, clock: Clock) -> None:
    await new(database, clock)
    await claim(database, clock)
    async with database.begin() as conn:
        assert await tickets.release(conn, "t1", count_attempt=False, max_attempts=1) == "open"
    assert (await get(database)).attempts == 0


async def test_expiry_is_by_time(database: Database, clock: Clock) -> None:
    await new(database, clock)
    clock.advance(TTL.total_seconds())
    assert (await get(database)).status(clock()) == "expired"
    assert not await claim(database, clock)


async def test_new_ticket_voids_older_ones(database: Database, clock: Clock) -> None:
    await new(database, clock, "t1")
    await new(database, clock, "other", user="auth0|2")
    clock.advance(1)
    await new(database, clock, "t2")
    assert (await get(database, "t1")).status(clock()) == "revoked"
    assert (await get(database, "t2")).status(clock()) == "valid"
    assert (await get(database, "other")).status(clock()) == "valid"


async def test_void_respects_created_before(database: Database, clock: Clock) -> None:
    event_time = clock()
    clock.advance(5)
    await new(database, clock)
    async with database.begin() as conn:
        # A late event that happened before the ticket was issued must not void it.
        assert (
            await tickets.void_for_user(
                conn, "auth0|1", now=clock(), reason="scp", created_before=event_time
            )
            == 0
        )
        assert await tickets.void_for_user(conn, "auth0|1", now=clock(), reason="scp") == 1


async def test_concurrent_issues_leave_one_open_ticket(database: Database, clock: Clock) -> None:
    others = [Database(database.url) for _ in range(5)]

    async def issue(db: Database, n: int) -> None:
        await new(db, clock, f"t{n}")

    try:
        async with anyio.create_task_group() as tg:
            for n, db in enumerate([database, *others]):
                tg.start_soon(issue, db, n)
    finally:
        for db in others:
            await db.dispose()
    states = [(await get(database, f"t{n}")).status(clock()) for n in range(6)]
    assert states.count("valid") == 1
    assert states.count("revoked") == 5


async def test_mark_opened_is_true_the_first_time_only(database: Database, clock: Clock) -> None:
    await new(database, clock)
    async with database.begin() as conn:
        assert await tickets.mark_opened(conn, "t1", now=clock())
    clock.advance(5)
    async with database.begin() as conn:
        assert not await tickets.mark_opened(conn, "t1", now=clock())
    assert (await get(database)).opened_at == clock() - timedelta(seconds=5)


async def test_open_user_ids_and_for_person(database: Database, clock: Clock) -> None:
    await new(database, clock, "t1", "auth0|1")
    clock.advance(1)
    await new(database, clock, "t2", "auth0|1")  # voids t1 (superseded)
    await new(database, clock, "t3", "auth0|2")
    async with database.begin() as conn:
        assert await tickets.open_user_ids(conn, "Jane@Example.com", now=clock()) == [
            "auth0|1",
            "auth0|2",
        ]
        assert await tickets.void_for_user(conn, "auth0|2", now=clock(), reason="operator") == 1
        assert await tickets.open_user_ids(conn, "jane@example.com", now=clock()) == ["auth0|1"]
        mine = await tickets.for_person(conn, user_ids=["auth0|1"])
        everyone = await tickets.for_person(conn, emails=["JANE@example.com"])
        assert await tickets.for_person(conn) == []
    assert [(t.id, t.state, t.revoked_reason) for t in mine] == [
        ("t1", "revoked", "superseded"),
        ("t2", "open", None),
    ]
    assert sorted(t.id for t in everyone) == ["t1", "t2", "t3"]
    clock.advance(3600)
    async with database.begin() as conn:
        assert await tickets.open_user_ids(conn, "jane@example.com", now=clock()) == []
