from __future__ import annotations

import json

import pytest

from hooks.errors import HookError
from hooks.events import Confirm, Requested, Verify, parse


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
