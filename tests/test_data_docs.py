"""docs/data.md names every table of the schema, with what it holds and how long it
is kept, and its Retention section names every table the sweep deletes from: a new
table, or a new sweep, cannot land undocumented."""

from __future__ import annotations

import re
from pathlib import Path

from storage import retention
from storage.models import metadata

DATA_MD = Path(__file__).resolve().parent.parent / "docs" / "data.md"


def _section(title: str) -> str:
    text = DATA_MD.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"docs/data.md has no '## {title}' section"
    return match.group(1)


def _table_rows() -> dict[str, tuple[str, str]]:
    """Each table named in the first cell of a row of '## Every table', with that
    row's other two cells (holds, kept)."""
    rows: dict[str, tuple[str, str]] = {}
    for line in _section("Every table").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("table", "---"):
            continue
        for name in re.findall(r"`([a-z0-9_]+)`", cells[0]):
            assert name not in rows, f"{name} is listed twice"
            rows[name] = (cells[1], cells[2])
    return rows


def test_every_table_of_the_schema_is_documented_and_no_other() -> None:
    documented = _table_rows()
    assert set(documented) == set(metadata.tables)


def test_every_documented_table_says_what_it_holds_and_how_long() -> None:
    for name, (holds, kept) in _table_rows().items():
        assert holds, f"{name}: what it holds"
        assert kept, f"{name}: how long it is kept"


def test_every_table_the_sweep_deletes_from_is_in_the_retention_section() -> None:
    section = _section("Retention")
    for name, _ in retention.STATEMENTS:
        assert f"| `{name}` |" in section, f"{name} is swept but not in '## Retention'"
