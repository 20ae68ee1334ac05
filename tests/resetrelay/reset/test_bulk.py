"""bulk.reset jobs in-process: outcomes by line, and one mail per user when two
workers hold the same job (a lease that lapsed while the first still ran)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
from sqlalchemy import func, select

from devkit.emulator import create_emulator
from resetrelay.audit import Operator
from resetrelay.jobs.worker import Worker
from resetrelay.operators import bulk as operator
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from storage import bulk
from storage.database import Database
from storage.models import MailMessage, Ticket
from storage.sql import table
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


async def test_two_workers_on_one_job_mail_each_user_once(
    database: Database, database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    emulator = create_emulator(
        users=[
            {"email": "ana@example.com", "password": "Old-Passw0rd!", "user_id": "auth0|ana"},
            {"email": "ben@example.com", "password": "Old-Passw0rd!", "user_id": "auth0|ben"},
            {"email": "ivo@example.com", "social": "google-oauth2"},
        ]
    )
    settings = settings_for(
        database_url,
        AUTH0_BASE_URL="http://auth0",
        AUTH0_DOMAIN=emulator.state.emulator.domain,
        BULK_MAILS_PER_MINUTE="0",
    )
    runtime = Runtime.build(
        settings, db=database, now=clock, auth0_transport=httpx.ASGITransport(app=emulator)
    )
    breach = operator.parse_breach_list(
        "email\nana@example.com\nben@example.com\nivo@example.com\nnobody@example.com\nbad\n",
        "a" * 64,
    )
    started = await operator.start(
        database,
        breach,
        run_id="r1",
        template="breached",
        operator=Operator("test", "host"),
        now=clock(),
    )
    assert await operator.enqueue(database, breach, started, now=clock()) == 5
    first = await runtime.worker.claim(8, ("bulk.reset",))
    clock.advance(runtime.worker.lease.total_seconds() + 1)  # the first lease lapses
    second = Worker(db=database, kinds=runtime.worker.kinds, now=clock)
    taken_over = await second.claim(8, ("bulk.reset",))
    assert [j.id for j in first] == [j.id for j in taken_over]
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.worker.execute_batch, first)
        tg.start_soon(second.execute_batch, taken_over)

    async with database.read() as conn:
        counts = await bulk.counts(conn, "r1")
        mails = (await conn.execute(select(func.count()).select_from(table(MailMessage)))).scalar()
        open_tickets = (
            await conn.execute(
                select(table(Ticket).c.user_id, table(Ticket).c.purpose).where(
                    table(Ticket).c.state == "open"
                )
            )
        ).all()
    assert counts.queued == 0
    assert counts.outcomes == {"mailed": 2, "social_only": 1, "not_found": 1, "invalid": 1}
    assert mails == 2
    assert sorted(open_tickets) == [("auth0|ana", "breached"), ("auth0|ben", "breached")]
    await runtime.aclose()
