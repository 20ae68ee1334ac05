"""The emulator's log stream (devkit/emulator/logstream.py): the formats on the wire,
failure logs without `user_id`, masked or hashed names, and `sapi` for API writes."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from devkit.emulator import create_emulator
from devkit.emulator.logstream import LogStream
from devkit.emulator.users import user_from_spec
from tests.auth0_fixtures import DOMAIN

pytestmark = pytest.mark.anyio

JANE = user_from_spec(
    {"email": "jane@example.com", "password": "Old-Passw0rd!", "user_id": "auth0|jane"},
    "2026-01-01T00:00:00.000Z",
)


def stream(**options: object) -> LogStream:
    return LogStream(
        url=None,
        token=None,
        content_format=str(options.pop("content_format", "jsonlines")),
        client_id="emulator-client",
        clock=lambda: 1_800_000_000.0,
        **options,  # type: ignore[arg-type]
    )


def test_json_lines_is_the_default_and_object_sends_one_body_per_event() -> None:
    events = [stream().event("scp", JANE, "Change password") for _ in range(2)]
    (lines,) = stream().bodies(events)
    assert [json.loads(line) for line in lines.splitlines()] == events
    (array,) = stream(content_format="array").bodies(events)
    assert json.loads(array) == events
    objects = stream(content_format="object").bodies(events)
    assert [json.loads(o) for o in objects] == events  # no wrapper object


@pytest.mark.parametrize(
    ("pii", "expected"), [("off", "jane@example.com"), ("mask", "****"), ("hash", None)]
)
def test_user_name_as_pii_obfuscation_leaves_it(pii: str, expected: str | None) -> None:
    name = stream(pii=pii).event("limit_wc", JANE, "Blocked")["data"]["user_name"]
    if expected is None:
        assert "@" not in name and len(name) == 16
    else:
        assert name == expected


def test_failure_logs_may_lack_user_id() -> None:
    logs = stream(omit_failure_user_id=True)
    for kind in ("pwd_leak", "limit_wc", "limit_sul"):
        assert "user_id" not in logs.event(kind, JANE, "failure")["data"]
    assert logs.event("scp", JANE, "Change password")["data"]["user_id"] == "auth0|jane"


async def test_a_password_patch_logs_sapi_with_the_request_and_no_scp() -> None:
    app = create_emulator(
        domain=DOMAIN,
        users=[{"email": "jane@example.com", "password": "Old-Passw0rd!", "user_id": "auth0|jane"}],
    )
    state = app.state.emulator
    state.logs.url = "http://127.0.0.1:9/unused"  # delivery fails quietly; `sent` records
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://auth0"
    ) as http:
        token = await http.post(
            "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "audience": f"https://{DOMAIN}/api/v2/",
            },
        )
        answer = await http.patch(
            f"/api/v2/users/{quote('auth0|jane', safe='')}",
            json={
                "password": "Corr3ct-Horse-Battery",
                "connection": "Username-Password-Authentication",
            },
            headers={"authorization": f"Bearer {token.json()['access_token']}"},
        )
    assert answer.status_code == 200
    (sapi,) = state.logs.sent
    data = sapi["data"]
    assert data["type"] == "sapi" and data["user_id"] == ""  # the actor: an M2M client
    assert data["details"]["request"] == {
        "method": "patch",
        "path": "/api/v2/users/auth0%7Cjane",
        "query": {},
        "body": {"password": "[redacted]", "connection": "Username-Password-Authentication"},
    }
    assert "Corr3ct" not in json.dumps(sapi)
