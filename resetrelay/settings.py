"""Configuration from the environment, validated once at start-up (SPEC §3).

Every variable the contract names is read here and nowhere else. A missing or
malformed value raises `SettingsError` with one line that names the variable;
the CLI prints that line and exits with status 2. Secret values are wrapped in
`Secret`, whose `repr` and `str` hide them, so a settings object can be logged.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

__all__ = ["RateLimit", "Secret", "Settings", "SettingsError"]


class SettingsError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


class Secret:
    """A string that hides itself from `repr`, `str` and f-strings (like starlette's)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


_PERIODS: Final = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class RateLimit:
    """`N/period`, e.g. `3/hour`: at most N events per fixed window of that length."""

    count: int
    window_seconds: int

    @classmethod
    def parse(cls, name: str, text: str) -> RateLimit:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*", text)
        if match is None:
            raise SettingsError(f"{name} must look like '3/hour' (N/second|minute|hour|day)")
        return cls(int(match.group(1)), _PERIODS[match.group(2)])


def _webhook_secret(name: str, text: str) -> bytes:
    # Standard Webhooks secrets are `whsec_` + base64 of 24..64 random bytes.
    body = text.removeprefix("whsec_")
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except ValueError:
        raise SettingsError(f"{name} holds a secret that is not whsec_<base64>") from None
    if len(key) < 16:
        raise SettingsError(f"{name} holds a secret shorter than 16 bytes")
    return key


def normalise_database_url(url: str) -> str:
    """Map Heroku's `postgres://` and plain schemes onto the async drivers we ship."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SettingsError("DATABASE_URL must be a URL such as sqlite:///./resetrelay.db")
    base = scheme.split("+", 1)[0]
    if base in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise SettingsError(f"DATABASE_URL scheme {scheme!r} is not supported (sqlite or postgres)")


def _bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be true or false, not {text!r}")


def _int(name: str, text: str, *, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {text!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}")
    return value


def _float(name: str, text: str, *, minimum: float = 0.0) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {text!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str
    webhook_secrets: tuple[bytes, ...] = field(repr=False)
    secret_key: Secret
    reset_url: str
    mail_from: str
    smtp_url: Secret
    auth0_domain: str
    auth0_base_url: str
    auth0_client_id: str = ""
    auth0_client_secret: Secret = field(default_factory=lambda: Secret(""))
    auth0_connection: str = "Username-Password-Authentication"
    auth0_log_stream_token: Secret = field(default_factory=lambda: Secret(""))
    auth0_action_secret: Secret = field(default_factory=lambda: Secret(""))
    host: str = "127.0.0.1"
    port: int = 8000
    webhook_tolerance_seconds: int = 300
    ticket_ttl_seconds: int = 3600
    brand_name: str = "Your account"
    brand_logo_url: str = ""
    brand_color: str = "#2f5bea"
    support_email: str = ""
    mail_templates_dir: str = ""
    default_locale: str = "en"
    rate_limit_per_email: RateLimit = RateLimit(3, 3600)
    rate_limit_per_ip: RateLimit = RateLimit(20, 3600)
    mail_retry_initial_seconds: float = 10.0
    revoke_sessions: bool = True
    mark_email_verified: bool = True
    website_events_url: str = ""
    inline_worker: bool = True
    auto_migrate: bool = True
    dev_mode: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, demo: bool = False) -> Settings:
        """Read and validate every variable; `demo` relaxes what `resetrelay demo` provides."""

        def get(name: str, default: str = "") -> str:
            return env.get(name, default).strip()

        def required(name: str, *, unless_demo: bool = False) -> str:
            value = get(name)
            if not value and not (demo and unless_demo):
                raise SettingsError(f"{name} is required but not set")
            return value

        database_url = normalise_database_url(get("DATABASE_URL", "sqlite:///./resetrelay.db"))
        secrets_text = required("WEBHOOK_SECRET")
        webhook_secrets = tuple(
            _webhook_secret("WEBHOOK_SECRET", part) for part in secrets_text.split()
        )
        secret_key = required("SECRET_KEY", unless_demo=True)
        if secret_key and len(secret_key.encode()) < 32:
            raise SettingsError("SECRET_KEY must be at least 32 bytes of random text")
        reset_url = required("RESET_URL")
        parts = urlsplit(reset_url)
        if parts.scheme not in ("https", "http") or not parts.netloc or "{ticket}" not in reset_url:
            raise SettingsError("RESET_URL must be an http(s) URL containing {ticket}")
        auth0_domain = required("AUTH0_DOMAIN", unless_demo=True)
        auth0_base_url = get("AUTH0_BASE_URL") or (
            f"https://{auth0_domain}" if auth0_domain else ""
        )
        if auth0_base_url and urlsplit(auth0_base_url).scheme not in ("https", "http"):
            raise SettingsError("AUTH0_BASE_URL must be an http(s) URL")
        smtp_url = required("SMTP_URL", unless_demo=True)
        if smtp_url and urlsplit(smtp_url).scheme not in ("smtp", "smtps", "smtp+starttls"):
            raise SettingsError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
        mail_from = required("MAIL_FROM")

        port_text = get("PORT")
        host = get("HOST") or ("0.0.0.0" if port_text else "127.0.0.1")  # noqa: S104 - platform-assigned PORT means behind a router
        is_sqlite = database_url.startswith("sqlite")
        return cls(
            database_url=database_url,
            webhook_secrets=webhook_secrets,
            secret_key=Secret(secret_key),
            reset_url=reset_url,
            mail_from=mail_from,
            smtp_url=Secret(smtp_url),
            auth0_domain=auth0_domain,
            auth0_base_url=auth0_base_url.rstrip("/"),
            auth0_client_id=get("AUTH0_CLIENT_ID"),
            auth0_client_secret=Secret(get("AUTH0_CLIENT_SECRET")),
            auth0_connection=get("AUTH0_CONNECTION") or "Username-Password-Authentication",
            auth0_log_stream_token=Secret(get("AUTH0_LOG_STREAM_TOKEN")),
            auth0_action_secret=Secret(get("AUTH0_ACTION_SECRET")),
            host=host,
            port=_int("PORT", port_text or "8000", minimum=0),
            webhook_tolerance_seconds=_int(
                "WEBHOOK_TOLERANCE_SECONDS", get("WEBHOOK_TOLERANCE_SECONDS", "300"), minimum=1
            ),
            ticket_ttl_seconds=_int(
                "TICKET_TTL_SECONDS", get("TICKET_TTL_SECONDS", "3600"), minimum=60
            ),
            brand_name=get("BRAND_NAME") or "Your account",
            brand_logo_url=get("BRAND_LOGO_URL"),
            brand_color=_colour(get("BRAND_COLOR") or "#2f5bea"),
            support_email=get("SUPPORT_EMAIL"),
            mail_templates_dir=get("MAIL_TEMPLATES_DIR"),
            default_locale=get("DEFAULT_LOCALE") or "en",
            rate_limit_per_email=RateLimit.parse(
                "RATE_LIMIT_PER_EMAIL", get("RATE_LIMIT_PER_EMAIL") or "3/hour"
            ),
            rate_limit_per_ip=RateLimit.parse(
                "RATE_LIMIT_PER_IP", get("RATE_LIMIT_PER_IP") or "20/hour"
            ),
            mail_retry_initial_seconds=_float(
                "MAIL_RETRY_INITIAL_SECONDS", get("MAIL_RETRY_INITIAL_SECONDS", "10"), minimum=0.0
            ),
            revoke_sessions=_bool("REVOKE_SESSIONS", get("REVOKE_SESSIONS", "true")),
            mark_email_verified=_bool("MARK_EMAIL_VERIFIED", get("MARK_EMAIL_VERIFIED", "true")),
            website_events_url=get("WEBSITE_EVENTS_URL"),
            inline_worker=_bool("INLINE_WORKER", get("INLINE_WORKER", "true")),
            auto_migrate=_bool(
                "AUTO_MIGRATE", get("AUTO_MIGRATE", "true" if is_sqlite else "false")
            ),
            dev_mode=_bool("DEV_MODE", get("DEV_MODE", "false")),
        )


def _colour(text: str) -> str:
    # The colour lands inside inline CSS of every mail: accept only a plain hex colour.
    if not re.fullmatch(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?", text):
        raise SettingsError("BRAND_COLOR must be a hex colour such as #2f5bea")
    return text
