"""storage.retention: finished rows go RETENTION_DAYS after they finished, a bounded
batch per statement; open rows and a ticket's mail while its ticket lives stay; a
bulk run goes whole, its lines first; funnel days go after FUNNEL_KEPT."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from storage import bulk, funnel, jobs, outbox, retention, tickets
from storage.database import Database
from storage.models import BulkRow, BulkRun, FunnelDay, Job, MailMessage, Ticket
from storage.sql import table
from tests.conftest import Clock

pytestmark = pytest.mark.anyio
DAYS = timedelta(days=30)


async def ticket(db: Database, clock: Clock, name: str, *, ttl: timedelta) -> None:
    async with db.begin() as conn:
        await tickets.insert(
            conn,
            ticket_id=name,
            lookup_hash=f"hash-{name}",
            user_id=f"auth0|{name}",
            email=f"{name}@example.com",
            connection="Username-Password-Authentication",
            locale="en",
            purpose="reset",
            now=clock(),
            ttl=ttl,
        )


async def mail(db: Database, clock: Clock, name: str, status: str, ticket_id: str | None) -> int:
    async with db.begin() as conn:
        mail_id = await outbox.insert(
            conn,
            template="reset",
            recipient=f"{name}@example.com",
            locale="en",
            context={},
            message_id=f"<{name}@resetrelay.test>",
            now=clock(),
            ticket_id=ticket_id,
        )
    if status != outbox.QUEUED:
        await db.run(lambda c: outbox.mark_sync(c, [mail_id], status, now=clock()))
    return mail_id


async def job(db: Database, clock: Clock, status: str) -> int:
    kind = f"k-{uuid.uuid4().hex}"  # claimed below by its own kind only
    async with db.begin() as conn:
        job_id = await jobs.enqueue(conn, kind, {}, now=clock())
    if status == jobs.QUEUED:
        return job_id
    claimed = await db.run(
        lambda c: jobs.claim_sync(
            c, now=clock(), lease=timedelta(seconds=60), limit=1, kinds=(kind,)
        )
    )
    async with db.begin() as conn:
        if status == jobs.DONE:
            await jobs.complete(conn, claimed[0], now=clock())
        else:
            await jobs.bury(conn, claimed[0], now=clock(), error="gave up")
    return job_id


async def ids(db: Database, model: type[Ticket | MailMessage | Job]) -> set[object]:
    async with db.read() as conn:
        return set((await conn.execute(select(table(model).c.id))).scalars())


async def sweep(db: Database, now: datetime, batch: int) -> dict[str, int]:
    """Every statement in order, each until a batch comes back short, as housekeeping
    does; RETENTION_DAYS is `DAYS`."""
    deleted: dict[str, int] = {}
    for step, (name, _) in enumerate(retention.STATEMENTS):
        while True:
            n = await db.run(
                partial(
                    retention.delete_batch_sync, step=step, now=now, retention=DAYS, batch=batch
                )
            )
            deleted[name] = deleted.get(name, 0) + n
            assert n <= batch
            if n < batch:
                break
    return deleted


async def test_finished_rows_go_after_the_retention_and_open_ones_stay(
    database: Database, clock: Clock
) -> None:
    start = clock()
    await ticket(database, clock, "used", ttl=timedelta(hours=1))
    async with database.begin() as conn:
        assert await tickets.claim(conn, "used", now=clock(), lease=timedelta(minutes=1))
        assert await tickets.mark_used(conn, "used", now=clock())
    used_mail = await mail(database, clock, "used", outbox.SENT, "used")
    await ticket(database, clock, "long", ttl=DAYS * 2)  # still open when the rest go
    long_mail = await mail(database, clock, "long", outbox.SENT, "long")
    dead_mail = await mail(database, clock, "dead", outbox.DEAD, None)
    expired_mail = await mail(database, clock, "expired", outbox.EXPIRED, None)
    queued_mail = await mail(database, clock, "queued", outbox.QUEUED, None)
    done_job, dead_job = await job(database, clock, jobs.DONE), await job(database, clock, "dead")
    queued_job = await job(database, clock, jobs.QUEUED)
    clock.current = start + timedelta(days=2)
    await ticket(database, clock, "young", ttl=timedelta(hours=1))
    young_mail = await mail(database, clock, "young", outbox.SENT, None)
    young_job = await job(database, clock, jobs.DONE)

    clock.current = start + DAYS + timedelta(days=1)
    deleted = await sweep(database, clock(), batch=500)

    assert await ids(database, Ticket) == {"long", "young"}
    assert await ids(database, MailMessage) == {long_mail, queued_mail, young_mail}
    assert await ids(database, Job) == {queued_job, young_job}
    assert done_job not in await ids(database, Job)  # done and dead jobs alike
    assert deleted["jobs"] == len({done_job, dead_job})
    assert deleted["tickets"] == 1
    assert deleted["mail_messages"] == len({used_mail, dead_mail, expired_mail})


async def test_a_ticket_mail_goes_only_after_its_ticket(database: Database, clock: Clock) -> None:
    start = clock()
    await ticket(database, clock, "t", ttl=timedelta(days=3))
    sent = await mail(database, clock, "t", outbox.SENT, "t")
    clock.current = start + DAYS + timedelta(days=1)  # the mail finished 31 days ago
    await sweep(database, clock(), batch=500)
    assert await ids(database, MailMessage) == {sent}  # its ticket expired 28 days ago
    clock.current = start + DAYS + timedelta(days=4)
    await sweep(database, clock(), batch=500)
    assert await ids(database, MailMessage) == set()
    assert await ids(database, Ticket) == set()


async def test_batches_are_bounded(database: Database, clock: Clock) -> None:
    start = clock()
    for i in range(7):
        await mail(database, clock, f"m{i}", outbox.SENT, None)
    clock.current = start + DAYS + timedelta(seconds=1)
    now = clock()
    first = await database.run(
        lambda c: retention.delete_batch_sync(c, step=1, now=now, retention=DAYS, batch=3)
    )
    assert retention.STATEMENTS[1][0] == "mail_messages"
    assert first == 3
    async with database.read() as conn:
        left = (await conn.execute(select(func.count()).select_from(table(MailMessage)))).scalar()
    assert left == 4
    assert (await sweep(database, now, batch=3))["mail_messages"] == 4


async def test_marks_stamp_finished_at_for_finished_states_only(
    database: Database, clock: Clock
) -> None:
    """Marks stamp `finished_at` for every finished status, and only those."""
    sent = await mail(database, clock, "s", outbox.SENT, None)
    retry = await mail(database, clock, "r", outbox.QUEUED, None)
    await database.run(lambda c: outbox.mark_sync(c, [retry], outbox.QUEUED, now=clock()))
    async with database.read() as conn:
        rows = dict(
            (
                await conn.execute(
                    select(table(MailMessage).c.id, table(MailMessage).c.finished_at)
                )
            ).all()
        )
    assert rows == {sent: clock(), retry: None}


async def test_concurrent_sweeps_share_the_rows_without_error(
    database: Database, clock: Clock
) -> None:
    start = clock()
    for i in range(20):
        await mail(database, clock, f"c{i}", outbox.SENT, None)
    clock.current = start + DAYS + timedelta(seconds=1)
    totals: list[int] = []

    async def one_sweep() -> None:
        totals.append((await sweep(database, clock(), batch=5))["mail_messages"])

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one_sweep)
    assert sum(totals) == 20
    assert await ids(database, MailMessage) == set()


# -- bulk runs ----------------------------------------------------------------------


async def bulk_run(
    db: Database, clock: Clock, run_id: str, lines: int, *, finish: bool, done: int | None = None
) -> None:
    """A run of `lines` lines, the first `done` of them (all by default) done and
    mailed to a user id of their own; marked finished when `finish`."""
    done = lines if done is None else done
    async with db.begin() as conn:
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
            conn, run_id, [(n, bulk.QUEUED, None, None) for n in range(2, lines + 2)], now=clock()
        )
        await bulk.finish_many(
            conn,
            run_id,
            [(n, "mailed", None, f"auth0|{run_id}-{n}") for n in range(2, done + 2)],
            now=clock(),
        )
        if finish:
            assert await bulk.finish_run(conn, run_id, now=clock())


async def bulk_left(db: Database) -> tuple[set[str], dict[str, int]]:
    """The runs left, and how many lines each run still has."""
    async with db.read() as conn:
        runs = set((await conn.execute(select(table(BulkRun).c.id))).scalars())
        rows = table(BulkRow)
        lines = (
            await conn.execute(select(rows.c.run_id, func.count()).group_by(rows.c.run_id))
        ).all()
    return runs, {str(run_id): int(n) for run_id, n in lines}


async def test_bulk_runs_go_whole_after_the_retention_and_recent_ones_stay(
    database: Database, clock: Clock
) -> None:
    """A finished run goes RETENTION_DAYS after it finished, with every line; a run
    never finished goes RETENTION_DAYS after it started; younger runs, open or
    finished, keep every line."""
    start = clock()
    await bulk_run(database, clock, "old-finished", 4, finish=True)
    # Abandoned: the command was stopped with lines still queued, never rerun.
    await bulk_run(database, clock, "old-open", 3, finish=False, done=1)
    clock.current = start + timedelta(days=2)
    await bulk_run(database, clock, "young-finished", 2, finish=True)
    clock.current = start + timedelta(days=20)
    await bulk_run(database, clock, "young-open", 5, finish=False, done=2)

    clock.current = start + DAYS + timedelta(days=1)
    deleted = await sweep(database, clock(), batch=500)

    runs, lines = await bulk_left(database)
    assert runs == {"young-finished", "young-open"}
    assert lines == {"young-finished": 2, "young-open": 5}
    assert deleted["bulk_rows"] == 4 + 3
    assert deleted["bulk_runs"] == 2

    clock.current = start + timedelta(days=20) + DAYS + timedelta(seconds=1)
    await sweep(database, clock(), batch=500)
    assert await bulk_left(database) == (set(), {})


async def test_a_run_finished_late_is_kept_from_when_it_finished(
    database: Database, clock: Clock
) -> None:
    """The clock is the finish, not the start: a run that took days is kept
    RETENTION_DAYS after its last line."""
    start = clock()
    await bulk_run(database, clock, "slow", 2, finish=False, done=0)
    clock.current = start + timedelta(days=5)
    async with database.begin() as conn:
        assert await bulk.finish_run(conn, "slow", now=clock())
    clock.current = start + DAYS + timedelta(days=1)  # 31 days after its start
    await sweep(database, clock(), batch=500)
    assert await bulk_left(database) == ({"slow"}, {"slow": 2})
    clock.current = start + timedelta(days=5) + DAYS + timedelta(seconds=1)
    await sweep(database, clock(), batch=500)
    assert await bulk_left(database) == (set(), {})


async def test_bulk_batches_are_bounded_and_a_run_goes_after_its_last_line(
    database: Database, clock: Clock
) -> None:
    start = clock()
    await bulk_run(database, clock, "a", 4, finish=True)
    await bulk_run(database, clock, "b", 4, finish=True)
    clock.current = start + DAYS + timedelta(seconds=1)
    now = clock()
    names = [name for name, _ in retention.STATEMENTS]
    rows_step, runs_step = names.index("bulk_rows"), names.index("bulk_runs")
    assert rows_step < runs_step  # lines first: a run goes once it has none

    def step(n: int) -> Any:
        return partial(retention.delete_batch_sync, step=n, now=now, retention=DAYS, batch=3)

    assert await database.run(step(rows_step)) == 3
    # A run with a line left is not deleted, nor is the untouched one.
    assert await database.run(step(runs_step)) == 0
    runs, lines = await bulk_left(database)
    assert runs == {"a", "b"}
    assert sorted(lines.values()) == [1, 4]  # the 3 came from one run

    deleted = await sweep(database, now, batch=3)
    assert deleted["bulk_rows"] == 5
    assert deleted["bulk_runs"] == 2
    assert await bulk_left(database) == (set(), {})


async def test_concurrent_sweeps_share_bulk_lines_without_error(
    database: Database, clock: Clock
) -> None:
    start = clock()
    for name in ("c1", "c2"):
        await bulk_run(database, clock, name, 12, finish=True)
    clock.current = start + DAYS + timedelta(seconds=1)
    totals: list[dict[str, int]] = []

    async def one_sweep() -> None:
        totals.append(await sweep(database, clock(), batch=5))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one_sweep)
    assert await bulk_left(database) == (set(), {})
    assert sum(t["bulk_rows"] for t in totals) == 24
    assert sum(t["bulk_runs"] for t in totals) == 2


# -- funnel days --------------------------------------------------------------------


async def test_funnel_days_are_kept_for_funnel_kept_not_retention_days(
    database: Database, clock: Clock
) -> None:
    now = clock()
    kept = retention.FUNNEL_KEPT
    assert kept > DAYS
    ages = {"gone": kept + timedelta(days=1), "kept": kept - timedelta(days=1), "old": DAYS * 2}
    for age in ages.values():
        for step in ("requested", "found", "mailed"):
            await database.run(
                partial(funnel.add_sync, at=now - age, purpose="reset", locale="en", step=step)
            )
    deleted = await sweep(database, now, batch=2)
    assert deleted["funnel_days"] == 3
    async with database.read() as conn:
        days = set((await conn.execute(select(table(FunnelDay).c.day))).scalars())
    assert days == {(now - ages["kept"]).date(), (now - ages["old"]).date()}
