"""The Auth0 Management API, as resetrelay uses it (docs/auth0.md says how to set it up).

One `Auth0Client` per process. Its token lives in `identity.token`, its
retries in `identity.retrying`, and every failure leaves it as one of
`identity.errors`. The transport is the seam for tests
(`httpx.ASGITransport(app=create_emulator(...))`, `httpx.MockTransport`).

    async with Auth0Client(base_url="https://acme.eu.auth0.com", domain="acme.eu.auth0.com",
                           client_id=..., client_secret=...,
                           connection="Username-Password-Authentication") as auth0:
        user = await auth0.find_database_user("jane@example.com")
        if user is not None:
            await auth0.set_password(user.user_id, new_password)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import anyio
import httpx

from identity.answers import error_fields, password_rule, policy_text
from identity.connections import Connection
from identity.errors import Auth0Error, NotAvailable, PasswordRejected, UserNotFound
from identity.retrying import Deadline, raise_for_transient, with_retries
from identity.token import TokenCache
from identity.users import Auth0User

__all__ = ["Auth0Client", "Auth0User"]

MIN_ATTEMPT_TIMEOUT: Final = 0.5  # seconds; an attempt this short is not worth making
_DONE: Final = (200, 201, 202, 204)
_PLAN_RESTRICTED: Final = (403, 404)


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
        self.connection = connection
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"user-agent": "resetrelay"},
            follow_redirects=False,
        )
        self._token = TokenCache(
            domain=domain, client_id=client_id, client_secret=client_secret, clock=clock
        )
        self._timeout = timeout
        self._deadline = deadline_seconds
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:  # never the secret, never the token
        return (
            f"Auth0Client(base_url={str(self._http.base_url)!r}, "
            f"audience={self._token.audience!r}, client_id={self._token.client_id!r})"
        )

    async def __aenter__(self) -> Auth0Client:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing -------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One logical call: retried, within the deadline; 429/5xx never come back."""

        async def attempt(deadline: Deadline) -> httpx.Response:
            # An attempt may not outlive the deadline (but gets a fair chance).
            timeout = httpx.Timeout(
                max(MIN_ATTEMPT_TIMEOUT, min(self._timeout, deadline.remaining()))
            )
            token = await self._token.get(self._http, timeout)
            response = await self._send(method, path, token, timeout, **kwargs)
            if response.status_code == 401:
                # Revoked token or rotated signing key: one fresh token, one more try.
                self._token.drop(token)
                token = await self._token.get(self._http, timeout)
                response = await self._send(method, path, token, timeout, **kwargs)
            raise_for_transient(response, self._clock())
            return response

        return await with_retries(
            attempt, clock=self._clock, sleep=self._sleep, deadline_seconds=self._deadline
        )

    async def _send(
        self, method: str, path: str, token: str, attempt_timeout: httpx.Timeout, **kwargs: Any
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"}
        return await self._http.request(
            method, path, headers=headers, timeout=attempt_timeout, **kwargs
        )

    @staticmethod
    def _user_path(user_id: str, suffix: str = "") -> str:
        return f"/api/v2/users/{quote(user_id, safe='')}{suffix}"

    @staticmethod
    def _unexpected(response: httpx.Response) -> Auth0Error:
        code, message = error_fields(response)
        return Auth0Error(response.status_code, code or str(response.status_code), message)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise Auth0Error(response.status_code, "invalid_json", "answer is not JSON") from exc

    def _user(self, response: httpx.Response) -> Auth0User:
        body = self._json(response)
        if not isinstance(body, dict):
            raise Auth0Error(response.status_code, "bad_shape", "a user is not an object")
        return Auth0User.from_json(body, self.connection)

    # -- the calls ------------------------------------------------------------------

    async def users_by_email(self, email: str) -> list[Auth0User]:
        """Every user with exactly this address (Auth0 matches case-sensitively)."""
        response = await self._request("GET", "/api/v2/users-by-email", params={"email": email})
        if response.status_code != 200:
            raise self._unexpected(response)
        body = self._json(response)
        if not isinstance(body, list):
            raise Auth0Error(200, "bad_shape", "users-by-email did not answer an array")
        return [Auth0User.from_json(u, self.connection) for u in body if isinstance(u, dict)]

    async def find_database_user(self, email: str) -> Auth0User | None:
        """The user of this address in our database connection; None for unknown
        addresses and social-only users (they reset at their provider). Auth0
        stores database users' addresses in lower case, so we ask in lower case."""
        users = await self.users_by_email(email.strip().lower())
        return next((u for u in users if u.is_database_user), None)

    async def get_user(self, user_id: str) -> Auth0User:
        response = await self._request("GET", self._user_path(user_id))
        if response.status_code == 404:
            raise UserNotFound(user_id)
        if response.status_code != 200:
            raise self._unexpected(response)
        return self._user(response)

    async def set_password(
        self, user_id: str, password: str, *, app_metadata: dict[str, Any] | None = None
    ) -> Auth0User | None:
        """Set the password; `app_metadata` (merged by Auth0 on its first level) goes in
        the same PATCH, so both are written or neither. The user as Auth0 answered,
        or None if the answer was not a user object."""
        body: dict[str, Any] = {"password": password, "connection": self.connection}
        if app_metadata:
            body["app_metadata"] = app_metadata
        response = await self._request("PATCH", self._user_path(user_id), json=body)
        if response.status_code == 200:
            try:
                return self._user(response)
            except Auth0Error:
                return None  # the password is set; an odd body does not undo that
        if response.status_code == 404:
            raise UserNotFound(user_id)
        if response.status_code == 400:
            code, message = error_fields(response)
            rule = password_rule(code, message)
            if rule is not None:
                raise PasswordRejected(rule, policy_text(message))
        raise self._unexpected(response)

    async def database_connection(self) -> Connection | None:
        """Our database connection (its `options` hold the password policy); None if the
        tenant has no database connection of that name (`identity.connections`)."""
        params = {"name": self.connection, "strategy": "auth0"}
        response = await self._request("GET", "/api/v2/connections", params=params)
        if response.status_code != 200:
            raise self._unexpected(response)
        return Connection.named(self._json(response), self.connection)

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
        """Lift brute-force blocks of every identifier of the user."""
        response = await self._request("DELETE", f"/api/v2/user-blocks/{quote(user_id, safe='')}")
        if response.status_code == 404:
            raise UserNotFound(user_id)
        if response.status_code not in _DONE:
            raise self._unexpected(response)

    async def revoke_sessions(self, user_id: str) -> str:
        """End sessions and refresh tokens: "revoked", "partial" or "not_available".
        Plans without these endpoints answer 403/404: recorded, never raised."""
        response = await self._request("POST", self._user_path(user_id, "/revoke-access"), json={})
        if response.status_code in _DONE:
            return "revoked"
        if response.status_code not in _PLAN_RESTRICTED:
            raise self._unexpected(response)
        done = 0
        for suffix in ("/sessions", "/refresh-tokens"):
            answer = await self._request("DELETE", self._user_path(user_id, suffix))
            if answer.status_code in _DONE:
                done += 1
            elif answer.status_code not in _PLAN_RESTRICTED:
                raise self._unexpected(answer)
        return ("not_available", "partial", "revoked")[done]

    async def invalidate_remember_browser(self, user_id: str) -> None:
        """Forget "remember this browser" for MFA; `NotAvailable` on 403/404."""
        response = await self._request(
            "POST", self._user_path(user_id, "/multifactor/actions/invalidate-remember-browser")
        )
        if response.status_code in _PLAN_RESTRICTED:
            raise NotAvailable("invalidate-remember-browser", response.status_code)
        if response.status_code not in _DONE:
            raise self._unexpected(response)
