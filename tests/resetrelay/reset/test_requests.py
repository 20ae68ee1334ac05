"""`requested` at the door: one durable job per event id, the same answer for all."""

from __future__ import annotations

import anyio
import pytest
from sqlalchemy import select

from resetrelay.metrics import Metrics
from resetrelay.reset.outcomes import Accepted
from resetrelay.reset.requests import REQUESTED, Requested, recipient
from resetrelay.runtime import Runtime
from storage.database import Database
from storage.models import Job
from storage.sql import table

pytestmark = pytest.mark.anyio
_jobs = table(Job)


async def _queued(db: Database) -> list[Requested]:
    async with db.read() as conn:
        rows = await conn.execute(select(_jobs.c.payload).where(_jobs.c.kind == REQUESTED.name))
        return [REQUESTED.decode(row.payload) for row in rows]


async def test_one_job_per_event_id(runtime: Runtime) -> None:
    requests = runtime.requests
    first = await requests.submit("msg_1", "jane@example.com", "de", "203.0.113.9")
    again = await requests.submit("msg_1", "jane@example.com", "de", "203.0.113.9")
    assert first == Accepted(replayed=False)
    assert again == Accepted(replayed=True)
    assert await _queued(runtime.db) == [Requested("jane@example.com", "de", "203.0.113.9")]


async def test_concurrent_requests_share_commits_and_twins_queue_once(runtime: Runtime) -> None:
    answers: list[Accepted] = []

    async def send(event_id: str) -> None:
        answers.append(await runtime.requests.submit(event_id, "a@example.com", None, None))

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(send, f"msg_{i % 30}")  # ten ids arrive twice
    assert len(answers) == 40
    assert sum(a.replayed for a in answers) == 10
    assert len(await _queued(runtime.db)) == 30


# -- the address: exactly one mailbox, or none ------------------------------------------

# Strings an Auth0 user's `email` can hold (an admin, an import, the Management API)
# that would reach more than one mailbox, or none, if used as a recipient.
NOT_ONE_MAILBOX = [
    "a@x.example, evil@y.example",
    "a@x.example,evil@y.example",
    "a@x.example;evil@y.example",
    "Name <evil@y.example>",
    "<evil@y.example>",
    '"a@x.example" <evil@y.example>',
    "friends: a@x.example, evil@y.example;",
    "undisclosed-recipients:;",
    "a@x.example (evil@y.example)",
    "a@x.example\nBcc: evil@y.example",
    "a@x.example\r\n",
    " a@x.example",
    "a@x.example\u2028",
    '"a b"@x.example',
    "user@[127.0.0.1]",
    "a@localhost",
    "a@x",
    "a@@x.example",
    "",
    "no-at-sign",
]


@pytest.mark.parametrize("email", NOT_ONE_MAILBOX)
def test_an_address_that_is_not_one_mailbox_is_none(email: str) -> None:
    metrics = Metrics()
    assert recipient(email, "auth0|x", metrics) is None
    assert (
        metrics.registry.get_sample_value("resetrelay_mails_total", {"event": "bad_address"}) == 1
    )


@pytest.mark.parametrize(
    "email",
    ["jane@example.com", "j.o+tag@mail.example.co.uk", "jöran@example.com", "用户@例子.广告"],
)
def test_one_mailbox_is_the_address(email: str) -> None:
    assert recipient(email, "auth0|x", Metrics()) == email
