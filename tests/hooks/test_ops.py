"""Readiness that never claims what is not true, and metrics that are not public."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import httpx
import pytest

from hooks.app import create_app
from resetrelay.readiness import Readiness, run_inline_worker
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from storage.database import Database
from storage.migrate import upgrade
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


def no_auth0(request: httpx.Request) -> httpx.Response:
    raise AssertionError("no Auth0 call expected")


async def _client(
    settings: Settings, clock: Clock, client: tuple[str, int] = ("127.0.0.1", 5000)
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    runtime = Runtime.build(settings, now=clock, auth0_transport=httpx.MockTransport(no_auth0))
    app = create_app(settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c, runtime
    await runtime.aclose()


async def test_an_unmigrated_database_is_not_ready(
    tmp_path: Path, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    async for client, _ in _client(settings_for(url), clock):
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        body = answer.json()
        assert body["error"] == "not_ready"
        assert body["problems"] == ["the database has no schema yet: run `resetrelay migrate`"]
        upgrade(settings_for(url).database_url)
        assert (await client.get("/readyz")).status_code == 200


async def test_a_dead_inline_worker_is_not_ready_and_is_restarted(
    tmp_path: Path, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/w.db", INLINE_WORKER="true")
    upgrade(settings.database_url)
    runtime = Runtime.build(settings, now=clock)
    readiness = runtime.readiness
    assert "has not started" in (await readiness.problems())[0]
    stop = anyio.Event()

    class DiesOnce:
        runs = 0

        async def run(self, stop: anyio.Event, *, grace: float = 0) -> None:
            self.runs += 1
            if self.runs == 1:
                raise RuntimeError("boom")
            await stop.wait()

    worker = DiesOnce()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_inline_worker, worker, readiness, stop)
        await anyio.sleep(0.1)
        assert (await readiness.problems()) == ["the inline worker stopped: RuntimeError: boom"]
        await anyio.sleep(1.2)  # the first retry comes after a second
        assert worker.runs == 2 and await readiness.problems() == []
        stop.set()
    await runtime.aclose()


async def test_readiness_without_an_inline_worker_asks_only_the_database(
    database: Database,
) -> None:
    assert await Readiness(database, inline_worker=False).problems() == []


async def test_metrics_answer_loopback_clients_only_without_a_token(
    tmp_path: Path, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/m.db")
    async for client, _ in _client(settings, clock, client=("203.0.113.9", 4000)):
        answer = await client.get("/metrics")
        assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
    async for client, _ in _client(settings, clock, client=("::1", 4000)):
        assert (await client.get("/metrics")).status_code == 200


async def test_metrics_want_the_token_when_one_is_set(
    tmp_path: Path, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/m.db", METRICS_TOKEN="s3cret-metrics")
    async for client, _ in _client(settings, clock, client=("203.0.113.9", 4000)):
        assert (await client.get("/metrics")).status_code == 401
        wrong = {"authorization": "Bearer s3cret-metricz"}
        assert (await client.get("/metrics", headers=wrong)).status_code == 401
        right = {"authorization": "Bearer s3cret-metrics"}
        answer = await client.get("/metrics", headers=right)
        assert answer.status_code == 200
        assert "_created" not in answer.text


async def test_every_answer_is_counted_by_route_and_status(
    tmp_path: Path, clock: Clock, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/never-migrated.db")
    async for client, runtime in _client(settings, clock):
        await client.post("/hooks/website", content=b"{}", headers={"content-type": "x/y"})
        await client.get("/nope/../../etc")
        await client.get("/readyz")  # no schema yet: 503
        counted = {
            (route, status): runtime.metrics.registry.get_sample_value(
                "resetrelay_answers_total", {"route": route, "status": status}
            )
            for route, status in (("/hooks/website", "415"), ("other", "404"), ("/readyz", "503"))
        }
        assert set(counted.values()) == {1.0}
