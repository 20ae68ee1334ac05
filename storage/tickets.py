"""Ticket rows: open -> claimed -> used, or revoked; expiry is by time, not by state.

Every transition is a conditional UPDATE whose row count is checked (as in Ory
Kratos' persistence): two confirms of one ticket cannot both claim it, on
SQLite or PostgreSQL. A claim is a lease: if the process dies mid-confirm the
claim lapses at `claimed_until` and the ticket is usable again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from storage.models import Ticket
from storage.sql import table

_tickets = table(Ticket)

OPEN, CLAIMED, USED, REVOKED = "open", "claimed", "used", "revoked"
# A mail's one-time code: open until redeemed once, or void after too many misses.
CODE_OPEN, CODE_REDEEMED, CODE_VOID = "open", "redeemed", "void"


@dataclass(frozen=True)
class TicketRow:
    id: str
    lookup_hash: str
    user_id: str
    email: str
    connection: str
    locale: str
    purpose: str
    state: str
    attempts: int
    created_at: datetime
    expires_at: datetime
    claimed_until: datetime | None
    opened_at: datetime | None = None
    code_state: str | None = None  # None: its mail carries no code
    code_attempts: int = 0

    def status(self, now: datetime) -> str:
        """`valid`, or why not: `expired`, `used`, `revoked`."""
        if self.state == USED:
            return "used"
        if self.state == REVOKED:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "valid"

    def busy(self, now: datetime) -> bool:
        return self.state == CLAIMED and self.claimed_until is not None and self.claimed_until > now


async def lock_user(conn: AsyncConnection, user_id: str) -> None:
    """Serialise ticket issuing for one user until the transaction ends. Under
    PostgreSQL's READ COMMITTED two concurrent issuers would each void only the
    tickets committed before them, leaving two open; an advisory lock orders them.
    SQLite needs nothing: its write transactions are BEGIN IMMEDIATE, one at a time."""
    await conn.run_sync(lock_user_sync, user_id)


def lock_user_sync(conn: Connection, user_id: str) -> None:
    """`lock_user` for `Database.run`."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"resetrelay.tickets:{user_id}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def insert(
    conn: AsyncConnection,
    *,
    ticket_id: str,
    lookup_hash: str,
    user_id: str,
    email: str,
    connection: str,
    locale: str,
    purpose: str,
    now: datetime,
    ttl: timedelta,
    code: bool = False,
) -> None:
    """Store a new open ticket and void the user's older open ones (only the newest link
    works). `code`: its mail carries a one-time code too."""
    await conn.run_sync(
        lambda sync: insert_sync(
            sync,
            ticket_id=ticket_id,
            lookup_hash=lookup_hash,
            user_id=user_id,
            email=email,
            connection=connection,
            locale=locale,
            purpose=purpose,
            now=now,
            ttl=ttl,
            code=code,
        )
    )


def insert_sync(
    conn: Connection,
    *,
    ticket_id: str,
    lookup_hash: str,
    user_id: str,
    email: str,
    connection: str,
    locale: str,
    purpose: str,
    now: datetime,
    ttl: timedelta,
    code: bool = False,
) -> None:
    """`insert` for `Database.run` (the worker's issue: one thread hop on SQLite)."""
    lock_user_sync(conn, user_id)
    void_for_user_sync(conn, user_id, now=now, reason="superseded")
    conn.execute(
        _INSERT,
        {
            "id": ticket_id,
            "lookup_hash": lookup_hash,
            "user_id": user_id,
            "email": email,
            "connection": connection,
            "locale": locale,
            "purpose": purpose,
            "state": OPEN,
            "attempts": 0,
            "created_at": now,
            "expires_at": now + ttl,
            "code_state": CODE_OPEN if code else None,
            "code_attempts": 0,
        },
    )


# Built once: issuing is every reset job's write, and building a statement (and its
# cache key) cost more than SQLite takes to run it.
_INSERT = _tickets.insert()


async def by_hash(conn: AsyncConnection, lookup_hash: str) -> TicketRow | None:
    """The row whose link, or whose ticket minted at a code's redeem, hashes to this."""
    row = (
        await conn.execute(
            select(_tickets).where(
                or_(_tickets.c.lookup_hash == lookup_hash, _tickets.c.redeem_hash == lookup_hash)
            )
        )
    ).first()
    return None if row is None else _row(row)


async def by_id(conn: AsyncConnection, ticket_id: str) -> TicketRow | None:
    row = (await conn.execute(select(_tickets).where(_tickets.c.id == ticket_id))).first()
    return None if row is None else _row(row)


def by_ids_sync(conn: Connection, ticket_ids: Collection[str]) -> dict[str, TicketRow]:
    """The rows that exist among `ticket_ids`, by id; for `Database.run_read`."""
    if not ticket_ids:
        return {}
    rows = conn.execute(_BY_IDS, {"ids": list(ticket_ids)})
    return {row.id: _row(row) for row in rows}


_BY_IDS = select(_tickets).where(_tickets.c.id.in_(bindparam("ids", expanding=True)))


def _row(row: Any) -> TicketRow:
    return TicketRow(
        id=row.id,
        lookup_hash=row.lookup_hash,
        user_id=row.user_id,
        email=row.email,
        connection=row.connection,
        locale=row.locale,
        purpose=row.purpose,
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        expires_at=row.expires_at,
        claimed_until=row.claimed_until,
        opened_at=row.opened_at,
        code_state=row.code_state,
        code_attempts=row.code_attempts,
    )


def _usable(now: datetime) -> Any:
    # Open, or claimed by a confirm whose lease ran out; and not expired.
    return and_(
        _tickets.c.expires_at > now,
        or_(
            _tickets.c.state == OPEN,
            and_(_tickets.c.state == CLAIMED, _tickets.c.claimed_until <= now),
        ),
    )


async def claim(conn: AsyncConnection, ticket_id: str, *, now: datetime, lease: timedelta) -> bool:
    result = await conn.execute(
        update(_tickets)
        .where(_tickets.c.id == ticket_id, _usable(now))
        .values(state=CLAIMED, claimed_until=now + lease)
    )
    return result.rowcount == 1


async def release(
    conn: AsyncConnection, ticket_id: str, *, count_attempt: bool, max_attempts: int
) -> str:
    """Give a claimed ticket back; a rejected password counts as an attempt, and the
    `max_attempts`-th rejection revokes the ticket. Returns the new state."""
    row = (
        await conn.execute(
            select(_tickets.c.attempts).where(
                _tickets.c.id == ticket_id, _tickets.c.state == CLAIMED
            )
        )
    ).first()
    if row is None:
        return "gone"
    attempts = row.attempts + (1 if count_attempt else 0)
    state, reason = (REVOKED, "too_many_attempts") if attempts >= max_attempts else (OPEN, None)
    await conn.execute(
        update(_tickets)
        .where(_tickets.c.id == ticket_id, _tickets.c.state == CLAIMED)
        .values(state=state, attempts=attempts, claimed_until=None, revoked_reason=reason)
    )
    return state


async def mark_used(conn: AsyncConnection, ticket_id: str, *, now: datetime) -> bool:
    result = await conn.execute(
        update(_tickets)
        .where(_tickets.c.id == ticket_id, _tickets.c.state == CLAIMED)
        .values(state=USED, finished_at=now, claimed_until=None)
    )
    return result.rowcount == 1


async def void_for_user(
    conn: AsyncConnection,
    user_id: str,
    *,
    now: datetime,
    reason: str,
    created_before: datetime | None = None,
) -> int:
    """Revoke the user's open tickets (and stale claims). `created_before` keeps tickets
    issued after an event, so a late or replayed event cannot void a newer ticket."""
    return await conn.run_sync(
        lambda sync: void_for_user_sync(
            sync, user_id, now=now, reason=reason, created_before=created_before
        )
    )


def void_for_user_sync(
    conn: Connection,
    user_id: str,
    *,
    now: datetime,
    reason: str,
    created_before: datetime | None = None,
) -> int:
    """`void_for_user` for `Database.run`."""
    params = {"owner": user_id, "now": now, "reason": reason, "before": created_before}
    return int(conn.execute(_VOIDS[created_before is not None], params).rowcount)


def _void_statement(*, before: bool) -> Any:
    now: BindParameter[datetime] = bindparam("now")
    query = update(_tickets).where(
        _tickets.c.user_id == bindparam("owner"),  # an UPDATE's parameter: not a column name
        or_(
            _tickets.c.state == OPEN,
            and_(_tickets.c.state == CLAIMED, _tickets.c.claimed_until <= now),
        ),
    )
    if before:
        query = query.where(_tickets.c.created_at < bindparam("before"))
    return query.values(
        state=REVOKED, finished_at=now, claimed_until=None, revoked_reason=bindparam("reason")
    )


_VOIDS = {before: _void_statement(before=before) for before in (False, True)}


async def issued_since(
    conn: AsyncConnection, user_id: str, *, purpose: str, since: datetime
) -> bool:
    """Whether the user got a ticket of this purpose since `since` (mail flood guard)."""
    row = (
        await conn.execute(
            select(_tickets.c.id)
            .where(
                _tickets.c.user_id == user_id,
                _tickets.c.purpose == purpose,
                _tickets.c.created_at >= since,
            )
            .limit(1)
        )
    ).first()
    return row is not None


async def mark_opened(conn: AsyncConnection, ticket_id: str, *, now: datetime) -> bool:
    """Note the first time the link was opened; True only for that first time, so the
    funnel counts a ticket once however often its page is reloaded or scanned."""
    result = await conn.execute(
        update(_tickets)
        .where(_tickets.c.id == ticket_id, _tickets.c.opened_at.is_(None))
        .values(opened_at=now)
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class TicketHistory:
    """A ticket as an operator sees it: everything but its hash."""

    id: str
    user_id: str
    email: str
    purpose: str
    locale: str
    state: str
    attempts: int
    created_at: datetime
    expires_at: datetime
    opened_at: datetime | None
    finished_at: datetime | None
    revoked_reason: str | None


async def for_person(
    conn: AsyncConnection, *, emails: Collection[str] = (), user_ids: Collection[str] = ()
) -> list[TicketHistory]:
    """Every ticket of these users or mailed to these addresses, oldest first."""
    conditions = []
    if emails:
        conditions.append(func.lower(_tickets.c.email).in_([e.lower() for e in emails]))
    if user_ids:
        conditions.append(_tickets.c.user_id.in_(list(user_ids)))
    if not conditions:
        return []
    columns = [getattr(_tickets.c, name) for name in TicketHistory.__dataclass_fields__]
    rows = await conn.execute(
        select(*columns).where(or_(*conditions)).order_by(_tickets.c.created_at, _tickets.c.id)
    )
    return [TicketHistory(**row._mapping) for row in rows]


async def open_user_ids(conn: AsyncConnection, email: str, *, now: datetime) -> list[str]:
    """The users who hold a ticket mailed to `email` that could still be used."""
    rows = await conn.execute(
        select(_tickets.c.user_id)
        .where(func.lower(_tickets.c.email) == email.lower(), _usable(now))
        .distinct()
        .order_by(_tickets.c.user_id)
    )
    return [row.user_id for row in rows]


# -- one-time codes -----------------------------------------------------------------


def _code_open(email: str, now: datetime) -> Any:
    # A code works only while its ticket does: open (or a lapsed claim), unexpired.
    return and_(_tickets.c.email == email, _tickets.c.code_state == CODE_OPEN, _usable(now))


def coded_sync(conn: Connection, email: str, *, now: datetime) -> list[TicketRow]:
    """The usable tickets mailed to `email` whose code is still open (one per user:
    a new ticket voids the user's older ones)."""
    rows = conn.execute(select(_tickets).where(_code_open(email, now)).order_by(_tickets.c.id))
    return [_row(row) for row in rows]


def redeem_code_sync(conn: Connection, ticket_id: str, *, redeem_hash: str, now: datetime) -> bool:
    """Spend the ticket's code, minting its second ticket; False if the code is no longer
    open (a concurrent redeem spent it first) or the ticket stopped being usable."""
    result = conn.execute(
        update(_tickets)
        .where(_tickets.c.id == ticket_id, _tickets.c.code_state == CODE_OPEN, _usable(now))
        .values(code_state=CODE_REDEEMED, redeem_hash=redeem_hash)
    )
    return result.rowcount == 1


def miss_code_sync(conn: Connection, email: str, *, now: datetime, max_attempts: int) -> None:
    """Count a wrong code against every open code mailed to `email`; the
    `max_attempts`-th miss voids the code (the link still works). The same two
    statements run whether or not such a ticket exists."""
    conn.execute(
        update(_tickets)
        .where(_code_open(email, now))
        .values(code_attempts=_tickets.c.code_attempts + 1)
    )
    conn.execute(
        update(_tickets)
        .where(_code_open(email, now), _tickets.c.code_attempts >= max_attempts)
        .values(code_state=CODE_VOID)
    )
