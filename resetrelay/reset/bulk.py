"""Breach response in bulk: the worker's side of `resetrelay bulk-reset`.

The command (`resetrelay.operators.bulk`) writes each line of a breach list as a
`bulk_rows` row and hands the lines to the queue in batches (`BULK_BATCH` jobs).
A worker looks each line's user up at Auth0 and, for a database user, voids
their open tickets, issues a ticket and queues the mail (`breached` unless the
run names another template). Unknown and social-only users get no mail: they
are only counted.

Exactly one mail per user and run, whatever crashes: the row's change to
`done` (conditional on it being `queued`), the ticket and the mail commit in one
transaction, so a retried or taken-over job skips the lines already done; and a
user already mailed in this run (two lines, two addresses of one account) is
recorded as `duplicate` instead, under the user's lock.

Rate limits: Auth0 calls go through the bulk lane of the shared budget
(`resetrelay.budget`: below the jobs' mark, so live lookups find room); mails
take a unit of `BULK_MAILS_PER_MINUTE` before they are queued. Its jobs run in a
lane of their own, so `requested` jobs never wait behind a breach list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import anyio

from identity.client import Auth0Client, Auth0User
from identity.errors import Auth0Error, IdentityError, UserNotFound
from resetrelay import courier
from resetrelay.jobs.kinds import Kind, Registry, enqueue_many
from resetrelay.jobs.run import JobRun, Retry, settle_completed
from resetrelay.metrics import Metrics
from resetrelay.reset.requests import TEMPLATE_FOR_PURPOSE, recipient
from resetrelay.reset.tickets import TicketCodec
from resetrelay.reset.upstream import retry_for
from resetrelay.settings import Settings
from storage import bulk, jobs, ratelimits, tickets
from storage.database import Database

log = logging.getLogger("resetrelay.bulk")

# Templates a run may send: each announces a ticket of the same purpose.
TEMPLATES: Final = tuple(TEMPLATE_FOR_PURPOSE)
KEY_COLUMNS: Final = ("email", "user_id")
MAIL_BUDGET: Final = "smtp:bulk-mails"
MAIL_PACE_UP_TO: Final = 5.0  # seconds a line waits in place for a mail unit
ROWS_PER_JOB: Final = 25
IN_FLIGHT: Final = 8
LINE_ERRORS: Final = (
    400,
    404,
)  # Auth0 answers that are about one line's value  # lines of one job looked up at once

# Outcomes of a line.
MAILED, NOT_FOUND, SOCIAL_ONLY, DUPLICATE = "mailed", "not_found", "social_only", "duplicate"
INVALID, BAD_ADDRESS, FAILED = "invalid", "bad_address", "failed"


@dataclass(frozen=True)
class BulkBatch:
    run_id: str
    key_column: str  # "email" or "user_id"
    template: str
    rows: list[list[int | str]]  # [line number, address or user id]


BULK_BATCH = Kind(
    "bulk.reset", BulkBatch, max_attempts=30, backoff_initial=1.0, backoff_max=60.0, batch_limit=8
)


@dataclass(frozen=True)
class _Verdict:
    """What becomes of one line, before it is written."""

    row_no: int
    outcome: str
    reason: str | None = None
    user: Auth0User | None = None  # set when the user is to be mailed
    address: str | None = None


class _Lookup:
    """What Auth0 says about one line: a database user, social-only, or nobody."""

    def __init__(self, user: Auth0User | None, social_only: bool) -> None:
        self.user = user
        self.social_only = social_only


@dataclass
class BulkResets:
    settings: Settings
    db: Database
    codec: TicketCodec
    auth0: Auth0Client  # the bulk lane of the shared budget
    metrics: Metrics
    now: Callable[[], datetime]

    _in_flight: anyio.CapacityLimiter | None = None

    def register(self, registry: Registry) -> None:
        registry.add_batch(BULK_BATCH, self.handle_batch)

    def _limiter(self) -> anyio.CapacityLimiter:
        # Made on first use, inside the worker's event loop.
        if self._in_flight is None:
            self._in_flight = anyio.CapacityLimiter(IN_FLIGHT)
        return self._in_flight

    async def handle_batch(self, runs: list[JobRun]) -> None:
        async def one(run: JobRun) -> None:
            try:
                await self._handle(run)
            except Exception as exc:  # e.g. the database went away: this job only
                log.warning("bulk job failed", extra={"fields": {"job_id": run.job.id}})
                run.fail(Retry(f"{type(exc).__name__}: {exc}"))

        async with anyio.create_task_group() as tg:
            for run in runs:
                tg.start_soon(one, run)

    async def _handle(self, run: JobRun) -> None:
        """One job: its lines that are still queued. The lines are looked up at once
        (a few at a time), then every verdict commits in one transaction. Auth0
        trouble on some lines leaves them queued and the job retried; the lines
        done by then are skipped on the retry."""
        batch = BULK_BATCH.of(run)
        wanted = [(int(row[0]), str(row[1])) for row in batch.rows]
        queued = await self.db.run_read(
            lambda conn: bulk.queued_sync(conn, batch.run_id, [n for n, _ in wanted])
        )
        todo = [(n, key) for n, key in wanted if n in queued]
        trouble: list[Retry] = []
        verdicts: list[_Verdict] = []
        limiter = self._limiter()

        async def line(row_no: int, key: str) -> None:
            async with limiter:
                try:
                    verdict = await self._verdict(batch, row_no, key)
                    if verdict.user is not None:
                        await self._mail_unit()
                    verdicts.append(verdict)
                except IdentityError as exc:
                    trouble.append(retry_for(exc))
                except Retry as exc:
                    trouble.append(exc)

        async with anyio.create_task_group() as tg:
            for row_no, key in todo:
                tg.start_soon(line, row_no, key)
        if trouble and not run.job.exhausted:
            await self._commit(batch, verdicts)
            # The latest time any line asked for: by then all of them may go on.
            waits = [t.after for t in trouble if t.after is not None]
            run.fail(Retry(trouble[0].reason, after=max(waits) if waits else None))
            return
        if trouble:
            # Out of attempts: the lines left are failed, with why, so the run ends.
            left = {v.row_no for v in verdicts}
            verdicts += [_Verdict(n, FAILED, trouble[0].reason) for n, _ in todo if n not in left]
        # The job completes with its lines, and its worker slot is free at once
        # (not when the slowest job of its claim ends).
        owned = await self._commit(batch, verdicts, run)
        settle_completed([run], owned)

    async def _lookup(self, key_column: str, key: str) -> _Lookup:
        if key_column == "user_id":
            try:
                user = await self.auth0.get_user(key)
            except UserNotFound:
                return _Lookup(None, social_only=False)
            if user.is_database_user:
                return _Lookup(user, social_only=False)
            return _Lookup(None, social_only=True)
        users = await self.auth0.users_by_email(key.strip().lower())
        found = next((u for u in users if u.is_database_user), None)
        return _Lookup(found, social_only=found is None and bool(users))

    async def _verdict(self, batch: BulkBatch, row_no: int, key: str) -> _Verdict:
        try:
            found = await self._lookup(batch.key_column, key)
        except Auth0Error as exc:
            if exc.status not in LINE_ERRORS:
                # A token refused or a scope missing is about the deployment, not
                # this line: the job retries rather than failing the whole list.
                raise
            # About this line (e.g. a malformed id): asking again will not help.
            return _Verdict(row_no, FAILED, f"auth0 answered {exc.status} {exc.code}")
        if found.user is None:
            return _Verdict(row_no, SOCIAL_ONLY if found.social_only else NOT_FOUND)
        user = found.user
        address = recipient(user.email or key, user.user_id, self.metrics, type="bulk")
        if address is None:
            return _Verdict(row_no, BAD_ADDRESS, "the user's address is not one mailbox")
        return _Verdict(row_no, MAILED, user=user, address=address)

    async def _commit(
        self, batch: BulkBatch, verdicts: list[_Verdict], completing: JobRun | None = None
    ) -> set[int]:
        """Every verdict of a job in one transaction of a few statements: the lines'
        state changes and, for the users to mail, their voided tickets, new tickets
        and queued mails (what `requests.issue` does for one, set-based); and the
        job's completion when `completing` (returns the job ids still owned)."""
        if not verdicts and completing is None:
            return set()
        now = self.now()
        owned: set[int] = set()
        async with self.db.begin() as conn:
            if completing is not None:
                owned = await jobs.complete_many(conn, [completing.job], now=now)
            # Locked first: a worker that took this job over waits, then sees them done.
            queued = await bulk.claim_queued(conn, batch.run_id, [v.row_no for v in verdicts])
            mine = [v for v in verdicts if v.row_no in queued]
            to_mail = sorted((v for v in mine if v.user is not None), key=lambda v: v.row_no)
            # In one order, so two jobs that share users cannot deadlock on the locks.
            for user_id in sorted({v.user.user_id for v in to_mail if v.user is not None}):
                await tickets.lock_user(conn, user_id)
            earlier = await bulk.mailed_users(
                conn, batch.run_id, [v.user.user_id for v in to_mail if v.user is not None]
            )
            done: list[tuple[int, str, str | None, str | None]] = [
                (v.row_no, v.outcome, v.reason, None) for v in mine if v.user is None
            ]
            new: list[bulk.NewTicket] = []
            ttl = timedelta(seconds=self.settings.ticket_ttl_seconds)
            for v in to_mail:
                if v.user is None or v.address is None:
                    continue  # not reached: `to_mail` holds only users to mail
                user_id = v.user.user_id
                if user_id in earlier:
                    # One mail per user and run: two lines, two addresses of one account.
                    done.append(
                        (v.row_no, DUPLICATE, f"same user as line {earlier[user_id]}", None)
                    )
                    continue
                earlier[user_id] = v.row_no
                done.append((v.row_no, MAILED, None, user_id))
                ticket = self.codec.new()
                new.append(
                    bulk.NewTicket(
                        ticket_id=ticket.id,
                        lookup_hash=ticket.lookup_hash,
                        user_id=user_id,
                        email=v.address,
                        connection=v.user.connection or self.settings.auth0_connection,
                        locale=v.user.locale or self.settings.default_locale,
                        purpose=batch.template,
                        expires_at=now + ttl,
                        template=TEMPLATE_FOR_PURPOSE[batch.template],
                        message_id=courier.new_message_id(self.settings.mail_from),
                        code=self.settings.mail_codes,
                    )
                )
            await bulk.finish_many(conn, batch.run_id, done, now=now)
            # The breach voids every open ticket of the user, whatever its purpose.
            voided, mail_ids = await bulk.issue_many(conn, new, now=now, void_reason="bulk_reset")
            await enqueue_many(conn, courier.SEND, [courier.SendMail(i) for i in mail_ids], now=now)
        if voided:
            self.metrics.tickets.labels("voided").inc(voided)
        if new:
            self.metrics.tickets.labels("issued").inc(len(new))
            self.metrics.mails.labels("queued").inc(len(new))
        return owned

    async def _mail_unit(self) -> None:
        """Wait for a unit of BULK_MAILS_PER_MINUTE (GCRA, shared by every worker)."""
        per_minute = self.settings.bulk_mails_per_minute
        if per_minute <= 0:
            return
        rate = per_minute / 60.0
        # One second's worth at once at most: the relay sees a steady stream.
        burst = max(1.0, rate)
        while True:
            now = self.now()
            wait = await self.db.run(
                lambda conn, now=now: ratelimits.take_sync(  # type: ignore[misc]
                    conn, MAIL_BUDGET, now=now, rate=rate, burst=burst
                )
            )
            if wait <= 0:
                return
            if wait > MAIL_PACE_UP_TO:
                # Too long to hold a worker slot: the job comes back when a unit is due.
                raise Retry("bulk mail ceiling reached", after=wait)
            await anyio.sleep(wait)
