from __future__ import annotations

import json

from hooks.auth0 import authorized
from hooks.logstream import parse


def item(log_id: str, kind: str = "scp", **data: object) -> dict[str, object]:
    return {"log_id": log_id, "data": {"type": kind, "user_id": "auth0|1", **data}}


def test_json_lines() -> None:
    body = "\n".join(json.dumps(item(str(i))) for i in range(3)).encode() + b"\n"
    parsed = parse(body)
    assert [i.log_id for i in parsed.items] == ["0", "1", "2"]
    assert parsed.malformed == 0


def test_json_array() -> None:
    parsed = parse(json.dumps([item("a"), item("b", "pwd_leak")]).encode())
    assert [(i.log_id, i.type) for i in parsed.items] == [("a", "scp"), ("b", "pwd_leak")]


def test_single_object_is_one_item_and_a_wrapper_is_malformed() -> None:
    assert [i.log_id for i in parse(json.dumps(item("one")).encode()).items] == ["one"]
    # No source shows a wrapper object: it is not guessed at, it is counted.
    wrapped = parse(json.dumps({"logs": [item("x"), item("y")]}).encode())
    assert (wrapped.items, wrapped.malformed, wrapped.unparseable) == ([], 1, False)


def test_a_body_where_nothing_parses_is_unparseable() -> None:
    for body in (b"", b"\n \n", b"{not json", b"{not\n[json", b"[" * 100_000):
        parsed = parse(body)
        assert parsed.unparseable and parsed.items == [], body[:20]
    assert not parse(b"null").unparseable  # JSON, just not an item


def test_nested_fields() -> None:
    (entry,) = parse(
        json.dumps(item("a", "sapi", details={"request": {"path": "/x", "body": {}}})).encode()
    ).items
    assert entry.text("details", "request", "path") == "/x"
    assert entry.field("details", "request", "body") == {}
    assert entry.text("details", "request", "body") is None  # not text
    assert entry.text("details", "nothing", "path") is None
    assert entry.text("user_id", "deeper") is None  # a string has no fields


def test_log_id_may_sit_inside_data() -> None:
    parsed = parse(json.dumps({"data": {"type": "scp", "log_id": "inner"}}).encode())
    assert parsed.items[0].log_id == "inner"


def test_malformed_lines_are_counted_and_skipped() -> None:
    lines = [
        json.dumps(item("good1")),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"log_id": "no-data"}),
        json.dumps({"log_id": "bad-type", "data": {"type": 5}}),
        json.dumps({"log_id": 7, "data": {"type": "scp"}}),
        "\xff\xfe",
        "",
        json.dumps(item("good2")),
    ]
    parsed = parse("\n".join(lines).encode("utf-8", "surrogateescape"))
    assert [i.log_id for i in parsed.items] == ["good1", "good2"]
    assert parsed.malformed == 7  # [1, 2] counts as two non-object items


def test_hostile_bodies_never_raise() -> None:
    for body in (b"", b"[" * 100_000, b"null", b"123", b'"x"', b"\x00" * 1000, b"{}" * 5000):
        parse(body)


def test_authorization_exact_or_bearer() -> None:
    assert authorized("s3cret", "s3cret")
    assert authorized("Bearer s3cret", "s3cret")
    assert not authorized("Bearer s3cret", "Bearer other")
    assert authorized("Bearer abc", "Bearer abc")
    assert not authorized("", "s3cret")
    assert not authorized("s3cre", "s3cret")
    assert not authorized("Basic s3cret", "s3cret")


def test_scalars_are_items_that_are_not_objects() -> None:
    assert parse(b"null").malformed == 1
    lines = [json.dumps(item("ok")), '"a string"', "42", "null", "true"]
    parsed = parse("\n".join(lines).encode())
    assert [i.log_id for i in parsed.items] == ["ok"]
    assert parsed.malformed == 4


def test_ids_a_database_cannot_hold_are_malformed() -> None:
    body = "\n".join(
        [
            json.dumps(item("nul\u0000")),
            json.dumps(item("\ud800")),
            json.dumps({"log_id": "t", "data": {"type": "scp\udfff"}}),
            json.dumps(item("ok")),
        ]
    ).encode()
    parsed = parse(body)
    assert [i.log_id for i in parsed.items] == ["ok"]
    assert parsed.malformed == 3
