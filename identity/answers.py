"""Reading Auth0's answers: error fields, the password rule a 400 names, and how
long a 429 (or 503) asks us to wait."""

from __future__ import annotations

import math
import re
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

__all__ = ["error_fields", "missing_scopes", "password_rule", "policy_text", "requested_wait"]

# Auth0's error class first, then the plain text it is known to use.
_RULES: Final = (
    ("strength", ("passwordstrengtherror", "password is too weak")),
    ("history", ("passwordhistoryerror", "previously been used", "password history")),
    ("dictionary", ("passworddictionaryerror", "too common", "password dictionary")),
    ("user_info", ("passwordnouserinfoerror", "user information", "personal information")),
)
# The Management API's 403 for a token without the scope an endpoint needs, e.g.
# {"statusCode": 403, "error": "Forbidden", "errorCode": "insufficient_scope",
#  "message": "Insufficient scope, expected any of: delete:sessions"}
# (the shape go-auth0's error tests and Terraform provider reports quote).
_SCOPE_MESSAGE: Final = re.compile(r"insufficient scope[^:]*:\s*(?P<scopes>.*)$", re.IGNORECASE)
_SCOPE: Final = re.compile(r"^[a-z_]+:[a-z_]+$")
_CLASS_PREFIX: Final = re.compile(r"^\s*Password\w*Error:\s*")


def error_fields(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of an error answer; both may be empty."""
    try:
        body: Any = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", ""
    # The official Python SDK reads the code from errorCode, then error, then code.
    code = body.get("errorCode") or body.get("error") or body.get("code") or ""
    message = body.get("message") or body.get("error_description") or ""
    return str(code), str(message)


def password_rule(code: str, message: str) -> str | None:
    """The policy rule a 400 names, or None when it is not one of Auth0's four
    password-policy errors (PasswordStrengthError, PasswordHistoryError,
    PasswordDictionaryError, PasswordNoUserInfoError). Any other 400 that mentions a
    password, e.g. "Cannot change email or password for users in a disabled
    connection.", is the tenant's configuration, not the user's choice: guessing
    "policy" there would blame the user and count an attempt against the link."""
    lowered = f"{code} {message}".lower()
    for rule, needles in _RULES:
        if any(needle in lowered for needle in needles):
            return rule
    return None


def missing_scopes(response: httpx.Response) -> tuple[str, ...] | None:
    """The scopes a 403 `insufficient_scope` answer names (possibly none); None when
    the answer is not an insufficient-scope refusal at all."""
    if response.status_code != 403:
        return None
    code, message = error_fields(response)
    found = _SCOPE_MESSAGE.search(message)
    if code != "insufficient_scope" and found is None:
        return None
    if found is None:
        return ()
    names = (n.strip() for n in re.split(r"[,\s]+", found.group("scopes")))
    return tuple(n for n in names if _SCOPE.match(n))


def policy_text(message: str) -> str:
    """Auth0's policy text without the error-class prefix, fit to show a user."""
    return _CLASS_PREFIX.sub("", message).strip() or "Password rejected"


def requested_wait(headers: httpx.Headers, now: float) -> float | None:
    """Seconds the answer asks us to wait (the longer of `Retry-After` and
    `x-ratelimit-reset`, Unix seconds on our clock), None when it names none."""
    waits = [w for w in (_retry_after(headers, now), _reset(headers, now)) if w is not None]
    return max(waits) if waits else None


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _retry_after(headers: httpx.Headers, now: float) -> float | None:
    text = headers.get("retry-after", "").strip()
    if not text:
        return None
    seconds = _finite(text)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)  # the HTTP-date form
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _reset(headers: httpx.Headers, now: float) -> float | None:
    value = _finite(headers.get("x-ratelimit-reset", "").strip())
    return None if value is None else max(0.0, value - now)
