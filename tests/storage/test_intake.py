"""The driver-level hot path writes rows the SQLAlchemy side reads back as its own."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from storage import inbound, intake, jobs
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio
BATCH = intake.Batch(source="website", job_kind="reset.requested", max_attempts=20)


async def test_new_events_become_claimable_jobs(database: Database, clock: Clock) -> None:
    payloads = [(f"msg_{i}", {"email": f"u{i}@example.com", "locale": None}) for i in range(3)]
    assert await intake.record(database, BATCH, payloads, now=clock()) == {
        "msg_0",
        "msg_1",
        "msg_2",
    }
    async with database.begin() as conn:
        claimed = await jobs.claim(conn, now=clock(), lease=timedelta(seconds=30), limit=10)
    assert [(j.kind, j.payload, j.max_attempts) for j in claimed] == [
        ("reset.requested", {"email": f"u{i}@example.com", "locale": None}, 20) for i in range(3)
    ]


async def test_jobs_wait_for_their_time_like_any_other(database: Database, clock: Clock) -> None:
    await intake.record(database, BATCH, [("msg_x", {})], now=clock() + timedelta(seconds=60))
    async with database.begin() as conn:
        assert await jobs.claim(conn, now=clock(), lease=timedelta(seconds=30), limit=10) == []
        stats = await jobs.stats(conn, now=clock() + timedelta(seconds=90))
    assert stats.depth == 1
    assert stats.oldest_age_seconds == pytest.approx(30)


async def test_second_delivery_makes_no_second_job(database: Database, clock: Clock) -> None:
    assert await intake.record(database, BATCH, [("msg_1", {})], now=clock()) == {"msg_1"}
    again = await intake.record(database, BATCH, [("msg_1", {}), ("msg_2", {})], now=clock())
    assert again == {"msg_2"}
    other_source = intake.Batch(source="auth0", job_kind="k", max_attempts=1)
    assert await intake.record(database, other_source, [("msg_1", {})], now=clock()) == {"msg_1"}
    async with database.begin() as conn:
        assert (await jobs.stats(conn, now=clock())).depth == 3


async def test_ids_and_payloads_with_quotes_braces_and_non_ascii_round_trip(
    database: Database, clock: Clock
) -> None:
    # What an array literal or a JSON text would need escaped (quotes, backslashes,
    # braces, commas, NULL spelled out, non-ASCII) comes back exactly, and every one
    # is its own row.
    ids = ['msg_"q"', "msg_\\b", "msg_{x,y}", "NULL", "msg_ü"]
    emails = [
        'a"b@example.com',
        "c\\d@example.com",
        "{e,f}@example.com",
        "NULL",
        "jürgen@bücher.de",
    ]
    items = [(i, {"email": e, "locale": "de"}) for i, e in zip(ids, emails, strict=True)]
    assert await intake.record(database, BATCH, items, now=clock()) == set(ids)
    assert await intake.record(database, BATCH, items, now=clock()) == set()  # deduped
    async with database.begin() as conn:
        claimed = await jobs.claim(conn, now=clock(), lease=timedelta(seconds=30), limit=10)
    assert sorted(j.payload["email"] for j in claimed) == sorted(emails)


async def test_payload_strings_with_nul_and_control_characters_are_stored(
    database: Database, clock: Clock
) -> None:
    # Storage takes any string a payload holds, whatever the door lets through
    # (hooks.events keeps control characters out of `requested` today): PostgreSQL's
    # JSON keeps \u0000 as written but cannot turn it into text, so nothing on the way
    # in may read the payload as text.
    odd = "::%\x00\x01\x1f\u2028"
    items = [("msg_nul", {"email": "a@example.com", "client_ip": odd}), ("msg_ok", {})]
    assert await intake.record(database, BATCH, items, now=clock()) == {"msg_nul", "msg_ok"}
    async with database.begin() as conn:
        claimed = await jobs.claim(conn, now=clock(), lease=timedelta(seconds=30), limit=10)
    assert sorted(j.payload.get("client_ip", "") for j in claimed) == ["", odd]


async def test_a_batch_waits_for_a_claim_of_its_id_in_flight_and_then_queues_nothing(
    database: Database, clock: Clock
) -> None:
    # The other half of the one id namespace (storage.inbound.claim): a claim still
    # open when the batch comes holds the id (PostgreSQL: the exclusive advisory
    # lock; SQLite: the write lock), the batch waits for it, and its snapshot is
    # taken after, so it sees the claimed row and queues no job.
    claimed = anyio.Event()
    release = anyio.Event()
    result: dict[str, set[str]] = {}

    async def claim_and_hold() -> None:
        async with database.begin() as conn:
            held = await inbound.claim(
                conn,
                source=BATCH.source,
                event_id="msg_raced",
                event_type="password_reset.verify",
                now=clock(),
                stale_before=clock() - timedelta(minutes=5),
            )
            assert held == "claimed"
            claimed.set()
            await release.wait()

    async def queue() -> None:
        await claimed.wait()
        result["new"] = await intake.record(
            database, BATCH, [("msg_raced", {}), ("msg_free", {})], now=clock()
        )

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(claim_and_hold)
            tg.start_soon(queue)
            await claimed.wait()
            await anyio.sleep(0.3)
            assert "new" not in result  # still waiting on the claim's lock
            release.set()
    assert result["new"] == {"msg_free"}


async def test_a_batch_larger_than_one_postgres_call_queues_every_job(
    database: Database, clock: Clock
) -> None:
    # On PostgreSQL a batch goes in calls of POSTGRES_MAX_ROWS rows (each holds as
    # many advisory locks); SQLite takes it in one statement. Either way, all of it.
    count = intake.POSTGRES_MAX_ROWS * 2 + 5
    items: list[tuple[str, dict[str, object]]] = [(f"msg_{i}", {"n": i}) for i in range(count)]
    items.append(("msg_0", {"n": "twin"}))  # a twin across the calls queues nothing
    assert await intake.record(database, BATCH, items, now=clock()) == {
        f"msg_{i}" for i in range(count)
    }
    async with database.begin() as conn:
        claimed = await jobs.claim(conn, now=clock(), lease=timedelta(seconds=30), limit=500)
    assert sorted(j.payload["n"] for j in claimed) == list(range(count))


async def test_a_postgres_batch_failing_after_a_committed_call_says_which_ids_it_stored(
    database: Database, clock: Clock
) -> None:
    # Each PostgreSQL call is its own transaction: when a later one fails, what the
    # earlier ones queued is there, and the error names it (the group committer
    # answers those 202 and only the others 503). SQLite's one statement keeps the
    # over-long key (it does not enforce VARCHAR lengths).
    items: list[tuple[str, dict[str, object]]] = [
        (f"msg_{i}", {}) for i in range(intake.POSTGRES_MAX_ROWS)
    ]
    items.append(("x" * 400, {}))  # longer than dedupe_key's 300: PostgreSQL refuses it
    if database.dialect == "sqlite":
        assert len(await intake.record(database, BATCH, items, now=clock())) == len(items)
        return
    with pytest.raises(intake.PartlyStored) as caught:
        await intake.record(database, BATCH, items, now=clock())
    assert caught.value.stored == {f"msg_{i}" for i in range(intake.POSTGRES_MAX_ROWS)}
    async with database.begin() as conn:
        assert (await jobs.stats(conn, now=clock())).depth == intake.POSTGRES_MAX_ROWS
