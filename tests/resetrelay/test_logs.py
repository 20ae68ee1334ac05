"""Masking of addresses in what is logged: `mask_email` for one address, and
`scrub_addresses` for texts that carry them (SMTP refusals echo the recipient).

Property-style: every hostile input below carries the marker `SECRET` (or
`secret`) in its local part, after the first character, and neither masking nor
scrubbing may let any of it through, whatever the shape around it.
"""

from __future__ import annotations

import json
import logging
import re

import pytest

from mail.errors import mask_address, scrub_addresses
from resetrelay.logs import JsonFormatter, mask_email

# Local parts that once leaked a prefix (`john.smith&***@`), lists, display names,
# groups, quoting, comments, domain literals, control characters, Unicode.
HOSTILE = [
    "xSECRET@example.com",
    "john.SECRET&evil@example.com",
    "first/SECRET#x@example.com",
    "a+SECRET@example.com",
    "a=SECRET?x@example.com",
    "a'SECRET{x}@example.com",
    "a|SECRET~x@example.com",
    "a%SECRET@example.com",
    "a!SECRET$x@example.com",
    "a*SECRET^x@example.com",
    "a`SECRET`@example.com",
    '"a SECRET"@example.com',
    '"a\\"SECRET"@example.com',
    '"a@SECRET"@example.com',
    "a(SECRET)b@example.com",
    "a@x.example, SECRET@evil.example",
    "a@x.example,SECRET@evil.example",
    "Name <xSECRET@evil.example>",
    '"SECRET" <x@evil.example>',
    "undisclosed: a@x.example, xSECRET@evil.example;",
    "xSECRET@[127.0.0.1]",
    "xSECRET@[IPv6:::1]",
    "x\nSECRET@example.com",
    "x\r\nBcc: SECRET@example.com",
    "x\u2028SECRET@example.com",
    "x\x00SECRET@example.com",
    "xSECRET@@example.com",
    "xSECRET@example.com@",
    "xSECRET@",
    "@xSECRET",
    "xSECRET",
    "jöSECRET@münchen.example",
    "用SECRET@例子.广告",
    "xsecret@EXAMPLE.COM",
    "x" + "SECRET" * 50 + "@example.com",
    "<xSECRET@example.com>",
    "xSECRET@example.com>",
    "xSECRET@exa mple.com",
]

PLAIN = re.compile(r"(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W_](?:[\w-]*[^\W_])?")


@pytest.mark.parametrize("address", HOSTILE)
def test_masking_keeps_at_most_the_first_character_and_a_plain_domain(address: str) -> None:
    masked = mask_email(address)
    assert masked == mask_address(address)
    assert "secret" not in masked.lower()
    if masked == "***":
        return
    match = re.fullmatch(r"(.?)\*\*\*@(.*)", masked, re.DOTALL)
    assert match is not None
    first, domain = match.groups()
    assert first in ("", address[:1]) and (not first or first.isalnum())
    assert domain == "***" or (domain == address.rpartition("@")[2] and PLAIN.fullmatch(domain))
    assert masked.isprintable()


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("jane.doe@example.com", "j***@example.com"),
        ("john.smith&evil@example.com", "j***@example.com"),
        ("first/last#x@example.com", "f***@example.com"),
        ("user@[127.0.0.1]", "u***@***"),
        ("a@x.example, evil@y.example", "a***@y.example"),
        ("Name <evil@y.example>", "N***@***"),
        ('"quoted"@example.com', "***@example.com"),
        ("jöran@münchen.example", "j***@münchen.example"),
        ("not an address", "***"),
        ("", "***"),
    ],
)
def test_masked_forms(address: str, masked: str) -> None:
    assert mask_email(address) == masked


# How relays and libraries put an address into a refusal.
TEMPLATES = [
    "550 5.1.1 <{}>: Recipient address rejected: User unknown",
    "550 5.1.1 {}: no such user",
    "553 5.1.3 Bad recipient address syntax: {}",
    "450 4.2.0 <{}>... Mailbox busy",
    "SMTP connection failed: {} ({})",
    "recipient refused: 550 {},{};",
    "554 Rejected ({}) [{}]",
    "{}",
]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("address", [a for a in HOSTILE if "@" in a])
def test_scrubbing_a_text_leaves_no_local_part(template: str, address: str) -> None:
    text = template.format(address, address)
    # A display name is no address: only masked as part of a known recipient.
    for known in [(address,)] if address.startswith('"SECRET"') else [(), (address,)]:
        scrubbed = scrub_addresses(text, known)
        assert "secret" not in scrubbed.lower(), scrubbed
        assert "127.0.0.1" not in scrubbed and "IPv6" not in scrubbed
        assert scrub_addresses(scrubbed, known) == scrubbed  # masking again changes nothing


def test_scrubbing_keeps_the_rest_of_the_reason() -> None:
    text = "550 5.1.1 <john.smith&evil@x.example>: Recipient address rejected"
    assert scrub_addresses(text) == "550 5.1.1 <j***@x.example>: Recipient address rejected"
    assert scrub_addresses('say "hello there" now') == 'say "hello there" now'
    # A known recipient is masked wherever it is echoed, in any letter case.
    assert scrub_addresses("no JANE@EXAMPLE.COM here", ["jane@example.com"]) == (
        "no j***@example.com here"
    )


def test_scrubbing_a_long_text_is_fast() -> None:
    import time

    text = ("a" * 5000 + '"') * 20 + "@" + "b" * 100_000
    started = time.perf_counter()
    scrub_addresses(text)
    assert time.perf_counter() - started < 2


def test_a_masked_address_in_a_json_log_line() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "mail sent", None, None)
    record.fields = {"user": mask_email("x\nSECRET@[10.0.0.1]")}
    line = json.loads(JsonFormatter().format(record))
    assert line["user"] == "x***@***"
