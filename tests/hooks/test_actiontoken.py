from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from hooks.actiontoken import InvalidActionToken, verify

SECRET = "action-secret-0123456789-abcdefghijklmnop"
ISSUER = "https://acme.eu.auth0.com/"
BODY = b'{"type":"post_change_password","user":{"user_id":"auth0|1"}}'
NOW = 1_800_000_000


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": "resetrelay",
        "iat": NOW,
        "exp": NOW + 60,
        "jti": "j1",
        "body_sha256": hashlib.sha256(BODY).hexdigest(),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(**overrides: object) -> str:
    return jwt.encode(claims(**overrides), SECRET, algorithm="HS256")


def check(tok: str, body: bytes = BODY, now: float = NOW) -> None:
    verify(tok, body, secret=SECRET, issuer=ISSUER, now=now)


def test_good_token_passes() -> None:
    assert verify(token(), BODY, secret=SECRET, issuer=ISSUER, now=NOW).jti == "j1"


@pytest.mark.parametrize(
    "tok",
    [
        "",
        "a.b",
        "a.b.c",
        "x" * 5000,
        token(aud="someone-else"),
        token(iss="https://evil.example/"),
        token(aud=None),
        token(jti=None),
        token(iat=None),
        token(body_sha256=None),
        token(body_sha256="00" * 32),
        token(exp=NOW - 60, iat=NOW - 120),  # expired
        token(iat=NOW + 600, exp=NOW + 660),  # from the future
        token(exp=NOW + 3600),  # lifetime over five minutes
        jwt.encode(claims(), "wrong-secret-0123456789-abcdefghijklmnop", algorithm="HS256"),
        jwt.encode(claims(), SECRET, algorithm="HS512"),
    ],
)
def test_bad_tokens_are_rejected(tok: str) -> None:
    with pytest.raises(InvalidActionToken):
        check(tok)


def test_tampered_body_is_rejected() -> None:
    with pytest.raises(InvalidActionToken, match="body"):
        check(token(), BODY.replace(b"auth0|1", b"auth0|2"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_alg_none_is_rejected() -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims()).encode())
    with pytest.raises(InvalidActionToken):
        check(f"{header}.{payload}.")


def test_rs256_tokens_are_rejected() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidActionToken, match="HS256"):
        check(jwt.encode(claims(), pem.decode(), algorithm="RS256"))


def test_hs256_signed_with_a_public_key_string_is_just_a_wrong_secret() -> None:
    # The classic confusion attack signs HS256 with the server's public key; we have no
    # public key, and any key but the shared secret fails the signature.
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    import hmac as _hmac

    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims()).encode())
    signature = _b64(
        _hmac.new(pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    )
    with pytest.raises(InvalidActionToken):
        check(f"{header}.{payload}.{signature}")
