"""One Management API request budget shared by every process.

Auth0 limits Management API requests per tenant (a Free tenant gets about two a
second). Every call of ours takes a unit of one budget in the database
(`storage.ratelimits.take`, GCRA) before it leaves; when the budget is spent the
call is not made, and the client sees a local `429` with `Retry-After` (marked
`x-resetrelay-budget`), which it handles as it handles Auth0's own: a job
retries later, a confirm waits within its deadline. Jobs stop at a lower mark
than the live path, so a burst of lookups cannot starve the one call a person
waits for: AUTH0_LIVE_RESERVE percent of the burst is kept for it.

Only `/api/v2/` requests count; the token endpoint has limits of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

import httpx

from resetrelay.metrics import Metrics
from resetrelay.settings import RateLimit
from storage import ratelimits
from storage.database import Database

KEY = "auth0:management-api"


class BudgetTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        db: Database,
        now: Callable[[], datetime],
        metrics: Metrics,
        *,
        limit: RateLimit,
        reserve_percent: int,
        live: bool,
    ) -> None:
        self._inner = inner
        self._db = db
        self._now = now
        self._metrics = metrics
        self._rate = limit.count / limit.window_seconds
        burst = float(limit.count)
        # Jobs may fill the budget only up to the reserve; the live path, all of it.
        self._burst = burst if live else max(1.0, burst * (100 - reserve_percent) / 100)
        self._who = "live" if live else "jobs"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v2/"):
            async with self._db.begin() as conn:
                wait = await ratelimits.take(
                    conn, KEY, now=self._now(), rate=self._rate, burst=self._burst
                )
            if wait > 0:
                self._metrics.auth0_budget_waits.labels(self._who).inc()
                return httpx.Response(
                    429,
                    headers={
                        "retry-after": str(max(1, math.ceil(wait))),
                        "x-resetrelay-budget": "exhausted",
                        "content-type": "application/json",
                    },
                    json={
                        "statusCode": 429,
                        "error": "Too Many Requests",
                        "message": "resetrelay's shared Management API budget is spent",
                    },
                    request=request,
                )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
