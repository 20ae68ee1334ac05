"""storage.outbox: queued rows, batch reads through Database.run_read, status marks
(async and batch) and the per-status counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from storage import outbox
from storage.database import Database
from storage.models import MailMessage
from storage.sql import table
from tests.conftest import Clock

pytestmark = pytest.mark.anyio
_mail = table(MailMessage)


async def insert(db: Database, clock: Clock, n: int) -> list[int]:
    async with db.begin() as conn:
        return [
            await outbox.insert(
                conn,
                template="reset",
                recipient=f"user{i}@example.com",
                locale="de",
                context={"name": f"User {i}"},
                message_id=f"<m{i}@resetrelay.test>",
                now=clock(),
                ticket_id="t-1" if i == 0 else None,
            )
            for i in range(n)
        ]


async def extra(db: Database, mail_id: int) -> tuple[Any, datetime | None]:
    async with db.read() as conn:
        query = select(_mail.c.last_error, _mail.c.sent_at).where(_mail.c.id == mail_id)
        error, sent_at = (await conn.execute(query)).one()
    return error, sent_at


async def test_insert_then_read_a_batch(database: Database, clock: Clock) -> None:
    first, second = await insert(database, clock, 2)
    rows = await database.run_read(lambda c: outbox.get_many_sync(c, [first, second, 10**6]))
    assert set(rows) == {first, second}
    assert rows[first] == outbox.MailRow(
        id=first,
        template="reset",
        recipient="user0@example.com",
        locale="de",
        context={"name": "User 0"},
        ticket_id="t-1",
        message_id="<m0@resetrelay.test>",
        status=outbox.QUEUED,
        attempts=0,
    )
    assert rows[second].ticket_id is None
    assert await database.run_read(lambda c: outbox.get_many_sync(c, [])) == {}


async def test_mark_records_attempts_errors_and_sent_at(database: Database, clock: Clock) -> None:
    (mail_id,) = await insert(database, clock, 1)
    async with database.begin() as conn:
        await outbox.mark(conn, mail_id, outbox.QUEUED, now=clock(), error="421", attempted=True)
    assert await extra(database, mail_id) == ("421", None)
    clock.advance(5)
    await database.run(
        lambda c: outbox.mark_sync(c, [mail_id], outbox.SENT, now=clock(), attempted=True)
    )
    (row,) = (await database.run_read(lambda c: outbox.get_many_sync(c, [mail_id]))).values()
    assert (row.status, row.attempts) == (outbox.SENT, 2)
    assert await extra(database, mail_id) == (None, clock())  # a success clears the error


async def test_mark_sync_is_one_batch_and_counts_group_by_status(
    database: Database, clock: Clock
) -> None:
    ids = await insert(database, clock, 4)
    await database.run(lambda c: outbox.mark_sync(c, ids[:3], outbox.DEAD, now=clock()))
    await database.run(lambda c: outbox.mark_sync(c, [], outbox.SENT, now=clock()))  # no-op
    rows = await database.run_read(lambda c: outbox.get_many_sync(c, ids))
    assert [rows[i].attempts for i in ids] == [0, 0, 0, 0]  # not attempted
    async with database.read() as conn:
        assert await outbox.counts(conn) == {outbox.DEAD: 3, outbox.QUEUED: 1}


async def test_start_sending_marks_queued_and_counts_a_start_over_an_unknown_outcome(
    database: Database, clock: Clock
) -> None:
    queued, sending, sent = await insert(database, clock, 3)
    await database.run(lambda c: outbox.mark_sync(c, [sent], outbox.SENT, now=clock()))
    first = await database.run(lambda c: outbox.start_sending_sync(c, [queued, sending, sent]))
    assert first == set()  # nothing was sending before
    await database.run(lambda c: outbox.mark_sync(c, [queued], outbox.QUEUED, now=clock()))
    # `sending` stays from the first start (its outcome never written); `queued` was
    # put back by a retry, so its next start is a plain one.
    again = await database.run(lambda c: outbox.start_sending_sync(c, [queued, sending, sent]))
    assert again == {sending}
    rows = await database.run_read(lambda c: outbox.get_many_sync(c, [queued, sending, sent]))
    assert {i: (r.status, r.resends) for i, r in rows.items()} == {
        queued: (outbox.SENDING, 0),
        sending: (outbox.SENDING, 1),
        sent: (outbox.SENT, 0),
    }
