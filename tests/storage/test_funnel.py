from __future__ import annotations

from datetime import timedelta

import pytest

from storage import funnel, outbox, tickets
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


async def test_steps_add_up_per_day_purpose_and_locale(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        for _ in range(3):
            await funnel.add(conn, at=clock(), purpose="reset", locale="de", step="requested")
        await funnel.add(conn, at=clock(), purpose="reset", locale="en", step="requested", n=2)
        await funnel.add(conn, at=clock(), purpose="reset", locale="en", step="found", n=0)
    async with database.begin() as conn:  # a later transaction adds to the same row
        await funnel.add(conn, at=clock(), purpose="reset", locale="de", step="requested")
    clock.advance(86400)
    async with database.begin() as conn:
        await funnel.add(conn, at=clock(), purpose="breached", locale="de", step="mailed")
        rows = await funnel.since(conn, (clock() - timedelta(days=1)).date())
        later = await funnel.since(conn, clock().date())
    day = (clock() - timedelta(days=1)).date()
    assert [(r.day, r.purpose, r.locale, r.step, r.total) for r in rows] == [
        (day, "reset", "de", "requested", 4),
        (day, "reset", "en", "requested", 2),
        (clock().date(), "breached", "de", "mailed", 1),
    ]
    assert [r.purpose for r in later] == ["breached"]


async def test_an_unknown_step_is_refused(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        with pytest.raises(ValueError, match="unknown funnel step 'clicked'"):
            await funnel.add(conn, at=clock(), purpose="reset", locale="en", step="clicked")


async def test_mailed_counts_mails_with_a_ticket_by_its_purpose(
    database: Database, clock: Clock
) -> None:
    async with database.begin() as conn:
        ids = []
        for n, purpose in enumerate(("reset", "breached", "reset")):
            await tickets.insert(
                conn,
                ticket_id=f"t{n}",
                lookup_hash=f"h{n}",
                user_id=f"auth0|{n}",
                email=f"u{n}@example.com",
                connection="db",
                locale="fr",
                purpose=purpose,
                now=clock(),
                ttl=timedelta(hours=1),
            )
            ids.append(
                await outbox.insert(
                    conn,
                    template=purpose,
                    recipient=f"u{n}@example.com",
                    locale="fr",
                    context={},
                    message_id=f"<m{n}@x>",
                    now=clock(),
                    ticket_id=f"t{n}",
                )
            )
        ids.append(
            await outbox.insert(
                conn,
                template="changed",
                recipient="u0@example.com",
                locale="fr",
                context={},
                message_id="<c@x>",
                now=clock(),
            )
        )
        await conn.run_sync(lambda sync: funnel.mailed_sync(sync, ids, at=clock()))
        await conn.run_sync(lambda sync: funnel.mailed_sync(sync, [], at=clock()))
        rows = await funnel.since(conn, clock().date())
    assert sorted((r.purpose, r.locale, r.step, r.total) for r in rows) == [
        ("breached", "fr", "mailed", 1),
        ("reset", "fr", "mailed", 2),
    ]
