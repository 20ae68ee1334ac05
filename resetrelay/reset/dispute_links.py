"""The "Wasn't you?" link of a "password changed" mail: made, found, and built.

A dispute token is made as a ticket is (`reset.tickets.TicketCodec`): 32 bytes
from `secrets` are its id, the token is `base64url(HMAC-SHA256(k, id))` (256
bits, URL-safe) under a key derived from SECRET_KEY for disputes only, and the
database keeps the id and `sha256(token)`. The outbox keeps only the id; the
courier derives the link when it sends. A ticket is never a dispute token and
the other way round: different tables, different keys.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncConnection

from resetrelay.reset.tickets import TicketCodec
from resetrelay.settings import Settings
from storage import disputes
from storage.database import Database
from storage.disputes import DisputeRow

PURPOSE = "disputes"


def codec_for(settings: Settings) -> TicketCodec:
    return TicketCodec(settings.secret_key.reveal(), PURPOSE)


async def open_link(
    conn: AsyncConnection,
    codec: TicketCodec,
    settings: Settings,
    *,
    user_id: str,
    email: str,
    connection: str,
    locale: str,
    changed_at: datetime,
    now: datetime,
) -> str:
    """Store a new dispute link in the caller's transaction; returns its id (the
    token is neither stored nor returned)."""
    new = codec.new()
    await disputes.insert(
        conn,
        dispute_id=new.id,
        lookup_hash=new.lookup_hash,
        user_id=user_id,
        email=email,
        connection=connection,
        locale=locale,
        changed_at=changed_at,
        now=now,
        ttl=timedelta(seconds=settings.dispute_ttl_seconds),
    )
    return new.id


class DisputeLinks:
    """Finds presented dispute tokens; builds the link a "changed" mail carries."""

    def __init__(self, codec: TicketCodec, db: Database, dispute_url: str) -> None:
        self.codec = codec
        self._db = db
        self._dispute_url = dispute_url

    async def find(self, value: str) -> DisputeRow | None:
        """The dispute `value` stands for, whatever its state; None if none."""
        # Cheap reject, lookup by hash, then the constant-time compare (as tickets).
        if not self.codec.well_formed(value):
            return None
        async with self._db.read() as conn:
            row = await disputes.by_hash(conn, self.codec.lookup_hash(value))
        # Only our key could have made this value for this id: a row written by
        # someone with database access but not the key never matches.
        if row is None or not self.codec.matches(row.id, value):
            return None
        return row

    def link(self, dispute_id: str) -> str:
        """DISPUTE_URL with the token, never a request's Host header."""
        value = self.codec.value_for(dispute_id)
        return self._dispute_url.replace("{token}", quote(value, safe=""))
