"""`resetrelay forget`: an erasure request, carried out on our own rows.

The person is named by an address or an Auth0 user id; our tickets link the
two (storage.erasure.linked), so either finds the same rows. Every row about
the person goes in one transaction, and an audit line is written in that same
transaction: who ran it, from where, how many rows, and the person as a keyed
pseudonym (resetrelay.audit.Subjects), never the address or the id, so the
record of the erasure does not undo it.

Only resetrelay's own database is touched. The user at Auth0 (the profile,
its logs) is the tenant's to delete, through Auth0's dashboard or its
Management API (`DELETE /api/v2/users/{id}`); docs/data.md says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from resetrelay.audit import Operator, Subjects
from storage import audit, erasure
from storage.database import Database

ACTION = "forget"


class NoOneNamed(ValueError):
    """Neither an address nor a user id was given, or both were."""


@dataclass(frozen=True)
class Named:
    """Whom an erasure request names: exactly one address or one user id."""

    email: str | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        email, user_id = (self.email or "").strip(), (self.user_id or "").strip()
        # One person per request: an empty or doubled name would erase nothing, or
        # the wrong rows, without saying so.
        if bool(email) == bool(user_id):
            raise NoOneNamed("name exactly one person: --email ADDRESS or --user USER_ID")
        if email and "@" not in email:
            raise NoOneNamed("--email must be an address (local@domain)")
        object.__setattr__(self, "email", email.lower() or None)
        object.__setattr__(self, "user_id", user_id or None)

    def person(self) -> erasure.Person:
        return erasure.Person.of(
            emails=[self.email] if self.email else [],
            user_ids=[self.user_id] if self.user_id else [],
        )

    def subject(self, subjects: Subjects) -> str:
        return subjects.email(self.email) if self.email else subjects.user(self.user_id or "")


@dataclass(frozen=True)
class Erased:
    counts: dict[str, int]  # rows deleted, by table
    audit_id: int
    subject: str

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


class Erasure:
    def __init__(
        self,
        db: Database,
        subjects: Subjects,
        operator: Operator,
        now: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._subjects = subjects
        self._operator = operator
        self._now = now

    async def count(self, named: Named) -> dict[str, int]:
        """What `forget` would delete now, by table (for the confirmation)."""

        def find(conn: Connection) -> dict[str, int]:
            found = erasure.find(conn, erasure.linked(conn, named.person()))
            return {table: len(keys) for table, keys in found.items()}

        return await self._db.run_read(find)

    async def forget(self, named: Named) -> Erased:
        """Delete every row about the person and record it, in one transaction."""
        subject = named.subject(self._subjects)
        async with self._db.begin() as conn:
            counts = await conn.run_sync(
                lambda sync: erasure.erase(sync, erasure.linked(sync, named.person()))
            )
            detail = " ".join(f"{table}={n}" for table, n in counts.items())
            audit_id = await audit.record(
                conn,
                at=self._now(),
                actor=self._operator.actor,
                host=self._operator.host,
                action=ACTION,
                rows=sum(counts.values()),
                subject=subject,
                detail=f"by {'email' if named.email else 'user id'}: {detail}",
            )
        return Erased(counts=counts, audit_id=audit_id, subject=subject)
