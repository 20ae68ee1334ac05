"""Auth0-style log events (`scp`, `sapi`, `limit_wc`, injected ones such as
`pwd_leak`), streamed to a custom-webhook URL as JSON Lines, a JSON array or
a JSON object, with the configured Authorization value and up to 3 attempts."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import anyio
import httpx

from devkit.emulator.users import EmulatedUser

__all__ = ["FORMATS", "LogStream", "iso"]

FORMATS: Final = ("jsonlines", "array", "object")
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
    ) -> None:
        if content_format not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
        self.url = url
        self.token = token
        self.format = content_format
        self.client_id = client_id
        self.clock = clock
        self.sent: list[dict[str, Any]] = []

    def event(self, kind: str, user: EmulatedUser | None, description: str) -> dict[str, Any]:
        log_id = f"900{int(self.clock() * 1000)}{secrets.token_hex(6)}"
        data: dict[str, Any] = {
            "date": iso(self.clock()),
            "type": kind,
            "description": description,
            "client_id": self.client_id,
            "client_name": "resetrelay emulator",
            "ip": "127.0.0.1",
            "log_id": log_id,
        }
        if user is not None:
            database = user.connection is not None
            data.update(
                user_id=user.user_id,
                user_name=user.email,
                connection=user.connection or user.social,
                strategy="auth0" if database else user.social,
                strategy_type="database" if database else "social",
            )
        return {"log_id": log_id, "data": data}

    def body(self, events: list[dict[str, Any]]) -> str:
        if self.format == "array":
            return json.dumps(events)
        if self.format == "object":
            return json.dumps(events[0]) if len(events) == 1 else json.dumps({"logs": events})
        return "\n".join(json.dumps(e) for e in events)

    async def deliver(self, events: list[dict[str, Any]]) -> None:
        """POST `events` to the stream, as Auth0's custom webhook does."""
        if not self.url or not events:
            return
        self.sent.extend(events)
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = self.token
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(ATTEMPTS):
                try:
                    answer = await client.post(self.url, content=self.body(events), headers=headers)
                except httpx.HTTPError:
                    await anyio.sleep(0.2)
                    continue
                if answer.status_code < 300:
                    return
                await anyio.sleep(0.2)
