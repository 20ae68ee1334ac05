"""Input rules shared by the routes: what text we accept at the door."""

from __future__ import annotations


def storable(text: str) -> bool:
    """Text a database can hold: PostgreSQL refuses NUL in text, and a lone surrogate
    (which JSON's `\\u` escapes allow) cannot be encoded as UTF-8 for either backend."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
