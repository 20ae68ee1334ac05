"""The parsers behind the hooks under Hypothesis: hooks.events.parse (the website's
events, and the address rule of `password_reset.requested`) and hooks.logstream.parse
(Auth0's log stream). Hostile input ends as a 400/422 HookError or a counted
malformed item, never as another exception."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hooks import events, logstream
from hooks.errors import HookError
from tests.fuzz import strategies
from tests.fuzz.conftest import FUZZ
from tests.fuzz.tally import ran

TYPES = [events.REQUESTED, events.VERIFY, events.CONFIRM]

scalars = strategies.scalars
json_values = strategies.json_values(width=5, key_size=12, leaves=25)


def _parse(body: bytes) -> tuple[str, object] | HookError:
    try:
        return events.parse(body)
    except HookError as exc:
        return exc


def _assert_parsed_or_refused(body: bytes) -> tuple[str, object] | HookError:
    ran()
    result = _parse(body)
    if isinstance(result, HookError):
        assert (result.status, result.code) in {
            (400, "invalid_payload"),
            (422, "unknown_event_type"),
        }, result.body()
        assert result.message
        json.dumps(result.body())  # the answer can be rendered
    else:
        kind, model = result
        assert isinstance(model, events.DATA_MODELS[kind])
    return result


# -- hooks.events.parse -----------------------------------------------------------------


@settings(FUZZ, max_examples=400)
@given(body=st.one_of(st.binary(max_size=512), json_values.map(lambda v: json.dumps(v).encode())))
def test_arbitrary_bodies_are_parsed_or_refused(body: bytes) -> None:
    _assert_parsed_or_refused(body)


data_fields = st.sampled_from(
    ["email", "locale", "client_ip", "user_agent", "ticket", "new_password", "x"]
)


@settings(FUZZ, max_examples=400)
@given(
    kind=st.one_of(st.sampled_from(TYPES), st.text(max_size=20), json_values),
    timestamp=st.one_of(st.none(), st.text(max_size=80), json_values),
    data=st.one_of(
        st.dictionaries(data_fields, st.one_of(json_values, st.text(max_size=1100)), max_size=5),
        json_values,
    ),
    ensure_ascii=st.booleans(),
)
def test_envelopes_with_hostile_fields_are_parsed_or_refused(
    kind: Any, timestamp: Any, data: Any, ensure_ascii: bool
) -> None:
    envelope = {"type": kind, "data": data}
    if timestamp is not None:
        envelope["timestamp"] = timestamp
    try:
        body = json.dumps(envelope, ensure_ascii=ensure_ascii).encode()
    except UnicodeEncodeError:  # a lone surrogate: send it \u-escaped instead
        body = json.dumps(envelope).encode()
    result = _assert_parsed_or_refused(body)
    if not isinstance(result, HookError):
        assert result[0] == kind


# -- the address rule of password_reset.requested -----------------------------------------

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
atoms = st.text(ATEXT, min_size=1, max_size=12)
local_parts = st.lists(atoms, min_size=1, max_size=3).map(".".join)
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
domains = st.builds(
    lambda names, tld: ".".join([*names, tld]),
    st.lists(labels, min_size=1, max_size=3),
    st.sampled_from(["com", "org", "net", "de", "io", "co", "example", "museum"]),
)
addresses = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


def requested(email: object) -> bytes:
    return json.dumps({"type": events.REQUESTED, "data": {"email": email}}).encode()


@settings(FUZZ, max_examples=300)
@given(
    address=addresses,
    upper=st.booleans(),
    padding=st.sampled_from(["", " ", "\t", "\n", "  "]),
)
def test_valid_addr_specs_are_accepted_lower_cased(address: str, upper: bool, padding: str) -> None:
    ran()
    sent = address.upper() if upper else address
    _, model = events.parse(requested(padding + sent + padding))
    assert isinstance(model, events.Requested)
    assert model.email == address.lower()


display_names = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20
)
breaks = st.sampled_from(["\r\n", "\n", "\r", "\x85", "\u2028", "\x0b", "\x0c", "\x00"])


@st.composite
def hostile(draw: st.DrawFn) -> str:
    """One address wrapped in, or joined to, what only a header parser would accept."""
    one, two = draw(addresses), draw(addresses)
    local, _, domain = one.partition("@")
    forms = [
        f"{draw(display_names)} <{one}>",
        f'"{draw(display_names)}" <{one}>',
        f"<{one}>",
        f"{one} ({draw(display_names)})",
        f"{local}({draw(display_names)})@{domain}",
        f"{one},{two}",
        f"{one}, {two}",
        f"{one};{two}",
        f"{draw(atoms)}:{one};",
        f"{draw(atoms)}: {one}, {two};",
        f"{one}{draw(breaks)}Bcc: {two}",
        f"{local}{draw(breaks)}@{domain}",
        f"{local}@{draw(breaks)}{domain}",
        f"{one}{draw(breaks)}{two}",
        f'"{local} {draw(atoms)}"@{domain}',
        f"{local} {draw(atoms)}@{domain}",
        f"{local}@[{draw(st.ip_addresses(v=4))}]",
        f"{local}@@{domain}",
        f"{local}@{domain}@{draw(domains)}",
        f"{local}..{draw(atoms)}@{domain}",
        f".{one}",
        f"{local}@{draw(labels)}",  # no dot in the domain
        f"{local}@{draw(labels)}.{draw(st.sampled_from(['test', 'invalid', 'localhost']))}",
    ]
    return draw(st.sampled_from(forms))


@settings(FUZZ, max_examples=400)
@given(value=hostile())
def test_hostile_address_strings_are_refused(value: str) -> None:
    ran()
    result = _parse(requested(value))
    assert isinstance(result, HookError), f"accepted {value!r} as {result!r}"
    assert (result.status, result.code) == (400, "invalid_payload")
    assert result.message.startswith("data.email: ")


# -- hooks.logstream.parse -----------------------------------------------------------------

storable_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30
)


@st.composite
def valid_items(draw: st.DrawFn) -> dict[str, Any]:
    log_id, kind = draw(storable_text), draw(storable_text)
    data: dict[str, Any] = {"type": kind, **draw(st.dictionaries(st.text(max_size=8), scalars))}
    data["type"] = kind
    if draw(st.booleans()):
        return {"log_id": log_id, "data": data}
    data["log_id"] = log_id  # Auth0 may put it inside `data`
    return {"data": data}


# Items that are skipped and counted; each is one candidate, whatever the framing (a
# dict with `log_id` or `data` is never read as a wrapper of other items).
malformed_items = st.one_of(
    scalars,
    st.fixed_dictionaries({"log_id": storable_text}),
    st.fixed_dictionaries({"log_id": storable_text, "data": json_values}).filter(
        lambda v: not (isinstance(v["data"], dict) and isinstance(v["data"].get("type"), str))
    ),
    st.fixed_dictionaries({"data": st.dictionaries(st.sampled_from(["type", "x"]), scalars)}),
    st.fixed_dictionaries(
        {"log_id": st.sampled_from(["", "a" * 256, "nul\x00", "\ud800"]), "data": st.just({})}
    ).map(lambda v: {**v, "data": {"type": "scp"}}),
    st.fixed_dictionaries(
        {"log_id": storable_text, "data": st.sampled_from([{"type": ""}, {"type": "t" * 65}])}
    ),
)


@settings(FUZZ, max_examples=400)
@given(
    items=st.lists(
        st.one_of(
            valid_items().map(lambda i: (True, i)), malformed_items.map(lambda i: (False, i))
        ),
        max_size=12,
    ),
    framing=st.sampled_from(["array", "lines"]),
)
def test_log_stream_item_counts_add_up(items: list[tuple[bool, Any]], framing: str) -> None:
    ran()
    values = [value for _, value in items]
    if framing == "array":
        body = json.dumps(values).encode()
    else:
        body = "\n".join(json.dumps(v) for v in values).encode()
    parsed = logstream.parse(body)
    expected = [value for good, value in items if good]
    assert len(parsed.items) + parsed.malformed == len(values)
    assert [item.log_id for item in parsed.items] == [
        v.get("log_id") or v["data"]["log_id"] for v in expected
    ]
    assert [item.type for item in parsed.items] == [v["data"]["type"] for v in expected]


@settings(FUZZ, max_examples=400)
@given(
    body=st.one_of(
        st.binary(max_size=1024),
        st.lists(
            st.one_of(st.binary(max_size=60), json_values.map(json.dumps).map(str.encode))
        ).map(b"\n".join),
        json_values.map(lambda v: json.dumps(v).encode()),
    )
)
def test_arbitrary_log_stream_bodies_never_raise(body: bytes) -> None:
    ran()
    parsed = logstream.parse(body)
    assert parsed.malformed >= 0
    for item in parsed.items:
        assert 0 < len(item.log_id) <= 255 and 0 < len(item.type) <= 64
        assert "\x00" not in item.log_id + item.type
        (item.log_id + item.type).encode()  # storable: no lone surrogate
