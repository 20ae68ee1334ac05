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

from identity.answers import error_fields, missing_scopes, password_rule, policy_text
from identity.connections import Connection
from identity.errors import (
    Auth0Error,
    InsufficientScope,
    NotAvailable,
    PasswordRejected,
    UserNotFound,
)
from identity.retrying import Deadline, Transient, raise_for_transient, with_retries
from identity.token import TokenCache
from identity.users import Auth0User

__all__ = ["Auth0Client", "Auth0User"]

MIN_ATTEMPT_TIMEOUT: Final = 0.5  # seconds; an attempt this short is not worth making
_DONE: Final = (200, 201, 202, 204)
_PLAN_RESTRICTED: Final = (403, 404)
# Page size for listing device credentials: within what Auth0's list endpoints
# accept, large enough that one page holds a typical user's refresh tokens.
DEVICE_CREDENTIALS_PAGE: Final = 100
# At most this many pages are read, a bound on one job's calls: a user with more
# refresh tokens than that keeps the rest (unlikely for a person's devices).
MAX_DEVICE_CREDENTIAL_PAGES: Final = 10
# A token older than this, refused for a missing scope, is replaced and the call tried
# once more: the operator may have granted the scope since the token was issued.
SCOPE_RECHECK_SECONDS: Final = 60.0
# Errors that mean the PATCH never reached Auth0, so retrying it cannot apply it twice.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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

    def _attempt_timeout(self, deadline: Deadline) -> httpx.Timeout:
        # An attempt may not outlive the deadline (but gets a fair chance).
        return httpx.Timeout(max(MIN_ATTEMPT_TIMEOUT, min(self._timeout, deadline.remaining())))

    async def _once(
        self, method: str, path: str, limit: httpx.Timeout, **kwargs: Any
    ) -> httpx.Response:
        """One attempt, with one fresh token after a 401; transient answers raise."""
        token = await self._token.get(self._http, limit)
        response = await self._send(method, path, token, limit, **kwargs)
        if response.status_code == 401:
            # Revoked token or rotated signing key: one fresh token, one more try.
            self._token.drop(token)
            token = await self._token.get(self._http, limit)
            response = await self._send(method, path, token, limit, **kwargs)
        if response.status_code == 403 and missing_scopes(response) is not None:
            # A token's scopes are fixed when it is issued: a scope granted since then
            # reaches us only in a fresh token. So a refused token is dropped, and a
            # call refused with an old one is tried once more with a fresh one (a
            # token fetched moments ago holds the grant as it is: no second try).
            stale = self._token.age(token) >= SCOPE_RECHECK_SECONDS
            self._token.drop(token)
            if stale:
                token = await self._token.get(self._http, limit)
                response = await self._send(method, path, token, limit, **kwargs)
        raise_for_transient(response, self._clock())
        return response

    async def _retried(
        self, attempt: Callable[[Deadline], Awaitable[httpx.Response | None]]
    ) -> httpx.Response | None:
        return await with_retries(
            attempt, clock=self._clock, sleep=self._sleep, deadline_seconds=self._deadline
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One logical call: retried, within the deadline; 429/5xx never come back,
        and neither does a 403 for a missing scope (`InsufficientScope`)."""

        async def attempt(deadline: Deadline) -> httpx.Response:
            return await self._once(method, path, self._attempt_timeout(deadline), **kwargs)

        response = await with_retries(
            attempt, clock=self._clock, sleep=self._sleep, deadline_seconds=self._deadline
        )
        self._raise_for_scope(method, path, response)
        return response

    @staticmethod
    def _raise_for_scope(method: str, path: str, response: httpx.Response) -> None:
        # A missing scope is the operator's to fix, on any endpoint: never a plan limit,
        # never the user's fault, so it leaves here as its own error.
        scopes = missing_scopes(response)
        if scopes is not None:
            raise InsufficientScope(f"{method} {_endpoint(path)}", scopes)

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
        or None if the answer was not a user object.

        The PATCH is never blindly repeated: under a password-history policy a second
        PATCH of a password that already landed is refused as "used before". After an
        attempt whose answer was lost (a timeout once sent, a 5xx), the next attempt
        first reads the user: our `app_metadata` marker (exact), or, without one,
        `last_password_reset` at or after the first attempt, shows it landed. A
        `PasswordHistoryError` answering a PATCH sent after such a loss is taken as
        our own first PATCH having landed (the read can lag the write)."""
        body: dict[str, Any] = {"password": password, "connection": self.connection}
        if app_metadata:
            body["app_metadata"] = app_metadata
        path = self._user_path(user_id)
        started = self._clock()
        unsure = False  # an earlier attempt may have set the password

        async def attempt(deadline: Deadline) -> httpx.Response | None:
            nonlocal unsure
            limit = self._attempt_timeout(deadline)
            if unsure:
                seen = await self._once("GET", path, limit)
                if seen.status_code == 200 and _landed(seen, app_metadata, started):
                    return seen
            after_loss = unsure
            try:
                response = await self._once("PATCH", path, limit, json=body)
            except Transient as exc:
                # 429 is refused before any work; any other transient answer may
                # come from a proxy after Auth0 applied the PATCH.
                unsure = unsure or not exc.rate_limited
                raise
            except _NOT_SENT:
                raise
            except httpx.TransportError:
                unsure = True  # sent, and the answer was lost
                raise
            if after_loss and response.status_code == 400:
                code, message = error_fields(response)
                if password_rule(code, message) == "history":
                    return None
            return response

        response = await self._retried(attempt)
        if response is None:
            return None
        self._raise_for_scope("PATCH", path, response)
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

    async def set_blocked(self, user_id: str, blocked: bool) -> None:
        """PATCH the user's `blocked` attribute: while true, Auth0 refuses every sign-in.
        Not the brute-force blocks `unblock` lifts: those are per identifier and IP."""
        response = await self._request("PATCH", self._user_path(user_id), json={"blocked": blocked})
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

    def _plan_answer(self, response: httpx.Response, user_id: str, endpoint: str) -> None:
        """Raise for what is not done: a user who is gone, a plan that lacks the
        endpoint, anything else unexpected. Returns for 2xx only."""
        if response.status_code in _DONE:
            return
        code, _ = error_fields(response)
        if response.status_code == 404 and code == "inexistent_user":
            raise UserNotFound(user_id)
        if response.status_code in _PLAN_RESTRICTED:
            # Not a missing scope (that left in `_request`): what a tenant without the
            # endpoint answers is undocumented, so any other 403/404 counts as this.
            raise NotAvailable(endpoint, response.status_code)
        raise self._unexpected(response)

    async def revoke_access(self, user_id: str) -> None:
        """`POST /api/v2/users/{id}/revoke-access` with `{}`: ends every session and
        refresh token of the user (asynchronously, at Auth0). Needs `delete:sessions`
        and `delete:refresh_tokens`; Auth0 documents it on Enterprise plans only.
        `NotAvailable` when the plan lacks it, `InsufficientScope` without the scopes."""
        response = await self._request("POST", self._user_path(user_id, "/revoke-access"), json={})
        self._plan_answer(response, user_id, "revoke-access")

    async def refresh_token_ids(self, user_id: str) -> list[str]:
        """Ids of the user's refresh tokens, as device credentials (every plan;
        `read:device_credentials`). `GET /api/v2/device-credentials?user_id&type`."""
        found: list[str] = []
        for page in range(MAX_DEVICE_CREDENTIAL_PAGES):
            params = {
                "user_id": user_id,
                "type": "refresh_token",
                "page": str(page),
                "per_page": str(DEVICE_CREDENTIALS_PAGE),
                "include_totals": "false",
            }
            response = await self._request("GET", "/api/v2/device-credentials", params=params)
            self._plan_answer(response, user_id, "device-credentials")
            body = self._json(response)
            if not isinstance(body, list):
                raise Auth0Error(200, "bad_shape", "device-credentials did not answer an array")
            found += [str(c["id"]) for c in body if isinstance(c, dict) and c.get("id")]
            if len(body) < DEVICE_CREDENTIALS_PAGE:
                break
        return found

    async def delete_device_credential(self, credential_id: str) -> None:
        """`DELETE /api/v2/device-credentials/{id}` (`delete:device_credentials`); one
        already gone (404) is done."""
        path = f"/api/v2/device-credentials/{quote(credential_id, safe='')}"
        response = await self._request("DELETE", path)
        if response.status_code not in (*_DONE, 404):
            raise self._unexpected(response)

    async def revoke_refresh_tokens(self, user_id: str) -> int:
        """Revoke the user's refresh tokens one by one through device credentials, on
        any plan: one list call, then one delete per token. How many were revoked."""
        ids = await self.refresh_token_ids(user_id)
        for credential_id in ids:
            await self.delete_device_credential(credential_id)
        return len(ids)

    async def invalidate_remember_browser(self, user_id: str) -> None:
        """Forget "remember this browser" for MFA; `NotAvailable` on 403/404."""
        response = await self._request(
            "POST", self._user_path(user_id, "/multifactor/actions/invalidate-remember-browser")
        )
        self._plan_answer(response, user_id, "invalidate-remember-browser")


def _endpoint(path: str) -> str:
    """`/api/v2/users/auth0%7C1/sessions` -> `/api/v2/users/{id}/sessions`: no user id
    in errors, logs or metric labels."""
    parts = path.split("/")
    if len(parts) > 4 and parts[3] in ("users", "user-blocks", "device-credentials"):
        parts[4] = "{id}"
    return "/".join(parts)


def _landed(seen: httpx.Response, app_metadata: dict[str, Any] | None, started: float) -> bool:
    """Whether the user read after a lost PATCH answer shows that PATCH applied."""
    try:
        body: Any = seen.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if app_metadata:
        # Written in the same PATCH as the password: exact proof, whatever the clocks.
        shown = body.get("app_metadata")
        return isinstance(shown, dict) and all(shown.get(k) == v for k, v in app_metadata.items())
    # No marker: a reset at or after our first attempt. Auth0's clock, not ours, wrote
    # it; a skewed clock errs towards "not landed", and the retried PATCH then meets
    # the history rule, which counts as landed above.
    changed = Auth0User.from_json(body, "").last_password_reset
    return changed is not None and changed.timestamp() >= started
