"""What the fuzz tests ran, for the one summary line in the CI log (tests/fuzz/conftest.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


@dataclass
class Tally:
    inputs: int = 0  # generated inputs that ran (a request, or a call of the code under test)
    server_errors: int = 0  # answers with a 5xx status
    error_logs: list[logging.LogRecord] = field(default_factory=list)  # ERROR or worse

    def line(self) -> str:
        return (
            f"fuzz: {self.inputs:,} generated inputs, {self.server_errors:,} server errors, "
            f"{len(self.error_logs):,} error-level log lines"
        )


TALLY = Tally()


def ran(count: int = 1) -> None:
    TALLY.inputs += count


def answered(status: int) -> None:
    TALLY.inputs += 1
    if status >= 500:
        TALLY.server_errors += 1
