"""Plain text tables for operator commands: columns padded to their widest cell, a
rule under the headings. No dependency, the same on a terminal and in a pipe."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


def cell(value: object) -> str:
    """How a value reads in a table: times in UTC to the second, nothing as `-`."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return " ".join(str(value).split())  # one line per row, whatever the value held


def render(headings: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str = "") -> str:
    """The table, or `empty` (e.g. "(none)") when there are no rows."""
    if not rows:
        return empty
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headings)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headings), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def iso(value: datetime | None) -> str | None:
    """A time for JSON output: ISO 8601 in UTC, or null."""
    return None if value is None else value.isoformat()
