"""mail.message: addr_spec's fast path for plain addresses accepts only what the
full check (email-validator, with the options addr_spec spells out) accepts; and
the quoted-printable body parts of build_message decode back to their text."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from email_validator import EmailNotValidError
from hypothesis import given, settings
from hypothesis import strategies as st

from mail.message import RenderedMail, _plain, addr_spec, build_message, full_check
from tests.fuzz.conftest import FUZZ


def accepted(value: str) -> bool:
    try:
        full_check(value)
    except EmailNotValidError:
        return False
    return True


# Near the pattern's edges: its own alphabet plus what it must not take (upper case,
# other atext, dots and hyphens in odd places, Unicode, whitespace), and lengths
# around the limits of a local part (64), a label (63) and a whole address (254).
near = st.text(st.sampled_from("az09_+-.@AZ!#'~ \tü"), min_size=1, max_size=30)
labels = st.from_regex(r"[a-z0-9-]{1,66}", fullmatch=True)
domains = st.lists(labels, min_size=1, max_size=5).map(".".join)
tlds = st.sampled_from(
    ["com", "de", "test", "invalid", "localhost", "onion", "arpa", "local", "c1", "x"]
)
locals_ = st.one_of(st.from_regex(r"[a-z0-9_+.-]{1,70}", fullmatch=True), near)
candidates = st.one_of(
    near,
    st.builds(lambda local, domain, tld: f"{local}@{domain}.{tld}", locals_, domains, tlds),
    st.builds(lambda local, domain: f"{local}@{domain}", locals_, domains),
)


@settings(FUZZ, max_examples=1500)
@given(value=candidates)
def test_the_fast_path_accepts_only_what_the_full_check_accepts(value: str) -> None:
    if _plain(value):
        assert accepted(value), value


@pytest.mark.parametrize(
    "value",
    [
        "user123@example.com",
        "first.last+tag@mail.example.co.uk",
        "a_b-c@x-y.io",
        "a" * 64 + "@example.com",
        "u@" + "d" * 63 + ".com",
        "u@" + ".".join(["a" * 49] * 5) + ".co",  # 254 characters
    ],
)
def test_plain_addresses_take_the_fast_path(value: str) -> None:
    assert _plain(value) and accepted(value) and addr_spec(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "a" * 65 + "@example.com",  # local part over 64
        "u@" + "d" * 64 + ".com",  # label over 63
        "u@" + ".".join(["a" * 50] * 5) + ".com",  # over 254
        "user@example.test",  # special-use
        "user@localhost",
        "user@xn--bcher-kva.example",  # Punycode: IDNA's rules decide
        "user@ab--cd.example",
        "User@example.com",  # upper case: the full check decides
        "user@example.c0m",
        "a..b@example.com",
        ".a@example.com",
        "a@-x.example",
        "jöran@example.com",
        "o'brien@example.com",
    ],
)
def test_anything_else_takes_the_full_check(value: str) -> None:
    assert not _plain(value)
    try:
        addr_spec(value)
    except ValueError:
        assert not accepted(value)
    else:
        assert accepted(value)


def test_refusals_name_no_part_of_the_address() -> None:
    with pytest.raises(ValueError, match="not exactly one e-mail address") as caught:
        addr_spec("secret-person@example.test")
    assert "secret" not in str(caught.value)


# Any text a template could render: every plane, tabs, trailing spaces, lone dots,
# "=" signs, long lines; line ends are "\n", as the renderer writes them.
pieces = st.one_of(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r"),
    st.sampled_from([" ", "\t", "\n", ".", "=", " \n", ".\n", "=\n", "x" * 80]),
)
bodies = st.lists(pieces, max_size=200).map("".join)


@settings(FUZZ, max_examples=400)
@given(text=bodies, html=bodies)
def test_both_parts_decode_to_their_text_from_7bit_lines_of_at_most_76(
    text: str, html: str
) -> None:
    mail = RenderedMail(subject="Reset", text=text, html=html, locale="en")
    wire = build_message(
        mail, to="jane@example.com", sender="no-reply@example.com", message_id="<1@example.com>"
    ).as_bytes()
    assert wire.isascii()
    body = wire.split(b"\r\n\r\n", 1)[1]
    # RFC 2045 6.7: encoded lines are at most 76 characters; the boundary lines are short.
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part, expected in zip(parts, (text, html), strict=True):
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content_charset() == "utf-8"
        raw = part.get_payload(decode=True)
        assert isinstance(raw, bytes)
        assert raw.decode("utf-8").replace("\r\n", "\n") == expected
