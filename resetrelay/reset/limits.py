"""Rate limits on reset requests, counted in the job after the 202.

    per address   RATE_LIMIT_PER_EMAIL   at most N in any window (sliding, exact)
    per network   RATE_LIMIT_PER_IP      the same, for the end user's network
    global        REQUESTS_CEILING       all requests of every process (GCRA): a
                                         flood of addresses cannot spend the
                                         Auth0 quota or the relay's reputation

A refused request is answered like any other (the 202 went out before); it
gets no lookup and no mail. Courtesy mails (reset.courtesy) are counted once
more, per inbox, with the per-address limit (`courtesy_admitted_sync`). Keys
are HMACs under SECRET_KEY, so the tables hold no addresses.

A network is what one attacker controls cheaply: an IPv4 address (also when
written IPv4-mapped, `::ffff:a.b.c.d`), or an IPv6 /64 (a host gets a whole
/64, and its 2^64 addresses must not be 2^64 buckets); a zone id (`%eth0`) is
local to the website's host and is dropped.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from resetrelay.keys import keyed_digest
from resetrelay.metrics import Metrics
from resetrelay.settings import RateLimit, Settings
from storage import ratelimits

Scope = Literal["email", "ip", "global"]


def network_of(client_ip: str) -> str | None:
    """The network `client_ip` stands for (see the module docstring); None if it is
    not an IP address."""
    try:
        address = ipaddress.ip_address(client_ip.strip().partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RequestLimits:
    def __init__(self, settings: Settings, metrics: Metrics, key: bytes) -> None:
        self._settings = settings
        self._metrics = metrics
        self._key = key

    async def refused(
        self, conn: AsyncConnection, email: str, client_ip: str | None, *, now: datetime
    ) -> Scope | None:
        """Count one request in the caller's transaction; the limit it broke, if any."""
        return await conn.run_sync(lambda sync: self.refused_sync(sync, email, client_ip, now=now))

    def refused_sync(
        self, conn: Connection, email: str, client_ip: str | None, *, now: datetime
    ) -> Scope | None:
        """`refused` for `Database.run`: every statement in one thread hop on SQLite."""
        s = self._settings
        # The global ceiling first: a refused request must not use up an address's quota.
        ceiling = s.requests_ceiling
        if ceiling is not None and ratelimits.take_sync(
            conn,
            "global:requested",
            now=now,
            rate=ceiling.count / ceiling.window_seconds,
            burst=ceiling.count,
        ):
            return self._refuse("global")
        per_email = s.rate_limit_per_email
        if not ratelimits.admit_sync(
            conn,
            "email:" + keyed_digest(self._key, email),
            now=now,
            limit=per_email.count,
            window_seconds=per_email.window_seconds,
        ):
            return self._refuse("email")
        network = network_of(client_ip) if client_ip else None
        per_ip = s.rate_limit_per_ip
        if network is not None and not ratelimits.admit_sync(
            conn,
            "ip:" + keyed_digest(self._key, network),
            now=now,
            limit=per_ip.count,
            window_seconds=per_ip.window_seconds,
        ):
            return self._refuse("ip")
        return None

    def courtesy_admitted_sync(self, conn: Connection, mailbox: str, *, now: datetime) -> bool:
        """Count one courtesy mail (reset.courtesy) to `mailbox`, an inbox rather than an
        address; False when it already had RATE_LIMIT_PER_EMAIL of them in the window.
        The limit of reset requests per address, so no inbox hears more of these than
        one address can of reset mails."""
        per_email = self._settings.rate_limit_per_email
        return ratelimits.admit_sync(
            conn,
            "courtesy:" + keyed_digest(self._key, mailbox),
            now=now,
            limit=per_email.count,
            window_seconds=per_email.window_seconds,
        )

    def _refuse(self, scope: Scope) -> Scope:
        self._metrics.rate_limited.labels(scope).inc()
        return scope


def code_redeem_admitted_sync(
    conn: Connection, key: bytes, email: str, *, limit: RateLimit, now: datetime
) -> bool:
    """Count one code redeem of `email` (right or wrong) in the caller's transaction;
    False once CODE_ATTEMPTS_PER_EMAIL are used up. Its own key space (`code:`), so
    redeems and reset requests do not spend each other's quota."""
    return ratelimits.admit_sync(
        conn,
        "code:" + keyed_digest(key, email),
        now=now,
        limit=limit.count,
        window_seconds=limit.window_seconds,
    )
