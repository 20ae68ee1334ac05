"""`resetrelay inspect`: one person's reset history, from every table that holds it.

Asked by address or by Auth0 user id, it gathers:
- tickets: of the users found, or mailed to the address; never the ticket's
  value or hash (a short `ref`, the first characters of its id, ties a mail to
  its ticket);
- mails: of those tickets, or to those addresses (the "changed" mail has no ticket);
- follow-ups: the Auth0 jobs a completed reset or a dispute queued (unblock, revoke
  sessions, mark the address verified, the dispute's block and its lift), as the
  jobs table holds them: these jobs record nothing else, so their state is the job's;
- inbound events: the website's `password_reset.requested` events (their jobs hold
  the address) and Auth0 log events naming the user. Verify and confirm events
  are stored by id only: they cannot be tied to a person, and are not shown;
- operator actions: the audit lines whose subject is the address or a user id found.

The operator asked for this person, so addresses are shown whole here, and only here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from resetrelay.audit import Subjects
from resetrelay.operators.table import iso, render
from resetrelay.reset.auth0_events import LOG_EVENT
from resetrelay.reset.confirm import (
    LIFT_DISPUTE_BLOCK,
    MARK_EMAIL_VERIFIED,
    REVOKE_SESSIONS,
    UNBLOCK,
)
from resetrelay.reset.disputes import BLOCK
from resetrelay.reset.requests import REQUESTED
from storage import audit, jobs, outbox, tickets
from storage.audit import ActionRow
from storage.database import Database
from storage.jobs import JobRow
from storage.outbox import MailHistory
from storage.tickets import TicketHistory

FOLLOW_UPS = {
    UNBLOCK.name: "unblock",
    REVOKE_SESSIONS.name: "revoke sessions",
    MARK_EMAIL_VERIFIED.name: "mark email verified",
    BLOCK.name: "block (disputed)",
    LIFT_DISPUTE_BLOCK.name: "lift dispute block",
}
INBOUND = {REQUESTED.name: "website", LOG_EVENT.name: "auth0"}
REF = 8  # characters of a ticket id that name it in the output


@dataclass(frozen=True)
class History:
    email: str | None  # as asked
    user_id: str | None  # as asked
    user_ids: list[str]
    emails: list[str]
    tickets: list[TicketHistory]
    mails: list[MailHistory]
    follow_ups: list[JobRow]
    inbound: list[JobRow]
    actions: list[ActionRow]
    now: datetime

    @property
    def empty(self) -> bool:
        return not (self.tickets or self.mails or self.inbound or self.actions)


async def gather(
    db: Database,
    subjects: Subjects,
    *,
    now: datetime,
    email: str | None = None,
    user_id: str | None = None,
) -> History:
    """Everything stored about the person with this address or user id."""
    address = email.strip().lower() if email else None
    async with db.read() as conn:  # reads only: takes no write lock on SQLite
        asked_emails = [address] if address else []
        asked_users = [user_id] if user_id else []
        first = await tickets.for_person(conn, emails=asked_emails, user_ids=asked_users)
        # Follow the links once: an address leads to its users, a user to the
        # addresses its tickets went to.
        user_ids = sorted({*asked_users, *(t.user_id for t in first)})
        emails = sorted({*asked_emails, *(t.email.lower() for t in first)})
        found = await tickets.for_person(conn, emails=emails, user_ids=user_ids)
        mails = await outbox.for_person(conn, ticket_ids=[t.id for t in found], recipients=emails)
        follow_ups = await jobs.for_person(conn, kinds=list(FOLLOW_UPS), user_ids=user_ids)
        inbound = await jobs.for_person(conn, kinds=list(INBOUND), user_ids=user_ids, emails=emails)
        keys = [subjects.email(e) for e in emails] + [subjects.user(u) for u in user_ids]
        actions = await audit.for_subjects(conn, keys)
    return History(
        email=address,
        user_id=user_id,
        user_ids=user_ids,
        emails=emails,
        tickets=found,
        mails=mails,
        follow_ups=follow_ups,
        inbound=inbound,
        actions=actions,
        now=now,
    )


def ticket_status(ticket: TicketHistory, now: datetime) -> str:
    """What verify would answer now: `valid`, `claimed`, `used`, `revoked` or `expired`."""
    if ticket.state in ("used", "revoked"):
        return ticket.state
    if ticket.expires_at <= now:
        return "expired"
    return "claimed" if ticket.state == "claimed" else "valid"


def _event(job: JobRow) -> str:
    if job.kind == REQUESTED.name:
        return "password_reset.requested"
    return str(job.payload.get("type", "?"))


def _note(job: JobRow) -> str | None:
    if job.kind == REQUESTED.name:
        over = job.payload.get("over_limit")
        return {True: "over a rate limit", False: "counted"}.get(over) if over is not None else None
    return None


def as_json(history: History) -> dict[str, Any]:
    """The history for scripts: these keys are stable."""
    now = history.now
    return {
        "query": {"email": history.email, "user_id": history.user_id},
        "user_ids": history.user_ids,
        "emails": history.emails,
        "tickets": [
            {
                "ref": t.id[:REF],
                "user_id": t.user_id,
                "email": t.email,
                "purpose": t.purpose,
                "locale": t.locale,
                "state": t.state,
                "status": ticket_status(t, now),
                "attempts": t.attempts,
                "created_at": iso(t.created_at),
                "expires_at": iso(t.expires_at),
                "opened_at": iso(t.opened_at),
                "finished_at": iso(t.finished_at),
                "revoked_reason": t.revoked_reason,
            }
            for t in history.tickets
        ],
        "mails": [
            {
                "id": m.id,
                "ticket_ref": m.ticket_id[:REF] if m.ticket_id else None,
                "template": m.template,
                "recipient": m.recipient,
                "locale": m.locale,
                "state": m.status,
                "attempts": m.attempts,
                "last_error": m.last_error,
                "message_id": m.message_id,
                "created_at": iso(m.created_at),
                "sent_at": iso(m.sent_at),
            }
            for m in history.mails
        ],
        "follow_ups": [
            {
                "job_id": j.id,
                "what": FOLLOW_UPS[j.kind],
                "kind": j.kind,
                "state": j.status,
                "attempts": j.attempts,
                "last_error": j.last_error,
                "queued_at": iso(j.created_at),
                "updated_at": iso(j.updated_at),
            }
            for j in history.follow_ups
        ],
        "inbound_events": [
            {
                "job_id": j.id,
                "source": INBOUND[j.kind],
                "event": _event(j),
                "state": j.status,
                "note": _note(j),
                "received_at": iso(j.created_at),
            }
            for j in history.inbound
        ],
        "operator_actions": [
            {
                "at": iso(a.at),
                "actor": a.actor,
                "host": a.host,
                "action": a.action,
                "rows": a.rows,
                "detail": a.detail,
            }
            for a in history.actions
        ],
    }


def as_text(history: History) -> str:
    """The history as tables, one per kind of record."""
    now = history.now
    asked = history.email or history.user_id
    users = ", ".join(history.user_ids) or "none found"
    parts = [f"Reset history of {asked} (Auth0 users: {users})"]
    if history.empty:
        parts.append("Nothing stored about this person.")
        return "\n".join(parts)
    sections: list[tuple[str, list[str], list[list[object]]]] = [
        (
            "Tickets",
            [
                *("ref", "purpose", "locale", "created", "status", "expires", "opened"),
                *("finished", "revoked why", "attempts"),
            ],
            [
                [
                    t.id[:REF],
                    t.purpose,
                    t.locale,
                    t.created_at,
                    ticket_status(t, now),
                    t.expires_at,
                    t.opened_at,
                    t.finished_at,
                    t.revoked_reason,
                    t.attempts,
                ]
                for t in history.tickets
            ],
        ),
        (
            "Mails",
            [
                *("ticket", "template", "to", "locale", "state", "attempts", "queued"),
                *("sent", "last error", "Message-ID"),
            ],
            [
                [
                    m.ticket_id[:REF] if m.ticket_id else None,
                    m.template,
                    m.recipient,
                    m.locale,
                    m.status,
                    m.attempts,
                    m.created_at,
                    m.sent_at,
                    (m.last_error or "")[:80],
                    m.message_id,
                ]
                for m in history.mails
            ],
        ),
        (
            "Auth0 follow-ups",
            ["job", "what", "state", "attempts", "queued", "updated", "last error"],
            [
                [
                    j.id,
                    FOLLOW_UPS[j.kind],
                    j.status,
                    j.attempts,
                    j.created_at,
                    j.updated_at,
                    (j.last_error or "")[:80],
                ]
                for j in history.follow_ups
            ],
        ),
        (
            "Inbound events",
            ["job", "received", "source", "event", "state", "note"],
            [
                [j.id, j.created_at, INBOUND[j.kind], _event(j), j.status, _note(j)]
                for j in history.inbound
            ],
        ),
        (
            "Operator actions",
            ["at", "actor", "host", "action", "rows", "detail"],
            [[a.at, a.actor, a.host, a.action, a.rows, a.detail] for a in history.actions],
        ),
    ]
    for title, headings, rows in sections:
        parts.append("")
        parts.append(title)
        parts.append(render(headings, rows, empty="(none)"))
    return "\n".join(parts)


def dumps(history: History) -> str:
    return json.dumps(as_json(history), indent=2, ensure_ascii=False)
