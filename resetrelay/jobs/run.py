"""One run of a job, and how its handler says how it went.

    Exception
     ├── Retry(reason, after=None)   run it again later: after `after` seconds,
     │                               else after the kind's backoff
     └── Permanent(reason)           dead at once
    anything else                    retried with backoff, logged with its traceback

A run goes through three stages, in this order: the worker claims the job
(a lease), the handler runs, the worker settles what the handler left
(done, retried or dead). A handler that writes state completes its job inside
its own transaction (`JobRun.complete`), so its writes and the completion
commit together: no double effects if the process dies between them. A batch
handler settles each run itself: `fail`, or `settle_completed` once the
transaction that ran `storage.jobs.complete_many_sync` committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import jobs


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
    failure: Retry | Permanent | None = None
    # Batch runs: called once the run's completion committed, so the worker can
    # hand its slot to a new job while the rest of the batch is still running.
    on_completed: Callable[[], None] | None = field(default=None, repr=False)

    async def complete(self, conn: AsyncConnection) -> None:
        """Mark the job done inside the handler's transaction."""
        if not await jobs.complete(conn, self.job, now=self.now()):
            raise Retry("lease lost before completion")
        self.completed = True

    def complete_sync(self, conn: Connection) -> None:
        """`complete` inside a `Database.run` transaction; the caller sets `completed`
        once that transaction has committed."""
        if not jobs.complete_sync(conn, self.job, now=self.now()):
            raise Retry("lease lost before completion")

    async def save(self, conn: AsyncConnection, payload: dict[str, Any]) -> None:
        """Record progress in the job's payload (e.g. "rate limit already counted"),
        so a retry does not do that step twice."""
        await jobs.update_payload(conn, self.job, payload)

    def fail(self, failure: Retry | Permanent) -> None:
        """Batch handlers: this run failed; the worker retries or buries it."""
        self.failure = failure

    @property
    def settled(self) -> bool:
        return self.completed or self.failure is not None


def settle_completed(runs: Sequence[JobRun], owned: set[int]) -> None:
    """After the transaction that ran `jobs.complete_many_sync` committed: the owned
    runs are done; the others lost their lease and are failed with `Retry` (their
    new owner decides), so the caller must not count their effects as its own."""
    for run in runs:
        if run.job.id in owned:
            run.completed = True
            if run.on_completed is not None:
                run.on_completed()
        else:
            run.fail(Retry("lease lost before completion"))
