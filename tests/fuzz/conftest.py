"""Fuzzing at the HTTP boundary and of the parsers behind it (Hypothesis, schemathesis).

Every test here is deterministic (`derandomize=True`, no example database), so CI
runs the same inputs each time. Two rules hold for every test, and the run's
summary line counts them: no answer is a 5xx, and no `resetrelay` logger writes
a line at ERROR or above (hooks.app logs an unhandled exception there before
its 500).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.tally import TALLY

# Reproducible in CI: the same inputs every run, nothing written to .hypothesis/.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def error_logs(request: pytest.FixtureRequest) -> Iterator[list[logging.LogRecord]]:
    """Every ERROR-level line of a `resetrelay.*` logger during the test. A test that
    is not an expected failure must end with none."""
    root = logging.getLogger("resetrelay")
    # Another test's logging setup may have disabled a logger; it must not hide a line.
    disabled = [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
        and (name == "resetrelay" or name.startswith("resetrelay."))
        and logger.disabled
    ]
    for logger in disabled:
        logger.disabled = False
    handler = _Collect()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        for logger in disabled:
            logger.disabled = True
        TALLY.error_logs.extend(handler.records)
    if request.node.get_closest_marker("xfail") is None:
        lines = [f"{r.name}: {r.getMessage()}" for r in handler.records]
        assert not lines, f"error-level log lines: {lines}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.inputs:
        terminalreporter.write_sep("-", "fuzz")
        terminalreporter.write_line(TALLY.line())
