"""Verifying the JWTs that our Auth0 Action sends (docs/routes.md, `/hooks/auth0/actions`).

python-jose checks the signature, `aud` and `iss`, with the algorithm pinned to
HS256: a token that says `none`, or RS256 signed with anything, is refused
before its claims are read. Times are checked here against our injected clock
(jose reads the wall clock): `iat` not in the future, `exp` not past, and a
lifetime of at most five minutes, so a leaked token is useless soon. The
`body_sha256` claim binds the token to the exact bytes it came with.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Final

from jose import jwt
from jose.exceptions import JOSEError

from hooks.inputs import storable

MAX_LIFETIME: Final = 300
LEEWAY: Final = 30
AUDIENCE: Final = "resetrelay"


class InvalidActionToken(Exception):
    """Any failure; the reason goes to our logs, callers get one 401 body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ActionClaims:
    jti: str
    iat: int
    exp: int


def verify(token: str, body: bytes, *, secret: str, issuer: str, now: float) -> ActionClaims:
    # Cheap reject: a JWS compact token is three dot-separated parts of bounded size.
    if token.count(".") != 2 or len(token) > 4096:
        raise InvalidActionToken("not a compact JWS")
    try:
        if jwt.get_unverified_header(token).get("alg") != "HS256":
            raise InvalidActionToken("algorithm is not HS256")
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=issuer,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require_aud": True,
                "require_iss": True,
            },
        )
    except JOSEError as exc:
        raise InvalidActionToken(f"jose: {type(exc).__name__}") from None
    iat, exp, jti, digest = (claims.get(k) for k in ("iat", "exp", "jti", "body_sha256"))
    if not isinstance(iat, int) or not isinstance(exp, int):
        raise InvalidActionToken("iat and exp are required integers")
    if not isinstance(jti, str) or not 0 < len(jti) <= 255:
        raise InvalidActionToken("jti is required")
    if not storable(jti):  # NUL or a lone surrogate would fail the replay-check INSERT: a 5xx
        raise InvalidActionToken("jti is not storable text")
    if not isinstance(digest, str):
        raise InvalidActionToken("body_sha256 is required")
    # Constant time: the digest is not secret, but there is no reason to leak a prefix.
    if not hmac.compare_digest(digest.lower(), hashlib.sha256(body).hexdigest()):
        raise InvalidActionToken("body does not match body_sha256")
    # Age last.
    if exp - iat > MAX_LIFETIME:
        raise InvalidActionToken("token lifetime over five minutes")
    if iat > now + LEEWAY:
        raise InvalidActionToken("issued in the future")
    if exp <= now - LEEWAY:
        raise InvalidActionToken("expired")
    return ActionClaims(jti=jti, iat=iat, exp=exp)
