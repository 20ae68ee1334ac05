"""Auth0 trouble inside a job, as the job's next step.

A 429 is retried at the time Auth0 names, an outage after the time it names
(or backoff), any other Auth0 error with backoff. A follow-up call for a user
who is gone, or for an endpoint the tenant's plan lacks, is done: there is
nothing left to do, and retrying would spend the Management API quota.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from identity.errors import (
    Auth0Error,
    IdentityError,
    InsufficientScope,
    NotAvailable,
    RateLimited,
    UpstreamUnavailable,
    UserNotFound,
)
from resetrelay.jobs.run import Retry

log = logging.getLogger("resetrelay.upstream")


def retry_for(exc: IdentityError) -> Retry:
    """Auth0 trouble becomes a later attempt: at the time Auth0 names for 429s."""
    if isinstance(exc, InsufficientScope):
        # Nothing changes until an operator grants the scope: try again much later.
        scopes = " ".join(exc.scopes) or "a scope"
        return Retry(f"auth0 application lacks {scopes}", after=300.0)
    if isinstance(exc, RateLimited):
        return Retry("auth0 rate limited", after=max(1.0, exc.retry_after))
    if isinstance(exc, UpstreamUnavailable):
        return Retry("auth0 unavailable", after=exc.retry_after)
    if isinstance(exc, Auth0Error):
        return Retry(f"auth0 answered {exc.status} {exc.code}")
    return Retry(type(exc).__name__)


async def follow_up(what: str, call: Awaitable[object]) -> None:
    """Run one follow-up call; Auth0 trouble becomes a `Retry`."""
    try:
        await call
    except UserNotFound:
        log.info("user gone before %s", what)
    except NotAvailable as exc:
        log.info("%s not available on this plan", what, extra={"fields": {"status": exc.status}})
    except IdentityError as exc:
        raise retry_for(exc) from exc
