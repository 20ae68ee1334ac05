"""The ticket codec and the one check of a presented ticket, step by step."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

from resetrelay.reset.tickets import TicketCodec, Tickets
from storage import tickets
from storage.database import Database
from storage.tickets import TicketRow
from tests.conftest import SECRET_KEY, Clock

pytestmark = pytest.mark.anyio
RESET_URL = "https://www.acme.example/account/reset?ticket={ticket}"


def test_a_new_ticket_is_its_ids_mac_and_hides_its_value() -> None:
    codec = TicketCodec(SECRET_KEY)
    ticket = codec.new()
    assert codec.value_for(ticket.id) == ticket.value
    assert len(base64.urlsafe_b64decode(ticket.value + "=")) == 32
    assert ticket.lookup_hash == hashlib.sha256(ticket.value.encode()).hexdigest()
    assert ticket.value not in repr(ticket)
    assert codec.new().id != ticket.id


def test_values_depend_on_the_key() -> None:
    ticket = TicketCodec(SECRET_KEY).new()
    other = TicketCodec(SECRET_KEY + "-rotated")
    assert other.value_for(ticket.id) != ticket.value
    assert not other.matches(ticket.id, ticket.value)


@pytest.mark.parametrize(
    "value",
    ["", "short", "A" * 42, "A" * 44, "A" * 42 + "=", "A" * 42 + "+", "A" * 42 + "\n"],
)
def test_well_formed_rejects_anything_not_shaped_like_a_ticket(value: str) -> None:
    assert not TicketCodec.well_formed(value)


def test_matches_compares_the_whole_mac() -> None:
    codec = TicketCodec(SECRET_KEY)
    ticket = codec.new()
    flipped = ticket.value[:-1] + ("A" if ticket.value[-1] != "A" else "B")
    assert codec.matches(ticket.id, ticket.value)
    assert not codec.matches(ticket.id, flipped)


async def _store(db: Database, codec: TicketCodec, clock: Clock, **kw: str) -> str:
    ticket = codec.new()
    async with db.begin() as conn:
        await tickets.insert(
            conn,
            ticket_id=ticket.id,
            lookup_hash=ticket.lookup_hash,
            user_id=kw.get("user_id", "auth0|jane"),
            email="jane@example.com",
            connection="Username-Password-Authentication",
            locale="en",
            purpose="reset",
            now=clock(),
            ttl=timedelta(hours=1),
        )
    return ticket.value


async def test_check_in_order(database: Database, clock: Clock) -> None:
    codec = TicketCodec(SECRET_KEY)
    checker = Tickets(codec, database, RESET_URL)
    value = await _store(database, codec, clock)
    row = await checker.check(value, clock())
    assert isinstance(row, TicketRow) and row.email == "jane@example.com"
    # Cheap reject, unknown hash, and a row whose MAC another key made: all "unknown".
    assert await checker.check("not a ticket", clock()) == "unknown"
    assert await checker.check(codec.new().value, clock()) == "unknown"
    stranger = Tickets(TicketCodec(SECRET_KEY + "x"), database, RESET_URL)
    assert await stranger.check(value, clock()) == "unknown"
    # Age is checked last: expired only while neither used nor revoked.
    assert await checker.check(value, clock() + timedelta(hours=1)) == "expired"
    async with database.begin() as conn:
        await tickets.void_for_user(conn, "auth0|jane", now=clock(), reason="test")
    assert await checker.check(value, clock()) == "revoked"
    assert await checker.check(value, clock() + timedelta(hours=2)) == "revoked"


async def test_a_used_ticket_says_used(database: Database, clock: Clock) -> None:
    codec = TicketCodec(SECRET_KEY)
    checker = Tickets(codec, database, RESET_URL)
    value = await _store(database, codec, clock)
    row = await checker.find(value)
    assert row is not None
    async with database.begin() as conn:
        assert await tickets.claim(conn, row.id, now=clock(), lease=timedelta(seconds=60))
        assert await tickets.mark_used(conn, row.id, now=clock())
    assert await checker.check(value, clock()) == "used"


def test_the_link_is_built_from_reset_url_alone() -> None:
    codec = TicketCodec(SECRET_KEY)
    ticket = codec.new()
    link = Tickets(codec, None, RESET_URL).link(ticket.id)  # type: ignore[arg-type]
    assert link == RESET_URL.replace("{ticket}", ticket.value)
