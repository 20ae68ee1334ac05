"""`resetrelay inspect` through the real CLI, after a whole reset over the emulator
and a real SMTP server."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.resetrelay.operators.conftest import JANE, STRONG, Ops

pytestmark = pytest.mark.anyio


async def _complete_a_reset(ops: Ops) -> str:
    await ops.request(JANE, locale="de")
    ticket = ops.ticket_from_last_mail()
    assert (await ops.send("password_reset.verify", ticket=ticket)).json()["valid"] is True
    done = await ops.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert done.status_code == 200
    await ops.drain()
    return ticket


async def test_inspect_shows_tickets_mails_follow_ups_and_events(ops: Ops) -> None:
    ticket = await _complete_a_reset(ops)
    await ops.request("kim@example.com")  # someone else: not in Jane's history
    found = await ops.cli_json("inspect", "--email", "Jane@Example.com")

    assert found["query"] == {"email": JANE, "user_id": None}
    assert found["user_ids"] == ["auth0|jane"] and found["emails"] == [JANE]
    (row,) = found["tickets"]
    assert (row["purpose"], row["locale"], row["state"], row["status"]) == (
        "reset",
        "de",
        "used",
        "used",
    )
    assert row["opened_at"] and row["finished_at"] and row["revoked_reason"] is None
    mails = {m["template"]: m for m in found["mails"]}
    assert set(mails) == {"reset", "changed"}
    assert mails["reset"]["ticket_ref"] == row["ref"] and mails["changed"]["ticket_ref"] is None
    assert all(m["state"] == "sent" and m["recipient"] == JANE for m in mails.values())
    delivered = {m["Message-ID"] for m in ops.mails()}
    assert {m["message_id"] for m in mails.values()} <= delivered
    follow_ups = {f["what"]: f["state"] for f in found["follow_ups"]}
    assert follow_ups == {
        "unblock": "done",
        "revoke sessions": "done",
        "mark email verified": "done",
    }
    (event,) = found["inbound_events"]
    assert (event["source"], event["event"], event["note"]) == (
        "website",
        "password_reset.requested",
        "counted",
    )
    assert found["operator_actions"] == []

    # Never the ticket, nor anything stored to find it by.
    async with ops.runtime.db.begin() as conn:
        stored = (await conn.execute(text("SELECT id, lookup_hash FROM tickets"))).all()
    table = await ops.cli("inspect", "--user", "auth0|jane")
    assert table.returncode == 0, table.stderr
    for output in (table.stdout, str(found)):
        assert ticket not in output
        for ticket_id, lookup_hash in stored:
            assert lookup_hash not in output and ticket_id not in output
        assert "kim@example.com" not in output
    for heading in ("Tickets", "Mails", "Auth0 follow-ups", "Inbound events", "Operator actions"):
        assert f"\n{heading}\n" in table.stdout
    assert "Reset history of auth0|jane (Auth0 users: auth0|jane)" in table.stdout
    assert JANE in table.stdout  # whole, for the person asked about


async def test_inspect_an_unknown_address_and_one_over_the_rate_limit(ops: Ops) -> None:
    for _ in range(4):  # the fourth is over the per-address limit (3 an hour)
        await ops.request("nobody@example.com")
    found = await ops.cli_json("inspect", "--email", "nobody@example.com")
    assert found["user_ids"] == [] and found["tickets"] == [] and found["mails"] == []
    notes = [e["note"] for e in found["inbound_events"]]
    assert notes == ["counted", "counted", "counted", "over a rate limit"]

    empty = await ops.cli("inspect", "--email", "never@example.com")
    assert empty.returncode == 0
    assert empty.stdout.splitlines() == [
        "Reset history of never@example.com (Auth0 users: none found)",
        "Nothing stored about this person.",
    ]


async def test_inspect_needs_one_person_and_the_secret_key(ops: Ops) -> None:
    both = await ops.cli("inspect", "--email", JANE, "--user", "auth0|jane")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    none = await ops.cli("inspect")
    assert none.returncode == 2 and "one of the arguments --email --user is required" in none.stderr
    keyless = await ops.cli("inspect", "--email", JANE, SECRET_KEY="")
    assert keyless.returncode == 2
    assert keyless.stderr == "resetrelay: SECRET_KEY is required but not set\n"
