"""The job worker: claims due jobs, runs their handlers, records the outcome.

A handler finishes normally (job done), raises `Retry` (again later: after
the time it names, else exponential backoff with jitter), raises `Permanent`
(dead at once), or raises anything else (retried with backoff and logged).
A job whose attempts are used up is dead. A handler that writes state can
complete its job inside its own transaction (`JobRun.complete`), so its
writes and the job's completion commit together: no double effects if the
process dies between them.

`run()` stops claiming when `stop` is set, gives running jobs `grace` seconds,
then cancels them; their leases lapse and another worker picks them up.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio
import anyio.lowlevel
from sqlalchemy.ext.asyncio import AsyncConnection

from resetrelay.metrics import Metrics
from storage import jobs
from storage.database import Database, StorageError

log = logging.getLogger("resetrelay.worker")


class Retry(Exception):
    def __init__(self, reason: str, *, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class Permanent(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class JobRun:
    job: jobs.ClaimedJob
    now: Callable[[], datetime]
    completed: bool = False

    async def complete(self, conn: AsyncConnection) -> None:
        """Mark the job done inside the handler's transaction."""
        if not await jobs.complete(conn, self.job, now=self.now()):
            raise Retry("lease lost before completion")
        self.completed = True


Handler = Callable[[JobRun], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    handler: Handler
    backoff_initial: float = 2.0
    backoff_max: float = 3600.0


@dataclass
class Worker:
    db: Database
    kinds: Mapping[str, JobKind]
    now: Callable[[], datetime]
    metrics: Metrics = field(default_factory=Metrics)
    concurrency: int = 4
    lease: timedelta = timedelta(seconds=60)
    poll_interval: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    on_idle: Callable[[], Awaitable[None]] | None = None
    _wake: anyio.Event = field(default_factory=anyio.Event)

    def wake(self) -> None:
        """Called after an in-process enqueue so a job starts without waiting for the poll."""
        self._wake.set()

    def backoff(self, kind: JobKind, attempts: int) -> float:
        # Exponential with "equal jitter": half fixed, half random, so retries of a
        # burst spread out instead of hitting a recovering upstream together.
        ceiling = min(kind.backoff_max, kind.backoff_initial * 2.0 ** max(0, attempts - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    async def claim(self, limit: int) -> list[jobs.ClaimedJob]:
        async with self.db.begin() as conn:
            return await jobs.claim(
                conn, now=self.now(), lease=self.lease, limit=limit, kinds=tuple(self.kinds)
            )

    async def run_once(self) -> int:
        """Claim what is due (up to `concurrency`) and run it; returns how many ran."""
        claimed = await self.claim(self.concurrency)
        async with anyio.create_task_group() as tg:
            for job in claimed:
                tg.start_soon(self.execute, job)
        return len(claimed)

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

    async def _retry(
        self,
        job: jobs.ClaimedJob,
        kind: JobKind,
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
        slots = anyio.Semaphore(self.concurrency)
        async with anyio.create_task_group() as tg:
            while not stop.is_set():
                free = slots.value
                claimed: list[jobs.ClaimedJob] = []
                if free:
                    try:
                        claimed = await self.claim(free)
                    except StorageError:
                        log.warning("database unavailable; worker waits")
                for job in claimed:
                    await slots.acquire()
                    tg.start_soon(self._execute_slot, job, slots)
                if not claimed:
                    if self.on_idle is not None:
                        await self.on_idle()
                    await self._sleep(stop)
                elif len(claimed) == free:
                    await anyio.lowlevel.checkpoint()
            # No new claims from here; running jobs get `grace` seconds, then are
            # cancelled and their leases lapse.
            with anyio.move_on_after(grace):
                for _ in range(self.concurrency):
                    await slots.acquire()  # each finished job frees one slot
            tg.cancel_scope.cancel()

    async def _execute_slot(self, job: jobs.ClaimedJob, slots: anyio.Semaphore) -> None:
        try:
            await self.execute(job)
        except StorageError:
            log.warning("database unavailable while finishing a job; its lease will lapse")
        finally:
            slots.release()
            # Claim again once half the slots are free, not after every job: a claim
            # is a transaction, and claiming in batches keeps them few under load.
            if slots.value >= max(1, self.concurrency // 2):
                self._wake.set()

    async def _sleep(self, stop: anyio.Event) -> None:
        with anyio.move_on_after(self.poll_interval):
            async with anyio.create_task_group() as tg:

                async def wait_wake() -> None:
                    await self._wake.wait()
                    tg.cancel_scope.cancel()

                async def wait_stop() -> None:
                    await stop.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(wait_wake)
                tg.start_soon(wait_stop)
        if self._wake.is_set():
            self._wake = anyio.Event()
