"""One `webhook-id` namespace across event types: an id seen once causes nothing a
second time, whatever the type of the second event, and gets the first answer again
(`idempotent-replayed: true`). Concurrent deliveries of one id under two types have
exactly one effect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from hooks.app import create_app
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from storage import jobs
from tests.conftest import Clock
from tests.hooks.test_website import event, no_auth0, post, signed

pytestmark = pytest.mark.anyio

ACCEPTED = {"status": "accepted"}
UNKNOWN = {"valid": False, "reason": "unknown"}


@pytest.fixture
async def client(
    database_url: str, clock: Clock, settings_for: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    """The service in-process; Auth0 fails the test if called (no event here needs it:
    the tickets are unknown, and a replayed confirm must not reach it)."""
    settings = settings_for(database_url)
    runtime = Runtime.build(settings, now=clock, auth0_transport=httpx.MockTransport(no_auth0))
    app = create_app(settings, runtime=runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://resetrelay.test"
    ) as c:
        c.runtime = runtime  # type: ignore[attr-defined]
        c.clock = clock  # type: ignore[attr-defined]
        yield c
    await runtime.aclose()


async def queued(client: httpx.AsyncClient) -> int:
    async with client.runtime.db.begin() as conn:  # type: ignore[attr-defined]
        return (await jobs.stats(conn, now=client.clock())).depth  # type: ignore[attr-defined]


def requested() -> bytes:
    return event("password_reset.requested", email="jane@example.com")


def verify() -> bytes:
    return event("password_reset.verify", ticket="not-a-ticket")


def confirm() -> bytes:
    return event("password_reset.confirm", ticket="not-a-ticket", new_password="N3w-Passw0rd")


async def send(client: httpx.AsyncClient, body: bytes, event_id: str) -> httpx.Response:
    clock: Clock = client.clock  # type: ignore[attr-defined]
    return await post(client, body, signed(body, clock, event_id=event_id))


async def test_a_verify_id_reused_for_requested_queues_nothing(client: httpx.AsyncClient) -> None:
    first = await send(client, verify(), "msg_shared")
    assert (first.status_code, first.json()) == (200, UNKNOWN)
    second = await send(client, requested(), "msg_shared")
    assert (second.status_code, second.content) == (200, first.content)
    assert second.headers["idempotent-replayed"] == "true"
    assert await queued(client) == 0  # no job, so no mail


@pytest.mark.parametrize("later", [verify, confirm])
async def test_a_requested_id_reused_for_verify_or_confirm_replays_the_202(
    client: httpx.AsyncClient, later: object
) -> None:
    first = await send(client, requested(), "msg_shared")
    assert (first.status_code, first.json()) == (202, ACCEPTED)
    second = await send(client, later(), "msg_shared")  # type: ignore[operator]
    assert (second.status_code, second.content) == (202, first.content)
    assert second.headers["idempotent-replayed"] == "true"
    assert await queued(client) == 1


async def test_a_confirm_id_reused_for_requested_replays_the_confirm_answer(
    client: httpx.AsyncClient,
) -> None:
    first = await send(client, confirm(), "msg_shared")
    assert first.status_code == 410
    second = await send(client, requested(), "msg_shared")
    assert (second.status_code, second.content) == (410, first.content)
    assert second.headers["idempotent-replayed"] == "true"
    assert await queued(client) == 0


async def test_same_type_replays_still_work(client: httpx.AsyncClient) -> None:
    first = await send(client, verify(), "msg_v")
    again = await send(client, verify(), "msg_v")
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


async def test_concurrent_types_for_one_id_have_one_effect(client: httpx.AsyncClient) -> None:
    """Requested and verify with one id at once: either the job is queued and verify
    gets the replayed 202, or verify ran and requested queued nothing. Never both."""
    rounds = 25
    for i in range(rounds):
        event_id = f"msg_race_{i}"
        before = await queued(client)
        req, ver = await asyncio.gather(
            send(client, requested(), event_id), send(client, verify(), event_id)
        )
        made_job = await queued(client) - before
        verify_ran = ver.status_code == 200 and "idempotent-replayed" not in ver.headers
        requested_ran = req.status_code == 202 and "idempotent-replayed" not in req.headers
        assert made_job == int(requested_ran), (req.status_code, req.text, ver.text)
        assert verify_ran != requested_ran, (req.status_code, req.text, ver.status_code, ver.text)
        if verify_ran:
            # Requested got the verify answer again, or a transient 409 while verify ran.
            assert req.status_code in (200, 409)
            if req.status_code == 200:
                assert json.loads(req.content) == UNKNOWN
        else:
            assert (ver.status_code, ver.json()) == (202, ACCEPTED)
