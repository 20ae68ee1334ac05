"""Job kinds: what a job is called in the queue, what its payload holds, and how
it is retried.

A `Kind[P]` is declared once, next to the code that handles it, with a
dataclass `P` as its payload; `enqueue(conn, KIND, P(...))` writes it and the
handler receives a `P` back, so no module spells a kind's name or a payload's
keys by hand. The payload is stored as JSON: fields are JSON values, and a
field left at None is not written, so a row holds only what was set.

`Registry` binds each kind to its handler and gives the worker its table
(`JobKind` / `BatchJobKind`, keyed by name). It is built once, in the
composition root, before the worker: nothing is added afterwards.

A kind may take a step inside the transaction that claims its jobs
(`on_claim`): the courier marks its mails `sending` there, so the mark is
durable before anything leaves. The step returns the ids of jobs whose
earlier run may already have had its effect; their runs see `job.in_doubt`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from resetrelay.jobs.run import JobRun
from storage import jobs

P = TypeVar("P")

Handler = Callable[[JobRun], Awaitable[None]]
BatchHandler = Callable[[list[JobRun]], Awaitable[None]]
# Runs inside the claim's transaction, with the claim's time; returns the ids of the
# jobs now in doubt. It sees every claimed job of its kind, also those the worker
# will bury unrun because a lost worker used up their attempts (`job.attempts >
# job.max_attempts`), so it can settle what they leave behind.
ClaimStep = Callable[[Connection, list[jobs.ClaimedJob], datetime], set[int]]


@dataclass(frozen=True)
class JobKind:
    """The worker's entry for a kind whose jobs run one at a time."""

    handler: Handler
    backoff_initial: float = 2.0
    backoff_max: float = 3600.0
    on_claim: ClaimStep | None = None


@dataclass(frozen=True)
class BatchJobKind:
    """A kind whose jobs run in batches, in a lane of their own: up to `limit` of
    them at once, apart from the `concurrency` that the other kinds share (as
    per-queue limits in Oban or Sidekiq), so neither starves the other."""

    handler: BatchHandler
    backoff_initial: float = 2.0
    backoff_max: float = 3600.0
    limit: int = 16
    on_claim: ClaimStep | None = None


@dataclass(frozen=True)
class Kind(Generic[P]):
    name: str
    payload: type[P]  # a dataclass
    max_attempts: int = 8
    backoff_initial: float = 2.0
    backoff_max: float = 3600.0
    batch_limit: int | None = None  # set: runs in batches, in a lane of this size
    on_claim: ClaimStep | None = field(default=None, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        # The field names once: `encode` runs on the request path of `requested`.
        names = tuple(f.name for f in dataclasses.fields(self.payload))  # type: ignore[arg-type]
        object.__setattr__(self, "_names", names)

    def encode(self, payload: P) -> dict[str, Any]:
        return {
            name: value for name in self._names if (value := getattr(payload, name)) is not None
        }

    def decode(self, raw: Mapping[str, Any]) -> P:
        # Keys this version does not know (written by an older one) are ignored.
        return self.payload(**{k: v for k, v in raw.items() if k in self._names})

    def of(self, run: JobRun) -> P:
        """The payload of a run of this kind."""
        return self.decode(run.job.payload)


async def enqueue(
    conn: AsyncConnection,
    kind: Kind[P],
    payload: P,
    *,
    now: datetime,
    delay: timedelta = timedelta(0),
) -> int:
    return await jobs.enqueue(
        conn, kind.name, kind.encode(payload), now=now, delay=delay, max_attempts=kind.max_attempts
    )


def enqueue_sync(
    conn: Connection, kind: Kind[P], payload: P, *, now: datetime, delay: timedelta = timedelta(0)
) -> int:
    """`enqueue` for `Database.run`."""
    return jobs.enqueue_sync(
        conn, kind.name, kind.encode(payload), now=now, delay=delay, max_attempts=kind.max_attempts
    )


async def enqueue_many(
    conn: AsyncConnection, kind: Kind[P], payloads: list[P], *, now: datetime
) -> None:
    await jobs.enqueue_many(
        conn,
        kind.name,
        [kind.encode(p) for p in payloads],
        now=now,
        max_attempts=kind.max_attempts,
    )


class Registry:
    """Every kind the worker runs, each bound to its handler once."""

    def __init__(self) -> None:
        self._table: dict[str, JobKind | BatchJobKind] = {}

    def _add(self, kind: Kind[Any], entry: JobKind | BatchJobKind) -> None:
        if kind.name in self._table:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        self._table[kind.name] = entry

    def add(self, kind: Kind[P], handler: Callable[[JobRun, P], Awaitable[None]]) -> Registry:
        async def run(job_run: JobRun) -> None:
            await handler(job_run, kind.of(job_run))

        self._add(kind, JobKind(run, kind.backoff_initial, kind.backoff_max, kind.on_claim))
        return self

    def add_batch(self, kind: Kind[Any], handler: BatchHandler) -> Registry:
        if kind.batch_limit is None:
            raise ValueError(f"job kind {kind.name!r} has no batch_limit")
        self._add(
            kind,
            BatchJobKind(
                handler, kind.backoff_initial, kind.backoff_max, kind.batch_limit, kind.on_claim
            ),
        )
        return self

    def table(self) -> Mapping[str, JobKind | BatchJobKind]:
        return dict(self._table)
