"""Auth0 log events at the door of the domain: which are ours, when they happened,
and that each is stored once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hooks.logstream import LogItem
from resetrelay.reset.auth0_events import LogEvent, event_time, password_patch_target
from resetrelay.runtime import Runtime

pytestmark = pytest.mark.anyio
FALLBACK = datetime(2026, 1, 1, tzinfo=UTC)
DB = "Username-Password-Authentication"


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2026-11-28T10:00:00.000Z", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T12:00:00+02:00", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T10:00:00", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("0001-01-01T00:00:00+01:00", FALLBACK),  # before year 1 in UTC
        ("yesterday", FALLBACK),
        (None, FALLBACK),
    ],
)
def test_event_time(date: str | None, expected: datetime) -> None:
    assert event_time(LogEvent("log1", "scp", date=date), FALLBACK) == expected


def _item(log_id: str, kind: str, **data: object) -> LogItem:
    return LogItem(log_id, kind, {"type": kind, **data})


async def test_store_keeps_actionable_items_once(runtime: Runtime) -> None:
    events = runtime.auth0_events
    batch = [
        _item("a", "pwd_leak", user_id="auth0|1", ip="198.51.100.7"),
        _item("a", "pwd_leak", user_id="auth0|1"),  # twin inside the batch
        _item("b", "s"),  # a successful login: counted, not stored
        _item("c", "scp", user_id="auth0|1", user_name="x" * 600),  # an overlong field is dropped
    ]
    assert await events.store(batch) == {
        "received": 4,
        "stored": 2,
        "duplicates": 1,
        "ignored": 1,
    }
    again = await events.store([_item("a", "pwd_leak", user_id="auth0|1")])
    assert again["stored"] == 0 and again["duplicates"] == 1


@pytest.mark.parametrize(
    ("event", "ours"),
    [
        (LogEvent("1", "scp", user_id="auth0|1"), True),
        (LogEvent("1", "scp", user_id="google-oauth2|1"), False),
        (LogEvent("1", "scp", connection="Other-DB"), False),
        (LogEvent("1", "scp", connection="Username-Password-Authentication"), True),
        (LogEvent("1", "scp"), True),
        # A linked account: a social primary id with our database identity.
        (LogEvent("1", "pwd_leak", user_id="google-oauth2|1", connection=DB), True),
        (LogEvent("1", "pwd_leak", user_id="auth0|1", strategy_type="social"), False),
    ],
)
async def test_only_our_connections_database_users(
    runtime: Runtime, event: LogEvent, ours: bool
) -> None:
    assert runtime.auth0_events._ours(event) is ours


def _sapi(method: object, path: object, body: object) -> LogItem:
    request = {"method": method, "path": path, "body": body}
    return LogItem("s", "sapi", {"type": "sapi", "details": {"request": request}})


@pytest.mark.parametrize(
    ("item", "target"),
    [
        (_sapi("patch", "/api/v2/users/auth0%7C1", {"password": "x"}), "auth0|1"),
        (_sapi("PATCH", "/api/v2/users/auth0|1", {"password": None}), "auth0|1"),
        (
            _sapi("patch", "/api/v2/users/google-oauth2%7C9", {"password": "", "connection": DB}),
            "google-oauth2|9",
        ),
        (_sapi("patch", "/api/v2/users/auth0%7C1", {"email": "a@example.com"}), None),
        (_sapi("post", "/api/v2/users/auth0%7C1", {"password": "x"}), None),
        (_sapi("patch", "/api/v2/users/auth0%7C1/identities", {"password": "x"}), None),
        (_sapi("patch", "/api/v2/users/", {"password": "x"}), None),
        (_sapi("patch", "/api/v2/users/%0A", {"password": "x"}), None),
        (_sapi("patch", "/api/v2/clients/abc", {"password": "x"}), None),
        (_sapi("patch", ["/api/v2/users/a"], {"password": "x"}), None),
        (_sapi(None, "/api/v2/users/a", {"password": "x"}), None),
        (_sapi("patch", "/api/v2/users/a", "password"), None),
        (LogItem("s", "sapi", {"type": "sapi"}), None),
        (LogItem("s", "sapi", {"type": "sapi", "details": "x"}), None),
    ],
)
def test_password_patch_target(item: LogItem, target: str | None) -> None:
    assert password_patch_target(item) == target


async def test_a_sapi_is_stored_under_its_target_not_its_actor(runtime: Runtime) -> None:
    item = LogItem(
        "p",
        "sapi",
        {
            "type": "sapi",
            "user_id": "auth0|admin",
            "user_name": "admin@example.com",
            "details": {
                "request": {
                    "method": "patch",
                    "path": "/api/v2/users/auth0%7C1",
                    "body": {"password": "[redacted]", "connection": DB},
                }
            },
        },
    )
    other = _sapi("patch", "/api/v2/clients/c", {"name": "x"})
    assert (await runtime.auth0_events.store([item, other]))["stored"] == 1
