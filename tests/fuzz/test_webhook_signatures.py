"""resetrelay.webhooks.verify under Hypothesis: a correctly signed request verifies
(ours and the reference `standardwebhooks` package agree), and any change to its
id, timestamp, body, signature or secret is an `InvalidSignature`, never another
exception."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
import standardwebhooks
from hypothesis import given, note, settings
from hypothesis import strategies as st

from resetrelay.webhooks import InvalidSignature, sign, verify
from tests.fuzz.conftest import FUZZ
from tests.fuzz.tally import ran

NOW = 1_796_140_800  # 2026-12-01, the app's clock in these tests
TOLERANCE = 300

ids = st.from_regex(r"[\x21-\x7e]{1,255}", fullmatch=True)
timestamps = st.integers(NOW - TOLERANCE, NOW + TOLERANCE)
secrets = st.binary(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)
texts = st.text(max_size=300)


def _check(headers: dict[str, str], body: bytes, key: bytes) -> tuple[str, int]:
    return verify(headers, body, keys=(key,), now=NOW, tolerance=TOLERANCE)


@settings(FUZZ, max_examples=300)
@given(msg_id=ids, timestamp=timestamps, body=st.text(max_size=1024), secret=secrets)
def test_the_reference_librarys_signature_verifies(
    msg_id: str, timestamp: int, body: str, secret: bytes
) -> None:
    ran()
    reference = standardwebhooks.Webhook(secret)
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    signature = reference.sign(msg_id, moment, body)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    headers["webhook-signature"] = signature
    assert _check(headers, body.encode(), secret) == (msg_id, timestamp)
    # And ours signs what the reference computes: the same header value.
    assert sign(secret, msg_id, timestamp, body.encode())["webhook-signature"] == signature


def _other_text(original: str) -> st.SearchStrategy[str]:
    return texts.filter(lambda value: value != original)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, str], bytes, bytes, str]:
    """A request signed with `secret`, then changed in one place."""
    msg_id, timestamp, body, secret = draw(ids), draw(timestamps), draw(bodies), draw(secrets)
    headers = sign(secret, msg_id, timestamp, body)
    signature = base64.b64decode(headers["webhook-signature"].removeprefix("v1,"))
    where = draw(
        st.sampled_from(
            ["id", "timestamp", "body", "signature", "signature-bytes", "version", "secret", "age"]
        )
    )
    if where == "id":
        headers["webhook-id"] = draw(_other_text(msg_id))
    elif where == "timestamp":
        headers["webhook-timestamp"] = draw(
            st.one_of(timestamps.map(str), texts).filter(lambda t: t != str(timestamp))
        )
    elif where == "body":
        body = draw(bodies.filter(lambda b: b != body))
    elif where == "signature":
        headers["webhook-signature"] = draw(texts)  # whatever the header says instead
    elif where == "signature-bytes":
        other = draw(st.binary(min_size=0, max_size=64).filter(lambda b: b != signature))
        entries = draw(st.lists(st.sampled_from(["v1,", "v1a,", "v2,"]), min_size=1, max_size=3))
        headers["webhook-signature"] = " ".join(
            prefix + base64.b64encode(other).decode() for prefix in entries
        )
    elif where == "version":
        # Not "v1", and no space: a space would make the valid signature a second entry.
        prefix = draw(st.text(max_size=8).filter(lambda p: p != "v1" and " " not in p))
        headers["webhook-signature"] = f"{prefix},{base64.b64encode(signature).decode()}"
    elif where == "secret":
        secret = draw(secrets.filter(lambda s: s != secret))
    else:  # signed correctly, but outside the tolerance
        late = draw(st.integers(TOLERANCE + 1, 10**11 - NOW))
        when = NOW + late if draw(st.booleans()) else max(0, NOW - late)
        headers = sign(secret, msg_id, when, body)
    return headers, body, secret, where


@settings(FUZZ, max_examples=800)
@given(case=mutated())
def test_any_mutation_is_rejected_with_invalid_signature(
    case: tuple[dict[str, str], bytes, bytes, str],
) -> None:
    ran()
    headers, body, secret, where = case
    note(f"changed: {where}")
    with pytest.raises(InvalidSignature):
        _check(headers, body, secret)


header_values = st.one_of(
    texts,
    st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True),
    st.integers(-(10**15), 10**15).map(str),
    st.lists(st.binary(max_size=40).map(lambda b: "v1," + base64.b64encode(b).decode())).map(
        " ".join
    ),
)


@settings(FUZZ, max_examples=300)
@given(
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]), header_values
    ),
    body=bodies,
    now=st.floats(-1e12, 1e12, allow_nan=False),
)
def test_arbitrary_headers_give_a_result_or_invalid_signature(
    headers: dict[str, str], body: bytes, now: float
) -> None:
    ran()
    try:
        msg_id, timestamp = verify(headers, body, keys=(b"k" * 32,), now=now, tolerance=300)
    except InvalidSignature:
        return
    # Only a real MAC under the key passes: these headers cannot carry one by chance.
    expected = hmac.new(b"k" * 32, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    assert base64.b64encode(expected.digest()).decode() in headers["webhook-signature"]
