"""Whether this process can do its work, said honestly, and the inline worker
kept alive.

`/readyz` asks `Readiness.problems()`: the database answers, its schema is at
the newest migration this code ships, (with INLINE_WORKER) the worker in
this process is running, and Auth0 has not refused a call no reset can do
without (reading users, the password PATCH) for a missing scope. A process that
says ready does the work it accepts. `Readiness.warnings()` names what it does
not do although ready: a follow-up call refused for a missing scope (sessions
not revoked after resets, say), as every process recorded it.

`run_inline_worker` runs the worker inside `serve`: it waits for the schema
before starting, and restarts the worker when it dies (each restart logged
in one line, the traceback only at DEBUG), so the process never goes on
answering "ready" with a dead worker inside.
"""

from __future__ import annotations

import logging
from typing import Protocol

import anyio

from resetrelay.tenant import ESSENTIAL_CALLS, TenantFindings, describe
from storage.database import Database, StorageError
from storage.migrate import schema_state

log = logging.getLogger("resetrelay.readiness")

# How long a "schema is current" answer is trusted before it is asked again.
_SCHEMA_RECHECK = 60.0


class Readiness:
    def __init__(
        self, db: Database, *, inline_worker: bool, tenant: TenantFindings | None = None
    ) -> None:
        self._db = db
        self._inline_worker = inline_worker
        self._tenant = tenant
        self.worker_problem: str | None = "the inline worker has not started yet"
        self._schema_ok_at: float | None = None

    async def schema_problem(self) -> str | None:
        now = anyio.current_time()
        if self._schema_ok_at is not None and now - self._schema_ok_at < _SCHEMA_RECHECK:
            return None
        state = await schema_state(self._db)
        if not state.current:
            self._schema_ok_at = None
            return state.describe()
        self._schema_ok_at = now
        return None

    async def problems(self) -> list[str]:
        """What keeps this process from its work; empty when it is ready."""
        if not await self._db.ping():
            return ["the database is not answering"]
        problems = []
        try:
            if problem := await self.schema_problem():
                problems.append(problem)
        except StorageError:
            return ["the database is not answering"]
        if self._inline_worker and self.worker_problem:
            problems.append(self.worker_problem)
        if not problems:
            problems += await self._scope_lines(essential=True)
        return problems

    async def warnings(self) -> list[str]:
        """What a ready process leaves undone for a missing Auth0 scope."""
        return await self._scope_lines(essential=False)

    async def _scope_lines(self, *, essential: bool) -> list[str]:
        if self._tenant is None:
            return []
        try:
            found = await self._tenant.scope_findings()
        except StorageError:
            return []  # the database check above says so already
        return [describe(f) for f in found if (f.name in ESSENTIAL_CALLS) == essential]


class Runnable(Protocol):
    async def run(self, stop: anyio.Event, *, grace: float = ...) -> None: ...


async def run_inline_worker(
    worker: Runnable, readiness: Readiness, stop: anyio.Event, *, grace: float = 20.0
) -> None:
    """Run `worker` until `stop`; wait for a current schema first, restart it when it
    dies, backing off up to 30 s between tries."""
    delay = 1.0
    while not stop.is_set():
        try:
            problem = await readiness.schema_problem()
        except StorageError:
            problem = "the database is not answering"
        if problem is None:
            readiness.worker_problem = None
            try:
                await worker.run(stop, grace=grace)
                return
            except Exception as exc:
                problem = f"the inline worker stopped: {type(exc).__name__}: {exc}"[:300]
                log.debug("inline worker failure", exc_info=True)
        readiness.worker_problem = problem
        log.error("inline worker not running; retrying", extra={"fields": {"reason": problem}})
        with anyio.move_on_after(delay):
            await stop.wait()
        delay = min(30.0, delay * 2)
