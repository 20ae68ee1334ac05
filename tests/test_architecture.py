"""The tree's arrows, checked: a change that adds a cycle or an upward import fails here.

    devkit ──▶ hooks ──▶ resetrelay ──▶ storage, mail, identity

Every `import` in every module counts, also those inside functions and under
TYPE_CHECKING (an arrow is an arrow). The exceptions are named below, each with
its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hooks", "resetrelay", "storage", "mail", "identity", "devkit")

# What each package may import of ours (besides itself).
ALLOWED = {
    "storage": set(),
    "mail": set(),
    "identity": set(),
    "resetrelay": {"storage", "mail", "identity"},
    "hooks": {"resetrelay", "storage", "mail"},
    "devkit": {"hooks", "resetrelay", "storage", "mail", "identity"},
}
# The console script starts everything: the HTTP server, the demo, the emulator.
ENTRY_POINTS = {"resetrelay.cli": {"hooks", "devkit"}}
# hooks/ maps storage failures to 503 at one place and nowhere else.
HOOKS_STORAGE = {("hooks.app", "storage.database"), ("hooks.website", "storage.database")}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue  # Alembic's scripts are loaded by Alembic, not imported
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                # `from pkg import mod` imports the module pkg.mod when there is one.
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in MODULES else base


def _ours(target: str) -> str | None:
    """The module of ours that `target` names (its longest known prefix)."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in MODULES:
            return prefix
    return None


GRAPH = {
    name: {t for target in _imports(name, path) if (t := _ours(target)) and t != name}
    for name, path in MODULES.items()
}


def test_the_graph_is_read() -> None:
    assert "resetrelay.reset.confirm" in GRAPH
    assert "resetrelay.reset.tickets" in GRAPH["resetrelay.reset.confirm"]


def test_arrows_point_one_way() -> None:
    wrong = []
    for name, targets in sorted(GRAPH.items()):
        package = name.split(".")[0]
        allowed = ALLOWED[package] | ENTRY_POINTS.get(name, set())
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != package and (
                other not in allowed
                or (
                    package == "hooks"
                    and other == "storage"
                    and (name, target) not in HOOKS_STORAGE
                )
            ):
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_no_import_cycles() -> None:
    # Depth-first search for a back edge; report the cycle it closes.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(GRAPH[node]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)


def test_jobs_know_nothing_of_resets_and_the_courier_nothing_of_tickets() -> None:
    for name, targets in GRAPH.items():
        if name.startswith("resetrelay.jobs"):
            assert not {
                t for t in targets if t.startswith(("resetrelay.reset", "resetrelay.courier"))
            }
        if name == "resetrelay.courier":
            assert not {t for t in targets if t.startswith("resetrelay.reset")}
        if name.startswith("resetrelay.reset"):
            assert not {t for t in targets if t.startswith(("hooks", "resetrelay.runtime"))}


def test_production_code_does_not_import_the_devkit() -> None:
    for name, targets in GRAPH.items():
        if name.startswith("devkit") or name in ENTRY_POINTS:
            continue
        assert not {t for t in targets if t.startswith("devkit")}, name
