"""Group commit for `password_reset.requested`.

A request may be answered 202 only once its event id and its job are durable.
Committing each on its own costs a transaction per request; here concurrent
requests hand their rows to one committer and wait for the commit that carries
them. Nothing waits on purpose: while one batch commits, the next one gathers,
so a lone request commits at once and a burst commits in a few large
transactions. Duplicate ids (inside a batch or already stored) get the same
answer back, and cause nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage import intake
from storage.database import Database
from storage.inbound import StoredAnswer


@dataclass(frozen=True)
class Pending:
    event_id: str
    payload: dict[str, Any]


class Intake:
    def __init__(
        self,
        db: Database,
        now: Callable[[], datetime],
        *,
        source: str,
        job_kind: str,
        answer: tuple[int, str],
        max_batch: int = 500,
        max_attempts: int = 20,
    ) -> None:
        self._db = db
        self._now = now
        self._batch = intake.Batch(source, job_kind, max_attempts)
        self._answer = StoredAnswer(*answer)
        self._max_batch = max_batch
        self._queue: list[tuple[Pending, asyncio.Future[StoredAnswer | None]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(self, event_id: str, payload: dict[str, Any]) -> StoredAnswer | None:
        """Persist the event and its job; None when new, else the answer stored earlier.
        Raises what the commit raised (e.g. StorageUnavailable)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[StoredAnswer | None] = loop.create_future()
        self._queue.append((Pending(event_id, payload), future))
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._commit_all())
        # A caller that goes away (client disconnect) cancels only its own wait;
        # the commit carries on for everyone in the batch.
        return await asyncio.shield(future)

    async def _commit_all(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            try:
                results = await self._commit([item for item, _ in batch])
            except Exception as exc:  # handed to every waiter, which answers 503
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _commit(self, items: list[Pending]) -> list[StoredAnswer | None]:
        first: dict[str, Pending] = {}
        for item in items:
            first.setdefault(item.event_id, item)
        new_ids = await intake.record(
            self._db,
            self._batch,
            [(i.event_id, i.payload) for i in first.values()],
            now=self._now(),
        )
        # Stored before, or a twin inside this batch: the same answer again.
        return [
            None if first[item.event_id] is item and item.event_id in new_ids else self._answer
            for item in items
        ]
