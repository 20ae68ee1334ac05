"""Rate limits at a window boundary: how many reset requests for one address get
through in 3.9 s that straddle a minute, under 3/minute: the old fixed window
(`storage.ratelimits.hit`) against the sliding window the service uses now
(`resetrelay.reset.limits`). Not a speed benchmark: a behaviour, measured on a
real SQLite database with a stepped clock. `python -m bench.run --only limits`.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from resetrelay.metrics import Metrics
from resetrelay.reset.limits import RequestLimits
from resetrelay.settings import Settings
from storage import ratelimits
from storage.database import Database
from storage.migrate import upgrade

LIMIT, WINDOW, STEP, COUNT = 3, 60, 0.1, 39  # 39 requests, 0.1 s apart: 3.9 s


async def _measure(url: str, settings: Settings) -> tuple[int, int]:
    db = Database(url)
    start = datetime(2026, 12, 1, 10, 0, 58, tzinfo=UTC)  # 2 s before a minute turns
    limits = RequestLimits(settings, Metrics(), b"bench" * 8)
    fixed = sliding = 0
    try:
        for i in range(COUNT):
            now = start + timedelta(seconds=i * STEP)
            async with db.begin() as conn:
                if await ratelimits.hit(conn, "fixed", now=now, window_seconds=WINDOW) <= LIMIT:
                    fixed += 1
                if await limits.refused(conn, "jane@example.com", None, now=now) is None:
                    sliding += 1
    finally:
        await db.dispose()
    return fixed, sliding


def run_limits() -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "DATABASE_URL": f"sqlite:///{Path(tmp)}/limits.db",
            "RATE_LIMIT_PER_EMAIL": f"{LIMIT}/minute",
            "REQUESTS_CEILING": "off",
            "PWNED_PASSWORDS_URL": "",  # no breach check: never the internet
        }
        settings = Settings.from_env(env, roles=())
        upgrade(settings.database_url)
        fixed, sliding = anyio.run(_measure, settings.database_url, settings)
    print(
        f"limits: {COUNT} requests for one address in {COUNT * STEP:.1f} s across a minute "
        f"boundary, limit {LIMIT}/minute: fixed window let {fixed} through, "
        f"sliding window {sliding} (bar: <= {LIMIT})"
    )
    return fixed, sliding
