"""One Management API request budget shared by every process.

Auth0 limits Management API requests per tenant (a Free tenant gets about two a
second). Every call of ours takes a unit of one budget in the database
(`storage.ratelimits.take`, GCRA) before it leaves; when the budget is spent the
call is not made, and the client sees a local `429` with `Retry-After` (marked
`x-resetrelay-budget`), which it handles as it handles Auth0's own: a job
retries later, a confirm waits within its deadline. Jobs stop at a lower mark
than the live path, so a burst of lookups cannot starve the one call a person
waits for: AUTH0_LIVE_RESERVE percent of the burst is kept for it.

The bulk lane (`resetrelay bulk-reset`) stops lower still, at half the jobs'
mark, so a website's `requested` lookup finds room at once while a breach list
is worked through; and it waits for its unit in place (a short, exact sleep)
instead of turning a spent budget into a 429, so it keeps the budget busy at
its rate rather than at whole-second retry steps.

Only `/api/v2/` requests count; the token endpoint has limits of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

import anyio
import httpx

from resetrelay.metrics import Metrics
from resetrelay.settings import RateLimit
from storage import ratelimits
from storage.database import Database

KEY = "auth0:management-api"
# The longest the bulk lane sleeps for a unit before it gives the wait back as a 429
# (its job then retries later, and its worker slot is free meanwhile).
PACE_UP_TO = 5.0


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
        bulk: bool = False,
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
        self._pace = 0.0
        if bulk and not live:
            # Below the jobs' mark: the bulk lane never takes what a live lookup needs.
            self._burst = max(1.0, self._burst / 2)
            self._who, self._pace = "bulk", PACE_UP_TO

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v2/"):
            wait = await self._take()
            while 0 < wait <= self._pace:
                self._metrics.auth0_budget_waits.labels(self._who).inc()
                await anyio.sleep(wait)
                wait = await self._take()
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

    async def _take(self) -> float:
        async with self._db.begin() as conn:
            return await ratelimits.take(
                conn, KEY, now=self._now(), rate=self._rate, burst=self._burst
            )

    async def aclose(self) -> None:
        await self._inner.aclose()
