"""What can go wrong talking to Auth0, as resetrelay sees it. Every httpx error
and every unexpected answer is mapped into this tree inside `identity.client`
(at one place, `raise ... from exc`), so callers never see the layer below.

IdentityError
 ├── PasswordRejected(rule, message)   the connection's password policy said no;
 │                                     rule: strength | history | dictionary | user_info | unknown
 ├── UserNotFound(user_id)             404 for a user id (deleted meanwhile)
 ├── NotAvailable(endpoint, status)    a plan-restricted endpoint the tenant's plan lacks
 ├── InsufficientScope(endpoint, scopes)  403 `insufficient_scope`: the application lacks
 │                                     a scope (an operator's fix, never a plan limit)
 ├── RateLimited(retry_after)          429 and the wait does not fit our deadline
 ├── UpstreamUnavailable(retry_after)  5xx, timeouts, connection errors, after retries
 └── Auth0Error(status, code, message) any other answer we did not expect

`retry_after` is always a finite number of seconds in [0, 3600]: callers are
durable jobs that reschedule by it, so it must never be None, NaN or negative.
No error carries a password, token or client secret.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "Auth0Error",
    "IdentityError",
    "InsufficientScope",
    "NotAvailable",
    "PasswordRejected",
    "RateLimited",
    "UpstreamUnavailable",
    "UserNotFound",
]

MAX_RETRY_AFTER: Final = 3600.0


def _seconds(value: float | None, default: float) -> float:
    if value is None or math.isnan(value) or value < 0:
        return default
    return min(value, MAX_RETRY_AFTER)


class IdentityError(Exception):
    """Base of every error `identity` raises."""


class PasswordRejected(IdentityError):
    RULES: Final = ("strength", "history", "dictionary", "user_info", "unknown")

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule if rule in self.RULES else "unknown"
        self.message = message
        super().__init__(f"password rejected ({self.rule}): {message}")


class UserNotFound(IdentityError):
    def __init__(self, user_id: str = "") -> None:
        self.user_id = user_id
        super().__init__(f"no such user: {user_id}" if user_id else "no such user")


class NotAvailable(IdentityError):
    def __init__(self, endpoint: str, status: int) -> None:
        self.endpoint = endpoint
        self.status = status
        super().__init__(f"{endpoint} answered {status} (not available on this plan?)")


class InsufficientScope(IdentityError):
    """Auth0 refused a call because the token lacks a scope. `scopes` are the ones
    Auth0 names ("expected any of"); empty when its message names none."""

    def __init__(self, endpoint: str, scopes: tuple[str, ...]) -> None:
        self.endpoint = endpoint
        self.scopes = scopes
        named = ", ".join(scopes) or "unnamed"
        super().__init__(f"{endpoint}: the Auth0 application lacks a scope ({named})")


class RateLimited(IdentityError):
    def __init__(self, retry_after: float | None) -> None:
        self.retry_after = _seconds(retry_after, 1.0)
        super().__init__(f"rate limited; retry in {self.retry_after:.1f} s")


class UpstreamUnavailable(IdentityError):
    def __init__(self, retry_after: float | None = None, reason: str = "") -> None:
        self.retry_after = _seconds(retry_after, 5.0)
        self.reason = reason
        super().__init__(f"Auth0 unavailable: {reason}" if reason else "Auth0 unavailable")


class Auth0Error(IdentityError):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"Auth0 answered {status} {code}: {message[:200]}")
