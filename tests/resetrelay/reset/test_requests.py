"""`requested` at the door: one durable job per event id, the same answer for all;
and the lookup of the job, over the Auth0 emulator, for accounts Auth0 has linked."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
from sqlalchemy import select

from devkit.emulator import create_emulator
from resetrelay.metrics import Metrics
from resetrelay.reset.outcomes import Accepted
from resetrelay.reset.requests import GATHER_TURNS, REQUESTED, Intake, Requested, recipient
from resetrelay.runtime import Runtime
from resetrelay.webhooks import sign
from storage import intake
from storage.database import Database
from storage.models import Job
from storage.sql import table
from tests.conftest import WEBHOOK_SECRET, Clock
from tests.support import serve_in_thread

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


class _Batches:
    """storage.intake.record's stand-in: remembers each batch's ids, all new."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    async def __call__(self, db: Database, batch: object, items: Any, *, now: object) -> set[str]:
        self.seen.append([event_id for event_id, _ in items])
        return {event_id for event_id, _ in items}


def _intake(batches: _Batches, max_batch: int = 500) -> Intake:
    return Intake(
        None,  # type: ignore[arg-type]  # the stand-in never touches a database
        Clock(),
        source="website",
        job_kind=REQUESTED,
        max_batch=max_batch,
        record=batches,
    )


async def test_requests_arriving_over_the_next_loop_turns_join_the_batch() -> None:
    # As when a poll of the sockets brings more requests while the first ones are
    # being handled: each starts one turn of the event loop after the previous one.
    batches = _Batches()
    intake = _intake(batches)

    async def arrive(turns: int, event_id: str) -> None:
        for _ in range(turns):
            await anyio.lowlevel.checkpoint()
        assert await intake.submit(event_id, {})

    async with anyio.create_task_group() as tg:
        for turns, event_id in enumerate(["first", "second", "third"]):
            tg.start_soon(arrive, turns, event_id)
    assert batches.seen == [["first", "second", "third"]]


async def test_a_lone_request_commits_within_a_few_loop_turns_and_the_batch_size_holds() -> None:
    batches = _Batches()
    intake = _intake(batches, max_batch=2)
    answered = anyio.Event()

    async def lone() -> None:
        assert await intake.submit("alone", {})
        answered.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lone)
        # Turns of the loop only, no time: a timer would not have fired by now.
        for _ in range(GATHER_TURNS + 4):
            await anyio.lowlevel.checkpoint()
        assert answered.is_set()
    assert batches.seen == [["alone"]]
    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(intake.submit, f"msg_{i}", {})
    assert batches.seen[1:] == [["msg_0", "msg_1"], ["msg_2", "msg_3"], ["msg_4"]]


async def test_a_batch_stored_in_part_answers_the_stored_ones_and_fails_the_rest() -> None:
    async def part(db: Database, batch: object, items: Any, *, now: object) -> set[str]:
        raise intake.PartlyStored("DataError", {"stored"})

    queue = Intake(
        None,  # type: ignore[arg-type]  # the stand-in never touches a database
        Clock(),
        source="website",
        job_kind=REQUESTED,
        record=part,
    )
    answers = await asyncio.gather(
        queue.submit("stored", {}),
        queue.submit("lost", {}),
        queue.submit("stored", {}),  # its twin: not fresh, nothing queued twice
        return_exceptions=True,
    )
    assert answers[0] is True and answers[2] is False
    assert isinstance(answers[1], intake.PartlyStored)  # answered 503: send it again


def test_an_intake_whose_loop_closed_commits_on_the_next_one() -> None:
    # As between two tests sharing a runtime: the first loop closes with a request
    # submitted and its committer not yet run.
    batches = _Batches()
    intake = _intake(batches)
    old = asyncio.new_event_loop()
    stranded = old.create_task(intake.submit("stranded", {}))
    old.run_until_complete(asyncio.sleep(0))
    assert not stranded.done() and batches.seen == []  # queued, not committed
    old.close()
    # Bounded: before the fix this waited for the old loop's committer for ever.
    assert asyncio.run(asyncio.wait_for(intake.submit("fresh", {}), timeout=10))
    assert batches.seen == [["fresh"]]


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


# -- the lookup: a social primary account with our database identity linked ------------

KEY = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
DB = "Username-Password-Authentication"
LENA = "lena@example.com"
LINKED_USERS = [
    # Linked by Auth0 with the social identity as the primary: user_id is the social id.
    {"email": LENA, "password": "Old-Passw0rd!", "social": "google-oauth2",
     "primary": "social", "user_id": "google-oauth2|1057", "database_user_id": "65f0c2"},
    {"email": "sam@example.com", "social": "google-oauth2", "user_id": "google-oauth2|sam"},
]  # fmt: skip


@pytest.fixture
def emulator_url() -> Iterator[str]:
    with serve_in_thread(create_emulator(domain="acme.eu.auth0.com", users=LINKED_USERS)) as url:
        yield url


async def _send(client: httpx.AsyncClient, clock: Clock, type_: str, **data: Any) -> httpx.Response:
    body = json.dumps({"type": type_, "timestamp": "2026-11-28T10:00:00Z", "data": data}).encode()
    headers = sign(KEY, f"msg_{uuid.uuid4().hex}", int(clock().timestamp()), body)
    return await client.post(
        "/hooks/website", content=body, headers={**headers, "content-type": "application/json"}
    )


async def test_a_social_primary_resets_its_linked_database_password(
    service: Callable[[str], Any], emulator_url: str, clock: Clock
) -> None:
    # The Management API's Update a User: "If you are updating ... password of a
    # secondary identity, you need to specify the connection property too". So the
    # database identity's password is set on the primary (social) user id, naming our
    # connection: such a user is a database user of ours and gets a reset link.
    async with service(emulator_url) as (client, runtime, smtp):
        assert (
            await _send(client, clock, "password_reset.requested", email=LENA)
        ).status_code == 202
        await runtime.worker.drain()
        (mail,) = [r.message() for r in smtp.handler.received]
        assert mail["To"] == LENA
        text_part = mail.get_body(("plain",)).get_content()
        link = next(w for w in text_part.split() if w.startswith("https://www.example.com/"))
        ticket = parse_qs(urlsplit(link).query)["ticket"][0]
        done = await _send(
            client,
            clock,
            "password_reset.confirm",
            ticket=ticket,
            new_password="Corr3ct-Horse-Battery",
        )
        assert (done.status_code, done.json()) == (200, {"status": "completed"})
        # A social-only address still gets nothing (and the same 202).
        assert (
            await _send(client, clock, "password_reset.requested", email="sam@example.com")
        ).status_code == 202
        await runtime.worker.drain()
        assert all(r.rcpt_tos == [LENA] for r in smtp.handler.received)
    requests = httpx.get(f"{emulator_url}/__emulator/requests").json()
    (patch,) = [r for r in requests if r["method"] == "PATCH" and r.get("has_password")]
    assert patch["raw_path"] == "/api/v2/users/google-oauth2%7C1057"
    assert patch["json"]["connection"] == DB
    user = httpx.get(f"{emulator_url}/__emulator/users/google-oauth2|1057").json()
    assert user["password_changed"] == 1
