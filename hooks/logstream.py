"""Parsing Auth0 log-stream bodies.

Auth0's custom webhook offers three content formats: JSON Lines, JSON Array and
JSON Object ("Receive data in JSON lines, arrays, or objects",
https://auth0.com/docs/customize/log-streams/custom-log-streams; `JSONLINES`,
`JSONARRAY`, `JSONOBJECT` as the Management API's `sink.httpContentFormat`). Each
item is `{"log_id", "data": {...}}`.

- JSON Lines is the documented one ("The payload will be delivered in JSON lines
  format"): one item per line.
- JSON Array: a list of items.
- JSON Object: its wire shape is not documented anywhere we could find. We read it
  as one item per request, which is also a one-line JSON Lines body. This is a
  guess; an object of any other shape (a wrapper holding a list, say) is counted
  as malformed, not guessed at, so a wrong guess shows in the malformed metric.

Malformed items are counted and skipped, never fatal: one bad line must not make
Auth0 retry the whole batch. A body in which nothing parses as JSON at all is
`unparseable`, and the route answers 400 so that Auth0 retries it and the failure
shows in the stream's health.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hooks.inputs import storable


@dataclass(frozen=True)
class LogItem:
    log_id: str
    type: str
    data: dict[str, Any]

    def field(self, *path: str) -> Any:
        """The value at `path` inside the entry's data (`"details", "request", "path"`),
        or None where any step is missing or not an object."""
        value: Any = self.data
        for name in path:
            if not isinstance(value, dict):
                return None
            value = value.get(name)
        return value

    def text(self, *path: str) -> str | None:
        """The field at `path` if it is text a database can hold, else None: NUL or a
        lone surrogate would fail the INSERT (a 5xx) or a job on every attempt.
        Asked only for the few fields that are kept, not for every field of a batch."""
        value = self.field(*path)
        return value if isinstance(value, str) and storable(value) else None


@dataclass
class Parsed:
    items: list[LogItem]
    malformed: int = 0
    unparseable: bool = False  # nothing in the body parsed as JSON


def _item(value: Any) -> LogItem | None:
    if not isinstance(value, dict):
        return None
    data = value.get("data")
    log_id = value.get("log_id") or (data.get("log_id") if isinstance(data, dict) else None)
    if not isinstance(data, dict) or not isinstance(log_id, str) or not 0 < len(log_id) <= 255:
        return None
    kind = data.get("type")
    if not isinstance(kind, str) or not 0 < len(kind) <= 64:
        return None
    if not (storable(log_id) and storable(kind)):
        return None  # would make the INSERT fail: a 5xx, and Auth0 retrying the batch
    return LogItem(log_id, kind, data)


def _candidates(document: Any) -> Iterator[Any]:
    # A list is the JSON Array format; anything else is one item (JSON Lines, and our
    # reading of JSON Object). A scalar is not an object, so it counts as malformed.
    if isinstance(document, list):
        yield from document
    else:
        yield document


def parse(body: bytes) -> Parsed:
    parsed = Parsed([])
    try:
        documents: list[Any] = [json.loads(body)]
    except (ValueError, RecursionError):
        documents = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                documents.append(json.loads(line))
            except (ValueError, RecursionError):
                parsed.malformed += 1
    if not documents:
        # Nothing at all is JSON: not a batch with some bad items but a broken body
        # (truncated, wrong encoding, empty), refused as a whole so Auth0 retries.
        parsed.unparseable = True
        return parsed
    for document in documents:
        for candidate in _candidates(document):
            item = _item(candidate)
            if item is None:
                parsed.malformed += 1
            else:
                parsed.items.append(item)
    return parsed
