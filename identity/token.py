"""The Management API token: client credentials, cached until shortly before it
expires, fetched once however many calls need it at the same time."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import anyio
import httpx

from identity.answers import error_fields
from identity.errors import Auth0Error
from identity.retrying import raise_for_transient

__all__ = ["TokenCache"]

MARGIN_SECONDS: Final = 60.0  # refresh this long before expiry (or 10% of a short lifetime)


class TokenCache:
    def __init__(
        self,
        *,
        domain: str,
        client_id: str,
        client_secret: str,
        clock: Callable[[], float],
    ) -> None:
        # The audience stays the tenant's API even behind a custom domain or emulator.
        self.audience = f"https://{domain}/api/v2/"
        self.client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.issued_at = 0.0  # when the current token was fetched (our clock)
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"TokenCache(audience={self.audience!r}, client_id={self.client_id!r})"

    def age(self, token: str) -> float:
        """Seconds since `token` was fetched; 0 for a token that is no longer current."""
        return self._clock() - self.issued_at if self._token == token else 0.0

    def drop(self, token: str) -> None:
        """Forget `token` (Auth0 answered 401 to it) unless it was replaced already."""
        if self._token == token:
            self._token = None

    async def get(self, http: httpx.AsyncClient, attempt_timeout: httpx.Timeout) -> str:
        async with self._lock:
            # Whoever held the lock before us may have fetched one: check under the lock.
            if self._token is not None and self._clock() < self._expires_at:
                return self._token
            token, expires_in = await self._fetch(http, attempt_timeout)
            margin = min(MARGIN_SECONDS, expires_in / 10)
            self._token = token
            self.issued_at = self._clock()
            self._expires_at = self.issued_at + max(0.0, expires_in - margin)
            return token

    async def _fetch(
        self, http: httpx.AsyncClient, attempt_timeout: httpx.Timeout
    ) -> tuple[str, float]:
        response = await http.post(
            "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._client_secret,
                "audience": self.audience,
            },
            timeout=attempt_timeout,
        )
        raise_for_transient(response, self._clock())
        if response.status_code != 200:
            code, message = error_fields(response)
            raise Auth0Error(response.status_code, code or "token_error", message)
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise Auth0Error(200, "bad_token_answer", "the token answer holds no access_token")
        expires_in = body.get("expires_in", 86400)
        if not isinstance(expires_in, int | float) or not math.isfinite(expires_in):
            expires_in = 86400
        return token, float(max(0, expires_in))
