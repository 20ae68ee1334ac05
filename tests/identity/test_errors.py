"""The exception tree: data carried, and retry_after always usable."""

from __future__ import annotations

import math

import pytest

from identity import errors
from identity.errors import (
    Auth0Error,
    IdentityError,
    NotAvailable,
    PasswordRejected,
    RateLimited,
    UpstreamUnavailable,
    UserNotFound,
)


def test_every_error_is_an_identity_error() -> None:
    for cls in (PasswordRejected, UserNotFound, NotAvailable, RateLimited, UpstreamUnavailable,
                Auth0Error):  # fmt: skip
        assert issubclass(cls, IdentityError)
        assert cls.__name__ in (errors.__doc__ or "")


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, 1.0), (-3.0, 1.0), (math.nan, 1.0), (2.5, 2.5), (0.0, 0.0), (1e9, 3600.0),
     (math.inf, 3600.0)],
)  # fmt: skip
def test_rate_limited_retry_after_is_sane(given: float | None, expected: float) -> None:
    assert RateLimited(given).retry_after == expected


def test_upstream_unavailable_defaults() -> None:
    assert UpstreamUnavailable().retry_after == 5.0
    assert UpstreamUnavailable(-1, "timeout").retry_after == 5.0
    assert str(UpstreamUnavailable(None, "timeout")) == "Auth0 unavailable: timeout"


def test_password_rejected_keeps_known_rules_only() -> None:
    assert PasswordRejected("history", "Password has previously been used").rule == "history"
    assert PasswordRejected("made-up", "x").rule == "unknown"


def test_data_is_carried() -> None:
    error = Auth0Error(400, "invalid_body", "Payload validation error")
    assert (error.status, error.code, error.message) == (
        400,
        "invalid_body",
        "Payload validation error",
    )
    assert (NotAvailable("sessions", 403).endpoint, NotAvailable("sessions", 403).status) == (
        "sessions",
        403,
    )
    assert UserNotFound("auth0|x").user_id == "auth0|x"
