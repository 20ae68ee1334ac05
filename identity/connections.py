"""A database connection as the Management API shows it, for its password policy.

`GET /api/v2/connections?name=…&strategy=auth0` answers a list (Auth0's reference,
"Get all connections"); `name` is matched exactly. Reading a connection needs
`read:connections`; its `options` (where the password policy lives) also need
`read:connections_options` (docs/auth0.md, "The password policy"). Whether a token
without that second scope gets the connection without `options` or a 403 is
unconfirmed: both are handled, the first as `options=None`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Connection"]


@dataclass(frozen=True)
class Connection:
    id: str
    name: str
    strategy: str
    options: dict[str, Any] | None  # None when Auth0 showed none

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Connection:
        options = data.get("options")
        return cls(
            id=str(data.get("id") or ""),
            name=str(data.get("name") or ""),
            strategy=str(data.get("strategy") or ""),
            options=dict(options) if isinstance(options, dict) else None,
        )

    @classmethod
    def named(cls, body: Any, name: str) -> Connection | None:
        """The connection called `name` in a list answer, or None."""
        if not isinstance(body, list):
            return None
        for item in body:
            if isinstance(item, dict) and item.get("name") == name:
                return cls.from_json(item)
        return None
