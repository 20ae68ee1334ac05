"""Reset tickets: unguessable, single use, and never stored.

A ticket is `base64url(HMAC-SHA256(k, id))` where `id` is 32 bytes from
`secrets` and `k` is derived from SECRET_KEY for this purpose only. The
database keeps `id` and `sha256(ticket)`: a dump of it (or of a queued mail,
which holds the id) yields no usable link without the key, and rotating
SECRET_KEY voids every open ticket. Lookup is by the hash; the HMAC is then
recomputed and compared in constant time, so a row written by someone with
database access but not the key never matches.

`Tickets.check` is the one check of a presented ticket, in Django's order:
cheap reject, lookup, constant-time compare, then state and age.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import quote

from resetrelay.keys import derive
from resetrelay.reset.outcomes import Reason
from storage import tickets
from storage.database import Database
from storage.tickets import TicketRow

_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class NewTicket:
    id: str
    value: str = ""
    lookup_hash: str = ""

    def __repr__(self) -> str:  # the value is a credential
        return f"NewTicket(id={self.id!r})"


class TicketCodec:
    """`purpose` keys the HMAC: a dispute link's codec (`reset.dispute_links`) uses its
    own, so a value made for one can never be presented as the other."""

    def __init__(self, secret_key: str, purpose: str = "tickets") -> None:
        self._key = derive(secret_key, purpose)
        # The ticket a redeemed mail code stands for (reset.codes): the same id, its
        # own key, so it is a second value that neither reveals nor equals the link's.
        self._redeemed_key = derive(secret_key, f"{purpose}.redeemed")

    def new(self) -> NewTicket:
        ticket_id = secrets.token_urlsafe(32)  # 256 bits
        value = self.value_for(ticket_id)
        return NewTicket(ticket_id, value, self.lookup_hash(value))

    def value_for(self, ticket_id: str) -> str:
        mac = hmac.new(self._key, ticket_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def redeemed_value(self, ticket_id: str) -> str:
        """The ticket minted when the ticket's mail code was redeemed."""
        mac = hmac.new(self._redeemed_key, ticket_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    @staticmethod
    def well_formed(value: str) -> bool:
        # Cheap reject first: anything not shaped like a ticket cannot be one.
        return _SHAPE.fullmatch(value) is not None

    @staticmethod
    def lookup_hash(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    def matches(self, ticket_id: str, value: str, *, redeemed: bool = False) -> bool:
        # Constant time, so response timing says nothing about how close a guess was.
        made = self.redeemed_value(ticket_id) if redeemed else self.value_for(ticket_id)
        return hmac.compare_digest(made, value)


class Tickets:
    """Finds and checks presented tickets; builds the link a mail carries."""

    def __init__(self, codec: TicketCodec, db: Database, reset_url: str) -> None:
        self.codec = codec
        self._db = db
        self._reset_url = reset_url

    async def find(self, value: str) -> TicketRow | None:
        """The ticket `value` stands for, whatever its state; None if none."""
        # 1. Cheap reject: not shaped like a ticket.
        if not self.codec.well_formed(value):
            return None
        # 2. Lookup by hash: the database never holds the value itself.
        digest = self.codec.lookup_hash(value)
        async with self._db.read() as conn:
            row = await tickets.by_hash(conn, digest)
        if row is None:
            return None
        # The link's ticket, or the one minted when the mail's code was redeemed.
        redeemed = row.lookup_hash != digest
        if redeemed and row.code_state != tickets.CODE_REDEEMED:
            return None
        # 3. Constant time: only our key could have made this value for this id.
        if not self.codec.matches(row.id, value, redeemed=redeemed):
            return None
        return row

    async def check(self, value: str, now: datetime) -> TicketRow | Reason:
        """The open ticket `value` stands for, or why it cannot be used."""
        row = await self.find(value)
        if row is None:
            return "unknown"
        # 4. State, then age (TicketRow.status): used and revoked outrank expired.
        status = row.status(now)
        if status == "valid":
            return row
        return status  # type: ignore[return-value]

    def link(self, ticket_id: str) -> str:
        """The link in a mail: RESET_URL with the ticket, never a request's Host header.
        Derived when the mail is sent; it exists only in memory and in the mail."""
        value = self.codec.value_for(ticket_id)
        return self._reset_url.replace("{ticket}", quote(value, safe=""))
