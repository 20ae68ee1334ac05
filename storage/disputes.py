"""Dispute rows: open -> used; expiry is by time, not by state.

One row per "Wasn't you?" link of a "password changed" mail. The row holds the
link's id and `sha256(token)`, never the token. `use` is a conditional UPDATE
whose row count is checked, so of two concurrent confirms exactly one disputes.
`lifted_at` is set once, by the first completed reset after a confirmed dispute,
in the transaction that queues the PATCH lifting the dispute's block.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Dispute
from storage.sql import table

_disputes = table(Dispute)

OPEN, USED = "open", "used"


@dataclass(frozen=True)
class DisputeRow:
    id: str
    lookup_hash: str
    user_id: str
    email: str
    connection: str
    locale: str
    state: str
    changed_at: datetime
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    lifted_at: datetime | None

    def status(self, now: datetime) -> str:
        """`valid`, or why not: `used`, `expired` (used outranks expired)."""
        if self.state == USED:
            return "used"
        if self.expires_at <= now:
            return "expired"
        return "valid"


async def insert(
    conn: AsyncConnection,
    *,
    dispute_id: str,
    lookup_hash: str,
    user_id: str,
    email: str,
    connection: str,
    locale: str,
    changed_at: datetime,
    now: datetime,
    ttl: timedelta,
) -> None:
    await conn.execute(
        _disputes.insert().values(
            id=dispute_id,
            lookup_hash=lookup_hash,
            user_id=user_id,
            email=email,
            connection=connection,
            locale=locale,
            state=OPEN,
            changed_at=changed_at,
            created_at=now,
            expires_at=now + ttl,
        )
    )


async def by_hash(conn: AsyncConnection, lookup_hash: str) -> DisputeRow | None:
    row = (
        await conn.execute(select(_disputes).where(_disputes.c.lookup_hash == lookup_hash))
    ).first()
    return None if row is None else _row(row)


async def by_id(conn: AsyncConnection, dispute_id: str) -> DisputeRow | None:
    row = (await conn.execute(select(_disputes).where(_disputes.c.id == dispute_id))).first()
    return None if row is None else _row(row)


def _row(row: Any) -> DisputeRow:
    return DisputeRow(**{name: getattr(row, name) for name in DisputeRow.__dataclass_fields__})


async def use(conn: AsyncConnection, dispute_id: str, *, now: datetime) -> bool:
    """Spend an open, unexpired link; False if it was used (or expired) already."""
    result = await conn.execute(
        update(_disputes)
        .where(
            _disputes.c.id == dispute_id,
            _disputes.c.state == OPEN,
            _disputes.c.expires_at > now,
        )
        .values(state=USED, used_at=now)
    )
    return result.rowcount == 1


async def lift_pending(
    conn: AsyncConnection, user_id: str, *, issued_at: datetime, now: datetime
) -> int:
    """Mark the user's confirmed disputes whose block is still up, and which were
    confirmed no later than `issued_at` (when the completed reset's link was made), as
    lifted; the count says whether a lift must be queued (non-zero) in the same
    transaction."""
    result = await conn.execute(
        update(_disputes)
        .where(
            _disputes.c.user_id == user_id,
            _disputes.c.state == USED,
            _disputes.c.lifted_at.is_(None),
            # Only a link made at or after the dispute lifts it: one made before may be
            # the intruder's, claimed when the dispute came (a dispute voids open links,
            # not one whose confirm is in flight) and settled after it.
            _disputes.c.used_at <= issued_at,
        )
        .values(lifted_at=now)
    )
    return result.rowcount


async def confirmed_after(conn: AsyncConnection, user_id: str, after: datetime) -> datetime | None:
    """When the user's first dispute confirmed after `after` was confirmed; None if none."""
    found: datetime | None = (
        await conn.execute(
            select(func.min(_disputes.c.used_at)).where(
                _disputes.c.user_id == user_id,
                _disputes.c.state == USED,
                _disputes.c.used_at > after,
            )
        )
    ).scalar_one()
    return found


async def lifted_since(conn: AsyncConnection, dispute_id: str) -> bool:
    """Whether a completed reset already lifted this dispute's block (the block job
    then has nothing left to do: blocking now would lock the owner out again)."""
    row = (
        await conn.execute(select(_disputes.c.lifted_at).where(_disputes.c.id == dispute_id))
    ).first()
    return row is not None and row.lifted_at is not None
