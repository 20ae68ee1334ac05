"""Parsing Auth0 log-stream bodies: JSON Lines, a JSON array, or a JSON object
(one item, or an object that wraps an array). Malformed items are counted and
skipped, never fatal: one bad line must not make Auth0 retry the whole batch.
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

    def text(self, name: str) -> str | None:
        """The entry's field `name` if it is text a database can hold, else None: NUL
        or a lone surrogate would fail the INSERT (a 5xx) or a job on every attempt.
        Asked only for the few fields that are kept, not for every field of a batch."""
        value = self.data.get(name)
        return value if isinstance(value, str) and storable(value) else None


@dataclass
class Parsed:
    items: list[LogItem]
    malformed: int = 0


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
    if isinstance(document, list):
        yield from document
    elif isinstance(document, dict):
        if "data" in document or "log_id" in document:
            yield document
        else:  # {"logs": [...]} and similar wrappers
            for value in document.values():
                if isinstance(value, list):
                    yield from value
                    return
            yield document
    else:
        yield document  # a bare string or number: not an object, so counted as malformed


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
    for document in documents:
        for candidate in _candidates(document):
            item = _item(candidate)
            if item is None:
                parsed.malformed += 1
            else:
                parsed.items.append(item)
    return parsed
