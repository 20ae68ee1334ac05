"""Housekeeping: forgetting what is no longer needed, and the queue's gauges.

The worker calls `run` when it has nothing to do. Dedupe rows, counters and
spent Action tokens are pruned at most hourly. Retention (storage.retention)
deletes finished tickets, mails, jobs and bulk runs `retention` after they
finished, and old funnel days, a batch per transaction; one call works for a
short while at most and the next idle call goes on where it stopped, so a
backlog (a first run on an old database) never keeps the worker from its jobs
for long.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import anyio

from resetrelay.metrics import Metrics
from storage import inbound, jobs, ratelimits, retention, tokens
from storage.database import Database, StorageError

log = logging.getLogger("resetrelay.housekeeping")

# Seconds of batches one idle call may spend on retention before it yields to jobs.
_RETENTION_SLICE = 0.5


class Housekeeping:
    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        now: Callable[[], datetime],
        *,
        retention: timedelta = timedelta(days=30),
        batch: int = 500,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._now = now
        self._retention = retention
        self._batch = batch
        self._last_prune = 0.0
        self._sweep: tuple[datetime, int] | None = None  # (its start, next statement)

    async def run(self) -> None:
        """While idle: hourly prunes, and retention's next batches."""
        if not self._last_prune or anyio.current_time() - self._last_prune >= 3600:
            self._last_prune = anyio.current_time()
            await self._prune()
            if self._sweep is None:
                self._sweep = (self._now(), 0)
        if self._sweep is not None:
            self._sweep = await self._retain(*self._sweep)

    async def _prune(self) -> None:
        now = self._now()
        try:
            async with self._db.begin() as conn:
                # Standard Webhooks senders retry for about a day and a half.
                await inbound.prune(conn, older_than=now - timedelta(days=3))
                await ratelimits.prune(conn, now=now, keep=timedelta(days=2))
                await tokens.prune(conn, now=now)
        except StorageError:
            log.warning("maintenance skipped: database unavailable")

    async def _retain(self, now: datetime, step: int) -> tuple[datetime, int] | None:
        """Run retention batches from statement `step` on for up to `_RETENTION_SLICE`
        seconds; returns where the next call goes on, None once every statement
        has come back short (the sweep is done until the next hour)."""
        deadline = anyio.current_time() + _RETENTION_SLICE
        while step < len(retention.STATEMENTS):
            try:
                deleted = await self._db.run(
                    partial(
                        retention.delete_batch_sync,
                        step=step,
                        now=now,
                        retention=self._retention,
                        batch=self._batch,
                    )
                )
            except StorageError:
                log.warning("retention paused: database unavailable")
                break
            if deleted:
                self._metrics.retention_deleted.labels(retention.STATEMENTS[step][0]).inc(deleted)
            if deleted < self._batch:
                step += 1
            if anyio.current_time() >= deadline:
                break
        return None if step >= len(retention.STATEMENTS) else (now, step)

    async def refresh_gauges(self) -> None:
        """The queue's gauges from the database; they keep their last value while
        the database does not answer (counters are still worth serving)."""
        try:
            async with self._db.read() as conn:
                stats = await jobs.stats(conn, now=self._now())
        except StorageError:
            return
        self._metrics.queue_depth.set(stats.depth)
        self._metrics.queue_age.set(stats.oldest_age_seconds)
        self._metrics.jobs_dead.set(stats.dead)
