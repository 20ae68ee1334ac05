"""The tables. One class per table; the Alembic migrations must match these exactly
(tests/storage/test_migrations.py compares them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime

metadata = SQLModel.metadata


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class InboundEvent(SQLModel, table=True):
    """A verified inbound event by its sender's id, with the answer it got.

    Standard Webhooks senders retry with the same `webhook-id`; Auth0 log
    streams deliver at least once with the same `log_id`. The primary key makes
    the second delivery a no-op, and the stored answer is replayed.
    """

    __tablename__ = "inbound_events"

    source: str = Field(sa_column=Column(String(16), primary_key=True))
    event_id: str = Field(sa_column=Column(String(255), primary_key=True))
    event_type: str = Field(sa_column=Column(String(64), nullable=False))
    status_code: int = Field(sa_column=Column(Integer, nullable=False))
    answer: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = _ts(index=True)


class Job(SQLModel, table=True):
    """A durable unit of work: queued -> running -> done | dead (retries go back to queued)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_run_after", "status", "run_after"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    kind: str = Field(sa_column=Column(String(64), nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False, default=0))
    max_attempts: int = Field(sa_column=Column(Integer, nullable=False))
    run_after: datetime = _ts()
    lease_until: datetime | None = _ts(nullable=True)
    lease_token: str | None = Field(sa_column=Column(String(64), nullable=True))
    last_error: str | None = Field(sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    # Idempotency key of the event that made the job (e.g. "website:<webhook-id>"):
    # a second delivery of the event cannot make a second job.
    dedupe_key: str | None = Field(sa_column=Column(String(300), nullable=True, unique=True))


class Ticket(SQLModel, table=True):
    """A reset ticket. The database holds its id and a hash, never the ticket itself:
    the ticket is an HMAC of the id under SECRET_KEY (resetrelay.tickets)."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_user_state", "user_id", "state"),
        # Retention deletes a ticket RETENTION_DAYS after it expires (storage.retention).
        Index("ix_tickets_expires_at", "expires_at"),
        # A code is redeemed with the address it was mailed to (storage.tickets.coded).
        Index("ix_tickets_email", "email"),
        UniqueConstraint("redeem_hash", name="uq_tickets_redeem_hash"),
    )

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    lookup_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    user_id: str = Field(sa_column=Column(String(255), nullable=False))
    email: str = Field(sa_column=Column(String(320), nullable=False))
    connection: str = Field(sa_column=Column(String(128), nullable=False))
    locale: str = Field(sa_column=Column(String(16), nullable=False))
    purpose: str = Field(sa_column=Column(String(16), nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False, default=0))
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    claimed_until: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    revoked_reason: str | None = Field(sa_column=Column(String(32), nullable=True))
    # When the link was first opened (`verify`): the funnel counts each ticket once.
    opened_at: datetime | None = _ts(nullable=True)
    # The mail's one-time code (resetrelay.reset.codes): NULL when the mail carried
    # none, else `open`, `redeemed` or `void`. The code itself is never stored: like
    # the ticket, it is an HMAC of the id under SECRET_KEY.
    code_state: str | None = Field(sa_column=Column(String(16), nullable=True))
    code_attempts: int = Field(sa_column=Column(Integer, nullable=False, default=0))
    # The hash of the second ticket, minted when the code was redeemed (an HMAC of the
    # id under its own key derived from SECRET_KEY): looked up as the link's hash is.
    redeem_hash: str | None = Field(sa_column=Column(String(64), nullable=True))


class RateCounter(SQLModel, table=True):
    """Fixed-window counters; `key` is an HMAC of the address or IP, never the value."""

    __tablename__ = "rate_counters"

    key: str = Field(sa_column=Column(String(96), primary_key=True))
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    count: int = Field(sa_column=Column(Integer, nullable=False))


class RateEvent(SQLModel, table=True):
    """One admitted event under a sliding-window limit; `key` is an HMAC of the address
    or network, never the value. Rows older than the longest window are pruned."""

    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_key_at", "key", "at"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    key: str = Field(sa_column=Column(String(96), nullable=False))
    at: datetime = _ts()


class RateBudget(SQLModel, table=True):
    """A shared rate budget (GCRA): `tat` is the theoretical arrival time of the next
    unit; a unit may be taken while `tat - now` is within the budget's burst."""

    __tablename__ = "rate_budgets"

    key: str = Field(sa_column=Column(String(96), primary_key=True))
    tat: datetime = _ts()


class MailMessage(SQLModel, table=True):
    """The outbox: queued -> sending -> sent | dead | expired (sending -> queued on a retry).

    A reset-style mail stores its ticket id, not the ticket: the link is derived
    from SECRET_KEY when the mail is rendered for sending. `sending` is written in
    the claim of the mail's job, before the SMTP transaction starts: a mail found
    still `sending` by a later claim may have gone out, and `resends` counts the
    sends started again over such an unknown outcome.
    """

    __tablename__ = "mail_messages"
    # Retention deletes finished mails by `finished_at` (storage.retention).
    __table_args__ = (Index("ix_mail_messages_finished_at", "finished_at"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    template: str = Field(sa_column=Column(String(32), nullable=False))
    recipient: str = Field(sa_column=Column(String(320), nullable=False))
    locale: str = Field(sa_column=Column(String(16), nullable=False))
    context: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    ticket_id: str | None = Field(sa_column=Column(String(64), nullable=True, index=True))
    message_id: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False, default=0))
    last_error: str | None = Field(sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)  # when it became sent, dead or expired
    resends: int = Field(
        sa_column=Column(Integer, nullable=False, default=0, server_default=text("0"))
    )


class UsedToken(SQLModel, table=True):
    """`jti` of accepted Auth0 Action JWTs, kept until they expire (replay store)."""

    __tablename__ = "used_tokens"

    jti: str = Field(sa_column=Column(String(255), primary_key=True))
    expires_at: datetime = _ts(index=True)


class OperatorAction(SQLModel, table=True):
    """One operator command that changed state (`resetrelay tickets revoke`, `forget`,
    `jobs retry`, `bulk-reset`, ...): who ran it, from which host, what and how many
    rows. `subject` is a keyed pseudonym of the person acted on (resetrelay.audit),
    never an address, so the line survives an erasure request without undoing it."""

    __tablename__ = "operator_actions"
    __table_args__ = (Index("ix_operator_actions_subject", "subject"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    at: datetime = _ts(index=True)
    actor: str = Field(sa_column=Column(String(128), nullable=False))
    host: str = Field(sa_column=Column(String(255), nullable=False))
    action: str = Field(sa_column=Column(String(64), nullable=False))
    subject: str | None = Field(sa_column=Column(String(96), nullable=True))
    rows: int = Field(sa_column=Column(Integer, nullable=False))
    detail: str | None = Field(sa_column=Column(Text, nullable=True))


class Auth0Finding(SQLModel, table=True):
    """What a Management API answer taught us about the tenant, shared by every
    process: `kind` "plan" (the plan lacks an endpoint; `name` is the endpoint) or
    "scope" (the application lacks a scope; `name` is the call, `detail` the scopes
    Auth0 named). A plan finding holds until `until`; a scope finding until the call
    succeeds again."""

    __tablename__ = "auth0_findings"

    kind: str = Field(sa_column=Column(String(16), primary_key=True))
    name: str = Field(sa_column=Column(String(128), primary_key=True))
    detail: str = Field(sa_column=Column(String(255), nullable=False))
    seen_at: datetime = _ts()
    until: datetime | None = _ts(nullable=True)


class FunnelDay(SQLModel, table=True):
    """How many resets reached each step of the funnel on one day (UTC), by purpose and
    locale: requested -> limited | found | unknown | social -> mailed -> opened ->
    completed. Counts only, upserted where each step happens; no person in it."""

    __tablename__ = "funnel_days"

    day: date = Field(sa_column=Column(Date, primary_key=True))
    purpose: str = Field(sa_column=Column(String(16), primary_key=True))
    locale: str = Field(sa_column=Column(String(16), primary_key=True))
    step: str = Field(sa_column=Column(String(16), primary_key=True))
    total: int = Field(sa_column=Column(BigInteger, nullable=False))


class BulkRun(SQLModel, table=True):
    """One `resetrelay bulk-reset` run: a breach list, by the hash of the file's bytes
    (rerunning the same file continues the same run), and the mail it sends."""

    __tablename__ = "bulk_runs"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    file_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    key_column: str = Field(sa_column=Column(String(16), nullable=False))
    template: str = Field(sa_column=Column(String(16), nullable=False))
    rows: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)


class BulkRow(SQLModel, table=True):
    """One line of a run's file: queued (its job exists) -> done, with an outcome
    (mailed, not_found, social_only, duplicate, invalid, bad_address, failed). The
    address itself is not kept here (only the job carries it); `user_id` is set on a
    mailed row, and unique per run, so one user gets one mail per run."""

    __tablename__ = "bulk_rows"
    __table_args__ = (UniqueConstraint("run_id", "user_id", name="uq_bulk_rows_run_user"),)

    run_id: str = Field(sa_column=Column(String(64), primary_key=True))
    row_no: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    outcome: str | None = Field(sa_column=Column(String(16), nullable=True))
    reason: str | None = Field(sa_column=Column(String(200), nullable=True))
    user_id: str | None = Field(sa_column=Column(String(255), nullable=True))
    updated_at: datetime = _ts()


class Dispute(SQLModel, table=True):
    """A "Wasn't you?" link of a "password changed" mail. As with tickets, the database
    holds the id and a hash; the token is an HMAC of the id under SECRET_KEY
    (resetrelay.reset.disputes). `lifted_at`: when the fresh reset after a confirmed
    dispute queued the PATCH that lifts the dispute's block."""

    __tablename__ = "disputes"
    __table_args__ = (
        Index("ix_disputes_user_state", "user_id", "state"),
        Index("ix_disputes_expires_at", "expires_at"),
    )

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    lookup_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    user_id: str = Field(sa_column=Column(String(255), nullable=False))
    email: str = Field(sa_column=Column(String(320), nullable=False))
    connection: str = Field(sa_column=Column(String(128), nullable=False))
    locale: str = Field(sa_column=Column(String(16), nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    changed_at: datetime = _ts()
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(nullable=True)
    lifted_at: datetime | None = _ts(nullable=True)
