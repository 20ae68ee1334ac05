"""Housekeeping prunes at most hourly and keeps the queue gauges fresh."""

from __future__ import annotations

from datetime import timedelta

import pytest

from resetrelay.housekeeping import Housekeeping
from resetrelay.metrics import Metrics
from storage import inbound, jobs, outbox
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


async def test_prunes_old_dedupe_rows(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        await inbound.record(
            conn,
            source="website",
            event_id="old",
            event_type="password_reset.verify",
            status_code=200,
            answer="{}",
            now=clock() - timedelta(days=4),
        )
    await Housekeeping(database, Metrics(), clock).run()
    async with database.read() as conn:
        assert await inbound.find(conn, "website", "old") is None


async def test_gauges_follow_the_queue(database: Database, clock: Clock) -> None:
    metrics = Metrics()
    async with database.begin() as conn:
        await jobs.enqueue(conn, "k", {}, now=clock() - timedelta(seconds=30))
    await Housekeeping(database, metrics, clock).refresh_gauges()
    assert metrics.registry.get_sample_value("resetrelay_job_queue_depth") == 1
    assert metrics.registry.get_sample_value("resetrelay_job_queue_oldest_age_seconds") == 30


async def test_gauges_keep_their_value_when_the_database_is_down(clock: Clock) -> None:
    metrics = Metrics()
    metrics.queue_depth.set(7)
    down = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        await Housekeeping(down, metrics, clock).refresh_gauges()
    finally:
        await down.dispose()
    assert metrics.registry.get_sample_value("resetrelay_job_queue_depth") == 7


async def test_retention_deletes_finished_rows_in_batches_and_counts_them(
    database: Database, clock: Clock
) -> None:
    """The clock moves past RETENTION_DAYS: finished rows are gone, counted by table
    on the metric; an open mail stays."""
    start = clock()
    async with database.begin() as conn:
        ids = [
            await outbox.insert(
                conn,
                template="changed",
                recipient=f"u{i}@example.com",
                locale="en",
                context={},
                message_id=f"<m{i}@resetrelay.test>",
                now=clock(),
            )
            for i in range(5)
        ]
    await database.run(lambda c: outbox.mark_sync(c, ids[:4], outbox.SENT, now=clock()))
    metrics = Metrics()
    clock.current = start + timedelta(days=3)
    housekeeping = Housekeeping(database, metrics, clock, retention=timedelta(days=2), batch=3)
    await housekeeping.run()
    deleted = metrics.registry.get_sample_value(
        "resetrelay_retention_deleted_total", {"table": "mail_messages"}
    )
    assert deleted == 4
    async with database.read() as conn:
        assert await outbox.counts(conn) == {outbox.QUEUED: 1}
