"""What a reset sets in motion, written in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from identity.users import Auth0User
from resetrelay.reset.confirm import CLAIM_MARKER, Guard, _our_patch, same_address, settle_reset
from resetrelay.reset.requests import issue
from resetrelay.reset.tickets import TicketCodec
from resetrelay.settings import Settings
from storage import outbox, tickets
from storage.database import Database
from storage.models import Job
from storage.sql import table
from tests.conftest import SECRET_KEY, Clock

pytestmark = pytest.mark.anyio
_jobs = table(Job)


async def _claimed(db: Database, settings: Settings, clock: Clock) -> tickets.TicketRow:
    async with db.begin() as conn:
        ticket_id = await issue(
            conn,
            settings,
            TicketCodec(SECRET_KEY),
            user_id="auth0|jane",
            email="jane@example.com",
            connection="Username-Password-Authentication",
            locale="en",
            purpose="reset",
            now=clock(),
        )
        assert await tickets.claim(conn, ticket_id, now=clock(), lease=timedelta(seconds=60))
        row = await tickets.by_id(conn, ticket_id)
    assert row is not None
    return row


async def _kinds(db: Database) -> list[str]:
    async with db.read() as conn:
        return sorted(r.kind for r in await conn.execute(select(_jobs.c.kind)))


@pytest.mark.parametrize("via_link", [True, False])
async def test_settle_reset_queues_the_follow_ups(
    database: Database,
    database_url: str,
    clock: Clock,
    settings_for: Callable[..., Settings],
    via_link: bool,
) -> None:
    settings = settings_for(database_url, WEBSITE_EVENTS_URL="https://www.acme.example/events")
    row = await _claimed(database, settings, clock)
    async with database.begin() as conn:
        assert await settle_reset(conn, settings, row, now=clock(), via_link=via_link)
        assert (await tickets.by_id(conn, row.id)).state == tickets.USED  # type: ignore[union-attr]
        counts = await outbox.counts(conn)
    # MFA's remembered browsers are forgotten with the sessions (issue 14).
    follow_ups = [
        "auth0.invalidate_remember_browser",
        "auth0.revoke_sessions",
        "auth0.unblock",
        "website.event",
    ]
    if via_link:
        follow_ups.append("auth0.mark_email_verified")
    # Two mails (reset, changed), each with its send job.
    assert await _kinds(database) == sorted([*follow_ups, "mail.send", "mail.send"])
    assert counts == {"queued": 2}


async def test_settle_reset_does_nothing_for_a_ticket_no_longer_claimed(
    database: Database, database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(database_url, REVOKE_SESSIONS="false")
    row = await _claimed(database, settings, clock)
    async with database.begin() as conn:
        assert await settle_reset(conn, settings, row, now=clock(), via_link=True)
        assert not await settle_reset(conn, settings, row, now=clock(), via_link=True)
    kinds = await _kinds(database)
    assert "auth0.revoke_sessions" not in kinds
    assert "auth0.invalidate_remember_browser" not in kinds


async def test_settle_reset_tells_both_addresses_when_the_address_moved(
    database: Database, database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(database_url)
    row = await _claimed(database, settings, clock)
    async with database.begin() as conn:
        assert await settle_reset(
            conn, settings, row, now=clock(), via_link=True, current_email="New@Example.com"
        )
        counts = await outbox.counts(conn)
    assert counts == {"queued": 3}  # reset + "changed" to the old and to the new address


async def test_settle_reset_one_changed_mail_when_only_the_case_differs(
    database: Database, database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(database_url)
    row = await _claimed(database, settings, clock)
    async with database.begin() as conn:
        assert await settle_reset(
            conn, settings, row, now=clock(), via_link=True, current_email="Jane@Example.com"
        )
        assert await outbox.counts(conn) == {"queued": 2}


def test_same_address_ignores_case_only() -> None:
    assert same_address("Jane@Example.com", "jane@example.com")
    assert not same_address("jane@example.com", "jane@example.org")
    assert not same_address("", "jane@example.com")


def _user(app_metadata: dict[str, str], reset: datetime | None) -> Auth0User:
    return Auth0User(
        user_id="auth0|jane",
        email="jane@example.com",
        email_verified=False,
        connection="Username-Password-Authentication",
        is_database_user=True,
        locale=None,
        last_password_reset=reset,
        app_metadata=app_metadata,
    )


def test_the_guards_proof_is_its_claims_id() -> None:
    claimed = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    later = claimed + timedelta(seconds=10)
    guard = Guard("t1", claimed.isoformat(), "claim-1")
    assert _our_patch(_user({CLAIM_MARKER: "claim-1"}, later), guard, claimed)
    # A change after the claim, by someone else: not ours.
    assert not _our_patch(_user({}, later), guard, claimed)
    assert not _our_patch(_user({CLAIM_MARKER: "claim-0"}, later), guard, claimed)
    # A guard queued before the marker existed keeps the time-window proof.
    legacy = Guard("t1", claimed.isoformat())
    assert _our_patch(_user({}, later), legacy, claimed)
    assert not _our_patch(_user({}, claimed - timedelta(seconds=1)), legacy, claimed)
