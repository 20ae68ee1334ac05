"""The one-time code a reset mail carries beside its link (MAIL_CODES).

A mail scanner may open the link, and a user may read the mail on a phone and
reset on a laptop: the code is typed instead. It is 8 characters from an
alphabet without look-alikes (no 0/O, 1/I/L), shown as `K7QM-3XPA`, accepted
with or without the dash, in any case, with surrounding spaces.

Like the ticket, the code is never stored: it is an HMAC of the ticket's id
under a key derived from SECRET_KEY for this purpose only, made again when the
mail is sent and when a code is presented (compared in constant time). 8 of 31
symbols is about 40 bits, so the code is guarded as well:

    per ticket    MAX_CODE_ATTEMPTS wrong codes void the code (not the link)
    per address   CODE_ATTEMPTS_PER_EMAIL redeems in a sliding window, right or wrong
    once          a redeemed code is spent; a concurrent second redeem gets `unknown`
    with the link a spent, expired or voided ticket's code is worth nothing

A redeem mints a second ticket on the same row (an HMAC of the id under a key of
its own, its hash in `redeem_hash`): the website uses it as it would the link's,
and a confirm with either settles the one row. Every failure answers the same `unknown` after the
same statements, so the answer says nothing of the address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import Connection

from resetrelay.keys import derive
from resetrelay.metrics import Metrics
from resetrelay.reset.confirm import Confirms
from resetrelay.reset.limits import code_redeem_admitted_sync
from resetrelay.reset.outcomes import CodeRedeemed, TicketClosed, TicketOpen
from resetrelay.reset.tickets import Tickets
from resetrelay.settings import Settings
from storage import tickets
from storage.database import Database

log = logging.getLogger("resetrelay.codes")

ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
LENGTH: Final = 8
MAX_CODE_ATTEMPTS: Final = 5
_SHAPE: Final = re.compile(f"[{ALPHABET}]{{{LENGTH}}}")
# Compared against when no ticket could match, so a miss costs the same HMAC.
_NO_TICKET: Final = "no-ticket"


def normalise(text: str) -> str | None:
    """The code `text` stands for (`k7qm-3xpa ` -> `K7QM3XPA`), or None if it cannot
    be one."""
    # ASCII first: str.upper() maps some other letters onto the alphabet (`ß` -> `SS`,
    # U+017F long s -> `S`), and a code is only ever the mail's own symbols.
    if not text.isascii():
        return None
    value = text.strip().upper().replace("-", "").replace(" ", "")
    return value if _SHAPE.fullmatch(value) else None


def grouped(code: str) -> str:
    """As a mail shows it: two groups of four."""
    return f"{code[:4]}-{code[4:]}"


class CodeCodec:
    def __init__(self, secret_key: str) -> None:
        self._key = derive(secret_key, "codes")

    def for_ticket(self, ticket_id: str) -> str:
        """The ticket's code: its id's HMAC, read as a number in base 31 (256 bits
        into 31^8 leaves no bias worth the name)."""
        number = int.from_bytes(
            hmac.new(self._key, ticket_id.encode(), hashlib.sha256).digest(), "big"
        )
        symbols = []
        for _ in range(LENGTH):
            number, digit = divmod(number, len(ALPHABET))
            symbols.append(ALPHABET[digit])
        return "".join(symbols)

    def shown(self, ticket_id: str) -> str:
        """The code as the mail carries it."""
        return grouped(self.for_ticket(ticket_id))

    def matches(self, ticket_id: str, code: str) -> bool:
        # Constant time: timing says nothing of how close a guess was.
        return hmac.compare_digest(self.for_ticket(ticket_id).encode(), code.encode())


@dataclass
class Codes:
    """Redeems codes: `password_reset.redeem_code`."""

    settings: Settings
    db: Database
    tickets: Tickets
    confirms: Confirms
    metrics: Metrics
    now: Callable[[], datetime]
    codec: CodeCodec = field(init=False)
    _rate_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        secret = self.settings.secret_key.reveal()
        self.codec = CodeCodec(secret)
        self._rate_key = derive(secret, "rate-limits")

    async def redeem(self, email: str, code: str) -> CodeRedeemed | TicketClosed:
        """The open ticket `code` was mailed with to `email`, as a fresh ticket, or
        `unknown` (wrong code, no such address, no open ticket, capped: all alike).
        `code` is normalised (`normalise`)."""
        now = self.now()
        enabled = self.settings.mail_codes

        def work(conn: Connection) -> tuple[str, str | None]:
            # The per-address window first, counting every redeem, right or wrong.
            admitted = code_redeem_admitted_sync(
                conn,
                self._rate_key,
                email,
                limit=self.settings.code_attempts_per_email,
                now=now,
            )
            rows = tickets.coded_sync(conn, email, now=now)
            matched = None
            for row in rows:  # every row compared: no early exit to time
                if self.codec.matches(row.id, code) and matched is None:
                    matched = row
            if not rows:
                self.codec.matches(_NO_TICKET, code)
            if not admitted:
                outcome = "capped"
            elif matched is None or not enabled:
                outcome = "wrong"
            elif tickets.redeem_code_sync(
                conn, matched.id, redeem_hash=self._redeem_hash(matched.id), now=now
            ):
                return "redeemed", matched.id
            else:
                return "spent", None  # a concurrent redeem of the same code won
            tickets.miss_code_sync(conn, email, now=now, max_attempts=MAX_CODE_ATTEMPTS)
            return outcome, None

        outcome, ticket_id = await self.db.run(work)
        self.metrics.codes.labels(outcome).inc()
        if outcome == "capped":
            self.metrics.rate_limited.labels("code").inc()
        # Neither the code nor the address, nor the ticket: only what happened.
        log.info("code redeem", extra={"fields": {"outcome": outcome}})
        if ticket_id is None:
            return TicketClosed("unknown")
        value = self.tickets.codec.redeemed_value(ticket_id)
        opened = await self.confirms.verify(value)
        if not isinstance(opened, TicketOpen):  # closed the instant after: as any miss
            return TicketClosed("unknown")
        return CodeRedeemed(opened, value, ticket_id)

    def _redeem_hash(self, ticket_id: str) -> str:
        codec = self.tickets.codec
        return codec.lookup_hash(codec.redeemed_value(ticket_id))
