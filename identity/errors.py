"""What can go wrong talking to Auth0, as resetrelay sees it. Every httpx error
and every unexpected answer is mapped into this tree inside `identity.client`,
so callers never see the layer below.

IdentityError
 ├── PasswordRejected(rule, message)   the connection's password policy said no
 ├── UserNotFound                      404 for a user id (deleted meanwhile)
 ├── NotAvailable(endpoint, status)    403/404 from a plan-restricted endpoint
 ├── RateLimited(retry_after)          429 and the wait is longer than our deadline
 ├── UpstreamUnavailable(retry_after)  5xx, timeouts, connection errors, after retries
 └── Auth0Error(status, code, message) any other answer we did not expect
"""

from __future__ import annotations


class IdentityError(Exception):
    pass


class PasswordRejected(IdentityError):
    RULES = ("strength", "history", "dictionary", "user_info", "unknown")

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"password rejected ({rule})")
        self.rule = rule if rule in self.RULES else "unknown"
        self.message = message


class UserNotFound(IdentityError):
    pass


class NotAvailable(IdentityError):
    def __init__(self, endpoint: str, status: int) -> None:
        super().__init__(f"{endpoint} answered {status}")
        self.endpoint = endpoint
        self.status = status


def _seconds(value: float | None, default: float) -> float:
    if value is None or value != value or value < 0:  # None, NaN, negative
        return default
    return min(value, 3600.0)


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
        super().__init__(f"Auth0 answered {status} {code}: {message[:200]}")
        self.status = status
        self.code = code
        self.message = message
