"""Housekeeping prunes at most hourly and keeps the queue gauges fresh."""

from __future__ import annotations

from datetime import timedelta

import pytest

from resetrelay.housekeeping import Housekeeping
from resetrelay.metrics import Metrics
from storage import bulk, inbound, jobs, outbox
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


async def test_retention_takes_a_finished_bulk_run_whole_and_counts_it(
    database: Database, clock: Clock
) -> None:
    """After the jobs, the sweep deletes a finished run's lines (user ids), then the
    run; a run started since stays with its lines."""
    start = clock()
    for run_id, lines in (("old", 4), ("new", 2)):
        async with database.begin() as conn:
            await bulk.create_run(
                conn,
                run_id=run_id,
                file_sha256="0" * 64,
                key_column="email",
                template="breached",
                rows=lines,
                now=clock(),
            )
            await bulk.add_rows(
                conn, run_id, [(n, bulk.DONE, "not_found", None) for n in range(lines)], now=clock()
            )
            if run_id == "old":
                assert await bulk.finish_run(conn, run_id, now=clock())
        clock.current = start + timedelta(days=2)
    clock.current = start + timedelta(days=3)
    metrics = Metrics()
    await Housekeeping(database, metrics, clock, retention=timedelta(days=2), batch=3).run()

    def deleted(table: str) -> float | None:
        return metrics.registry.get_sample_value(
            "resetrelay_retention_deleted_total", {"table": table}
        )

    assert (deleted("bulk_rows"), deleted("bulk_runs")) == (4, 1)
    async with database.read() as conn:
        assert await bulk.run_by_id(conn, "old") is None
        assert await bulk.run_by_id(conn, "new") is not None
        assert await bulk.known_rows(conn, "new") == {0, 1}
