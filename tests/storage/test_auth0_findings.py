from __future__ import annotations

from datetime import timedelta

import pytest

from storage import auth0_findings
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


async def test_a_plan_finding_holds_until_it_lapses(database: Database, clock: Clock) -> None:
    async with database.begin() as conn:
        await auth0_findings.record(
            conn,
            auth0_findings.PLAN,
            "revoke-access",
            detail="answered 403",
            now=clock(),
            until=clock() + timedelta(days=1),
        )
    async with database.begin() as conn:
        [found] = await auth0_findings.active(conn, now=clock())
        assert (found.kind, found.name, found.detail) == ("plan", "revoke-access", "answered 403")
        assert await auth0_findings.active(conn, now=clock() + timedelta(days=1)) == []


async def test_a_scope_finding_is_refreshed_and_cleared(database: Database, clock: Clock) -> None:
    call = "POST /api/v2/users/{id}/revoke-access"
    async with database.begin() as conn:
        await auth0_findings.record(
            conn, auth0_findings.SCOPE, call, detail="delete:sessions", now=clock()
        )
    clock.advance(60)
    async with database.begin() as conn:
        # The same call refused again: one row, the newer time.
        await auth0_findings.record(
            conn, auth0_findings.SCOPE, call, detail="delete:sessions", now=clock()
        )
        [found] = await auth0_findings.active(conn, now=clock(), kind=auth0_findings.SCOPE)
        assert found.seen_at == clock()
        assert await auth0_findings.active(conn, now=clock(), kind=auth0_findings.PLAN) == []
        assert await auth0_findings.clear(conn, auth0_findings.SCOPE, call)
        assert not await auth0_findings.clear(conn, auth0_findings.SCOPE, call)
        assert await auth0_findings.active(conn, now=clock()) == []
