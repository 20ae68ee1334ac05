"""The operator audit trail: one row per command that changed state, written in the
same transaction as the change it describes, so the trail and the state agree."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import OperatorAction
from storage.sql import table

_actions = table(OperatorAction)


@dataclass(frozen=True)
class ActionRow:
    id: int
    at: datetime
    actor: str
    host: str
    action: str
    subject: str | None
    rows: int
    detail: str | None


async def record(
    conn: AsyncConnection,
    *,
    at: datetime,
    actor: str,
    host: str,
    action: str,
    rows: int,
    subject: str | None = None,
    detail: str | None = None,
) -> int:
    result = await conn.execute(
        _actions.insert()
        .values(
            at=at, actor=actor, host=host, action=action, subject=subject, rows=rows, detail=detail
        )
        .returning(_actions.c.id)
    )
    return int(result.scalar_one())


async def for_subjects(conn: AsyncConnection, subjects: Collection[str]) -> list[ActionRow]:
    """Every line about any of `subjects`, oldest first."""
    if not subjects:
        return []
    rows = await conn.execute(
        select(_actions)
        .where(_actions.c.subject.in_(list(subjects)))
        .order_by(_actions.c.at, _actions.c.id)
    )
    return [ActionRow(**row._mapping) for row in rows]


async def recent(conn: AsyncConnection, *, limit: int = 50) -> list[ActionRow]:
    rows = await conn.execute(
        select(_actions).order_by(_actions.c.at.desc(), _actions.c.id.desc()).limit(limit)
    )
    return [ActionRow(**row._mapping) for row in rows]
