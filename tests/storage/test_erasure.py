"""storage.erasure: every table is declared, and a person's rows are found exactly:
any case, inside JSON (escaped or not) and error texts, never a look-alike's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, func, select

from storage import erasure, inbound, jobs, outbox, tickets
from storage.database import Database
from storage.models import metadata
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


def test_every_table_is_searched_or_says_why_it_holds_no_one() -> None:
    searched = {holder.table for holder in erasure.HOLDERS}
    assert not searched & set(erasure.HOLDS_NO_ONE)
    assert searched | set(erasure.HOLDS_NO_ONE) == {t.name for t in metadata.sorted_tables}


async def fill(db: Database, clock: Clock) -> None:
    async with db.begin() as conn:
        for user, email in (("auth0|1", "Ane@Example.com"), ("auth0|12", "jane@example.com")):
            await tickets.insert(
                conn,
                ticket_id=f"t-{user}",
                lookup_hash=f"h-{user}",
                user_id=user,
                email=email.lower(),
                connection="db",
                locale="en",
                purpose="reset",
                now=clock(),
                ttl=timedelta(hours=1),
            )
            await outbox.insert(
                conn,
                template="changed",
                recipient=email,  # as the user wrote it
                locale="en",
                context={},
                message_id=f"<{user}@test>",
                now=clock(),
            )
        await jobs.enqueue(conn, "a", {"email": "jane@example.com"}, now=clock())
        await jobs.enqueue(conn, "b", {"data": {"user_id": "auth0|1", "n": 1}}, now=clock())
        await jobs.enqueue(conn, "c", {"email": "zoë@exämple.com"}, now=clock())
        await inbound.record(
            conn,
            source="website",
            event_id="e1",
            event_type="password_reset.verify",
            status_code=200,
            answer='{"email": "a***@example.com"}',
            now=clock(),
        )


async def test_an_address_finds_its_rows_in_any_case_and_not_a_look_alike(
    database: Database, clock: Clock
) -> None:
    await fill(database, clock)
    person = erasure.Person.of(emails=["ANE@example.com"])

    def find(conn: Connection) -> dict[str, set[object]]:
        return erasure.find(conn, erasure.linked(conn, person))

    found = await database.run_read(find)
    assert found["tickets"] == {"t-auth0|1"}  # not jane's, not auth0|12's
    assert len(found["mail_messages"]) == 1
    async with database.read() as conn:
        kinds = (await conn.execute(select(metadata.tables["jobs"].c.kind))).scalars().all()
    assert len(found["jobs"]) == 1 and len(kinds) == 3  # the job naming auth0|1, only
    assert found["inbound_events"] == set()  # a masked address is nobody's


async def test_a_non_ascii_address_is_found_inside_json(database: Database, clock: Clock) -> None:
    await fill(database, clock)
    person = erasure.Person.of(emails=["zoë@exämple.com"])
    counts = await database.run(lambda c: erasure.erase(c, person))
    assert counts["jobs"] == 1
    async with database.read() as conn:
        left = await conn.execute(select(func.count()).select_from(metadata.tables["jobs"]))
        assert left.scalar_one() == 2
