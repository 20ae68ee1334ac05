"""The Auth0 Management API, as resetrelay uses it (see shared/AUTH0.md).

One `Auth0Client` per process. It holds a client-credentials token until
shortly before it expires (one token request however many calls need one at
once), retries 5xx, timeouts and connection errors with exponential backoff and
jitter inside a deadline (tenacity), honours 429s by `x-ratelimit-reset` or
`Retry-After`, and gives up early with `RateLimited` when the wait would not
fit the deadline: callers are durable jobs that reschedule. The transport is
the seam for tests (`httpx.MockTransport`, `httpx.ASGITransport`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import anyio
import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from identity.errors import (
    Auth0Error,
    NotAvailable,
    PasswordRejected,
    RateLimited,
    UpstreamUnavailable,
    UserNotFound,
)

__all__ = ["Auth0Client", "Auth0User", "password_rule"]

TOKEN_MARGIN: Final = 60.0  # refresh this long before `expires_in` runs out
MAX_ATTEMPTS: Final = 5

_RULES: Final = (
    ("strength", ("passwordstrengtherror", "too weak")),
    ("history", ("passwordhistoryerror", "previously been used", "password history")),
    ("dictionary", ("passworddictionaryerror", "too common", "dictionary")),
    ("user_info", ("passwordnouserinfoerror", "user information", "personal info")),
)
_PASSWORDISH: Final = re.compile(r"password", re.IGNORECASE)


def password_rule(message: str) -> str | None:
    """The policy rule an Auth0 400 names, `unknown` for another password error,
    None when the error is not about the password at all."""
    lowered = message.lower()
    for rule, needles in _RULES:
        if any(needle in lowered for needle in needles):
            return rule
    if _PASSWORDISH.search(message) and "simultaneously" not in lowered:
        return "unknown"
    return None


@dataclass(frozen=True)
class Auth0User:
    user_id: str
    email: str
    email_verified: bool
    connection: str | None
    is_database_user: bool
    locale: str | None
    last_password_reset: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any], connection: str) -> Auth0User:
        identities = data.get("identities") or []
        database = next(
            (
                i
                for i in identities
                if isinstance(i, dict)
                and i.get("provider") == "auth0"
                and i.get("connection") == connection
                and not i.get("isSocial")
            ),
            None,
        )
        metadata = data.get("user_metadata") or {}
        locale = metadata.get("locale") or metadata.get("language") or data.get("locale")
        reset = data.get("last_password_reset")
        return cls(
            user_id=str(data.get("user_id", "")),
            email=str(data.get("email") or ""),
            email_verified=bool(data.get("email_verified")),
            connection=connection if database else None,
            is_database_user=database is not None,
            locale=locale if isinstance(locale, str) and len(locale) <= 35 else None,
            last_password_reset=_parse_time(reset),
        )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class _Transient(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class _OutOfTime(stop_base):
    """Stop once the deadline has passed on *our* clock (tests inject it)."""

    def __init__(self, clock: Callable[[], float], started: float, deadline: float) -> None:
        self._clock, self._started, self._deadline = clock, started, deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock() - self._started >= self._deadline


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", ""
    # The official Python SDK reads the code from errorCode, then error, then code.
    code = body.get("errorCode") or body.get("error") or body.get("code") or ""
    return str(code), str(body.get("message") or body.get("error_description") or "")


class Auth0Client:
    def __init__(
        self,
        *,
        base_url: str,
        domain: str,
        client_id: str,
        client_secret: str,
        connection: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
        deadline_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"user-agent": "resetrelay"},
            follow_redirects=False,
        )
        # The audience stays the tenant's API even behind a custom domain or emulator.
        self._audience = f"https://{domain}/api/v2/"
        self._client_id = client_id
        self._client_secret = client_secret
        self.connection = connection
        self._deadline = deadline_seconds
        self._clock = clock
        self._sleep = sleep
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"Auth0Client(audience={self._audience!r}, client_id={self._client_id!r})"

    async def __aenter__(self) -> Auth0Client:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing -------------------------------------------------------------------

    async def _token_value(self, *, stale: str | None = None) -> str:
        async with self._token_lock:
            # Another caller may have refreshed while we waited for the lock.
            fresh = self._token is not None and self._token != stale
            if fresh and self._clock() < self._token_expires:
                return self._token  # type: ignore[return-value]
            response = await self._http.post(
                "/oauth/token",
                json={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                    "audience": self._audience,
                },
            )
            if response.status_code == 429 or response.status_code >= 500:
                raise _Transient(
                    f"token endpoint answered {response.status_code}",
                    self._rate_limit_wait(response),
                )
            if response.status_code != 200:
                code, message = _error_fields(response)
                raise Auth0Error(response.status_code, code or "token_error", message)
            body = response.json()
            expires_in = float(body.get("expires_in", 86400))
            self._token = str(body["access_token"])
            self._token_expires = self._clock() + max(
                1.0, expires_in - min(TOKEN_MARGIN, expires_in / 10)
            )
            return self._token

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        retry_after = response.headers.get("retry-after")
        if retry_after and retry_after.strip().isdigit():
            return float(retry_after)
        reset = response.headers.get("x-ratelimit-reset")
        if reset and reset.strip().isdigit():
            return max(0.0, float(reset) - self._clock())
        return None

    async def _attempt(
        self, method: str, path: str, started: float, **kwargs: Any
    ) -> httpx.Response:
        token = await self._token_value()
        headers = {"authorization": f"Bearer {token}"}
        response = await self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code == 401:
            # Revoked or rotated signing key: one fresh token, then try again.
            token = await self._token_value(stale=token)
            headers = {"authorization": f"Bearer {token}"}
            response = await self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code == 429:
            wait = self._rate_limit_wait(response)
            remaining = self._deadline - (self._clock() - started)
            if wait is not None and wait > remaining:
                raise RateLimited(wait)
            raise _Transient("429", wait)
        if response.status_code >= 500:
            raise _Transient(f"{response.status_code}")
        return response

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        started = self._clock()
        last_wait: list[float | None] = [None]

        backoff = wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Transient) and exc.wait is not None:
                last_wait[0] = exc.wait
                return float(exc.wait)  # Auth0 said when: 429 reset or Retry-After
            return float(backoff(state))

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(_Transient),
                wait=wait,
                stop=stop_after_attempt(MAX_ATTEMPTS)
                | _OutOfTime(self._clock, started, self._deadline),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    return await self._attempt(method, path, started, **kwargs)
        except _Transient as exc:
            raise UpstreamUnavailable(exc.wait or last_wait[0], exc.reason) from exc
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable(None, "timeout") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(None, type(exc).__name__) from exc
        raise UpstreamUnavailable(None, "no attempt made")  # pragma: no cover

    def _user_path(self, user_id: str, suffix: str = "") -> str:
        return f"/api/v2/users/{quote(user_id, safe='')}{suffix}"

    def _unexpected(self, response: httpx.Response) -> Auth0Error:
        code, message = _error_fields(response)
        return Auth0Error(response.status_code, code or str(response.status_code), message)

    # -- the calls ------------------------------------------------------------------

    async def users_by_email(self, email: str) -> list[Auth0User]:
        response = await self._request("GET", "/api/v2/users-by-email", params={"email": email})
        if response.status_code != 200:
            raise self._unexpected(response)
        body = response.json()
        if not isinstance(body, list):
            raise Auth0Error(200, "bad_shape", "users-by-email did not answer an array")
        return [Auth0User.from_json(u, self.connection) for u in body if isinstance(u, dict)]

    async def find_database_user(self, email: str) -> Auth0User | None:
        """The user of this address in our database connection; None for unknown
        addresses and social-only users (they reset at their provider)."""
        users = await self.users_by_email(email)
        return next((u for u in users if u.is_database_user), None)

    async def get_user(self, user_id: str) -> Auth0User:
        response = await self._request("GET", self._user_path(user_id))
        if response.status_code == 404:
            raise UserNotFound(user_id)
        if response.status_code != 200:
            raise self._unexpected(response)
        return Auth0User.from_json(response.json(), self.connection)

    async def set_password(self, user_id: str, password: str) -> None:
        response = await self._request(
            "PATCH",
            self._user_path(user_id),
            json={"password": password, "connection": self.connection},
        )
        if response.status_code == 200:
            return
        if response.status_code == 404:
            raise UserNotFound(user_id)
        if response.status_code == 400:
            code, message = _error_fields(response)
            rule = password_rule(f"{code} {message}")
            if rule is not None:
                # Auth0's text, minus the error-class prefix, is what users may read.
                text = re.sub(r"^Password\w*Error:\s*", "", message) or "Password rejected"
                raise PasswordRejected(rule, text)
        raise self._unexpected(response)

    async def mark_email_verified(self, user_id: str) -> None:
        # A PATCH of its own: Auth0 refuses email_verified beside password.
        response = await self._request(
            "PATCH", self._user_path(user_id), json={"email_verified": True}
        )
        if response.status_code == 404:
            raise UserNotFound(user_id)
        if response.status_code != 200:
            raise self._unexpected(response)

    async def unblock(self, user_id: str) -> None:
        response = await self._request("DELETE", f"/api/v2/user-blocks/{quote(user_id, safe='')}")
        if response.status_code == 404:
            raise UserNotFound(user_id)
        if response.status_code not in (200, 204):
            raise self._unexpected(response)

    async def revoke_sessions(self, user_id: str) -> str:
        """End sessions and refresh tokens: `revoked`, `partial` or `not_available`
        (plans without these endpoints answer 403/404: recorded, not fatal)."""
        response = await self._request("POST", self._user_path(user_id, "/revoke-access"), json={})
        if response.status_code in (200, 202, 204):
            return "revoked"
        if response.status_code not in (403, 404):
            raise self._unexpected(response)
        done = 0
        for suffix in ("/sessions", "/refresh-tokens"):
            answer = await self._request("DELETE", self._user_path(user_id, suffix))
            if answer.status_code in (200, 202, 204):
                done += 1
            elif answer.status_code not in (403, 404):
                raise self._unexpected(answer)
        return {0: "not_available", 1: "partial"}.get(done, "revoked")

    async def invalidate_remember_browser(self, user_id: str) -> None:
        response = await self._request(
            "POST", self._user_path(user_id, "/multifactor/actions/invalidate-remember-browser")
        )
        if response.status_code in (403, 404):
            raise NotAvailable("invalidate-remember-browser", response.status_code)
        if response.status_code not in (200, 204):
            raise self._unexpected(response)
