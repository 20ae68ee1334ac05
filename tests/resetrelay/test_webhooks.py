from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks

from resetrelay.webhooks import InvalidSignature, new_secret, sign, verify

KEY = b"0123456789abcdef0123456789abcdef"
OLD_KEY = b"fedcba9876543210fedcba9876543210"
BODY = b'{"type":"password_reset.requested","data":{"email":"a@b.co"}}'
NOW = 1_800_000_000


def check(
    headers: dict[str, str],
    body: bytes = BODY,
    *,
    keys: tuple[bytes, ...] = (KEY,),
    now: float = NOW,
) -> tuple[str, int]:
    return verify(headers, body, keys=keys, now=now, tolerance=300)


def test_valid_signature_passes() -> None:
    assert check(sign(KEY, "msg_1", NOW, BODY)) == ("msg_1", NOW)


def test_tampered_body_fails() -> None:
    with pytest.raises(InvalidSignature, match="no matching"):
        check(sign(KEY, "msg_1", NOW, BODY), BODY.replace(b"a@b.co", b"x@b.co"))


def test_tampered_id_or_timestamp_fails() -> None:
    headers = sign(KEY, "msg_1", NOW, BODY)
    with pytest.raises(InvalidSignature):
        check({**headers, "webhook-id": "msg_2"})
    with pytest.raises(InvalidSignature):
        check({**headers, "webhook-timestamp": str(NOW - 1)})


def test_wrong_secret_fails() -> None:
    with pytest.raises(InvalidSignature):
        check(sign(OLD_KEY, "msg_1", NOW, BODY))


def test_rotation_accepts_either_secret() -> None:
    assert check(sign(KEY, "m", NOW, BODY), keys=(KEY, OLD_KEY))[0] == "m"
    assert check(sign(OLD_KEY, "m", NOW, BODY), keys=(KEY, OLD_KEY))[0] == "m"


def test_any_one_of_several_signatures_passes() -> None:
    good = sign(KEY, "m", NOW, BODY)["webhook-signature"]
    bad = "v1," + base64.b64encode(b"x" * 32).decode()
    headers = {**sign(KEY, "m", NOW, BODY), "webhook-signature": f"{bad} v2,abc {good}"}
    assert check(headers)[0] == "m"


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 10**9])
def test_timestamp_outside_tolerance_fails(offset: int) -> None:
    with pytest.raises(InvalidSignature, match="tolerance"):
        check(sign(KEY, "m", NOW + offset, BODY))


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_inside_tolerance_passes(offset: int) -> None:
    check(sign(KEY, "m", NOW + offset, BODY))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": "m", "webhook-timestamp": str(NOW)},
        {"webhook-id": "", "webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": "1.5e9", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v1,%%%"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v1"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "garbage"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v1," * 5000},
        {"webhook-id": "a b", "webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"},
        {"webhook-id": "x" * 300, "webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m\u00e9", "webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"},
    ],
)
def test_missing_or_garbage_headers_fail(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        check(headers)


def test_non_utf8_body_is_just_another_body() -> None:
    body = b"\xff\xfe\x00garbage"
    assert check(sign(KEY, "m", NOW, body), body)[0] == "m"


def test_interoperates_with_the_reference_library() -> None:
    secret = new_secret()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    reference = standardwebhooks.Webhook(secret)
    now = int(time.time())
    # Ours signs, the reference verifies.
    reference.verify(BODY.decode(), sign(key, "msg_x", now, BODY))
    # The reference signs, ours verifies.
    signature = reference.sign("msg_y", datetime.fromtimestamp(now, tz=UTC), BODY.decode())
    headers = {"webhook-id": "msg_y", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert verify(headers, BODY, keys=(key,), now=now, tolerance=300) == ("msg_y", now)
