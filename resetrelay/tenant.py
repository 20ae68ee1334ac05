"""What the Auth0 tenant's answers say about its setup, remembered for every process
through the database (`storage.auth0_findings`).

missing scope  a 403 `insufficient_scope`: the application lacks a scope. An
               operator's fix, never a plan limit and never the user's fault:
               logged at ERROR, counted in `resetrelay_auth0_misconfigured_total
               {scope}`, and kept until the same call succeeds, so `/readyz` and
               `resetrelay check` can name it
plan limit     an endpoint the tenant's plan lacks: remembered for `PLAN_MEMORY`, so
               no reset spends Management API calls on it meanwhile
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from identity.errors import InsufficientScope
from resetrelay.metrics import Metrics
from storage import auth0_findings
from storage.auth0_findings import Finding
from storage.database import Database

__all__ = ["ESSENTIAL_CALLS", "PLAN_MEMORY", "TenantFindings", "describe"]

log = logging.getLogger("resetrelay.tenant")

# A plan changes rarely, and an upgrade should take effect without a restart.
PLAN_MEMORY: Final = timedelta(days=1)
# How long this process trusts its last read of the recorded scope problems before
# `call_worked` reads them again: a success clears a record written by another
# process within this long, and a healthy tenant costs one read per period, not one
# write per call.
RECHECK: Final = timedelta(seconds=30)
# Calls without which no reset completes: a missing scope here makes the service unready.
ESSENTIAL_CALLS: Final = frozenset(
    {
        "GET /api/v2/users-by-email",
        "GET /api/v2/users/{id}",
        "PATCH /api/v2/users/{id}",
    }
)


def describe(finding: Finding) -> str:
    """One line an operator can act on."""
    scopes = finding.detail or "a scope Auth0 did not name"
    return (
        f"Auth0 refused {finding.name}: the application lacks {scopes} "
        f"(last at {finding.seen_at.isoformat()}); grant it in the Auth0 dashboard"
    )


class TenantFindings:
    def __init__(self, db: Database, metrics: Metrics, now: Callable[[], datetime]) -> None:
        self._db = db
        self._metrics = metrics
        self._now = now
        self._recorded: set[str] = set()  # calls with a scope record, as last read
        self._read_at: datetime | None = None

    async def missing_scope(self, exc: InsufficientScope, *, consequence: str) -> None:
        """Say loudly that a call failed for a missing scope, and what that leaves undone."""
        scopes = " ".join(exc.scopes)
        for scope in exc.scopes or ("unnamed",):
            self._metrics.auth0_misconfigured.labels(scope).inc()
        log.error(
            "auth0 application lacks a scope",
            extra={"fields": {"call": exc.endpoint, "scopes": scopes, "consequence": consequence}},
        )
        async with self._db.begin() as conn:
            await auth0_findings.record(
                conn, auth0_findings.SCOPE, exc.endpoint, detail=scopes, now=self._now()
            )
        self._recorded.add(exc.endpoint)

    async def call_worked(self, call: str) -> None:
        """The call succeeded: a missing-scope finding about it is out of date."""
        now = self._now()
        if self._read_at is None or now - self._read_at >= RECHECK:
            self._recorded = {f.name for f in await self.scope_findings()}
            self._read_at = now
        if call not in self._recorded:
            return
        async with self._db.begin() as conn:
            if await auth0_findings.clear(conn, auth0_findings.SCOPE, call):
                log.info("auth0 scope problem resolved", extra={"fields": {"call": call}})
        self._recorded.discard(call)

    async def plan_lacks(self, endpoint: str) -> bool:
        async with self._db.begin() as conn:
            found = await auth0_findings.active(conn, now=self._now(), kind=auth0_findings.PLAN)
        return any(f.name == endpoint for f in found)

    async def remember_plan_limit(self, endpoint: str, status: int) -> None:
        now = self._now()
        log.warning(
            "auth0 endpoint not available on this plan; not asked again for a day",
            extra={"fields": {"endpoint": endpoint, "status": status}},
        )
        async with self._db.begin() as conn:
            await auth0_findings.record(
                conn,
                auth0_findings.PLAN,
                endpoint,
                detail=f"answered {status}",
                now=now,
                until=now + PLAN_MEMORY,
            )

    async def scope_findings(self) -> list[Finding]:
        async with self._db.begin() as conn:
            return await auth0_findings.active(conn, now=self._now(), kind=auth0_findings.SCOPE)
