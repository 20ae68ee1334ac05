"""Standard Webhooks v1 signatures (https://www.standardwebhooks.com/).

`webhook-signature` holds space-separated `v1,<base64 HMAC-SHA256>` entries
over `"{webhook-id}.{webhook-timestamp}.{raw body}"`; any one valid entry under
any configured secret passes, which is how secrets rotate without downtime.

We verify here rather than through the reference `standardwebhooks` package:
that one fixes the tolerance at five minutes, reads the wall clock, and
decodes the body as UTF-8 before checking it, so hostile input raises errors
that are not verification failures. The tests check both directions against
it, so the two stay interoperable.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = ["InvalidSignature", "new_secret", "sign", "verify"]

_ID: Final = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces or dots games
_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}")
_MAX_SIGNATURES: Final = 16


class InvalidSignature(Exception):
    """Any verification failure. The reason is for our logs, never for the caller:
    every cause gets the same 401 body, so an attacker learns nothing from it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mac(secret: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    # hmac.digest: the one-shot C implementation, the same HMAC as hmac.new(...).digest().
    return hmac.digest(secret, f"{msg_id}.{timestamp}.".encode() + body, "sha256")


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    keys: Sequence[bytes],
    now: float,
    tolerance: int,
) -> tuple[str, int]:
    """Return `(webhook-id, timestamp)` of a correctly signed request, else raise."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    # Cheap rejects first: malformed headers cannot carry a valid signature.
    if not _ID.fullmatch(msg_id):
        raise InvalidSignature("missing or malformed webhook-id")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise InvalidSignature("missing or malformed webhook-timestamp")
    if not signatures or len(signatures) > 4096:
        raise InvalidSignature("missing or oversized webhook-signature")
    candidates: list[bytes] = []
    for entry in signatures.split(" ")[:_MAX_SIGNATURES]:
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            candidates.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not candidates:
        raise InvalidSignature("no v1 signature")
    # Compare every candidate against every secret in constant time; no early exit
    # on a match, so timing does not reveal which secret or which entry matched.
    matched = False
    for secret in keys:
        expected = _mac(secret, msg_id, timestamp, body)
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise InvalidSignature("no matching signature")
    # Age last (Django's order): a replay outside the window fails even when signed.
    sent = int(timestamp)
    if abs(now - sent) > tolerance:
        raise InvalidSignature("timestamp outside tolerance")
    return msg_id, sent


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers a sender attaches (used by `resetrelay sign` and outbound events)."""
    signature = base64.b64encode(_mac(secret, msg_id, str(timestamp), body)).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
