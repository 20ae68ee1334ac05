from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from storage import jobs
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio
LEASE = timedelta(seconds=30)


async def enqueue(db: Database, clock: Clock, n: int = 1, **kw: object) -> list[int]:
    async with db.begin() as conn:
        return [await jobs.enqueue(conn, "k", {"n": i}, now=clock(), **kw) for i in range(n)]  # type: ignore[arg-type]


async def claim(db: Database, clock: Clock, limit: int = 10) -> list[jobs.ClaimedJob]:
    async with db.begin() as conn:
        return await jobs.claim(conn, now=clock(), lease=LEASE, limit=limit)


async def test_claim_leases_due_jobs_once(database: Database, clock: Clock) -> None:
    ids = await enqueue(database, clock, 3)
    first = await claim(database, clock)
    assert [j.id for j in first] == ids
    assert all(j.attempts == 1 for j in first)
    assert await claim(database, clock) == []  # leased: nobody else gets them


async def test_future_jobs_wait_for_run_after(database: Database, clock: Clock) -> None:
    await enqueue(database, clock, delay=timedelta(seconds=60))
    assert await claim(database, clock) == []
    clock.advance(61)
    assert len(await claim(database, clock)) == 1


async def test_complete_is_final(database: Database, clock: Clock) -> None:
    await enqueue(database, clock)
    (job,) = await claim(database, clock)
    async with database.begin() as conn:
        assert await jobs.complete(conn, job, now=clock())
    clock.advance(3600)
    assert await claim(database, clock) == []
    async with database.begin() as conn:
        stats = await jobs.stats(conn, now=clock())
    assert stats.depth == 0


async def test_retry_backs_off_then_runs_again(database: Database, clock: Clock) -> None:
    await enqueue(database, clock)
    (job,) = await claim(database, clock)
    async with database.begin() as conn:
        assert await jobs.retry(conn, job, now=clock(), delay=timedelta(seconds=10), error="x")
    assert await claim(database, clock) == []
    clock.advance(10)
    (again,) = await claim(database, clock)
    assert again.id == job.id
    assert again.attempts == 2


async def test_bury_makes_it_dead(database: Database, clock: Clock) -> None:
    await enqueue(database, clock, max_attempts=1)
    (job,) = await claim(database, clock)
    assert job.exhausted
    async with database.begin() as conn:
        assert await jobs.bury(conn, job, now=clock(), error="boom")
        stats = await jobs.stats(conn, now=clock())
    assert stats.dead == 1
    assert stats.depth == 0


async def test_expired_lease_comes_back_and_old_owner_cannot_finish(
    database: Database, clock: Clock
) -> None:
    await enqueue(database, clock)
    (crashed,) = await claim(database, clock)  # this worker "crashes"
    clock.advance(LEASE.total_seconds() + 1)
    (taken_over,) = await claim(database, clock)
    assert taken_over.id == crashed.id
    assert taken_over.attempts == 2
    async with database.begin() as conn:
        # The first worker wakes up late: its lease token no longer owns the job.
        assert not await jobs.complete(conn, crashed, now=clock())
        assert await jobs.complete(conn, taken_over, now=clock())


async def test_queue_stats_report_depth_and_age(database: Database, clock: Clock) -> None:
    await enqueue(database, clock, 2)
    clock.advance(42)
    async with database.begin() as conn:
        stats = await jobs.stats(conn, now=clock())
    assert stats.depth == 2
    assert stats.oldest_age_seconds == pytest.approx(42)


async def test_racing_workers_never_run_a_job_twice(database: Database, clock: Clock) -> None:
    """Several claimers on separate connections drain 200 jobs: each job exactly once."""
    await enqueue(database, clock, 200)
    seen: list[int] = []
    others = [Database(database.url) for _ in range(3)]

    async def work(db: Database) -> None:
        while True:
            batch = await claim(db, clock, limit=7)
            if not batch:
                return
            seen.extend(j.id for j in batch)
            async with db.begin() as conn:
                for j in batch:
                    assert await jobs.complete(conn, j, now=clock())

    try:
        async with anyio.create_task_group() as tg:
            for db in [database, *others]:
                tg.start_soon(work, db)
    finally:
        for db in others:
            await db.dispose()
    assert sorted(seen) == sorted(set(seen))
    assert len(seen) == 200


async def test_lapsed_leases_are_claimed_first_and_limit_counts_both(
    database: Database, clock: Clock
) -> None:
    (old,) = await enqueue(database, clock)
    await claim(database, clock)  # leased by a worker that then dies
    clock.advance(LEASE.total_seconds() + 1)
    queued = await enqueue(database, clock, 3)
    first = await claim(database, clock, limit=2)
    assert [j.id for j in first] == [old, queued[0]]
    assert first[0].attempts == 2  # the lapsed one, on its second attempt
    rest = await claim(database, clock, limit=5)
    assert [j.id for j in rest] == queued[1:]


async def test_claim_reports_when_its_lease_ends(database: Database, clock: Clock) -> None:
    await enqueue(database, clock)
    (job,) = await claim(database, clock)
    assert job.lease_until == clock() + LEASE


async def test_complete_many_completes_only_what_is_still_ours(
    database: Database, clock: Clock
) -> None:
    await enqueue(database, clock, 3)
    mine = await claim(database, clock)
    clock.advance(LEASE.total_seconds() + 1)
    async with database.begin() as conn:  # another worker takes the first one over
        (taken,) = await jobs.claim(conn, now=clock(), lease=LEASE, limit=1)
    assert taken.id == mine[0].id
    async with database.begin() as conn:
        owned = await jobs.complete_many(conn, mine, now=clock())
    assert owned == {mine[1].id, mine[2].id}
    async with database.begin() as conn:  # the new owner still holds its lease
        assert await jobs.complete(conn, taken, now=clock())


async def test_a_lapsed_lease_goes_before_an_older_queued_job(
    database: Database, clock: Clock
) -> None:
    async with database.begin() as conn:
        older = await jobs.enqueue(conn, "other", {}, now=clock())
    clock.advance(1)
    (lapsed,) = await enqueue(database, clock)
    async with database.begin() as conn:  # a claim for kind "k" only leases the newer job
        (leased,) = await jobs.claim(conn, now=clock(), lease=LEASE, limit=1, kinds=("k",))
    assert leased.id == lapsed
    clock.advance(LEASE.total_seconds() + 1)
    # The queued job has waited longer (earlier run_after), yet the lapsed lease is first.
    (first,) = await claim(database, clock, limit=1)
    assert (first.id, first.attempts) == (lapsed, 2)
    (second,) = await claim(database, clock, limit=1)
    assert second.id == older


async def test_a_claim_returns_lapsed_and_queued_jobs_in_id_order(
    database: Database, clock: Clock
) -> None:
    (first,) = await enqueue(database, clock, delay=timedelta(seconds=5))
    (second,) = await enqueue(database, clock)
    (leased,) = await claim(database, clock, limit=1)  # then its worker dies
    assert leased.id == second
    clock.advance(LEASE.total_seconds() + 1)
    both = await claim(database, clock)
    assert [j.id for j in both] == [first, second]
    assert [j.attempts for j in both] == [1, 2]


async def test_every_job_of_one_claim_shares_its_lease(database: Database, clock: Clock) -> None:
    await enqueue(database, clock, 3)
    batch = await claim(database, clock)
    assert len({j.lease_token for j in batch}) == 1
    assert {j.lease_until for j in batch} == {clock() + LEASE}


async def test_complete_many_takes_jobs_of_several_claims(database: Database, clock: Clock) -> None:
    await enqueue(database, clock, 4)
    one = await claim(database, clock, limit=2)
    two = await claim(database, clock, limit=2)
    assert one[0].lease_token != two[0].lease_token
    async with database.begin() as conn:
        owned = await jobs.complete_many(conn, [one[0], two[1], two[0], one[1]], now=clock())
        stats = await jobs.stats(conn, now=clock())
    assert owned == {j.id for j in one + two}
    assert stats.depth == 0


async def test_complete_many_leaves_a_retried_job_queued(database: Database, clock: Clock) -> None:
    await enqueue(database, clock, 2)
    first, second = await claim(database, clock)
    async with database.begin() as conn:
        await jobs.retry(conn, first, now=clock(), delay=timedelta(seconds=10), error="x")
        owned = await jobs.complete_many(conn, [first, second], now=clock())
    assert owned == {second.id}
    clock.advance(10)
    (again,) = await claim(database, clock)
    assert again.id == first.id  # still queued for its retry, not done


async def test_complete_many_of_nothing_is_nothing(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        assert await jobs.complete_many(conn, [], now=clock()) == set()


async def test_claim_and_complete_many_run_through_database_run(
    database: Database, clock: Clock
) -> None:
    ids = await enqueue(database, clock, 3)
    now = clock()
    batch = await database.run(
        lambda conn: jobs.claim_sync(conn, now=now, lease=LEASE, limit=2, kinds=("k",))
    )
    assert [j.id for j in batch] == ids[:2]
    owned = await database.run(lambda conn: jobs.complete_many_sync(conn, batch, now=now))
    assert owned == set(ids[:2])
    assert [j.id for j in await claim(database, clock)] == ids[2:]


async def _dead(db: Database, clock: Clock, job: jobs.ClaimedJob) -> None:
    async with db.begin() as conn:
        assert await jobs.bury(conn, job, now=clock(), error="boom")


async def test_requeue_dead_gives_one_more_attempt_and_touches_no_live_job(
    database: Database, clock: Clock
) -> None:
    ids = await enqueue(database, clock, 3, max_attempts=5)
    first, second, third = await claim(database, clock)
    await _dead(database, clock, first)
    await _dead(database, clock, second)
    clock.advance(10)
    async with database.begin() as conn:
        # The third is running: asking for it changes nothing.
        requeued = await jobs.requeue_dead(conn, now=clock(), ids=[first.id, third.id])
    assert [job_id for job_id, _, _ in requeued] == [first.id]
    (again,) = await claim(database, clock)
    assert again.id == first.id and again.attempts == 5 and again.exhausted
    async with database.begin() as conn:
        rest = await jobs.requeue_dead(conn, now=clock(), ids=None)
        assert await jobs.requeue_dead(conn, now=clock(), ids=[]) == []
    assert rest == [(second.id, "k", {"n": 1})]
    async with database.begin() as conn:
        listed = await jobs.listing(conn, status=jobs.RUNNING)
    assert sorted(j.id for j in listed) == sorted([ids[0], ids[2]])


async def test_purge_finished_deletes_done_and_dead_before_the_cutoff_only(
    database: Database, clock: Clock
) -> None:
    await enqueue(database, clock, 3)
    done, dead, _running = await claim(database, clock)
    async with database.begin() as conn:
        assert await jobs.complete(conn, done, now=clock())
    await _dead(database, clock, dead)
    await enqueue(database, clock)  # queued
    async with database.begin() as conn:
        assert await jobs.purge_finished(conn, older_than=clock()) == 0  # not older yet
    clock.advance(1)
    async with database.begin() as conn:
        assert await jobs.purge_finished(conn, older_than=clock()) == 2
        left = await jobs.listing(conn)
    assert sorted(j.status for j in left) == ["queued", "running"]


async def test_for_person_finds_jobs_by_user_id_or_address_in_their_payload(
    database: Database, clock: Clock
) -> None:
    async with database.begin() as conn:
        await jobs.enqueue(conn, "a", {"user_id": "auth0|1"}, now=clock())
        await jobs.enqueue(conn, "b", {"email": "Jane@Example.com"}, now=clock())
        await jobs.enqueue(conn, "b", {"user_name": "jane@example.com"}, now=clock())
        await jobs.enqueue(conn, "b", {"email": "sam@example.com"}, now=clock())
        await jobs.enqueue(conn, "c", {"user_id": "auth0|1"}, now=clock())
        found = await jobs.for_person(
            conn, kinds=["a", "b"], user_ids=["auth0|1"], emails=["jane@example.com"]
        )
        assert await jobs.for_person(conn, kinds=["a"]) == []
    assert [(j.kind, j.payload) for j in found] == [
        ("a", {"user_id": "auth0|1"}),
        ("b", {"email": "Jane@Example.com"}),
        ("b", {"user_name": "jane@example.com"}),
    ]
