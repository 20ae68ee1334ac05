"""Auth0-style log events (`sapi`, `scp`, `limit_wc`, injected ones such as
`pwd_leak`), streamed to a custom-webhook URL with the configured Authorization
value and up to 3 attempts.

What follows Auth0's sources, and what is a guess:

- Content formats (https://auth0.com/docs/customize/log-streams/custom-log-streams):
  JSON Lines is the documented wire format and the default here; JSON Array sends
  one list. JSON Object's wire shape is undocumented: the emulator sends one
  request per event, each body a single `{log_id, data}` object (a guess; there is
  no wrapper object, which no source shows).
- Fields (auth0-log-schemas): failure logs (`pwd_leak`, `limit_wc`, `limit_sul`,
  `f`, `fp`, `fu`) may carry no usable `user_id` ("may be a valid ID, an invalid
  ID, or empty string"): `omit_failure_user_id` leaves it out. A log stream's PII
  obfuscation (`pii_config`: `method` `mask` or `hash`, algorithm `xxhash`) masks
  or hashes `user_name`: `pii` does the same to every event. The exact masked
  text and hash are undocumented; the emulator writes `****` and a hex digest
  that is not xxhash, which is enough for a receiver that must not use them.
- `sapi` ("Successful management API write event"): its `user_id` is the actor,
  empty for a machine-to-machine client, and `details.request` holds the method,
  path and body of the write (the schema types it only as an object; the shape is
  taken from logs as observed, password redacted). Whether a password set through
  the Management API also logs `scp` is unconfirmed: off by default
  (`scp_for_api_password`), so the receiver cannot lean on it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import anyio
import httpx

from devkit.emulator.users import DEFAULT_IP, EmulatedUser

__all__ = ["FORMATS", "PII_METHODS", "LogStream", "iso"]

FORMATS: Final = ("jsonlines", "array", "object")
PII_METHODS: Final = ("off", "mask", "hash")
FAILURES: Final = frozenset({"pwd_leak", "limit_wc", "limit_sul", "f", "fp", "fu"})
ATTEMPTS: Final = 3  # Auth0 tries each batch up to three times


def iso(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class LogStream:
    def __init__(
        self,
        *,
        url: str | None,
        token: str | None,
        content_format: str,
        client_id: str,
        clock: Callable[[], float],
        omit_failure_user_id: bool = False,
        pii: str = "off",
        scp_for_api_password: bool = False,
    ) -> None:
        if content_format not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
        if pii not in PII_METHODS:
            raise ValueError(f"pii must be one of {', '.join(PII_METHODS)}")
        self.url = url
        self.token = token
        self.format = content_format
        self.client_id = client_id
        self.clock = clock
        self.omit_failure_user_id = omit_failure_user_id
        self.pii = pii
        self.scp_for_api_password = scp_for_api_password
        self.sent: list[dict[str, Any]] = []

    def _user_name(self, email: str) -> str:
        if self.pii == "mask":
            return "****"
        if self.pii == "hash":
            return hashlib.sha256(email.encode()).hexdigest()[:16]
        return email

    def event(
        self,
        kind: str,
        user: EmulatedUser | None,
        description: str,
        *,
        ip: str = DEFAULT_IP,
    ) -> dict[str, Any]:
        log_id = f"900{int(self.clock() * 1000)}{secrets.token_hex(6)}"
        data: dict[str, Any] = {
            "date": iso(self.clock()),
            "type": kind,
            "description": description,
            "client_id": self.client_id,
            "client_name": "resetrelay emulator",
            "ip": ip,
            "log_id": log_id,
        }
        if user is not None:
            database = user.connection is not None
            data.update(
                user_id=user.user_id,
                user_name=self._user_name(user.email),
                connection=user.connection or user.social,
                strategy="auth0" if database else user.social,
                strategy_type="database" if database else "social",
            )
            if kind in FAILURES and self.omit_failure_user_id:
                del data["user_id"]
        return {"log_id": log_id, "data": data}

    def api_write(
        self, description: str, method: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A `sapi` event for a Management API write by the emulator's M2M client."""
        event = self.event("sapi", None, description)
        shown = {k: ("[redacted]" if k == "password" else v) for k, v in body.items()}
        event["data"].update(
            user_id="",  # the actor; empty for a machine-to-machine client
            details={
                "request": {"method": method.lower(), "path": path, "query": {}, "body": shown},
                "response": {"statusCode": 200},
            },
        )
        return event

    @staticmethod
    def user_path(user: EmulatedUser) -> str:
        return f"/api/v2/users/{quote(user.user_id, safe='')}"

    def bodies(self, events: list[dict[str, Any]]) -> list[str]:
        """The request bodies that carry `events` in this stream's format."""
        if self.format == "array":
            return [json.dumps(events)]
        if self.format == "object":
            return [json.dumps(e) for e in events]
        return ["\n".join(json.dumps(e) for e in events)]

    async def deliver(self, events: list[dict[str, Any]]) -> None:
        """POST `events` to the stream, as Auth0's custom webhook does."""
        if not self.url or not events:
            return
        self.sent.extend(events)
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = self.token
        async with httpx.AsyncClient(timeout=10) as client:
            for body in self.bodies(events):
                await self._post(client, body, headers)

    async def _post(self, client: httpx.AsyncClient, body: str, headers: dict[str, str]) -> None:
        for _ in range(ATTEMPTS):
            try:
                answer = await client.post(self.url or "", content=body, headers=headers)
            except httpx.HTTPError:
                await anyio.sleep(0.2)
                continue
            if answer.status_code < 300:
                return
            await anyio.sleep(0.2)
