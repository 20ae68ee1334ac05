"""Auth0 log events at the door of the domain: which are ours, when they happened,
and that each is stored once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hooks.logstream import LogItem
from resetrelay.reset.auth0_events import LogEvent, event_time
from resetrelay.runtime import Runtime

pytestmark = pytest.mark.anyio
FALLBACK = datetime(2026, 1, 1, tzinfo=UTC)


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
    ],
)
async def test_only_our_connections_database_users(
    runtime: Runtime, event: LogEvent, ours: bool
) -> None:
    assert runtime.auth0_events._ours(event) is ours
