from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

import anyio
import pytest
from sqlalchemy import Connection, select

from resetrelay.jobs.kinds import BatchJobKind, JobKind
from resetrelay.jobs.run import JobRun, Permanent, Retry, settle_completed
from resetrelay.jobs.worker import Doorbell, Worker
from storage import jobs
from storage.database import Database
from storage.models import Job
from storage.sql import table
from tests.conftest import Clock

pytestmark = pytest.mark.anyio
_jobs = table(Job)


async def enqueue(db: Database, clock: Clock, kind: str, n: int = 1, **kw: object) -> list[int]:
    async with db.begin() as conn:
        return [
            await jobs.enqueue(conn, kind, {"i": i}, now=clock(), **kw)  # type: ignore[arg-type]
            for i in range(n)
        ]


async def states(db: Database) -> dict[int, tuple[str, str | None]]:
    """Each job's status and last error, by id."""
    async with db.begin() as conn:
        rows = await conn.execute(select(_jobs.c.id, _jobs.c.status, _jobs.c.last_error))
        return {row.id: (row.status, row.last_error) for row in rows}


async def stats(db: Database, clock: Clock) -> jobs.QueueStats:
    async with db.begin() as conn:
        return await jobs.stats(conn, now=clock())


def make_worker(db: Database, clock: Clock, **kinds: JobKind | BatchJobKind) -> Worker:
    return Worker(db=db, kinds=kinds, now=clock, rng=random.Random(1), poll_interval=0.05)


async def test_success_completes(database: Database, clock: Clock) -> None:
    ran: list[int] = []

    async def ok(run: JobRun) -> None:
        ran.append(run.job.payload["i"])

    await enqueue(database, clock, "ok", 3)
    worker = make_worker(database, clock, ok=JobKind(ok))
    assert await worker.drain() == 3
    assert sorted(ran) == [0, 1, 2]
    assert (await stats(database, clock)).depth == 0


async def test_handler_can_complete_in_its_own_transaction(
    database: Database, clock: Clock
) -> None:
    async def writes(run: JobRun) -> None:
        async with database.begin() as conn:
            await jobs.enqueue(conn, "follow_up", {}, now=clock())
            await run.complete(conn)

    await enqueue(database, clock, "writes")
    worker = make_worker(database, clock, writes=JobKind(writes), follow_up=JobKind(writes))
    assert await worker.run_once() == 1
    assert (await stats(database, clock)).depth == 1  # only the follow-up is left


async def test_failures_back_off_then_die(database: Database, clock: Clock) -> None:
    attempts: list[int] = []

    async def flaky(run: JobRun) -> None:
        attempts.append(run.job.attempts)
        raise RuntimeError("upstream is down")

    await enqueue(database, clock, "flaky", max_attempts=3)
    worker = make_worker(database, clock, flaky=JobKind(flaky, backoff_initial=10))
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # backing off
    clock.advance(10)  # first delay is 5..10 s (equal jitter)
    assert await worker.run_once() == 1
    clock.advance(20)
    assert await worker.run_once() == 1
    clock.advance(10_000)
    assert await worker.run_once() == 0
    assert attempts == [1, 2, 3]
    assert (await stats(database, clock)).dead == 1


async def test_retry_after_is_honoured(database: Database, clock: Clock) -> None:
    async def limited(run: JobRun) -> None:
        if run.job.attempts == 1:
            raise Retry("429", after=30)

    await enqueue(database, clock, "limited")
    worker = make_worker(database, clock, limited=JobKind(limited))
    await worker.run_once()
    clock.advance(29)
    assert await worker.run_once() == 0
    clock.advance(1)
    assert await worker.run_once() == 1
    assert (await stats(database, clock)).depth == 0


async def test_permanent_is_dead_at_once(database: Database, clock: Clock) -> None:
    async def refused(run: JobRun) -> None:
        raise Permanent("550 no such mailbox")

    await enqueue(database, clock, "refused")
    await make_worker(database, clock, refused=JobKind(refused)).run_once()
    assert (await stats(database, clock)).dead == 1


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    worker = Worker(db=None, kinds={}, now=Clock(), rng=random.Random(7))  # type: ignore[arg-type]
    kind = JobKind(lambda run: None, backoff_initial=10, backoff_max=100)  # type: ignore[arg-type, return-value]
    delays = [worker.backoff(kind, n) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(100, 10 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling


async def test_crashed_worker_job_comes_back_after_lease(database: Database, clock: Clock) -> None:
    ran: list[int] = []

    async def ok(run: JobRun) -> None:
        ran.append(run.job.attempts)

    await enqueue(database, clock, "ok")
    worker = make_worker(database, clock, ok=JobKind(ok))
    crashed = await worker.claim(1)  # claimed, then the process "dies"
    assert len(crashed) == 1
    assert await worker.run_once() == 0
    clock.advance(worker.lease.total_seconds() + 1)
    assert await worker.run_once() == 1
    assert ran == [2]


async def test_run_stops_promptly_and_cancels_stragglers(database: Database, clock: Clock) -> None:
    finished: list[str] = []

    async def slow(run: JobRun) -> None:
        await anyio.sleep(60)
        finished.append("slow")

    async def fast(run: JobRun) -> None:
        finished.append("fast")

    await enqueue(database, clock, "fast", 3)
    await enqueue(database, clock, "slow")
    worker = make_worker(database, clock, fast=JobKind(fast), slow=JobKind(slow))
    stop = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: worker.run(stop, grace=0.5))
            while finished.count("fast") < 3:
                await anyio.sleep(0.01)
            stop.set()
    assert "slow" not in finished  # cancelled after the grace period; its lease will lapse
    s = await stats(database, clock)
    assert s.depth == 1  # the slow job is still running (leased), not lost


async def test_two_workers_race_without_running_a_job_twice(
    database: Database, clock: Clock
) -> None:
    ran: list[int] = []

    async def ok(run: JobRun) -> None:
        await anyio.sleep(0)
        ran.append(run.job.id)

    await enqueue(database, clock, "ok", 60)
    other_db = Database(database.url)
    try:
        w1 = make_worker(database, clock, ok=JobKind(ok))
        w2 = make_worker(other_db, clock, ok=JobKind(ok))
        async with anyio.create_task_group() as tg:
            tg.start_soon(w1.drain)
            tg.start_soon(w2.drain)
    finally:
        await other_db.dispose()
    assert len(ran) == 60
    assert len(set(ran)) == 60


async def test_lease_expiry_hands_over(database: Database, clock: Clock) -> None:
    await enqueue(database, clock, "x")
    worker = make_worker(database, clock, x=JobKind(lambda run: anyio.sleep(0)))
    worker.lease = timedelta(seconds=5)
    await worker.claim(1)
    clock.advance(6)
    assert await worker.run_once() == 1


# -- batch kinds ----------------------------------------------------------------------


async def test_a_batch_handler_gets_one_claims_jobs_together(
    database: Database, clock: Clock
) -> None:
    batches: list[list[int]] = []

    async def send(runs: list[JobRun]) -> None:
        batches.append(sorted(run.job.payload["i"] for run in runs))

    await enqueue(database, clock, "mail", 3)
    worker = make_worker(database, clock, mail=BatchJobKind(send))
    assert await worker.run_once() == 3
    assert batches == [[0, 1, 2]]
    assert (await stats(database, clock)).depth == 0  # unsettled runs: completed


async def test_each_run_of_a_batch_fails_on_its_own(database: Database, clock: Clock) -> None:
    async def send(runs: list[JobRun]) -> None:
        for run in runs:
            if run.job.payload["i"] == 1:
                run.fail(Retry("451 try later", after=30))
            elif run.job.payload["i"] == 2:
                run.fail(Permanent("550 no such mailbox"))

    await enqueue(database, clock, "mail", 3)
    worker = make_worker(database, clock, mail=BatchJobKind(send))
    await worker.run_once()
    s = await stats(database, clock)
    assert (s.depth, s.dead) == (1, 1)  # one waits for its retry, one is dead, one done
    clock.advance(30)
    assert await worker.run_once() == 1


async def test_a_failing_batch_handler_retries_every_unsettled_run(
    database: Database, clock: Clock
) -> None:
    seen: list[int] = []

    async def send(runs: list[JobRun]) -> None:
        seen.append(len(runs))
        raise RuntimeError("template broke")

    await enqueue(database, clock, "mail", 2)
    worker = make_worker(database, clock, mail=BatchJobKind(send, backoff_initial=10))
    await worker.run_once()
    assert (await stats(database, clock)).depth == 2
    clock.advance(10)
    assert await worker.run_once() == 2
    assert seen == [2, 2]


async def test_a_batch_lane_keeps_its_own_limit_beside_plain_jobs(
    database: Database, clock: Clock
) -> None:
    in_flight = 0
    most = 0
    sent: list[int] = []
    plain: list[int] = []

    async def send(runs: list[JobRun]) -> None:
        nonlocal in_flight, most
        in_flight += len(runs)
        most = max(most, in_flight)
        await anyio.sleep(0.01)
        in_flight -= len(runs)
        sent.extend(run.job.payload["i"] for run in runs)

    async def other(run: JobRun) -> None:
        plain.append(run.job.payload["i"])

    await enqueue(database, clock, "mail", 7)
    await enqueue(database, clock, "other", 3)
    worker = make_worker(database, clock, mail=BatchJobKind(send, limit=2), other=JobKind(other))
    stop = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run, stop)
            while len(sent) < 7 or len(plain) < 3:
                await anyio.sleep(0.01)
            stop.set()
    assert sorted(sent) == list(range(7)) and sorted(plain) == [0, 1, 2]
    assert most <= 2
    assert (await stats(database, clock)).depth == 0


async def test_one_claim_of_mixed_kinds_makes_one_batch_and_single_plain_runs(
    database: Database, clock: Clock
) -> None:
    batches: list[int] = []
    plain: list[int] = []

    async def send(runs: list[JobRun]) -> None:
        batches.append(len(runs))

    async def other(run: JobRun) -> None:
        plain.append(run.job.id)

    await enqueue(database, clock, "mail", 2)
    await enqueue(database, clock, "other", 2)
    worker = make_worker(database, clock, mail=BatchJobKind(send), other=JobKind(other))
    assert await worker.run_once() == 4
    assert batches == [2]
    assert len(plain) == 2


async def test_batch_runs_end_retried_dead_or_done_with_their_reasons(
    database: Database, clock: Clock
) -> None:
    async def send(runs: list[JobRun]) -> None:
        for run in runs:
            if run.job.payload["i"] == 1 and run.job.attempts == 1:
                run.fail(Retry("451 try later", after=30))
            elif run.job.payload["i"] == 2:
                run.fail(Permanent("550 no such mailbox"))

    done, retried, dead = await enqueue(database, clock, "mail", 3)
    worker = make_worker(database, clock, mail=BatchJobKind(send))
    assert await worker.run_once() == 3
    after = await states(database)
    assert after[done] == (jobs.DONE, None)
    assert after[retried] == (jobs.QUEUED, "451 try later")
    assert after[dead] == (jobs.DEAD, "550 no such mailbox")
    clock.advance(29)
    assert await worker.run_once() == 0  # Retry(after=30) is honoured
    clock.advance(1)
    assert await worker.run_once() == 1
    assert (await states(database))[retried][0] == jobs.DONE


async def test_a_batch_run_retried_on_its_last_attempt_is_dead(
    database: Database, clock: Clock
) -> None:
    async def send(runs: list[JobRun]) -> None:
        for run in runs:
            run.fail(Retry("still down"))

    (job_id,) = await enqueue(database, clock, "mail", max_attempts=1)
    await make_worker(database, clock, mail=BatchJobKind(send)).run_once()
    assert (await states(database))[job_id] == (jobs.DEAD, "still down")


async def test_a_raising_batch_handler_keeps_the_fate_of_runs_it_had_settled(
    database: Database, clock: Clock
) -> None:
    async def send(runs: list[JobRun]) -> None:
        runs[0].fail(Permanent("550 no such mailbox"))
        async with database.begin() as conn:
            await runs[1].complete(conn)
        raise RuntimeError("relay went away")

    dead, done, left, also_left = await enqueue(database, clock, "mail", 4)
    worker = make_worker(database, clock, mail=BatchJobKind(send, backoff_initial=10))
    assert await worker.run_once() == 4
    after = await states(database)
    assert after[dead] == (jobs.DEAD, "550 no such mailbox")
    assert after[done] == (jobs.DONE, None)
    for job_id in (left, also_left):
        assert after[job_id] == (jobs.QUEUED, "RuntimeError: relay went away")


async def test_on_completed_fires_once_for_each_run_the_worker_completes(
    database: Database, clock: Clock
) -> None:
    released: list[int] = []

    async def send(runs: list[JobRun]) -> None:
        runs[0].fail(Retry("later"))

    await enqueue(database, clock, "mail", 3)
    worker = make_worker(database, clock, mail=BatchJobKind(send))
    claimed = await worker.claim(10)
    await worker.execute_batch(claimed, on_completed=lambda: released.append(1))
    assert released == [1, 1]  # the two completed runs, not the retried one


async def test_a_batch_job_out_of_attempts_is_buried_without_running(
    database: Database, clock: Clock
) -> None:
    seen: list[int] = []

    async def send(runs: list[JobRun]) -> None:
        seen.extend(run.job.id for run in runs)

    worker = make_worker(database, clock, mail=BatchJobKind(send))
    worker.lease = timedelta(seconds=5)
    (lost,) = await enqueue(database, clock, "mail", max_attempts=1)
    await worker.claim(10)  # its worker died on the last attempt
    clock.advance(6)
    (fresh,) = await enqueue(database, clock, "mail")
    assert await worker.run_once() == 2
    assert seen == [fresh]
    after = await states(database)
    assert after[lost] == (jobs.DEAD, "attempts exhausted (worker lost)")
    assert after[fresh] == (jobs.DONE, None)


def test_settle_completed_fails_the_runs_whose_lease_was_taken_over() -> None:
    clock = Clock()
    claimed = [
        jobs.ClaimedJob(i, "mail", {}, 1, 8, "token", clock() + timedelta(seconds=60))
        for i in (1, 2)
    ]
    released: list[int] = []
    runs = [JobRun(job, clock, on_completed=lambda: released.append(1)) for job in claimed]
    settle_completed(runs, {2})
    assert not runs[0].completed
    assert isinstance(runs[0].failure, Retry)
    assert runs[1].completed
    assert runs[1].failure is None
    assert released == [1]


async def test_a_full_batch_lane_claims_no_more_while_plain_jobs_all_run(
    database: Database, clock: Clock
) -> None:
    in_flight = 0
    most = 0
    sent: list[int] = []
    plain: list[int] = []
    gate = anyio.Event()

    async def send(runs: list[JobRun]) -> None:
        nonlocal in_flight, most
        in_flight += len(runs)
        most = max(most, in_flight)
        await gate.wait()
        await anyio.sleep(0.01)
        in_flight -= len(runs)
        sent.extend(run.job.id for run in runs)

    async def other(run: JobRun) -> None:
        plain.append(run.job.id)

    await enqueue(database, clock, "mail", 7)
    await enqueue(database, clock, "other", 6)
    worker = make_worker(database, clock, mail=BatchJobKind(send, limit=2), other=JobKind(other))
    worker.concurrency = 2
    stop = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run, stop)
            # The mail lane is stuck on its first two, yet every plain job runs.
            while len(plain) < 6:
                await anyio.sleep(0.01)
            await anyio.sleep(0.2)  # a few poll intervals: the mail lane claims no more
            assert (in_flight, sent) == (2, [])
            gate.set()
            while len(sent) < 7:
                await anyio.sleep(0.01)
            stop.set()
    assert most == 2
    assert len(set(sent)) == 7
    assert set((await states(database)).values()) == {(jobs.DONE, None)}


async def test_a_claim_step_runs_in_the_claim_and_marks_runs_in_doubt(
    database: Database, clock: Clock
) -> None:
    """`on_claim` sees the claimed jobs of its kind inside the claim's transaction; the
    ids it returns reach their runs as `in_doubt`, the others' runs do not."""
    seen: list[list[int]] = []
    doubts: dict[int, bool] = {}

    def step(conn: Connection, claimed: list[jobs.ClaimedJob], now: datetime) -> set[int]:
        assert now == clock()
        seen.append(sorted(job.id for job in claimed))
        # Inside the claim's transaction: the jobs are already running here.
        statuses = conn.execute(select(_jobs.c.status).where(_jobs.c.id.in_(seen[-1])))
        assert set(statuses.scalars()) == {jobs.RUNNING}
        return {claimed[0].id}

    async def handler(runs: list[JobRun]) -> None:
        doubts.update({run.job.id: run.job.in_doubt for run in runs})

    first, second = await enqueue(database, clock, "b", 2)
    (plain,) = await enqueue(database, clock, "p")
    worker = make_worker(database, clock, b=BatchJobKind(handler, on_claim=step), p=JobKind(_noop))
    await worker.drain()
    assert seen == [[first, second]]  # once, and not with the plain job
    assert doubts == {first: True, second: False}
    assert (await states(database))[plain][0] == jobs.DONE


async def _noop(run: JobRun) -> None:
    return None


async def test_a_delayed_doorbell_tells_the_worker_later_never_at_once() -> None:
    """The runtime's doorbell waits a random moment before it wakes the worker, so a
    job does not start while its request is still being answered."""
    heard: list[float] = []
    bell = Doorbell(delay=(0.01, 0.03), rng=random.Random(7))
    bell.listen(lambda: heard.append(anyio.current_time()))
    rung = anyio.current_time()
    bell.ring()
    assert heard == []  # not during the caller's own answer
    with anyio.fail_after(2):
        while not heard:
            await anyio.sleep(0.005)
    assert 0.01 <= heard[0] - rung < 0.5


async def test_rings_while_a_wake_is_pending_make_one_wake() -> None:
    """A burst of enqueues schedules one delayed wake, not one per request; the
    next ring after it fired schedules the next."""
    heard: list[float] = []
    bell = Doorbell(delay=(0.01, 0.02), rng=random.Random(7))
    bell.listen(lambda: heard.append(anyio.current_time()))
    for _ in range(50):
        bell.ring()
    await anyio.sleep(0.1)
    assert len(heard) == 1
    bell.ring()
    await anyio.sleep(0.1)
    assert len(heard) == 2


def test_a_wake_lost_with_its_loop_does_not_silence_the_doorbell() -> None:
    # A loop closed before its wake fired never fires it; the next ring, in another
    # loop, schedules a wake of its own instead of waiting for that one for ever.
    heard: list[int] = []
    bell = Doorbell(delay=(0.01, 0.02), rng=random.Random(7))
    bell.listen(lambda: heard.append(1))

    async def ring_only() -> None:
        bell.ring()

    async def ring_and_wait() -> None:
        bell.ring()
        await asyncio.sleep(0.1)

    asyncio.run(ring_only())  # the loop closes before the wake is due
    assert heard == []
    asyncio.run(ring_and_wait())
    assert heard == [1]


def test_a_doorbell_nobody_listens_to_does_nothing() -> None:
    rng = random.Random(7)
    state = rng.getstate()
    Doorbell(delay=(0.01, 0.02), rng=rng).ring()  # outside a loop, too: no error
    assert rng.getstate() == state  # not even a random delay drawn


def test_an_undelayed_doorbell_tells_the_worker_at_once() -> None:
    heard: list[int] = []
    bell = Doorbell()
    bell.listen(lambda: heard.append(1))
    bell.ring()
    assert heard == [1]
