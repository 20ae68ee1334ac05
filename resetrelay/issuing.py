"""Issuing a ticket and queueing its mail, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncConnection

from resetrelay.cleanup import new_message_id
from resetrelay.settings import Settings
from resetrelay.tickets import TicketCodec
from storage import outbox, tickets

# Which mail announces a ticket of each purpose.
TEMPLATE_FOR_PURPOSE = {"reset": "reset", "breached": "breached", "blocked": "blocked"}


async def issue(
    conn: AsyncConnection,
    settings: Settings,
    codec: TicketCodec,
    *,
    user_id: str,
    email: str,
    connection: str,
    locale: str,
    purpose: str,
    now: datetime,
) -> str:
    """Store a new ticket (voiding the user's older ones) and queue its mail; returns the
    ticket id. The ticket value itself is neither stored nor returned."""
    ticket = codec.new()
    await tickets.insert(
        conn,
        ticket_id=ticket.id,
        lookup_hash=ticket.lookup_hash,
        user_id=user_id,
        email=email,
        connection=connection,
        locale=locale,
        purpose=purpose,
        now=now,
        ttl=timedelta(seconds=settings.ticket_ttl_seconds),
    )
    await outbox.queue(
        conn,
        template=TEMPLATE_FOR_PURPOSE[purpose],
        recipient=email,
        locale=locale,
        context={},
        ticket_id=ticket.id,
        message_id=new_message_id(settings),
        now=now,
    )
    return ticket.id


def reset_link(settings: Settings, ticket_value: str) -> str:
    """The link in a mail: RESET_URL with the ticket, never a request's Host header."""
    return settings.reset_url.replace("{ticket}", quote(ticket_value, safe=""))
