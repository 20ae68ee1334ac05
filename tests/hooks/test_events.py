from __future__ import annotations

import ipaddress
import json

import pytest

from hooks.errors import HookError
from hooks.events import Confirm, Requested, Verify, normal_ip, parse


def body(type_: str = "password_reset.requested", **data: object) -> bytes:
    return json.dumps({"type": type_, "timestamp": "2026-11-28T10:00:00Z", "data": data}).encode()


def test_requested_is_parsed_and_normalised() -> None:
    kind, data = parse(body(email=" Jane@Example.COM ", locale="pt-BR", client_ip="::ffff:1.2.3.4"))
    assert kind == "password_reset.requested"
    assert data == Requested(email="jane@example.com", locale="pt-BR", client_ip="::ffff:102:304")


def test_verify_and_confirm() -> None:
    assert parse(body("password_reset.verify", ticket="t"))[1] == Verify(ticket="t")
    assert parse(body("password_reset.confirm", ticket="t", new_password="p"))[1] == Confirm(
        ticket="t", new_password="p"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[" * 5000, "not valid JSON"),
        (b"[]", "JSON object"),
        (b'"text"', "JSON object"),
        (b'{"data": {}}', "type"),
        (b'{"type": "password_reset.requested"}', "data"),
        (b'{"type": 5, "data": {}}', "type"),
        (b'{"type": "password_reset.requested", "data": []}', "data"),
        (body(), "data.email"),
        (body(email=5), "data.email"),
        (body(email="not-an-address"), "data.email"),
        (body(email="a@b"), "data.email"),
        (body(email="a b@example.com"), "data.email"),
        (body(email="x" * 300 + "@example.com"), "data.email"),
        (body(email="a@b.co", client_ip="999.1.1.1"), "data.client_ip"),
        (body(email="a@b.co", locale="<script>"), "data.locale"),
        (body("password_reset.verify"), "data.ticket"),
        (body("password_reset.verify", ticket=["x"]), "data.ticket"),
        (body("password_reset.confirm", ticket="t"), "data.new_password"),
        (body("password_reset.confirm", ticket="t", new_password="x" * 2000), "data.new_password"),
    ],
)
def test_bad_payloads_name_the_field(raw: bytes, message: str) -> None:
    with pytest.raises(HookError) as info:
        parse(raw)
    assert info.value.status == 400
    assert info.value.code == "invalid_payload"
    assert message in info.value.message


def test_unknown_type_is_422() -> None:
    with pytest.raises(HookError) as info:
        parse(body("password_reset.exploded", email="a@b.co"))
    assert (info.value.status, info.value.code) == (422, "unknown_event_type")


# One address string must not become several recipients: a list, a display name, a
# group or anything the mail code could not carry is refused at the door, by name.
@pytest.mark.parametrize(
    "email",
    [
        "a@x.example,evil@y.example",
        "a@x.example, evil@y.example",
        "a@x.example;evil@y.example",
        "Name <evil@y.example>",
        "<evil@y.example>",
        "friends: a@x.example, evil@y.example;",
        "a@x.example (evil@y.example)",
        '"a,b"@x.example',
        "user@[127.0.0.1]",
        "a@x.example\nbcc: evil@y.example",
        "a\u2028b@x.example",
        "a@@x.example",
        "a@localhost",
    ],
)
def test_not_exactly_one_address_is_refused(email: str) -> None:
    with pytest.raises(HookError) as info:
        parse(body(email=email))
    assert (info.value.status, info.value.code) == (400, "invalid_payload")
    assert info.value.message == "data.email: is not an email address."


@pytest.mark.parametrize(
    ("email", "stored"),
    [
        ("Jöran@Example.com", "jöran@example.com"),  # SMTPUTF8, as the mail code sends it
        ("用户@例子.广告", "用户@例子.广告"),
        ("o'brien+reset@mail.example.co.uk", "o'brien+reset@mail.example.co.uk"),
    ],
)
def test_one_address_is_accepted_international_ones_too(email: str, stored: str) -> None:
    assert parse(body(email=email))[1] == Requested(email=stored)


HOSTILE_IPS = [
    "192.0.2.7",
    " 10.0.0.1 ",
    "0.0.0.0",
    "255.255.255.255",
    "01.2.3.4",
    "1.2.3.04",
    "00.0.0.0",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "1..2.3",
    "+1.2.3.4",
    "0x1.2.3.4",
    "1.2.3.4%eth0",
    "1.2.3.4\x00",
    "\uff11.2.3.4",  # a fullwidth digit one
    "1.2.3.4/32",
    "::1",
    "::ffff:1.2.3.4",
    "2001:db8::1%eth0",
    "::%\x00",
    "fe80::1%\n",
    "::ffff:1.2.3.4%x",
    "2001:DB8:0:0:0:0:0:1",
    "",
    "not an address",
]


@pytest.mark.parametrize("raw", HOSTILE_IPS)
def test_client_ip_spelling_is_ipaddress_s_verdict(raw: str) -> None:
    """The IPv4 shortcut (the C library's parser) accepts exactly what `ipaddress`
    does and spells it the same; every other input gets `ipaddress`'s own verdict,
    less an IPv6 zone."""
    try:
        expected: str | None = str(ipaddress.ip_address(raw.strip())).partition("%")[0]
    except ValueError:
        expected = None
    try:
        got: str | None = normal_ip(raw)
    except ValueError:
        got = None
    assert got == expected


def test_an_ipv6_zone_is_dropped_so_no_control_character_reaches_a_payload() -> None:
    # ipaddress takes any text after "%"; a NUL stored in a job's payload would make
    # PostgreSQL refuse `payload->>'email'` on that row (the per-person queries).
    assert normal_ip("::%\x00") == "::"
    assert normal_ip("fe80::1%eth0") == normal_ip("fe80::1%eth1") == "fe80::1"
    _, data = parse(body(email="a@b.co", client_ip="2001:db8::1%\u0000"))
    assert data == Requested(email="a@b.co", client_ip="2001:db8::1")
