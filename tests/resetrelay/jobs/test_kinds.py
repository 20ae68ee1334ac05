"""Typed job kinds: payloads round-trip through the queue; the registry builds the
worker's table once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from resetrelay.jobs.kinds import BatchJobKind, JobKind, Kind, Registry, enqueue, enqueue_many
from resetrelay.jobs.run import JobRun
from storage import jobs
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Greeting:
    name: str
    times: int = 1
    note: str | None = None


GREET = Kind("test.greet", Greeting, max_attempts=3, backoff_initial=5.0)


def test_encode_leaves_out_what_is_unset_and_decode_fills_defaults() -> None:
    assert GREET.encode(Greeting("jane")) == {"name": "jane", "times": 1}
    assert GREET.decode({"name": "jane"}) == Greeting("jane")
    # Keys an older version wrote, and this one does not know, are ignored.
    assert GREET.decode({"name": "sam", "times": 2, "legacy": True}) == Greeting("sam", 2)


async def test_enqueue_writes_name_payload_and_attempts(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        await enqueue(conn, GREET, Greeting("jane", note="hi"), now=clock())
        await enqueue_many(conn, GREET, [Greeting("a"), Greeting("b")], now=clock())
    claimed = await database.run(
        lambda conn: jobs.claim_sync(conn, now=clock(), lease=timedelta(seconds=60), limit=10)
    )
    assert sorted(GREET.decode(job.payload).name for job in claimed) == ["a", "b", "jane"]
    assert {job.kind for job in claimed} == {"test.greet"}
    assert {job.max_attempts for job in claimed} == {3}


async def test_registry_binds_handlers_with_their_payloads() -> None:
    seen: list[Greeting] = []

    async def greet(run: JobRun, greeting: Greeting) -> None:
        seen.append(greeting)

    async def batch(runs: list[JobRun]) -> None:
        return None

    mails = Kind("test.mail", Greeting, batch_limit=7)
    table = Registry().add(GREET, greet).add_batch(mails, batch).table()
    entry = table["test.greet"]
    assert isinstance(entry, JobKind) and entry.backoff_initial == 5.0
    assert isinstance(table["test.mail"], BatchJobKind) and table["test.mail"].limit == 7
    job = jobs.ClaimedJob(1, "test.greet", {"name": "jane"}, 1, 3, "lease", Clock()())
    await entry.handler(JobRun(job, Clock()))
    assert seen == [Greeting("jane")]


def test_registry_refuses_a_kind_twice_and_a_batch_without_a_limit() -> None:
    async def greet(run: JobRun, greeting: Greeting) -> None:
        return None

    registry = Registry().add(GREET, greet)
    with pytest.raises(ValueError, match="twice"):
        registry.add(GREET, greet)
    with pytest.raises(ValueError, match="batch_limit"):
        registry.add_batch(Kind("test.other", Greeting), lambda runs: greet)  # type: ignore[arg-type, return-value]
