"""What a completed reset sets in motion, written in the caller's transaction:
the ticket is used, its siblings voided, and the follow-up work queued
(unblock, revoke sessions, mark the address verified, "changed" mail, the
website's `password_reset.completed` event)."""

from __future__ import annotations

from datetime import datetime
from email.utils import make_msgid, parseaddr

from sqlalchemy.ext.asyncio import AsyncConnection

from resetrelay.settings import Settings
from storage import jobs, outbox, tickets
from storage.tickets import TicketRow

UNBLOCK_JOB = "auth0.unblock"
REVOKE_JOB = "auth0.revoke_sessions"
VERIFY_EMAIL_JOB = "auth0.mark_email_verified"
WEBSITE_EVENT_JOB = "website.event"


def new_message_id(settings: Settings) -> str:
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "resetrelay.invalid"
    return make_msgid(domain=domain)


async def after_reset(
    conn: AsyncConnection, settings: Settings, row: TicketRow, *, now: datetime, via_link: bool
) -> bool:
    """Settle a claimed ticket as used; False if it was no longer claimed."""
    if not await tickets.mark_used(conn, row.id, now=now):
        return False
    await tickets.void_for_user(conn, row.user_id, now=now, reason="sibling_used")
    user = {"user_id": row.user_id}
    # Auth0 documents that a block lifts on a password change but not whether a
    # Management API PATCH counts: lift it explicitly (also for non-"blocked" tickets).
    await jobs.enqueue(conn, UNBLOCK_JOB, user, now=now, max_attempts=12)
    if settings.revoke_sessions:
        await jobs.enqueue(conn, REVOKE_JOB, user, now=now, max_attempts=12)
    if settings.mark_email_verified and via_link:
        # A separate PATCH: Auth0 refuses email_verified beside password.
        await jobs.enqueue(conn, VERIFY_EMAIL_JOB, user, now=now, max_attempts=12)
    await outbox.queue(
        conn,
        template="changed",
        recipient=row.email,
        locale=row.locale,
        context={"changed_at": now.isoformat()},
        message_id=new_message_id(settings),
        now=now,
    )
    if settings.website_events_url:
        await jobs.enqueue(
            conn,
            WEBSITE_EVENT_JOB,
            {
                "type": "password_reset.completed",
                "data": {"user_id": row.user_id, "email": row.email, "at": now.isoformat()},
            },
            now=now,
            max_attempts=15,
        )
    return True
