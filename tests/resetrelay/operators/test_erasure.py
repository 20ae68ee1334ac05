"""`resetrelay forget` through the real CLI (a subprocess) on a database filled by
the real flow: the service in-process over the Auth0 emulator (real HTTP) and a
real aiosmtpd. Afterwards no text or JSON column of any table holds the address
or the user id; the other user's rows stay; one audit line, without either."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import JSON, String, Text, cast, create_engine, select

from hooks.app import create_app
from resetrelay.audit import Subjects
from resetrelay.runtime import Runtime
from resetrelay.settings import Settings
from resetrelay.webhooks import sign
from storage import audit
from storage.database import Database
from storage.migrate import sync_url
from storage.models import metadata
from tests.conftest import SECRET_KEY, WEBHOOK_SECRET, Clock, make_env
from tests.mail.servers import Recorder, StartServer
from tests.support import serve_in_thread

pytestmark = pytest.mark.anyio
KEY = __import__("base64").b64decode(WEBHOOK_SECRET.removeprefix("whsec_") + "==")
JANE, JANE_ID = "jane@example.com", "auth0|jane"
BOB, BOB_ID = "bob@example.com", "auth0|bob"
STRONG = "Corr3ct-Horse-Battery"


@pytest.fixture
def emulator_url() -> Iterator[str]:
    from devkit.emulator import create_emulator

    users = [
        {"email": JANE, "password": "Old-Passw0rd!", "user_id": JANE_ID},
        {"email": BOB, "password": "Old-Passw0rd!", "user_id": BOB_ID},
    ]
    with serve_in_thread(create_emulator(domain="acme.eu.auth0.com", users=users)) as url:
        yield url


@pytest.fixture
async def filled(
    database_url: str,
    clock: Clock,
    emulator_url: str,
    smtp_server: StartServer,
    settings_for: Callable[..., Settings],
) -> Recorder:
    """Jane resets her password (two requests, a confirm, the follow-ups, a website
    event that cannot be delivered); Bob asks once. Returns the mailbox."""
    smtp = smtp_server(Recorder())
    settings = settings_for(
        database_url,
        AUTH0_BASE_URL=emulator_url,
        SMTP_URL=smtp.url(),
        WEBSITE_EVENTS_URL="http://127.0.0.1:9/unreachable",
    )
    runtime = Runtime.build(settings, now=clock)
    transport = httpx.ASGITransport(app=create_app(settings, runtime=runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://resetrelay.test") as client:

        async def send(type_: str, **data: Any) -> httpx.Response:
            body = json.dumps({"type": type_, "data": data}).encode()
            headers = sign(KEY, f"msg_{uuid.uuid4().hex}", int(clock().timestamp()), body)
            headers["content-type"] = "application/json"
            return await client.post("/hooks/website", content=body, headers=headers)

        for email in ("Jane@Example.com", JANE, BOB):
            assert (await send("password_reset.requested", email=email)).status_code == 202
            clock.advance(1)
            await runtime.worker.drain()
        plain = smtp.handler.received[1].message().get_body(("plain",))
        assert plain is not None
        ticket = plain.get_content().split("ticket=", 1)[1].split()[0]
        assert (await send("password_reset.verify", ticket=ticket)).status_code == 200
        done = await send("password_reset.confirm", ticket=ticket, new_password=STRONG)
        assert done.status_code == 200
        await runtime.worker.drain()
    await runtime.aclose()
    assert len(smtp.handler.received) == 4  # two resets and a "changed" for Jane, Bob's
    return smtp.handler


def holding(database_url: str, *values: str) -> dict[str, int]:
    """Rows that hold any of `values` (any case), by table and column: every text or
    JSON column of every table."""
    engine = create_engine(sync_url(database_url))
    found: dict[str, int] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, String | Text | JSON):
                    continue
                for (text,) in conn.execute(select(cast(column, Text))):
                    if text and any(v.lower() in text.lower() for v in values):
                        name = f"{table.name}.{column.name}"
                        found[name] = found.get(name, 0) + 1
    engine.dispose()
    return found


def forget(database_url: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resetrelay", "forget", *args],
        env=make_env(DATABASE_URL=database_url, RESETRELAY_OPERATOR="ana"),
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_forget_by_email_leaves_no_row_holding_the_address_or_the_user_id(
    filled: Recorder, database_url: str, database: Database
) -> None:
    before = holding(database_url, JANE, JANE_ID)
    # The flow wrote them where expected: tickets, mails, jobs' payloads.
    assert {"tickets.email", "tickets.user_id", "mail_messages.recipient"} <= set(before)
    assert "jobs.payload" in before
    bob_before = holding(database_url, BOB, BOB_ID)

    result = forget(database_url, "--email", "JANE@example.com", "--yes")

    assert result.returncode == 0, result.stderr
    assert holding(database_url, JANE, JANE_ID) == {}
    assert holding(database_url, BOB, BOB_ID) == bob_before  # nobody else's rows
    assert JANE not in result.stdout and "j***@example.com" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("  ")]
    assert rows[0] == ["table", "rows"]
    counts = {name: int(n) for name, n in rows[1:]}
    assert counts["tickets"] == 2 and counts["mail_messages"] == 3 and counts["jobs"] >= 7
    async with database.read() as conn:
        (line,) = await audit.for_subjects(conn, [Subjects(SECRET_KEY).email(JANE)])
    assert (line.action, line.actor, line.rows) == ("forget", "ana", sum(counts.values()))
    assert JANE not in (line.detail or "") and JANE_ID not in (line.detail or "")


async def test_forget_by_user_id_finds_the_address_through_our_tickets(
    filled: Recorder, database_url: str
) -> None:
    result = forget(database_url, "--user", JANE_ID, "--yes")
    assert result.returncode == 0, result.stderr
    assert holding(database_url, JANE, JANE_ID) == {}
    assert holding(database_url, BOB, BOB_ID) != {}


async def test_forget_asks_first_and_no_erases_nothing(filled: Recorder, database_url: str) -> None:
    before = holding(database_url, JANE, JANE_ID)
    refused = forget(database_url, "--email", JANE, stdin=b"n\n")
    assert refused.returncode == 1
    assert "tickets" in refused.stdout and "nothing erased" in refused.stdout
    assert holding(database_url, JANE, JANE_ID) == before
    agreed = forget(database_url, "--email", JANE, stdin=b"y\n")
    assert agreed.returncode == 0, agreed.stderr
    assert holding(database_url, JANE, JANE_ID) == {}


def test_forget_without_one_person_is_one_clear_line(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    nobody = forget(url, "--email", "   ", "--yes")
    assert nobody.returncode == 1
    assert nobody.stderr.strip() == (
        "resetrelay: name exactly one person: --email ADDRESS or --user USER_ID"
    )
    not_an_address = forget(url, "--email", "jane", "--yes")
    assert (not_an_address.returncode, not_an_address.stderr.count("\n")) == (1, 1)
    both = forget(url, "--email", JANE, "--user", JANE_ID)
    assert both.returncode == 2  # argparse: the two are exclusive


def test_forget_against_an_unreachable_database_is_one_line() -> None:
    result = forget("postgresql://nobody@127.0.0.1:1/none", "--email", JANE, "--yes")
    assert result.returncode == 1
    assert result.stderr.startswith("resetrelay: the database does not answer")
    assert result.stderr.count("\n") == 1 and JANE not in result.stderr
