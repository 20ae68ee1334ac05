"""What the Management API told us about the tenant, one row per finding, shared by
every process: plan limits (remembered for a while, so no reset spends calls on an
endpoint the plan lacks) and missing scopes (until the call succeeds again)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Auth0Finding
from storage.sql import table, upsert

__all__ = ["PLAN", "SCOPE", "Finding", "active", "clear", "record"]

PLAN = "plan"
SCOPE = "scope"
_findings = table(Auth0Finding)


@dataclass(frozen=True)
class Finding:
    kind: str
    name: str
    detail: str
    seen_at: datetime
    until: datetime | None


async def record(
    conn: AsyncConnection,
    kind: str,
    name: str,
    *,
    detail: str,
    now: datetime,
    until: datetime | None = None,
) -> None:
    """Insert or refresh one finding."""
    values = {"detail": detail[:255], "seen_at": now, "until": until}
    statement = upsert(conn, _findings).values(kind=kind, name=name[:128], **values)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=["kind", "name"], set_=values)
    )


async def clear(conn: AsyncConnection, kind: str, name: str) -> bool:
    """Forget one finding; True if there was one."""
    result = await conn.execute(
        delete(_findings).where(_findings.c.kind == kind, _findings.c.name == name[:128])
    )
    return bool(result.rowcount)


async def active(conn: AsyncConnection, *, now: datetime, kind: str | None = None) -> list[Finding]:
    """Findings still in force at `now` (of one kind, if given), oldest first."""
    query = select(_findings).order_by(_findings.c.seen_at, _findings.c.name)
    if kind is not None:
        query = query.where(_findings.c.kind == kind)
    rows = (await conn.execute(query)).mappings().all()
    found = [Finding(**row) for row in rows]
    return [f for f in found if f.until is None or f.until > now]
