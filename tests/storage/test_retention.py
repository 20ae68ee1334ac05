"""storage.retention: finished rows go RETENTION_DAYS after they finished, a bounded
batch per statement; open rows and a ticket's mail while its ticket lives stay."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial

import anyio
import pytest
from sqlalchemy import func, select

from storage import jobs, outbox, retention, tickets
from storage.database import Database
from storage.models import Job, MailMessage, Ticket
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


async def sweep(db: Database, cutoff: datetime, batch: int) -> dict[str, int]:
    deleted: dict[str, int] = {}
    for step, (name, _) in enumerate(retention.STATEMENTS):
        while True:
            n = await db.run(
                partial(retention.delete_batch_sync, step=step, cutoff=cutoff, batch=batch)
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
    deleted = await sweep(database, clock() - DAYS, batch=500)

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
    await sweep(database, clock() - DAYS, batch=500)
    assert await ids(database, MailMessage) == {sent}  # its ticket expired 28 days ago
    clock.current = start + DAYS + timedelta(days=4)
    await sweep(database, clock() - DAYS, batch=500)
    assert await ids(database, MailMessage) == set()
    assert await ids(database, Ticket) == set()


async def test_batches_are_bounded(database: Database, clock: Clock) -> None:
    start = clock()
    for i in range(7):
        await mail(database, clock, f"m{i}", outbox.SENT, None)
    clock.current = start + DAYS + timedelta(seconds=1)
    cutoff = clock() - DAYS
    first = await database.run(
        lambda c: retention.delete_batch_sync(c, step=1, cutoff=cutoff, batch=3)
    )
    assert retention.STATEMENTS[1][0] == "mail_messages"
    assert first == 3
    async with database.read() as conn:
        left = (await conn.execute(select(func.count()).select_from(table(MailMessage)))).scalar()
    assert left == 4
    assert (await sweep(database, cutoff, batch=3))["mail_messages"] == 4


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
        totals.append((await sweep(database, clock() - DAYS, batch=5))["mail_messages"])

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one_sweep)
    assert sum(totals) == 20
    assert await ids(database, MailMessage) == set()
