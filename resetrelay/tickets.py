"""Reset tickets: unguessable, single use, and never stored.

A ticket is `base64url(HMAC-SHA256(k, id))` where `id` is 32 bytes from
`secrets` and `k` is derived from SECRET_KEY for this purpose only. The
database keeps `id` and `sha256(ticket)`: a dump of it (or of a queued mail,
which holds the id) yields no usable link without the key, and rotating
SECRET_KEY voids every open ticket. Lookup is by the hash; the HMAC is then
recomputed and compared in constant time, so a row written by someone with
database access but not the key never matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from resetrelay.keys import derive

_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class NewTicket:
    id: str
    value: str = ""
    lookup_hash: str = ""

    def __repr__(self) -> str:  # the value is a credential
        return f"NewTicket(id={self.id!r})"


class TicketCodec:
    def __init__(self, secret_key: str) -> None:
        self._key = derive(secret_key, "tickets")

    def new(self) -> NewTicket:
        ticket_id = secrets.token_urlsafe(32)  # 256 bits
        value = self.value_for(ticket_id)
        return NewTicket(ticket_id, value, self.lookup_hash(value))

    def value_for(self, ticket_id: str) -> str:
        mac = hmac.new(self._key, ticket_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    @staticmethod
    def well_formed(value: str) -> bool:
        # Cheap reject first: anything not shaped like a ticket cannot be one.
        return _SHAPE.fullmatch(value) is not None

    @staticmethod
    def lookup_hash(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    def matches(self, ticket_id: str, value: str) -> bool:
        # Constant time, so response timing says nothing about how close a guess was.
        return hmac.compare_digest(self.value_for(ticket_id), value)
