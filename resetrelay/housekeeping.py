"""Housekeeping: forgetting what is no longer needed, and the queue's gauges.

The worker calls `run` when it has nothing to do; it prunes at most hourly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import anyio

from resetrelay.metrics import Metrics
from storage import inbound, jobs, ratelimits, tokens
from storage.database import Database, StorageError

log = logging.getLogger("resetrelay.housekeeping")


class Housekeeping:
    def __init__(self, db: Database, metrics: Metrics, now: Callable[[], datetime]) -> None:
        self._db = db
        self._metrics = metrics
        self._now = now
        self._last_prune = 0.0

    async def run(self) -> None:
        """Hourly while idle: forget old dedupe rows, counters and spent Action tokens."""
        if self._last_prune and anyio.current_time() - self._last_prune < 3600:
            return
        self._last_prune = anyio.current_time()
        now = self._now()
        try:
            async with self._db.begin() as conn:
                # Standard Webhooks senders retry for about a day and a half.
                await inbound.prune(conn, older_than=now - timedelta(days=3))
                await ratelimits.prune(conn, now=now, keep=timedelta(days=2))
                await tokens.prune(conn, now=now)
        except StorageError:
            log.warning("maintenance skipped: database unavailable")

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
