"""`resetrelay jobs list | retry | purge` and `resetrelay outbox stats` through the
real CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest

from resetrelay.audit import Operator
from resetrelay.operators import queue
from storage import jobs
from storage.audit import recent
from storage.database import Database
from tests.conftest import Clock
from tests.resetrelay.operators.conftest import JANE, Ops

pytestmark = pytest.mark.anyio


async def test_jobs_list_masks_every_address(ops: Ops) -> None:
    await ops.request(JANE, locale="fr")
    table = await ops.cli("jobs", "list")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == [
        *("id", "kind", "state", "attempts", "run", "after", "updated", "last", "error"),
        "payload",
    ]
    assert "j***@example.com" in table.stdout and JANE not in table.stdout
    listed = await ops.cli_json("jobs", "list", "--kind", "reset.requested")
    (job,) = listed
    assert job["state"] == "done" and job["payload"]["email"] == "j***@example.com"
    assert job["payload"]["locale"] == "fr"
    assert [j["kind"] for j in await ops.cli_json("jobs", "list", "--limit", "1")] == ["mail.send"]
    assert await ops.cli_json("jobs", "list", "--state", "dead") == []


async def test_a_dead_mail_retried_goes_out(ops: Ops) -> None:
    ops.refuse_next()
    await ops.request(JANE)
    assert ops.mails() == []
    (dead,) = await ops.cli_json("jobs", "list", "--state", "dead")
    assert dead["kind"] == "mail.send" and dead["attempts"] == 1
    assert "550" in dead["last_error"]
    stats = await ops.cli_json("outbox", "stats")
    assert stats["by_state_template"] == [{"state": "dead", "template": "reset", "count": 1}]

    result = await ops.cli("jobs", "retry", str(dead["id"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"resetrelay: requeued 1 dead job for one more attempt: {dead['id']}",
        "resetrelay: 1 dead mail(s) queued again with their jobs",
    ]
    (queued,) = await ops.cli_json("jobs", "list", "--state", "queued")
    assert queued["id"] == dead["id"] and queued["attempts"] == queued["max_attempts"] - 1
    stats = await ops.cli_json("outbox", "stats")
    assert stats["by_state_template"] == [{"state": "queued", "template": "reset", "count": 1}]
    assert stats["oldest_queued_age_seconds"] is not None

    ops.clock.advance(60)  # the command queued it at the wall clock's now
    await ops.drain()
    (mail,) = ops.mails()
    assert mail["To"] == JANE
    found = await ops.cli_json("inspect", "--email", JANE)
    (sent,) = found["mails"]
    assert (sent["state"], sent["attempts"]) == ("sent", 2)
    (action,) = found["operator_actions"] or [None]
    assert action is None  # jobs.retry names no person; it is in the trail all the same
    text = await ops.cli("outbox", "stats")
    lines = text.stdout.splitlines()
    assert lines[:4] == [
        "Outbox by state and template",
        "state  reset  total",
        "-----  -----  -----",
        "sent   1      1",
    ]
    assert "Oldest mail waiting to go out: -" in lines


async def test_retry_leaves_jobs_that_are_not_dead_alone(ops: Ops) -> None:
    await ops.request(JANE)
    (done,) = await ops.cli_json("jobs", "list", "--kind", "mail.send")
    result = await ops.cli("jobs", "retry", str(done["id"]), "999999")
    assert result.returncode == 1
    assert result.stdout == "resetrelay: requeued 0 dead jobs for one more attempt: none\n"
    assert result.stderr == (
        f"resetrelay: not dead (or no such job), left alone: {done['id']}, 999999\n"
    )
    nothing = await ops.cli("jobs", "retry")
    assert (nothing.returncode, nothing.stderr) == (
        1,
        "resetrelay: name the jobs to retry (IDs) or pass --all-dead\n",
    )
    everything = await ops.cli("jobs", "retry", "--all-dead")
    assert everything.returncode == 0
    assert everything.stdout == "resetrelay: requeued 0 dead jobs for one more attempt: none\n"


async def test_purge_deletes_finished_jobs_only(ops: Ops) -> None:
    await ops.request(JANE)
    ops.refuse_next()
    await ops.request("kim@example.com")  # its mail's job dies
    await ops.send("password_reset.requested", email="sam@example.com")  # stays queued
    kinds = {(j["kind"], j["state"]) for j in await ops.cli_json("jobs", "list")}
    assert ("mail.send", "dead") in kinds and ("reset.requested", "queued") in kinds

    young = await ops.cli("jobs", "purge", "--older-than", "2w")
    assert young.stdout == "resetrelay: deleted 0 finished jobs (done or dead)\n"
    result = await ops.cli("jobs", "purge", "--older-than", "0s")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "resetrelay: deleted 4 finished jobs (done or dead)\n"
    left = await ops.cli_json("jobs", "list")
    assert [(j["kind"], j["state"]) for j in left] == [("reset.requested", "queued")]
    bad = await ops.cli("jobs", "purge", "--older-than", "soon")
    assert bad.returncode == 1
    assert bad.stderr == (
        "resetrelay: --older-than: 'soon' is not a duration like 30d, 12h, 15m, 90s or 2w\n"
    )

    async with ops.runtime.db.begin() as conn:
        lines = await recent(conn)
    assert [(a.action, a.rows, a.actor) for a in lines] == [
        ("jobs.purge", 4, "ana@support"),
        ("jobs.purge", 0, "ana@support"),
    ]


async def test_purge_deletes_a_backlog_in_short_audited_batches(
    database: Database, clock: Clock
) -> None:
    async with database.begin() as conn:
        for n in range(5):
            await jobs.enqueue(conn, "k", {"n": n}, now=clock())
        claimed = await jobs.claim(conn, now=clock(), lease=timedelta(seconds=30), limit=5)
        assert await jobs.complete_many(conn, claimed, now=clock()) == {j.id for j in claimed}
    clock.advance(10)
    ana = Operator("ana", "host")
    deleted = await queue.purge(database, ana, now=clock(), older_than=timedelta(0), batch=2)
    assert deleted == 5
    again = await queue.purge(database, ana, now=clock(), older_than=timedelta(0), batch=2)
    assert again == 0
    async with database.begin() as conn:
        lines = await recent(conn)
        assert await jobs.listing(conn) == []
    assert [line.rows for line in reversed(lines)] == [2, 2, 1, 0]
