"""The benchmarks' table: every row a benchmark measured, written to
docs/benchmarks.md with the machine, the date and the command that made it."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Row:
    figure: str  # what was measured, and how
    result: str  # the numbers
    bar: str  # the target, and whether it was met


def verdict(target: str, met: bool) -> str:
    return f"{target}: {'met' if met else 'not met'}"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, {model}, "
        f"Python {platform.python_version()}; load average at the end {load}"
    )


def write(rows: list[Row], command: str, path: Path = REPORT) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand. Each",
        "figure is measured against a baseline in the same run, because the machines",
        "that run it are shared and their speed varies from minute to minute. What each",
        "benchmark does is described in `bench/run.py` and the modules it names.",
        "",
        "Rates fall when other processes take the cores; CPU per request (the server",
        "process's CPU time over every thread, from /proc) moves much less, so read the",
        "two `requested` ratios together: the rate ratio can exceed the CPU ratio, as",
        "the service's SQLite writer thread runs beside its event loop (the echo has one).",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Command: `{command}`",
        "",
        "| Figure | Result | Bar |",
        "| --- | --- | --- |",
        *(f"| {r.figure} | {r.result} | {r.bar} |" for r in rows),
        "",
    ]
    path.write_text("\n".join(lines))
    print(f"bench: table written to {path}", file=sys.stderr)
