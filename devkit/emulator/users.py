"""The emulator's users: how they are declared (a JSON list), held, and shown.

A users file is a JSON list of objects:

    {"email": "jane@example.com",        required
     "password": "Old-Passw0rd!",        a database identity in `connection`
     "social": "google-oauth2",          a social identity (alone: social-only)
     "user_id": "auth0|jane",            default: generated, prefixed by the primary provider
     "name": "Jane Doe", "locale": "de", "email_verified": true, "blocked": false,
     "connection": "Username-Password-Authentication",
     "note": "..."}                      ignored: room for documentation

`password` and `social` together make one user with two linked identities.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from devkit.emulator.policy import hash_password

__all__ = ["DB_CONNECTION", "DEMO_USERS", "EmulatedUser", "load_users", "user_from_spec"]

DB_CONNECTION: Final = "Username-Password-Authentication"
DEMO_USERS: Final = Path(__file__).resolve().parent.parent / "demo_users.json"


@dataclass
class EmulatedUser:
    user_id: str
    email: str
    name: str
    connection: str | None  # the database connection, None for social-only users
    social: str | None
    locale: str | None
    password_hash: str | None
    created_at: str
    email_verified: bool = False
    blocked: bool = False
    failed_logins: int = 0
    history: list[str] = field(default_factory=list)  # hashes, the current one last
    password_changed: int = 0
    sessions_revoked: int = 0
    refresh_tokens_revoked: int = 0
    remember_browser_invalidated: int = 0
    last_password_reset: str | None = None
    updated_at: str = ""
    app_metadata: dict[str, Any] = field(default_factory=dict)

    def identities(self) -> list[dict[str, Any]]:
        local_id = self.user_id.partition("|")[2] or self.user_id
        found: list[dict[str, Any]] = []
        if self.connection:
            found.append(
                {
                    "connection": self.connection,
                    "provider": "auth0",
                    "user_id": local_id,
                    "isSocial": False,
                }
            )
        if self.social:
            found.append(
                {
                    "connection": self.social,
                    "provider": self.social,
                    "user_id": local_id,
                    "isSocial": True,
                }
            )
        return found

    def public(self) -> dict[str, Any]:
        """The user as the Management API shows it."""
        body: dict[str, Any] = {
            "user_id": self.user_id,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "identities": self.identities(),
            "created_at": self.created_at,
            "updated_at": self.updated_at or self.created_at,
            "user_metadata": {"locale": self.locale} if self.locale and self.connection else {},
            "app_metadata": dict(self.app_metadata),
        }
        if self.locale and not self.connection:
            body["locale"] = self.locale  # social providers put it at the top
        if self.last_password_reset:
            body["last_password_reset"] = self.last_password_reset
        return body

    def inspect(self) -> dict[str, Any]:
        """The user plus the emulator's bookkeeping, for tests."""
        return {
            **self.public(),
            "blocked": self.blocked,
            "failed_logins": self.failed_logins,
            "password_changed": self.password_changed,
            "sessions_revoked": self.sessions_revoked,
            "refresh_tokens_revoked": self.refresh_tokens_revoked,
            "remember_browser_invalidated": self.remember_browser_invalidated,
        }


def user_from_spec(spec: dict[str, Any], now: str) -> EmulatedUser:
    email = spec.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise ValueError("an emulated user needs an email address")
    password = spec.get("password")
    social = spec.get("social") or None
    has_password = isinstance(password, str) and bool(password)
    if not has_password and not social:
        raise ValueError(f"{email}: give a password, a social provider, or both")
    provider = "auth0" if has_password else str(social)
    password_hash = hash_password(str(password)) if has_password else None
    return EmulatedUser(
        user_id=str(spec.get("user_id") or f"{provider}|{uuid.uuid4().hex[:24]}"),
        # Auth0 stores database users' addresses in lower case.
        email=email.lower() if has_password else email,
        name=str(spec.get("name") or email.partition("@")[0]),
        connection=str(spec.get("connection") or DB_CONNECTION) if has_password else None,
        social=str(social) if social else None,
        locale=spec.get("locale") or None,
        password_hash=password_hash,
        created_at=now,
        email_verified=bool(spec.get("email_verified", False)),
        blocked=bool(spec.get("blocked", False)),
        history=[password_hash] if password_hash else [],
    )


def load_users(path: str | Path) -> list[dict[str, Any]]:
    specs = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ValueError(f"{path}: expected a JSON list of user objects")
    return specs
