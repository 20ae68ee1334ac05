"""`resetrelay tickets revoke`: void one person's open tickets now (a support call,
a suspected mailbox takeover). Their links then verify as `revoked`, and mails of
theirs still in the outbox are not sent (the courier checks the ticket first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from resetrelay.audit import Operator, Subjects
from storage import audit, tickets
from storage.database import Database

REASON = "operator"  # the tickets' revoked_reason; the operator's words go to the audit line
ACTION = "tickets.revoke"


@dataclass(frozen=True)
class Revoked:
    count: int
    user_ids: list[str]


async def revoke(
    db: Database,
    subjects: Subjects,
    operator: Operator,
    *,
    now: datetime,
    email: str | None = None,
    user_id: str | None = None,
    reason: str | None = None,
) -> Revoked:
    """Revoke the open tickets of the user (or of every user holding an open ticket
    mailed to the address), with one audit line, in one transaction."""
    address = email.strip().lower() if email else None
    async with db.begin() as conn:
        if user_id:
            user_ids = [user_id]
        elif address:
            user_ids = await tickets.open_user_ids(conn, address, now=now)
        else:
            raise ValueError("revoke needs an address or a user id")
        count = 0
        for uid in user_ids:
            # The same lock an issuer takes: a ticket issued concurrently is either
            # voided here or issued after this commit, never half-seen.
            await tickets.lock_user(conn, uid)
            count += await tickets.void_for_user(conn, uid, now=now, reason=REASON)
        await audit.record(
            conn,
            at=now,
            actor=operator.actor,
            host=operator.host,
            action=ACTION,
            rows=count,
            subject=subjects.email(address) if address else subjects.user(user_id or ""),
            detail=(reason or "").strip()[:500] or None,
        )
    return Revoked(count, user_ids)
