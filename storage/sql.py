"""Small SQL helpers shared by the store modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel


def table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def upsert(conn: AsyncConnection, target: Table) -> Any:
    """An INSERT that knows ON CONFLICT on both SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(target)
    return sqlite.insert(target)


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
