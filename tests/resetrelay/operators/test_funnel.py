"""The funnel: counted where each step happens (resetrelay.funnel), read by
`resetrelay funnel` and `resetrelay outbox stats` through the real CLI."""

from __future__ import annotations

import pytest

from tests.resetrelay.operators.conftest import JANE, STRONG, Ops

pytestmark = pytest.mark.anyio

ZERO = dict.fromkeys(
    ("requested", "limited", "found", "unknown", "social", "mailed", "opened", "completed"), 0
)


async def test_every_step_is_counted_once_by_purpose_and_locale(ops: Ops) -> None:
    await ops.request(JANE, locale="de")
    ticket = ops.ticket_from_last_mail()
    for _ in range(3):  # opened again, or by a mail scanner first: one `opened`
        assert (await ops.send("password_reset.verify", ticket=ticket)).json()["valid"] is True
    done = await ops.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert done.status_code == 200
    await ops.drain()  # the "changed" mail is no step of the funnel
    await ops.request("nobody@example.com")
    await ops.request("sam@example.com")  # social only
    for _ in range(4):  # the fourth is over the per-address limit
        await ops.request("kim@example.com")

    counted = await ops.cli_json("funnel", "--days", "2")
    assert counted["steps"] == list(ZERO)
    assert counted["totals"] == {
        "reset": {
            **ZERO,
            "requested": 7,
            "limited": 1,
            "found": 4,
            "unknown": 1,
            "social": 1,
            "mailed": 4,
            "opened": 1,
            "completed": 1,
        }
    }
    day = ops.clock().date().isoformat()
    rows = {(r["day"], r["locale"]): r for r in counted["days"]}
    assert set(rows) == {(day, "de"), (day, "en")}
    assert {k: v for k, v in rows[day, "de"].items() if k in ZERO} == {
        **ZERO,
        "requested": 1,
        "found": 1,
        "mailed": 1,
        "opened": 1,
        "completed": 1,
    }

    metrics = (await ops.client.get("/metrics")).text
    for step, n in (("requested", 7), ("limited", 1), ("mailed", 4), ("completed", 1)):
        assert f'resetrelay_funnel_steps_total{{purpose="reset",step="{step}"}} {n}.0' in metrics

    text = await ops.cli("funnel")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[2:5] == [
        "By purpose",
        "purpose  requested  limited  found  unknown  social  mailed  opened  completed"
        "  completed/mailed",
        "-------  ---------  -------  -----  -------  ------  ------  ------  ---------"
        "  ----------------",
    ]
    assert lines[5].split() == ["reset", "7", "1", "4", "1", "1", "4", "1", "1", "25%"]
    stats = await ops.cli("outbox", "stats")
    assert lines[5] in stats.stdout.splitlines()


async def test_an_empty_funnel_and_a_bad_number_of_days(ops: Ops) -> None:
    empty = await ops.cli_json("funnel", "--days", "1")
    assert empty["totals"] == {} and empty["days"] == []
    assert empty["first_day"] == empty["last_day"]
    bad = await ops.cli("funnel", "--days", "0")
    assert (bad.returncode, bad.stderr) == (1, "resetrelay: --days must be at least 1\n")
