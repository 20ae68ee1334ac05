"""The three hooks under Hypothesis, each request with valid credentials so the body
reaches the parsers and the database: the app runs in-process (httpx.ASGITransport)
with a migrated database, in one event loop that a blocking portal keeps for the
test, on every database backend under test (PostgreSQL refuses text that SQLite
stores, so hostile text must be stopped at the door for both).

- `/hooks/auth0/actions`: arbitrary bodies, each with a token bound to it (a fresh
  `jti`, `body_sha256` of the exact bytes), get 200, 400, 401 or 422.
- `/hooks/website`: signed envelopes with hostile fields get 200, 202, 400, 410 or 422.
- `/hooks/auth0`: log-stream batches with hostile fields get 200.
Never a 5xx, and no ERROR log line (tests/fuzz/conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st
from jose import jwt

from hooks.app import create_app
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from resetrelay.webhooks import sign
from tests.conftest import BACKENDS, WEBHOOK_SECRET, Clock
from tests.fuzz import strategies
from tests.fuzz.conftest import FUZZ
from tests.fuzz.tally import answered

SECRET = "action-secret-fuzz-5c4b3a29180f7e6d"
DOMAIN = "acme.eu.auth0.com"
# Requests per route, in total over the database backends under test.
EXAMPLES = {"actions": 600, "website": 700, "log_stream": 300}
KEY = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
LOG_STREAM_TOKEN = "log-stream-token-fuzz-71d0"


def no_auth0(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a request handler called Auth0: {request.url}")


def share(route: str) -> int:
    return max(1, EXAMPLES[route] // len(BACKENDS))


class Service:
    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient, clock: Clock) -> None:
        self.portal, self.client, self.clock = portal, client, clock

    def send(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.portal.call(lambda: self.client.post(path, content=body, headers=headers))

    def website(self, body: bytes) -> httpx.Response:
        now = int(self.clock().timestamp())
        headers = sign(KEY, f"msg_fuzz_{uuid.uuid4().hex}", now, body)
        return self.send("/hooks/website", body, {**headers, "content-type": "application/json"})

    def log_stream(self, body: bytes) -> httpx.Response:
        return self.send("/hooks/auth0", body, {"authorization": LOG_STREAM_TOKEN})

    def action(self, body: bytes) -> httpx.Response:
        now = int(self.clock().timestamp())
        claims = {
            "iss": f"https://{DOMAIN}/",
            "aud": "resetrelay",
            "iat": now,
            "exp": now + 120,
            "jti": uuid.uuid4().hex,
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        headers = {
            "authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}",
            "content-type": "application/json",
        }
        return self.send("/hooks/auth0/actions", body, headers)


@pytest.fixture
def service(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> Iterator[Service]:
    settings_ = settings_for(
        database_url,
        AUTH0_DOMAIN=DOMAIN,
        AUTH0_ACTION_SECRET=SECRET,
        AUTH0_LOG_STREAM_TOKEN=LOG_STREAM_TOKEN,
    )
    with start_blocking_portal() as portal:
        runtime = Runtime.build(settings_, now=clock, auth0_transport=httpx.MockTransport(no_auth0))
        app = create_app(settings_, runtime=runtime)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://resetrelay.test"
        )
        try:
            yield Service(portal, client, clock)
        finally:
            portal.call(client.aclose)
            portal.call(runtime.aclose)


scalars = strategies.scalars
json_values = strategies.json_values(width=4, key_size=10, leaves=20)
user_ids = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"auth0\|[0-9a-f]{1,24}", fullmatch=True),
    st.sampled_from(["", "nul\x00id", "\ud800", "a" * 255, "a" * 256]),
    json_values,
)


def _encode(value: Any, ensure_ascii: bool) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=ensure_ascii).encode()
    except UnicodeEncodeError:  # a lone surrogate travels \u-escaped
        return json.dumps(value).encode()


events = st.builds(
    lambda kind, user, extra, ensure_ascii: _encode(
        {**extra, "type": kind, "user": user}, ensure_ascii
    ),
    kind=st.one_of(st.just("post_change_password"), scalars),
    user=st.one_of(st.fixed_dictionaries({"user_id": user_ids}), json_values),
    extra=st.dictionaries(st.text(max_size=10), json_values, max_size=3),
    ensure_ascii=st.booleans(),
)
# Well-formed events, for the answers past the parser (200, and what the database says).
well_formed = st.builds(
    lambda user_id, ensure_ascii: _encode(
        {"type": "post_change_password", "user": {"user_id": user_id}}, ensure_ascii
    ),
    user_id=st.one_of(
        st.from_regex(r"auth0\|[0-9a-f]{1,24}", fullmatch=True), st.text(min_size=1, max_size=80)
    ),
    ensure_ascii=st.booleans(),
)
bodies = st.one_of(
    well_formed,
    events,
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    # Nested far past the parser's stack, and still under the 64 KiB limit.
    st.sampled_from([b"", b"[" * 60_000, b'{"type": "post_change_password", "user": ' * 1500]),
)


def test_action_bodies_with_a_valid_token_never_get_a_5xx(service: Service) -> None:
    statuses: dict[int, int] = {}

    @settings(FUZZ, max_examples=share("actions"))
    @given(body=bodies)
    def run(body: bytes) -> None:
        answer = service.action(body)
        answered(answer.status_code)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        assert answer.status_code in {200, 202, 400, 401, 422}, answer.text
        assert answer.headers["content-type"] == "application/json"
        reply = answer.json()
        if answer.status_code == 200:
            assert reply["status"] == "ok" and reply["voided"] == 0
        elif answer.status_code == 202:  # only an address: found in a job
            assert reply == {"status": "accepted"}
        else:
            assert isinstance(reply["error"], str) and reply["message"]

    run()
    # The bodies reach every answer past the token, and the token is never what fails.
    assert {200, 400, 422} <= set(statuses) and 401 not in statuses, statuses


# -- /hooks/website -------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=80),
    st.text(st.characters(codec="utf-8"), max_size=20).map(lambda t: t + "\x00"),
    st.sampled_from(["\x00", "\ud800", "\udfff", "a\x00b", "\u2028", "x" * 1100]),
)
ips = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(str).flatmap(lambda ip: hostile_text.map(lambda t: f"{ip}%{t}")),
    hostile_text,
)
website_data = st.fixed_dictionaries(
    {},
    optional={
        "email": st.one_of(st.emails().map(str), hostile_text),
        "locale": st.one_of(st.sampled_from(["de", "pt-BR", "en_GB", "zh-Hant-TW"]), hostile_text),
        "client_ip": ips,
        "user_agent": hostile_text,
        "ticket": st.one_of(
            st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True), hostile_text, scalars
        ),
        "new_password": st.one_of(hostile_text, scalars),
        "extra": json_values,
    },
)
well_formed_website = st.one_of(
    st.builds(
        lambda email, ip: {
            "type": "password_reset.requested",
            "data": {"email": email, **({} if ip is None else {"client_ip": ip})},
        },
        st.emails().map(str),
        st.one_of(st.none(), ips),
    ),
    st.builds(
        lambda ticket: {"type": "password_reset.verify", "data": {"ticket": ticket}},
        st.one_of(st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True), hostile_text),
    ),
    st.builds(
        lambda ticket, password: {
            "type": "password_reset.confirm",
            "data": {"ticket": ticket, "new_password": password},
        },
        st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True),
        hostile_text,
    ),
).map(lambda event: json.dumps(event).encode())
website_bodies = st.one_of(
    well_formed_website,
    st.builds(
        lambda kind, data, timestamp, ensure_ascii: _encode(
            {"type": kind, "data": data, **({} if timestamp is None else {"timestamp": timestamp})},
            ensure_ascii,
        ),
        kind=st.one_of(
            st.sampled_from(
                ["password_reset.requested", "password_reset.verify", "password_reset.confirm"]
            ),
            hostile_text,
        ),
        data=website_data,
        timestamp=st.one_of(st.none(), hostile_text),
        ensure_ascii=st.booleans(),
    ),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


def test_signed_website_events_never_get_a_5xx(service: Service) -> None:
    statuses: dict[int, int] = {}

    @settings(FUZZ, max_examples=share("website"))
    @given(body=website_bodies)
    def run(body: bytes) -> None:
        answer = service.website(body)
        answered(answer.status_code)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        assert answer.status_code in {200, 202, 400, 410, 422}, answer.text
        assert answer.headers["content-type"] == "application/json"

    run()
    assert {200, 202, 400, 422} <= set(statuses), statuses


# -- /hooks/auth0 (the log stream) --------------------------------------------------------

log_fields = st.fixed_dictionaries(
    {
        "type": st.one_of(
            st.sampled_from(["pwd_leak", "limit_wc", "limit_sul", "scp", "sce", "sdu", "s"]),
            hostile_text,
        )
    },
    optional={
        "log_id": hostile_text,
        "date": st.one_of(
            st.datetimes().map(lambda d: d.isoformat() + "Z"),
            st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]),
            hostile_text,
        ),
        "user_id": hostile_text,
        "user_name": hostile_text,
        "connection": hostile_text,
        "strategy_type": hostile_text,
        "ip": hostile_text,
        "details": json_values,
    },
)
log_items = st.one_of(
    st.builds(lambda log_id, data: {"log_id": log_id, "data": data}, hostile_text, log_fields),
    log_fields.map(lambda data: {"data": data}),
    json_values,
)


def test_log_stream_batches_never_get_a_5xx(service: Service) -> None:
    @settings(FUZZ, max_examples=share("log_stream"))
    @given(
        items=st.lists(log_items, max_size=8),
        framing=st.sampled_from(["array", "lines"]),
        ensure_ascii=st.booleans(),
    )
    def run(items: list[Any], framing: str, ensure_ascii: bool) -> None:
        if framing == "array":
            body = _encode(items, ensure_ascii)
        else:
            body = b"\n".join(_encode(item, ensure_ascii) for item in items)
        answer = service.log_stream(body)
        answered(answer.status_code)
        if not body:
            # No line at all: nothing parses as JSON, refused so Auth0 retries.
            assert answer.status_code == 400, answer.text
            return
        assert answer.status_code == 200, answer.text
        summary = answer.json()
        assert min(summary.values()) >= 0, summary
        counted = summary["stored"] + summary["duplicates"] + summary["ignored"]
        assert summary["received"] == counted, summary

    run()
