"""`resetrelay funnel` (and the funnel part of `resetrelay outbox stats`): where users
drop out, per day, purpose and locale, from the `funnel_days` counts that the
reset flow keeps (resetrelay.funnel says where each step is counted)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from resetrelay.funnel import STEPS
from resetrelay.operators.table import render
from storage import funnel
from storage.database import Database
from storage.funnel import FunnelRow

Key = tuple[date, str, str]  # day, purpose, locale


@dataclass(frozen=True)
class Funnel:
    first_day: date
    last_day: date
    counts: dict[Key, dict[str, int]]  # by day, purpose, locale: step -> count

    def totals(self) -> dict[str, dict[str, int]]:
        """Summed over the days and locales, by purpose: step -> count."""
        summed: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STEPS, 0))
        for (_, purpose, _), steps in self.counts.items():
            for step, n in steps.items():
                summed[purpose][step] += n
        return dict(sorted(summed.items()))


async def read(db: Database, *, now: datetime, days: int) -> Funnel:
    """The last `days` days (UTC), today included."""
    last = now.date()
    first = last - timedelta(days=max(1, days) - 1)
    async with db.read() as conn:
        rows = await funnel.since(conn, first)
    return Funnel(first, last, _by_key(rows))


def _by_key(rows: list[FunnelRow]) -> dict[Key, dict[str, int]]:
    counts: dict[Key, dict[str, int]] = {}
    for row in rows:
        key = (row.day, row.purpose, row.locale)
        counts.setdefault(key, dict.fromkeys(STEPS, 0))[row.step] += row.total
    return counts


def _share(part: int, whole: int) -> str:
    return "-" if whole == 0 else f"{100 * part / whole:.0f}%"


def totals_text(result: Funnel) -> str:
    """One line per purpose: each step's count, and how many of those mailed completed."""
    rows = [
        [purpose, *(steps[s] for s in STEPS), _share(steps["completed"], steps["mailed"])]
        for purpose, steps in result.totals().items()
    ]
    return render(["purpose", *STEPS, "completed/mailed"], rows, empty="(no resets counted)")


def days_text(result: Funnel) -> str:
    rows = [
        [day.isoformat(), purpose, locale, *(steps[s] for s in STEPS)]
        for (day, purpose, locale), steps in sorted(result.counts.items())
    ]
    return render(["day", "purpose", "locale", *STEPS], rows, empty="(no resets counted)")


def as_text(result: Funnel) -> str:
    span = f"{result.first_day.isoformat()} to {result.last_day.isoformat()} (UTC)"
    return (
        f"Funnel, {span}\n\nBy purpose\n{totals_text(result)}\n\n"
        f"By day, purpose and locale\n{days_text(result)}"
    )


def as_json(result: Funnel) -> dict[str, Any]:
    """Stable keys: `steps` in funnel order, `totals` by purpose, `days` one per row."""
    return {
        "first_day": result.first_day.isoformat(),
        "last_day": result.last_day.isoformat(),
        "steps": list(STEPS),
        "totals": result.totals(),
        "days": [
            {"day": day.isoformat(), "purpose": purpose, "locale": locale, **steps}
            for (day, purpose, locale), steps in sorted(result.counts.items())
        ],
    }


def dumps(result: Funnel) -> str:
    return json.dumps(as_json(result), indent=2)
