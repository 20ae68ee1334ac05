"""A run's settlement: completed in the handler's transaction, or failed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from resetrelay.jobs.run import JobRun, Permanent, Retry, settle_completed
from storage import jobs
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


def _job(job_id: int, clock: Clock) -> jobs.ClaimedJob:
    return jobs.ClaimedJob(job_id, "k", {}, 1, 3, "lease", clock() + timedelta(seconds=60))


def test_settle_completed_completes_owned_runs_and_fails_the_others() -> None:
    clock = Clock()
    called: list[int] = []
    mine = JobRun(_job(1, clock), clock, on_completed=lambda: called.append(1))
    lost = JobRun(_job(2, clock), clock)
    settle_completed([mine, lost], {1})
    assert mine.completed and mine.settled and called == [1]
    assert isinstance(lost.failure, Retry) and not lost.completed and lost.settled


def test_fail_records_the_failure() -> None:
    clock = Clock()
    run = JobRun(_job(1, clock), clock)
    assert not run.settled
    run.fail(Permanent("no"))
    assert isinstance(run.failure, Permanent) and run.failure.reason == "no"
    assert Retry("later", after=3).after == 3


async def test_complete_and_save_inside_the_handlers_transaction(
    database: Database, clock: Clock
) -> None:
    async with database.begin() as conn:
        await jobs.enqueue(conn, "k", {"step": 0}, now=clock())
    [job] = await database.run(
        lambda conn: jobs.claim_sync(conn, now=clock(), lease=timedelta(seconds=60), limit=1)
    )
    run = JobRun(job, clock)
    async with database.begin() as conn:
        await run.save(conn, {"step": 1})
        await run.complete(conn)
    assert run.completed
    async with database.read() as conn:
        assert (await jobs.stats(conn, now=clock())).depth == 0
    # A second completion of the same lease is refused: the job is no longer ours.
    with pytest.raises(Retry):
        async with database.begin() as conn:
            await JobRun(job, clock).complete(conn)
