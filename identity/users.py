"""An Auth0 user as resetrelay needs it, read from the Management API's JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Auth0User"]

MAX_LOCALE_LENGTH = 35  # BCP 47 tags are short; anything longer is not a locale


@dataclass(frozen=True)
class Auth0User:
    user_id: str
    email: str
    email_verified: bool
    connection: str | None  # the database identity's connection, None if it has none
    is_database_user: bool  # has a provider "auth0" identity in the configured connection
    locale: str | None
    last_password_reset: datetime | None
    app_metadata: dict[str, Any] = field(default_factory=dict)  # first level, as Auth0 shows it
    # Every identity's `provider`, in Auth0's order, each once: "auth0" for a database
    # identity (any connection), "google-oauth2", "apple", "samlp", "email"...
    providers: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any], connection: str) -> Auth0User:
        """Read one user object; `connection` is the database connection we manage."""
        databases = [
            i
            for i in data.get("identities") or []
            if isinstance(i, dict) and i.get("provider") == "auth0" and not i.get("isSocial")
        ]
        ours = next((i for i in databases if i.get("connection") == connection), None)
        found = ours or (databases[0] if databases else None)
        found_connection = found.get("connection") if found else None
        return cls(
            user_id=str(data.get("user_id") or ""),
            email=str(data.get("email") or ""),
            email_verified=data.get("email_verified") is True,
            connection=found_connection if isinstance(found_connection, str) else None,
            is_database_user=ours is not None,
            locale=_locale(data),
            last_password_reset=_parse_time(data.get("last_password_reset")),
            app_metadata=dict(app) if isinstance(app := data.get("app_metadata"), dict) else {},
            providers=_providers(data),
        )

    @property
    def has_password(self) -> bool:
        """Whether any identity is a database one (ours or another connection's): an
        account with a password somewhere, never a social-only one."""
        return "auth0" in self.providers


def _providers(data: dict[str, Any]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for identity in data.get("identities") or []:
        provider = identity.get("provider") if isinstance(identity, dict) else None
        # A provider is a short name; anything else is not one, and is left out.
        if isinstance(provider, str) and 0 < len(provider) <= 64:
            found.setdefault(provider)
    return tuple(found)


def _locale(data: dict[str, Any]) -> str | None:
    metadata = data.get("user_metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    for value in (metadata.get("locale"), metadata.get("language"), data.get("locale")):
        if isinstance(value, str) and 0 < len(value.strip()) <= MAX_LOCALE_LENGTH:
            return value.strip()
    return None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
