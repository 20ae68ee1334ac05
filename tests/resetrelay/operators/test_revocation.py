"""`resetrelay tickets revoke` through the real CLI."""

from __future__ import annotations

import pytest

from tests.resetrelay.operators.conftest import JANE, STRONG, Ops

pytestmark = pytest.mark.anyio


async def test_revoke_by_address_voids_the_open_ticket_and_is_audited(ops: Ops) -> None:
    await ops.request(JANE)
    ticket = ops.ticket_from_last_mail()
    result = await ops.cli("tickets", "revoke", "--email", JANE, "--reason", "support call #42")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "resetrelay: revoked 1 open ticket of 1 user\n"

    verify = await ops.send("password_reset.verify", ticket=ticket)
    assert verify.json() == {"valid": False, "reason": "revoked"}
    confirm = await ops.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert confirm.status_code == 410 and confirm.json()["reason"] == "revoked"

    found = await ops.cli_json("inspect", "--user", "auth0|jane")
    (row,) = found["tickets"]
    assert (row["state"], row["revoked_reason"]) == ("revoked", "operator")
    (action,) = found["operator_actions"]
    assert (action["action"], action["rows"], action["actor"], action["detail"]) == (
        "tickets.revoke",
        1,
        "ana@support",
        "support call #42",
    )
    # The audit line holds a pseudonym of the person, never the address.
    async with ops.runtime.db.begin() as conn:
        from storage.audit import recent

        (line,) = await recent(conn)
    assert line.subject is not None and "jane" not in line.subject


async def test_revoke_by_user_leaves_used_tickets_and_other_users_alone(ops: Ops) -> None:
    await ops.request(JANE)
    used = ops.ticket_from_last_mail()
    assert (
        await ops.send("password_reset.confirm", ticket=used, new_password=STRONG)
    ).status_code == 200
    ops.clock.advance(60)
    await ops.request(JANE)
    await ops.request("kim@example.com")
    kims = ops.ticket_from_last_mail()

    result = await ops.cli("tickets", "revoke", "--user", "auth0|jane")
    assert result.stdout == "resetrelay: revoked 1 open ticket of 1 user\n"
    again = await ops.cli("tickets", "revoke", "--user", "auth0|jane")
    assert again.stdout == "resetrelay: revoked 0 open tickets of 1 user\n"

    assert (await ops.send("password_reset.verify", ticket=used)).json()["reason"] == "used"
    assert (await ops.send("password_reset.verify", ticket=kims)).json()["valid"] is True
    states = [
        t["state"] for t in (await ops.cli_json("inspect", "--user", "auth0|jane"))["tickets"]
    ]
    assert states == ["used", "revoked"]
    actions = (await ops.cli_json("inspect", "--email", JANE))["operator_actions"]
    assert [(a["action"], a["rows"], a["detail"]) for a in actions] == [
        ("tickets.revoke", 1, None),
        ("tickets.revoke", 0, None),
    ]
