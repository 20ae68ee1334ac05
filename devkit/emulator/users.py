"""The emulator's users: how they are declared (a JSON list), held, and shown.

A users file is a JSON list of objects:

    {"email": "jane@example.com",        required
     "password": "Old-Passw0rd!",        a database identity in `connection`
     "social": "google-oauth2",          a social identity (alone: social-only)
     "user_id": "auth0|jane",            default: generated, prefixed by the primary provider
     "name": "Jane Doe", "locale": "de", "email_verified": true, "blocked": false,
     "connection": "Username-Password-Authentication",
     "primary": "database" | "social",   with both: which identity is the primary
     "database_user_id": "5f3c...",      the linked database identity's own id
     "note": "..."}                      ignored: room for documentation

`password` and `social` together make one user with two linked identities. By
default the database identity is the primary (`auth0|...`); `"primary": "social"`
makes the account Auth0 shows after linking a database user *into* a social one:
`user_id` is the social id, `identities[0]` the social identity, and the database
identity follows with its own `user_id` and `profileData` (the Management API's
user schema, `identities[].profileData`; account linking docs,
https://auth0.com/docs/manage-users/user-accounts/user-account-linking). Its
password is set with `PATCH /api/v2/users/{primary id}` naming the `connection`
("If you are updating ... password of a secondary identity, you need to specify
the connection property too", Update a User). `users-by-email` matches the root
`email` only: whether Auth0 also matches a linked identity's `profileData.email`
is unconfirmed, and not matching is the stricter reading.

Brute-force blocks are per IP, as Auth0's default "Block Brute-force Logins"
response ("blocks additional login attempts to the given user identifier from the
IP address that triggered brute-force protection",
https://auth0.com/docs/secure/attack-protection/brute-force-protection): a user
blocked from one IP still signs in from another. Not emulated: the "Account
Lockout" response (every IP), the block notification mail, Auth0 lifting a block
when the user changes the password, and the same-user login throttle behind
`limit_sul` (20 logins a minute from one IP; inject the event with
`POST /__emulator/logs` instead).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from devkit.emulator.policy import hash_password

DEFAULT_IP: Final = "127.0.0.1"

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
    blocked_ips: list[str] = field(default_factory=list)  # brute-force blocks, per IP
    failed_logins: dict[str, int] = field(default_factory=dict)  # per IP, since a success
    social_primary: bool = False
    database_user_id: str | None = None  # the linked database identity's own id
    history: list[str] = field(default_factory=list)  # hashes, the current one last
    password_changed: int = 0
    sessions_revoked: int = 0
    refresh_tokens_revoked: int = 0
    remember_browser_invalidated: int = 0
    last_password_reset: str | None = None
    updated_at: str = ""
    app_metadata: dict[str, Any] = field(default_factory=dict)
    # The user's `blocked` attribute (PATCH `{"blocked": true}`): an administrator's
    # block on every sign-in, apart from the brute-force blocks above.
    admin_blocked: bool = False

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_ips)

    def block(self, ip: str = DEFAULT_IP) -> None:
        if ip not in self.blocked_ips:
            self.blocked_ips.append(ip)

    def unblock(self) -> None:
        self.blocked_ips.clear()
        self.failed_logins.clear()

    def identities(self) -> list[dict[str, Any]]:
        local_id = self.user_id.partition("|")[2] or self.user_id
        database: dict[str, Any] | None = None
        social: dict[str, Any] | None = None
        if self.connection:
            database = {
                "connection": self.connection,
                "provider": "auth0",
                "user_id": self.database_user_id or local_id,
                "isSocial": False,
            }
        if self.social:
            social = {
                "connection": self.social,
                "provider": self.social,
                "user_id": local_id,
                "isSocial": True,
            }
        if self.social_primary and database is not None:
            # A linked secondary identity carries its own profile.
            database["profileData"] = {"email": self.email, "email_verified": self.email_verified}
            return [i for i in (social, database) if i is not None]
        return [i for i in (database, social) if i is not None]

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
        if self.admin_blocked:
            body["blocked"] = True  # Auth0 shows the attribute once it is set
        return body

    def inspect(self) -> dict[str, Any]:
        """The user plus the emulator's bookkeeping, for tests."""
        return {
            **self.public(),
            "blocked": self.blocked,
            "blocked_ips": list(self.blocked_ips),
            "admin_blocked": self.admin_blocked,
            "failed_logins": sum(self.failed_logins.values()),
            "password_changed": self.password_changed,
            "sessions_revoked": self.sessions_revoked,
            "refresh_tokens_revoked": self.refresh_tokens_revoked,
            "remember_browser_invalidated": self.remember_browser_invalidated,
        }


def user_from_spec(
    spec: dict[str, Any], now: str, hashes: dict[str, str] | None = None
) -> EmulatedUser:
    """One emulated user. `hashes` (password -> hash), shared by the users loaded
    together, hashes each distinct password once: a bench's thousands of users with
    one password would otherwise cost a scrypt each, minutes at start."""
    email = spec.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise ValueError("an emulated user needs an email address")
    password = spec.get("password")
    social = spec.get("social") or None
    has_password = isinstance(password, str) and bool(password)
    if not has_password and not social:
        raise ValueError(f"{email}: give a password, a social provider, or both")
    social_primary = spec.get("primary") == "social"
    if social_primary and not (has_password and social):
        raise ValueError(f"{email}: a social primary needs both a password and a social provider")
    provider = "auth0" if has_password and not social_primary else str(social)
    password_hash = None
    if has_password:
        cache = {} if hashes is None else hashes
        password_hash = cache.get(str(password)) or cache.setdefault(
            str(password), hash_password(str(password))
        )
    database_user_id = spec.get("database_user_id") or (
        uuid.uuid4().hex[:24] if social_primary else None
    )
    user = EmulatedUser(
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
        history=[password_hash] if password_hash else [],
        social_primary=social_primary,
        database_user_id=str(database_user_id) if database_user_id else None,
    )
    if spec.get("blocked"):
        user.block()
    return user


def load_users(path: str | Path) -> list[dict[str, Any]]:
    specs = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ValueError(f"{path}: expected a JSON list of user objects")
    return specs
