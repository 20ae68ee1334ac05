"""Erasure: every row about one person, found table by table and deleted at once.

A person is the addresses and Auth0 user ids an erasure request names, grown
by what our own tickets link them to (a ticket holds both). `HOLDERS` says,
one line per table, how a table's rows about a person are found; `HOLDS_NO_ONE`
says why each other table holds no address and no user id. Every table of
`storage.models` is in exactly one of them (tests/storage/test_erasure.py), so
a new table cannot hold personal data unnoticed: it gets its line here.

    Address(column)        the column is one of the person's addresses (any case)
    UserId(column)         the column is one of the person's user ids
    Ref(column, table)     the column is the key of a row already found in `table`
    JsonRef(column, key, table)  the JSON column's `key` is the key of a row already
                           found in `table` (a job's `mail_id`, `ticket_id`)
    TextRef(column, key, table)  the text column is a JSON object whose `key` is the
                           key of a row already found in `table` (a kept
                           `redeem_code` answer's `ticket_ref`)
    Mentions(column)       a text or JSON column mentions an address or user id
                           anywhere (a JSON payload, an error text, a stored answer)

`Mentions` narrows the rows in SQL with LIKE (the text as stored, and as JSON
escapes it), so it reads the whole table: an erasure is rare, and the search
runs in the transaction that deletes, so what it finds is what goes. Each row
is then confirmed in Python: a string mentions a value when the
value occurs in it with no address or id character right before or after it,
so `ane@example.com` does not match `jane@example.com`, nor `auth0|1` `auth0|12`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, Text, cast, delete, false, func, or_, select, tuple_

from storage.models import metadata


@dataclass(frozen=True)
class Person:
    emails: frozenset[str]  # lower-cased
    user_ids: frozenset[str]

    @classmethod
    def of(cls, *, emails: Iterable[str] = (), user_ids: Iterable[str] = ()) -> Person:
        return cls(
            frozenset(e.strip().lower() for e in emails if e.strip()),
            frozenset(u for u in user_ids if u),
        )

    def values(self) -> frozenset[str]:
        return self.emails | self.user_ids


Found = Mapping[str, set[Any]]  # table -> keys of its rows found so far


class Match:
    """How rows of a table are about a person: a SQL clause that finds every such
    row (and maybe more), and the Python check that decides for each."""

    def clause(self, table: Table, person: Person, found: Found) -> Any:
        raise NotImplementedError

    def holds(self, row: Mapping[str, Any], person: Person, found: Found) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Address(Match):
    column: str

    def clause(self, table: Table, person: Person, found: Found) -> Any:
        # lower() folds ASCII only on SQLite: an address stored with other capitals
        # is still narrowed by Mentions where the table has it, and checked below.
        return func.lower(table.c[self.column]).in_(sorted(person.emails))

    def holds(self, row: Mapping[str, Any], person: Person, found: Found) -> bool:
        value = row[self.column]
        return isinstance(value, str) and value.strip().lower() in person.emails


@dataclass(frozen=True)
class UserId(Match):
    column: str

    def clause(self, table: Table, person: Person, found: Found) -> Any:
        return table.c[self.column].in_(sorted(person.user_ids))

    def holds(self, row: Mapping[str, Any], person: Person, found: Found) -> bool:
        return row[self.column] in person.user_ids


@dataclass(frozen=True)
class Ref(Match):
    column: str
    table: str

    def clause(self, table: Table, person: Person, found: Found) -> Any:
        keys = sorted(found.get(self.table, ()))
        return table.c[self.column].in_(keys) if keys else false()

    def holds(self, row: Mapping[str, Any], person: Person, found: Found) -> bool:
        return row[self.column] in found.get(self.table, ())


@dataclass(frozen=True)
class JsonRef(Match):
    column: str
    key: str
    table: str

    def clause(self, table: Table, person: Person, found: Found) -> Any:
        keys = sorted(found.get(self.table, ()))
        if not keys:
            return false()
        element = table.c[self.column][self.key]
        typed = element.as_integer() if isinstance(keys[0], int) else element.as_string()
        return typed.in_(keys)

    def holds(self, row: Mapping[str, Any], person: Person, found: Found) -> bool:
        value = row[self.column]
        return isinstance(value, dict) and value.get(self.key) in found.get(self.table, ())


@dataclass(frozen=True)
class TextRef(Match):
    column: str
    key: str
    table: str

    def clause(self, table: Table, person: Person, found: Found) -> Any:
        keys = sorted(found.get(self.table, ()))
        # Narrowed with LIKE on the JSON text ("key":"value"), confirmed in `holds`.
        needles = [json.dumps({self.key: key}, separators=(",", ":"))[1:-1] for key in keys]
        return or_(*(_like(table.c[self.column], n) for n in needles)) if needles else false()

    def holds(self, row: Mapping[str, Any], person: Person, found: Found) -> bool:
        try:
            value = json.loads(row[self.column])
        except (TypeError, ValueError):
            return False
        return isinstance(value, dict) and value.get(self.key) in found.get(self.table, ())


@dataclass(frozen=True)
class Mentions(Match):
    column: str

    def clause(self, table: Table, person: Person, found: Found) -> Any:
        needles = {form for value in person.values() for form in _forms(value)}
        return or_(*(_like(table.c[self.column], needle) for needle in sorted(needles)))

    def holds(self, row: Mapping[str, Any], person: Person, found: Found) -> bool:
        patterns = [_mention(value) for value in person.values()]
        return any(p.search(text) for text in _strings(row[self.column]) for p in patterns)


def _like(column: Any, needle: str) -> Any:
    return func.lower(cast(column, Text)).contains(needle.lower(), autoescape=True)


def _forms(value: str) -> set[str]:
    """The value as a text column holds it, and as a JSON document escapes it."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


# Characters that continue an address or a user id: a match must not touch one.
_WORD = r"[\w.%+\-|@]"


def _mention(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!{_WORD}){re.escape(value)}(?!{_WORD})", re.IGNORECASE)


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (keys too), or the text itself."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True)
class Holder:
    table: str
    matches: tuple[Match, ...]
    key: tuple[str, ...] = field(default=("id",))


# One line per table that can hold an address or a user id, in the order they are
# searched (a Ref names a table searched before it).
HOLDERS: tuple[Holder, ...] = (
    Holder("tickets", (Address("email"), UserId("user_id"))),
    # A "Wasn't you?" link holds the address and user of the "password changed" mail.
    Holder("disputes", (Address("email"), UserId("user_id"))),
    Holder(
        "mail_messages",
        (
            Address("recipient"),
            Ref("ticket_id", "tickets"),
            Mentions("context"),
            Mentions("last_error"),
        ),
    ),
    Holder(
        "jobs",
        (
            Mentions("payload"),
            JsonRef("payload", "mail_id", "mail_messages"),
            JsonRef("payload", "ticket_id", "tickets"),
            Mentions("last_error"),
        ),
    ),
    # verify answers hold a masked address today; searched all the same. A kept
    # redeem_code answer names its ticket's row (the ticket is made from it).
    Holder(
        "inbound_events",
        (Mentions("answer"), TextRef("answer", "ticket_ref", "tickets")),
        key=("source", "event_id"),
    ),
    # A bulk run's line keeps the user id it mailed (one mail per user per run).
    Holder("bulk_rows", (UserId("user_id"), Mentions("reason")), key=("run_id", "row_no")),
)

# Every other table, and why it holds no address and no user id.
HOLDS_NO_ONE: dict[str, str] = {
    "rate_counters": "keys are HMACs of an address, an inbox or a network under SECRET_KEY",
    "rate_events": "keys are HMACs of an address, an inbox or a network under SECRET_KEY",
    "rate_budgets": "one shared budget per name, about nobody",
    "used_tokens": "the ids (jti) of spent Auth0 Action tokens",
    "operator_actions": "subjects are keyed pseudonyms; kept so an erasure is on record",
    "bulk_runs": "a run's file hash, template and counts; its lines are bulk_rows",
    "funnel_days": "counts per day, purpose, locale and step; nobody in them",
    "auth0_findings": "scopes and endpoints Auth0 refused, with user ids replaced by {id}",
}


def linked(conn: Connection, person: Person) -> Person:
    """The person grown by our tickets: the user ids its addresses had, and the
    addresses its user ids had, until nothing new turns up."""
    tickets = metadata.tables["tickets"]
    for _ in range(8):  # a chain of address changes is short; this bounds it anyway
        query = select(tickets.c.email, tickets.c.user_id).where(
            or_(
                Address("email").clause(tickets, person, {}),
                UserId("user_id").clause(tickets, person, {}),
            )
        )
        rows = conn.execute(query).all()
        grown = Person.of(
            emails=person.emails | {row.email for row in rows},
            user_ids=person.user_ids | {row.user_id for row in rows},
        )
        if grown == person:
            break
        person = grown
    return person


def find(conn: Connection, person: Person) -> dict[str, set[Any]]:
    """The keys of every row about `person`, by table (a key is the primary key's
    value, or a tuple of them)."""
    found: dict[str, set[Any]] = {}
    for holder in HOLDERS:
        table = metadata.tables[holder.table]
        clauses = [match.clause(table, person, found) for match in holder.matches]
        rows = [dict(row) for row in conn.execute(select(table).where(or_(*clauses))).mappings()]
        found[holder.table] = {
            _key(holder, row)
            for row in rows
            if any(match.holds(row, person, found) for match in holder.matches)
        }
    return found


def erase(conn: Connection, person: Person) -> dict[str, int]:
    """Delete every row about `person` in the caller's transaction; returns the rows
    deleted, by table."""
    found = find(conn, person)
    counts = {name: len(keys) for name, keys in found.items()}
    for holder in reversed(HOLDERS):  # rows that refer to others go first
        table = metadata.tables[holder.table]
        keys = sorted(found[holder.table])
        columns = [table.c[name] for name in holder.key]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            if len(columns) == 1:
                conn.execute(delete(table).where(columns[0].in_(chunk)))
            else:
                conn.execute(delete(table).where(tuple_(*columns).in_(chunk)))
    return counts


def _key(holder: Holder, row: Mapping[str, Any]) -> Any:
    values = tuple(row[name] for name in holder.key)
    return values[0] if len(values) == 1 else values
