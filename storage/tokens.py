"""Spent JWT ids (`jti`), kept until the token would have expired anyway."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import UsedToken
from storage.sql import table, upsert

_tokens = table(UsedToken)


async def spend(conn: AsyncConnection, jti: str, *, expires_at: datetime) -> bool:
    """True the first time a `jti` is presented, False on every replay."""
    result = await conn.execute(
        upsert(conn, _tokens)
        .values(jti=jti, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["jti"])
        .returning(_tokens.c.jti)
    )
    return result.first() is not None


async def prune(conn: AsyncConnection, *, now: datetime) -> int:
    result = await conn.execute(delete(_tokens).where(_tokens.c.expires_at < now))
    return result.rowcount
