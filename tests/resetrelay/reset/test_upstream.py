"""Auth0 trouble inside a job becomes the job's next step."""

from __future__ import annotations

import pytest

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
from resetrelay.reset.upstream import follow_up, retry_for

pytestmark = pytest.mark.anyio


def test_retry_for_waits_as_auth0_says() -> None:
    assert retry_for(RateLimited(30)).after == 30
    assert retry_for(RateLimited(0)).after == 1.0  # never hammer on a zero
    assert retry_for(UpstreamUnavailable(12)).after == 12
    other = retry_for(Auth0Error(400, "bad_request", "no"))
    assert other.after is None and "400" in other.reason
    scope = retry_for(InsufficientScope("GET /api/v2/users/{id}", ("read:users",)))
    assert scope.reason == "auth0 application lacks read:users"
    assert scope.after == 300.0  # not backoff: an operator has to act first


async def _raise(exc: IdentityError) -> None:
    raise exc


@pytest.mark.parametrize("exc", [UserNotFound("auth0|x"), NotAvailable("/sessions", 403)])
async def test_follow_ups_with_nothing_left_to_do_are_done(exc: IdentityError) -> None:
    await follow_up("revoke", _raise(exc))


async def test_other_follow_up_trouble_is_retried() -> None:
    with pytest.raises(Retry):
        await follow_up("unblock", _raise(UpstreamUnavailable(5)))
