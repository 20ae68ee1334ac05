"""The job worker: claims due jobs, runs their handlers, records the outcome.

A job's life, in the order it runs: claim (a lease), run (the kind's
handler), settle (done, retried with backoff, or dead). How a handler ends a
run is drawn in `resetrelay.jobs.run`; a job whose attempts are used up is
dead.

A `BatchJobKind` takes every job of its kind from one claim at once, so a
handler can read and record a batch in a few transactions instead of a few
per job (the courier does). It settles each run itself; runs it leaves
unsettled are completed here, and an exception it raises fails them all.

`run()` works in lanes: the plain kinds share `concurrency` slots; each batch
kind has a lane and a `limit` of its own. A lane claims once half its slots
are free, so claims come in batches rather than one per finished job.

`run()` stops claiming when `stop` is set, gives running jobs `grace` seconds,
then cancels them; their leases lapse and another worker picks them up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import anyio
import anyio.lowlevel
from sqlalchemy import Connection

from resetrelay.jobs.kinds import BatchJobKind, JobKind
from resetrelay.jobs.run import JobRun, Permanent, Retry, settle_completed
from resetrelay.metrics import Metrics
from storage import jobs
from storage.database import Database, StorageError

log = logging.getLogger("resetrelay.worker")

__all__ = ["BatchJobKind", "Doorbell", "JobKind", "JobRun", "Permanent", "Retry", "Worker"]


class Doorbell:
    """Rung after an in-process enqueue, so a worker in this process starts the job
    soon instead of at its next poll. Made before the worker and the services
    that ring it, so neither needs the other to be built first.

    With `delay` (min, max) seconds, the worker is told after a random delay in that
    range, not at once: a job started at once (a claim in the writer thread, then
    the job's own work) competes with the answer of the request that queued it, and
    its later steps land on the requests that follow. What a job does depends on the
    account (an existing address gets a ticket and a mail); started at a random
    moment, that work cannot line up with the next answers, so their timing says
    nothing about the account."""

    def __init__(
        self, *, delay: tuple[float, float] = (0.0, 0.0), rng: random.Random | None = None
    ) -> None:
        self._listeners: list[Callable[[], None]] = []
        self._delay = delay
        self._rng = rng or random.SystemRandom()  # the delay hides timing: not guessable
        # The loop on which a delayed wake is scheduled and has not fired yet.
        self._pending: asyncio.AbstractEventLoop | None = None

    def ring(self) -> None:
        # Every accepted request rings: with nobody listening there is nothing to do,
        # and while a delayed wake is pending, the worker will claim this job with
        # the others when it fires.
        if not self._listeners:
            return
        if self._pending is not None and not self._pending.is_closed():
            return  # (a loop closed before its wake fired never fires it: schedule anew)
        low, high = self._delay
        if high <= 0:
            self._notify()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # rung outside an event loop: nothing to compete with
            self._notify()
            return
        self._pending = loop
        loop.call_later(self._rng.uniform(low, high), self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def listen(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)


@dataclass
class _Lane:
    """Jobs of `kinds`, claimed and run `limit` at a time."""

    kinds: tuple[str, ...]
    limit: int
    slots: anyio.Semaphore
    wake: anyio.Event = field(default_factory=anyio.Event)
    housekeeping: bool = False  # the lane that calls `on_idle`


@dataclass
class Worker:
    db: Database
    kinds: Mapping[str, JobKind | BatchJobKind]
    now: Callable[[], datetime]
    metrics: Metrics = field(default_factory=Metrics)
    # Slots of the plain lane. Its jobs mostly wait on Auth0 or the database, so the
    # lane is sized for overlap, not for cores; and since it claims once half its
    # slots are free, the slots also set how many jobs one claim (a transaction)
    # brings. Auth0's budget (resetrelay.budget) caps the calls, not this.
    concurrency: int = 16
    lease: timedelta = timedelta(seconds=60)
    poll_interval: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    on_idle: Callable[[], Awaitable[None]] | None = None
    doorbell: Doorbell | None = None
    _lanes: list[_Lane] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.doorbell is not None:
            self.doorbell.listen(self.wake)

    def wake(self) -> None:
        """Called after an in-process enqueue so a job starts without waiting for the poll."""
        for lane in self._lanes:
            lane.wake.set()

    def backoff(self, kind: JobKind | BatchJobKind, attempts: int) -> float:
        # Exponential with "equal jitter": half fixed, half random, so retries of a
        # burst spread out instead of hitting a recovering upstream together.
        ceiling = min(kind.backoff_max, kind.backoff_initial * 2.0 ** max(0, attempts - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    async def claim(
        self, limit: int, kinds: tuple[str, ...] | None = None
    ) -> list[jobs.ClaimedJob]:
        now, kinds = self.now(), tuple(self.kinds) if kinds is None else kinds
        if not kinds:
            return []
        return await self.db.run(lambda conn: self._claim_sync(conn, now, limit, kinds))

    def _claim_sync(
        self, conn: Connection, now: datetime, limit: int, kinds: tuple[str, ...]
    ) -> list[jobs.ClaimedJob]:
        """The claim, and each claimed kind's `on_claim` step, in one transaction."""
        claimed = jobs.claim_sync(conn, now=now, lease=self.lease, limit=limit, kinds=kinds)
        by_kind: dict[str, list[jobs.ClaimedJob]] = {}
        for job in claimed:
            if self.kinds[job.kind].on_claim is not None:
                by_kind.setdefault(job.kind, []).append(job)
        in_doubt: set[int] = set()
        for name, group in by_kind.items():
            step = self.kinds[name].on_claim
            if step is not None:
                in_doubt |= step(conn, group, now)
        if not in_doubt:
            return claimed
        return [replace(job, in_doubt=True) if job.id in in_doubt else job for job in claimed]

    async def run_once(self) -> int:
        """Claim what is due (up to `concurrency`) and run it; returns how many ran."""
        claimed = await self.claim(self.concurrency)
        async with anyio.create_task_group() as tg:
            for group in self._groups(claimed):
                tg.start_soon(self._execute_group, group)
        return len(claimed)

    def _groups(self, claimed: list[jobs.ClaimedJob]) -> list[list[jobs.ClaimedJob]]:
        """One group per job, except that a batch kind's jobs form one group."""
        groups: list[list[jobs.ClaimedJob]] = []
        batches: dict[str, list[jobs.ClaimedJob]] = {}
        for job in claimed:
            if isinstance(self.kinds[job.kind], BatchJobKind):
                if job.kind not in batches:
                    batches[job.kind] = []
                    groups.append(batches[job.kind])
                batches[job.kind].append(job)
            else:
                groups.append([job])
        return groups

    async def _execute_group(
        self, group: list[jobs.ClaimedJob], on_completed: Callable[[], None] | None = None
    ) -> None:
        if isinstance(self.kinds[group[0].kind], BatchJobKind):
            await self.execute_batch(group, on_completed=on_completed)
        else:
            await self.execute(group[0])

    async def drain(self, *, max_rounds: int = 100) -> int:
        """Run until nothing is due (tests and `send-test-mail`)."""
        total = 0
        for _ in range(max_rounds):
            ran = await self.run_once()
            if ran == 0:
                break
            total += ran
        return total

    async def execute(self, job: jobs.ClaimedJob) -> None:
        kind = self.kinds[job.kind]
        if isinstance(kind, BatchJobKind):
            await self.execute_batch([job])
            return
        run = JobRun(job, self.now)
        fields = {"job_id": job.id, "kind": job.kind, "attempt": job.attempts}
        if job.attempts > job.max_attempts:
            # Its worker died on the last attempt: do not run it again.
            await self._bury(job, "attempts exhausted (worker lost)", fields)
            return
        try:
            await kind.handler(run)
        except Permanent as exc:
            await self._bury(job, exc.reason, fields)
            return
        except Retry as exc:
            await self._retry(job, kind, exc.reason, exc.after, fields)
            return
        except Exception as exc:
            log.exception("job failed", extra={"fields": fields})
            await self._retry(job, kind, f"{type(exc).__name__}: {exc}", None, fields)
            return
        if not run.completed:
            async with self.db.begin() as conn:
                await jobs.complete(conn, job, now=self.now())
        self.metrics.jobs.labels(job.kind, "done").inc()

    async def execute_batch(
        self, claimed: list[jobs.ClaimedJob], *, on_completed: Callable[[], None] | None = None
    ) -> None:
        """Run jobs of one batch kind together, then record what the handler left.
        `on_completed` is called for each run as soon as its completion commits."""
        kind = self.kinds[claimed[0].kind]
        if not isinstance(kind, BatchJobKind):
            raise TypeError(f"job kind {claimed[0].kind!r} is not a batch kind")
        runs: list[JobRun] = []
        for job in claimed:
            if job.attempts > job.max_attempts:
                fields = {"job_id": job.id, "kind": job.kind, "attempt": job.attempts}
                await self._bury(job, "attempts exhausted (worker lost)", fields)
            else:
                runs.append(JobRun(job, self.now, on_completed=on_completed))
        if not runs:
            return
        try:
            await kind.handler(runs)
        except Exception as exc:
            log.exception("batch failed", extra={"fields": {"kind": claimed[0].kind}})
            for run in runs:
                if not run.settled:
                    run.fail(Retry(f"{type(exc).__name__}: {exc}"))
        unsettled = [run for run in runs if not run.settled]
        if unsettled:
            now = self.now()
            owned = await self.db.run(
                lambda conn: jobs.complete_many_sync(conn, [r.job for r in unsettled], now=now)
            )
            settle_completed(unsettled, owned)
        for run in runs:
            fields = {"job_id": run.job.id, "kind": run.job.kind, "attempt": run.job.attempts}
            if isinstance(run.failure, Permanent):
                await self._bury(run.job, run.failure.reason, fields)
            elif isinstance(run.failure, Retry):
                failure = run.failure
                await self._retry(run.job, kind, failure.reason, failure.after, fields)
            else:
                self.metrics.jobs.labels(run.job.kind, "done").inc()

    async def _retry(
        self,
        job: jobs.ClaimedJob,
        kind: JobKind | BatchJobKind,
        reason: str,
        after: float | None,
        fields: dict[str, object],
    ) -> None:
        if job.exhausted:
            await self._bury(job, reason, fields)
            return
        delay = after if after is not None else self.backoff(kind, job.attempts)
        async with self.db.begin() as conn:
            await jobs.retry(
                conn, job, now=self.now(), delay=timedelta(seconds=delay), error=reason
            )
        self.metrics.jobs.labels(job.kind, "retried").inc()
        log.warning("job retried", extra={"fields": {**fields, "reason": reason, "delay": delay}})

    async def _bury(self, job: jobs.ClaimedJob, reason: str, fields: dict[str, object]) -> None:
        async with self.db.begin() as conn:
            await jobs.bury(conn, job, now=self.now(), error=reason)
        self.metrics.jobs.labels(job.kind, "dead").inc()
        log.error("job dead", extra={"fields": {**fields, "reason": reason}})

    async def run(self, stop: anyio.Event, *, grace: float = 20.0) -> None:
        """Work until `stop` is set; then let running jobs finish for `grace` seconds."""
        plain = tuple(name for name, kind in self.kinds.items() if isinstance(kind, JobKind))
        self._lanes = [
            _Lane(plain, self.concurrency, anyio.Semaphore(self.concurrency), housekeeping=True)
        ]
        for name, kind in self.kinds.items():
            if isinstance(kind, BatchJobKind):
                self._lanes.append(_Lane((name,), kind.limit, anyio.Semaphore(kind.limit)))
        async with anyio.create_task_group() as tg:
            for lane in self._lanes:
                tg.start_soon(self._run_lane, lane, stop, grace)

    async def _run_lane(self, lane: _Lane, stop: anyio.Event, grace: float) -> None:
        async with anyio.create_task_group() as tg:
            while not stop.is_set():
                free = lane.slots.value
                if free < max(1, lane.limit // 2):
                    # Busy: claim in batches, not a job at a time. A finishing job
                    # wakes us once half the slots are free (_execute_slots).
                    await self._sleep(stop, lane)
                    continue
                claimed: list[jobs.ClaimedJob] = []
                try:
                    claimed = await self.claim(free, lane.kinds)
                except StorageError:
                    log.warning("database unavailable; worker waits")
                for group in self._groups(claimed):
                    for _ in group:
                        await lane.slots.acquire()
                    tg.start_soon(self._execute_slots, group, lane)
                if not claimed:
                    if lane.housekeeping and self.on_idle is not None:
                        await self.on_idle()
                    await self._sleep(stop, lane)
                else:
                    await anyio.lowlevel.checkpoint()
            # No new claims from here; running jobs get `grace` seconds, then are
            # cancelled and their leases lapse.
            with anyio.move_on_after(grace):
                for _ in range(lane.limit):
                    await lane.slots.acquire()  # each finished job frees one slot
            tg.cancel_scope.cancel()

    async def _execute_slots(self, group: list[jobs.ClaimedJob], lane: _Lane) -> None:
        held = len(group)

        def release() -> None:
            # A batch frees each run's slot when the run's completion commits, so
            # the next claim overlaps the batch's slowest sends instead of waiting.
            nonlocal held
            if held:
                held -= 1
                lane.slots.release()
                # Claim again once half the slots are free, not after every job: a
                # claim is a transaction, and claiming in batches keeps them few.
                if lane.slots.value >= max(1, lane.limit // 2):
                    lane.wake.set()

        try:
            await self._execute_group(group, on_completed=release)
        except StorageError:
            log.warning("database unavailable while finishing a job; its lease will lapse")
        finally:
            while held:
                release()

    async def _sleep(self, stop: anyio.Event, lane: _Lane) -> None:
        with anyio.move_on_after(self.poll_interval):
            async with anyio.create_task_group() as tg:

                async def wait_wake() -> None:
                    await lane.wake.wait()
                    tg.cancel_scope.cancel()

                async def wait_stop() -> None:
                    await stop.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(wait_wake)
                tg.start_soon(wait_stop)
        if lane.wake.is_set():
            lane.wake = anyio.Event()
