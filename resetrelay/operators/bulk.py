"""`resetrelay bulk-reset --from FILE.csv`: the operator's side of a breach response.

    read the file    an `email` or `user_id` column (Python's csv module); a line
                     that holds no usable value is reported by its line number
    start the run    its id is derived from the file's bytes, so running the same
                     file again continues the same run (`--run-id` names another)
    enqueue          the lines not yet handed over, as `bulk_rows` rows and
                     `bulk.reset` jobs in the same transactions (resetrelay.reset.bulk)
    watch            the workers do the work; this process only reads the rows'
                     states: a progress bar on a terminal, plain lines otherwise
    summary          mailed, not found, social-only, duplicates, invalid, failed
                     with reasons, and the lines an earlier invocation had done

The work itself happens in `resetrelay worker` processes (or the worker inside
`serve`): killing this command loses nothing, the workers go on, and running it
again re-attaches to the run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol, TextIO

import anyio

from mail.message import addr_spec
from resetrelay.audit import Operator
from resetrelay.jobs.kinds import enqueue_many
from resetrelay.logs import mask_email
from resetrelay.reset.bulk import (
    BAD_ADDRESS,
    BULK_BATCH,
    DUPLICATE,
    FAILED,
    INVALID,
    KEY_COLUMNS,
    MAILED,
    NOT_FOUND,
    ROWS_PER_JOB,
    SOCIAL_ONLY,
    BulkBatch,
)
from storage import audit
from storage import bulk as rows
from storage.database import Database

ROWS_PER_TRANSACTION: Final = 500
MAX_KEY: Final = {"email": 320, "user_id": 255}  # the columns that hold them elsewhere
OUTCOME_LABELS: Final = (
    (MAILED, "mailed"),
    (NOT_FOUND, "not found"),
    (SOCIAL_ONLY, "social-only"),
    (DUPLICATE, "duplicate"),
    (INVALID, "invalid"),
    (BAD_ADDRESS, "bad address"),
    (FAILED, "failed"),
)


class BulkError(Exception):
    """A file or run that cannot be worked on, said in one line."""


@dataclass(frozen=True)
class BreachList:
    sha256: str
    key_column: str
    lines: list[tuple[int, str]]  # (line number, value) to look up
    skipped: list[tuple[int, str, str]]  # (line number, outcome, reason): never looked up

    @property
    def total(self) -> int:
        return len(self.lines) + len(self.skipped)


def read_breach_list(path: Path) -> BreachList:
    """Parse the file; `BulkError` for a file that cannot be a breach list."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BulkError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's export may start with a BOM
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BulkError(f"{path} is not UTF-8 text (line {line})") from exc
    return parse_breach_list(text, hashlib.sha256(raw).hexdigest(), name=str(path))


def parse_breach_list(text: str, sha256: str, *, name: str = "the file") -> BreachList:
    # strict: a quote left open or a stray one is an error, not a silently merged line.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise BulkError(f"{name} is empty: it needs a header line with an email column")
        names = [h.strip().lower() for h in header]
        column = next((c for c in KEY_COLUMNS if c in names), None)
        if column is None:
            raise BulkError(
                f"{name} has no email or user_id column (its header is line 1: "
                f"{', '.join(repr(h) for h in header[:5]) or 'empty'})"
            )
        index = names.index(column)
        lines: list[tuple[int, str]] = []
        skipped: list[tuple[int, str, str]] = []
        first: dict[str, int] = {}
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue  # a blank line is no row
            value = fields[index].strip() if index < len(fields) else ""
            problem = _problem(column, value)
            if problem is not None:
                skipped.append((line, INVALID, problem))
                continue
            same = value.lower() if column == "email" else value
            if same in first:
                skipped.append((line, DUPLICATE, f"same {column} as line {first[same]}"))
                continue
            first[same] = line
            lines.append((line, value))
    except csv.Error as exc:
        raise BulkError(f"{name} line {reader.line_num}: not CSV ({exc})") from exc
    return BreachList(sha256, column, lines, skipped)


def _problem(column: str, value: str) -> str | None:
    """Why a cell cannot be looked up, naming no part of it (it may be personal data)."""
    if not value:
        return f"no {column}"
    if len(value) > MAX_KEY[column]:
        return f"{column} longer than {MAX_KEY[column]} characters"
    if column == "email":
        try:
            addr_spec(value)
        except ValueError:
            return "not one email address"
    elif not value.isprintable():
        return "user_id holds control characters"
    return None


def default_run_id(breach: BreachList) -> str:
    return "br-" + breach.sha256[:16]


# -- the run ------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    run_id: str
    template: str
    resumed: bool
    done_before: int  # lines an earlier invocation saw done


async def start(
    db: Database,
    breach: BreachList,
    *,
    run_id: str,
    template: str,
    operator: Operator,
    now: datetime,
) -> Started:
    """Create the run (or find it again) and write its audit line, in one transaction."""
    async with db.begin() as conn:
        found = await rows.run_by_id(conn, run_id)
        if found is None:
            await rows.create_run(
                conn,
                run_id=run_id,
                file_sha256=breach.sha256,
                key_column=breach.key_column,
                template=template,
                rows=breach.total,
                now=now,
            )
            done_before = 0
        else:
            # A run is one file and one mail: continuing it with another would
            # mail a second list under the first one's guarantee.
            if found.file_sha256 != breach.sha256:
                raise BulkError(f"run {run_id} was started with another file; use another --run-id")
            if found.template != template:
                raise BulkError(
                    f"run {run_id} sends the {found.template!r} mail; rerun it with "
                    f"--template {found.template} or use another --run-id"
                )
            done_before = (await rows.counts(conn, run_id)).done
        await audit.record(
            conn,
            at=now,
            actor=operator.actor,
            host=operator.host,
            action="bulk-reset" if found is None else "bulk-reset.resume",
            rows=breach.total,
            detail=f"run {run_id}, template {template}, {breach.key_column} column",
        )
    return Started(run_id, template, found is not None, done_before)


async def enqueue(db: Database, breach: BreachList, started: Started, *, now: datetime) -> int:
    """Hand over the lines this run has no row for yet; returns how many."""
    async with db.read() as conn:
        known = await rows.known_rows(conn, started.run_id)
    todo = [(n, v) for n, v in breach.lines if n not in known]
    skipped = [s for s in breach.skipped if s[0] not in known]
    async with db.begin() as conn:
        await rows.add_rows(
            conn, started.run_id, [(n, rows.DONE, o, r) for n, o, r in skipped], now=now
        )
    for chunk in _chunks(todo, ROWS_PER_TRANSACTION):
        async with db.begin() as conn:
            await rows.add_rows(
                conn, started.run_id, [(n, rows.QUEUED, None, None) for n, _ in chunk], now=now
            )
            jobs = [
                BulkBatch(
                    run_id=started.run_id,
                    key_column=breach.key_column,
                    template=started.template,
                    rows=[[n, v] for n, v in part],
                )
                for part in _chunks(chunk, ROWS_PER_JOB)
            ]
            await enqueue_many(conn, BULK_BATCH, jobs, now=now)
    return len(todo) + len(skipped)


def _chunks(items: list[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- watching -----------------------------------------------------------------------


class Progress(Protocol):
    def update(self, done: int, total: int, rate: float, eta: float | None) -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class PlainProgress:
    """One line every `every` seconds (and at the end), for logs and pipes."""

    out: TextIO
    every: float
    clock: Callable[[], float] = time.monotonic
    _last: float = field(default=float("-inf"))
    _shown: tuple[int, int] | None = None

    def update(self, done: int, total: int, rate: float, eta: float | None) -> None:
        now = self.clock()
        if now - self._last < self.every and done < total:
            return
        if self._shown == (done, total) and done == total:
            return
        self._last, self._shown = now, (done, total)
        percent = 100.0 * done / total if total else 100.0
        left = "-" if eta is None else f"{eta:.0f}s"
        print(
            f"bulk-reset: {done}/{total} lines ({percent:.1f}%), {rate:.1f} users/s, ETA {left}",
            file=self.out,
            flush=True,
        )

    def note(self, text: str) -> None:
        print(f"bulk-reset: {text}", file=self.out, flush=True)

    def close(self) -> None:
        pass


class BarProgress:
    """A rich progress bar with the rate and the time left, for a terminal."""

    def __init__(self, out: TextIO, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
        )
        from rich.progress import Progress as RichProgress

        self._console = Console(file=out)
        self._bar = RichProgress(
            TextColumn("bulk-reset"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            # The rate and ETA are ours, from the rows' states, like the plain lines'.
            TextColumn("{task.fields[rate]} users/s"),
            TextColumn("ETA {task.fields[eta]}"),
            console=self._console,
        )
        self._task = self._bar.add_task("bulk-reset", total=total, rate="-", eta="-")
        self._bar.start()

    def update(self, done: int, total: int, rate: float, eta: float | None) -> None:
        left = "-" if eta is None else f"{eta:.0f}s"
        self._bar.update(self._task, completed=done, total=total, rate=f"{rate:.1f}", eta=left)

    def note(self, text: str) -> None:
        self._console.print(f"bulk-reset: {text}")

    def close(self) -> None:
        self._bar.stop()


async def watch(
    db: Database,
    started: Started,
    total: int,
    progress: Progress,
    *,
    interval: float = 0.5,
    stall_after: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> rows.Counts:
    """Read the run's rows until every line is done; returns the final counts."""
    began = clock()
    first: int | None = None
    last_change, last_done, warned = began, -1, False
    while True:
        async with db.read() as conn:
            counts = await rows.counts(conn, started.run_id)
        done, now = counts.done, clock()
        if first is None:
            first = done
        if done != last_done:
            last_change, last_done = now, done
        elapsed = now - began
        rate = (done - first) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        progress.update(done, total, rate, eta)
        if done >= total and counts.queued == 0:
            return counts
        if not warned and now - last_change > stall_after:
            warned = True
            progress.note(
                f"no line finished for {stall_after:.0f}s: is a `resetrelay worker` (or "
                "`resetrelay serve` with INLINE_WORKER=true) running against this database?"
            )
        await anyio.sleep(interval)


async def finish(
    db: Database, started: Started, counts: rows.Counts, *, operator: Operator, now: datetime
) -> list[tuple[int, str, str]]:
    """Mark the run finished (once, with an audit line); the lines worth a reason."""
    async with db.begin() as conn:
        if await rows.finish_run(conn, started.run_id, now=now):
            summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.outcomes.items()))
            await audit.record(
                conn,
                at=now,
                actor=operator.actor,
                host=operator.host,
                action="bulk-reset.done",
                rows=counts.outcomes.get(MAILED, 0),
                detail=f"run {started.run_id}: {summary}",
            )
        return await rows.reasons(conn, started.run_id)


def summary(started: Started, counts: rows.Counts, reasons: list[tuple[int, str, str]]) -> str:
    """The table printed at the end of a run."""
    lines = [f"bulk-reset run {started.run_id} ({started.template} mail): completed", ""]
    lines.append(f"  {'outcome':<24}{'lines':>8}")
    for key, label in OUTCOME_LABELS:
        lines.append(f"  {label:<24}{counts.outcomes.get(key, 0):>8}")
    lines.append(f"  {'total':<24}{counts.done:>8}")
    lines.append(f"  {'(already done before)':<24}{started.done_before:>8}")
    if reasons:
        lines += ["", f"lines not mailed, with why (first {len(reasons)}):"]
        lines += [f"  line {n:<8} {outcome:<12} {why}" for n, outcome, why in reasons]
    return "\n".join(lines)


def dry_run(breach: BreachList, run_id: str, done_before: int | None, *, sample: int = 5) -> str:
    """Counts and a sample of what a run would do; nothing is written or looked up."""
    invalid = sum(1 for _, outcome, _ in breach.skipped if outcome == INVALID)
    duplicates = sum(1 for _, outcome, _ in breach.skipped if outcome == DUPLICATE)
    out = [
        f"bulk-reset (dry run) run {run_id}: nothing was written, nobody was looked up",
        f"  lines                 {breach.total:>8}",
        f"  {breach.key_column + ' to look up':<22}{len(breach.lines):>8}",
        f"  invalid               {invalid:>8}",
        f"  duplicate in the file {duplicates:>8}",
        f"  already done in run   {done_before or 0:>8}",
        "sample:",
    ]
    for n, value in breach.lines[:sample]:
        shown = mask_email(value) if breach.key_column == "email" else value
        out.append(f"  line {n:<8} {shown}")
    for n, outcome, why in breach.skipped[:sample]:
        out.append(f"  line {n:<8} {outcome}: {why}")
    return "\n".join(out)


async def done_in_run(db: Database, run_id: str) -> int | None:
    """How many lines of an existing run are done (None: no such run); read only."""
    async with db.read() as conn:
        if await rows.run_by_id(conn, run_id) is None:
            return None
        return (await rows.counts(conn, run_id)).done
