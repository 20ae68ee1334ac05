"""mail.message.addr_spec: the fast path for plain addresses accepts only what the
full check (email-validator, with the options addr_spec spells out) accepts."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError
from hypothesis import given, settings
from hypothesis import strategies as st

from mail.message import _plain, addr_spec, full_check
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
