"""Purpose-bound keys derived from SECRET_KEY.

As in Django's `salted_hmac`: each use of HMAC gets its own key, derived from
the server key and a purpose string, so a MAC made for one purpose can never
be presented as another (a rate-limit key is no ticket).
"""

from __future__ import annotations

import hashlib
import hmac


def derive(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), b"resetrelay/" + purpose.encode(), hashlib.sha256).digest()


def keyed_digest(key: bytes, value: str) -> str:
    """Hex HMAC-SHA256 of `value`: a stable pseudonym that cannot be reversed without the key."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
