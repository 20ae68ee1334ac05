"""Configuration from the environment, validated once at start-up.

`VARIABLES` is the one list of every setting: name, default, meaning, an
example, whether it is a secret, and which roles need it set. The reference in
docs/settings.md and `resetrelay config` are made from it (a test fails when
the docs drift). Every variable is read here and nowhere else.

A command asks only for what it uses: `migrate` needs nothing set, a web
process what a request uses, a worker what a job uses (`needs`). Every problem
is found in one pass: `SettingsError.problems` holds one line per problem,
each naming its variable; the CLI prints them all and exits with status 2.
Secret values are wrapped in `Secret`, whose `repr` and `str` hide them, so a
settings object can be logged.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "MAIL",
    "OPERATOR",
    "PREVIEW",
    "VARIABLES",
    "WEB",
    "WORKER",
    "RateLimit",
    "Secret",
    "Settings",
    "SettingsError",
    "Variable",
    "needs",
]

T = TypeVar("T")


class SettingsError(Exception):
    """Configuration values are missing or malformed: one line per problem, each
    naming its variable."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


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
    """`N/period`, e.g. `3/hour`: at most N events in any window of that length."""

    count: int
    window_seconds: int

    @classmethod
    def parse(cls, name: str, text: str) -> RateLimit:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*", text)
        if match is None:
            raise SettingsError(f"{name} must look like '3/hour' (N/second|minute|hour|day)")
        return cls(int(match.group(1)), _PERIODS[match.group(2)])


_DEFAULT_CEILING: RateLimit | None = RateLimit(600, 60)


def _ceiling(name: str, text: str) -> RateLimit | None:
    return None if text.strip().lower() == "off" else RateLimit.parse(name, text)


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


PWNED_PASSWORDS_DEFAULT: Final = "https://api.pwnedpasswords.com"
BREACH_ERROR_MODES: Final = ("allow", "reject")


def _range_api(name: str, text: str) -> str:
    """PWNED_PASSWORDS_URL: an http(s) URL, or "" (or `off`) for no breach check."""
    if text.strip().lower() in ("", "off"):
        return ""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(f"{name} must be an http(s) URL without query, or empty to disable")
    return text.strip().rstrip("/")


def _breach_error_mode(name: str, text: str) -> str:
    mode = text.strip().lower()
    if mode not in BREACH_ERROR_MODES:
        raise SettingsError(f"{name} must be allow or reject, not {text!r}")
    return mode


REVOCATION_MODES: Final = ("auto", "revoke_access", "device_credentials", "off")


def _revocation(name: str, text: str) -> str:
    """REVOKE_SESSIONS: a mode; the older `true`/`false` still mean `auto`/`off`."""
    lowered = text.strip().lower()
    legacy = {"true": "auto", "1": "auto", "yes": "auto", "on": "auto", "false": "off"}
    legacy |= {"0": "off", "no": "off"}
    mode = legacy.get(lowered, lowered)
    if mode not in REVOCATION_MODES:
        raise SettingsError(f"{name} must be one of {', '.join(REVOCATION_MODES)}, not {text!r}")
    return mode


# Who hears back when a reset request cannot lead to a reset (resetrelay.reset.courtesy).
COURTESY_MODES: Final = ("none", "social", "all")


def _courtesy(name: str, text: str) -> str:
    mode = text.strip().lower()
    if mode not in COURTESY_MODES:
        raise SettingsError(f"{name} must be one of {', '.join(COURTESY_MODES)}, not {text[:40]!r}")
    return mode


def _page_url(name: str, text: str) -> str:
    """An absolute http(s) URL of a page on the website (SIGNIN_URL): a mail links to it
    as it is, so nothing relative, nothing with credentials, nothing to fill in."""
    problem = SettingsError(f"{name} must be an absolute http(s) URL of a page on your website")
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise problem from None
    if (
        parts.scheme not in ("https", "http")
        or not host
        or parts.username is not None
        or any(c in text for c in '{}<>" ')
    ):
        raise problem
    return text


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


def _colour(name: str, text: str) -> str:
    # The colour lands inside inline CSS of every mail: accept only a plain hex colour.
    if not re.fullmatch(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?", text):
        raise SettingsError(f"{name} must be a hex colour such as #2f5bea")
    return text


# Roles: which processes need a variable set. `serve` with the inline worker
# plays web and worker; `send-test-mail` plays mail, `preview` only needs a brand;
# operator commands (`forget`, `inspect`, ...) need the key of the audit pseudonyms.
WEB, WORKER, MAIL, PREVIEW = "web", "worker", "mail", "preview"
OPERATOR = "operator"
_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    default: str = ""  # as it would be written in the environment; "" for none
    roles: frozenset[str] = frozenset()  # who needs it set
    secret: bool = False
    example: str = ""


def _v(name: str, meaning: str, *roles: str, **kw: Any) -> Variable:
    return Variable(name, meaning, roles=frozenset(roles), **kw)


VARIABLES: Final[tuple[Variable, ...]] = (
    _v(
        "DATABASE_URL",
        "SQLite or PostgreSQL; `postgres://` (Heroku's scheme) is accepted.",
        default="sqlite:///./resetrelay.db",
        example="postgres://user:pass@host:5432/resetrelay",
    ),
    _v(
        "WEBHOOK_SECRET",
        "Standard Webhooks secrets (`whsec_…`), space-separated, newest first: any one "
        "verifies an event; the first signs outbound events. `resetrelay secret` makes one.",
        WEB,
        secret=True,
        example="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    _v(
        "SECRET_KEY",
        "Server key, at least 32 bytes of random text (`resetrelay secret --key`). Tickets "
        "and rate-limit keys derive from it; rotating it voids open tickets.",
        WEB,
        WORKER,
        OPERATOR,
        secret=True,
        example="(48 random characters)",
    ),
    _v(
        "RESET_URL",
        "The reset page on your website, with `{ticket}` where the ticket goes. Links are "
        "built from this only, never from a request's Host header.",
        WORKER,
        example="https://www.example.com/account/reset?ticket={ticket}",
    ),
    _v(
        "DISPUTE_URL",
        "The dispute page on your website, with `{token}` where the token goes: the "
        '"Wasn\'t you?" link of the "password changed" mail. Unset: that mail has no '
        "such link (`resetrelay check` says so). Built from this only, never from a request.",
        example="https://www.example.com/account/dispute?token={token}",
    ),
    _v(
        "MAIL_FROM",
        "The sender of every mail.",
        WEB,
        WORKER,
        MAIL,
        example="Acme <no-reply@acme.example>",
    ),
    _v(
        "BRAND_NAME",
        'Your product\'s name as every mail says it ("Reset your Acme password").',
        WORKER,
        MAIL,
        PREVIEW,
        example="Acme",
    ),
    _v(
        "SMTP_URL",
        "The relay: `smtp://user:pass@host:587` (STARTTLS when offered), "
        "`smtp+starttls://…` (STARTTLS required) or `smtps://…:465` (implicit TLS).",
        WORKER,
        MAIL,
        secret=True,
        example="smtp://apikey:secret@smtp.example.com:587",
    ),
    _v("AUTH0_DOMAIN", "Your Auth0 tenant's domain.", WEB, WORKER, example="acme.eu.auth0.com"),
    _v(
        "AUTH0_CLIENT_ID",
        "The machine-to-machine application that calls the Management API "
        "(docs/auth0.md lists its scopes).",
        WEB,
        WORKER,
        example="(from the Auth0 dashboard)",
    ),
    _v(
        "AUTH0_CLIENT_SECRET",
        "That application's client secret.",
        WEB,
        WORKER,
        secret=True,
        example="(from the Auth0 dashboard)",
    ),
    _v(
        "AUTH0_CONNECTION",
        "The database connection whose passwords are reset.",
        default="Username-Password-Authentication",
    ),
    _v(
        "AUTH0_BASE_URL",
        "Override of the Management API's origin (a custom domain, the local emulator).",
        default="https://{AUTH0_DOMAIN}",
    ),
    _v(
        "AUTH0_LOG_STREAM_TOKEN",
        "The Authorization value set on the Auth0 log stream; unset, `/hooks/auth0` is 404.",
        secret=True,
    ),
    _v(
        "AUTH0_ACTION_SECRET",
        "The HS256 key the Auth0 Action signs with; unset, `/hooks/auth0/actions` is 404.",
        secret=True,
    ),
    _v(
        "PORT",
        "Listen port. A platform that sets it also makes HOST default to 0.0.0.0.",
        default="8000",
    ),
    _v("HOST", "Listen address.", default="127.0.0.1 (0.0.0.0 when PORT is set)"),
    _v("WEBHOOK_TOLERANCE_SECONDS", "Accepted clock skew of `webhook-timestamp`.", default="300"),
    _v("TICKET_TTL_SECONDS", "Lifetime of a reset link, at least 60.", default="3600"),
    _v(
        "DISPUTE_TTL_SECONDS",
        'Lifetime of the "Wasn\'t you?" link in a "password changed" mail, at least 3600.',
        default="604800",
    ),
    _v(
        "BRAND_LOGO_URL",
        "An http(s) URL of the logo in every mail.",
        example="https://acme.example/logo.png",
    ),
    _v("BRAND_COLOR", "The mails' accent colour, as #rgb or #rrggbb.", default="#2f5bea"),
    _v("SUPPORT_EMAIL", "Where replies go; the mails name it for help."),
    _v("MAIL_TEMPLATES_DIR", "A folder whose templates override the built-in ones, file by file."),
    _v(
        "DEFAULT_LOCALE",
        "A mail's language when neither the request nor the user names one.",
        default="en",
    ),
    _v(
        "COURTESY_MAILS",
        "Mail an address that asked for a reset it cannot have: `none` (nothing is sent), "
        "`social` (a social-only account hears which provider it signs in with), `all` (also "
        "an address with no account hears so). Same 202 either way; counted against "
        "RATE_LIMIT_PER_EMAIL (docs/website.md).",
        default="none",
    ),
    _v(
        "SIGNIN_URL",
        "Your website's sign-in page; the courtesy mails link to it. Unset, they carry no link.",
        example="https://www.example.com/signin",
    ),
    _v(
        "RATE_LIMIT_PER_EMAIL",
        "Reset requests per address (`N/second|minute|hour|day`); over it the answer is "
        "still 202 and no mail goes out.",
        default="3/hour",
    ),
    _v(
        "MAIL_CODES",
        "Reset mails also carry a one-time code the user can type on the website's reset "
        "page on any device (`password_reset.redeem_code`).",
        default="true",
    ),
    _v(
        "CODE_ATTEMPTS_PER_EMAIL",
        "Code redeems per address (`N/second|minute|hour|day`), right or wrong; over it "
        "every redeem of that address answers `unknown`.",
        default="10/hour",
    ),
    _v(
        "RATE_LIMIT_PER_IP",
        "Reset requests per end-user network (`data.client_ip`: an IPv4 address, an IPv6 /64).",
        default="20/hour",
    ),
    _v(
        "REQUESTS_CEILING",
        "Reset requests of all addresses together, across every process; over it a request "
        "gets no lookup and no mail (it protects the Auth0 quota and the relay). `off` for none.",
        default="600/minute",
    ),
    _v(
        "AUTH0_RATE_LIMIT",
        "Your tenant's Management API rate limit (`N/second`); every process shares one "
        "budget of it. Unset, calls are not held back (Auth0's 429s are still honoured).",
        example="2/second",
    ),
    _v(
        "AUTH0_LIVE_RESERVE",
        "Percent of that budget kept for the call a person waits for (confirm): jobs "
        "stop short of it.",
        default="20",
    ),
    _v(
        "RETENTION_DAYS",
        "Finished tickets (expired, used, revoked), their mails (sent, dead, expired), "
        "finished jobs (done, dead) and bulk-reset runs with their lines are deleted this many "
        "days after they finish (docs/data.md).",
        default="30",
    ),
    _v(
        "BULK_MAILS_PER_MINUTE",
        "Ceiling on the mails `resetrelay bulk-reset` queues per minute, across every "
        "worker (keep it under your SMTP relay's limit; live mails are not counted). "
        "0 for none.",
        default="600",
    ),
    _v(
        "MAIL_RETRY_INITIAL_SECONDS",
        "First retry delay of a failed send; exponential with jitter after it.",
        default="10",
    ),
    _v(
        "REVOKE_SESSIONS",
        "After a reset, end what the old password opened: `auto` (revoke-access where "
        "the plan has it, else refresh tokens one by one through device credentials), "
        "`revoke_access`, `device_credentials`, or `off`. With any but `off`, MFA's "
        '"remember this browser" is forgotten too. `true`/`false` mean `auto`/`off`.',
        default="auto",
    ),
    _v(
        "MARK_EMAIL_VERIFIED",
        "After a reset through a mailed link, set `email_verified`.",
        default="true",
    ),
    _v(
        "WEBSITE_EVENTS_URL",
        "Where resetrelay posts its own signed events; unset, none are sent.",
        example="https://www.example.com/hooks/resetrelay",
    ),
    _v(
        "INLINE_WORKER",
        "Run the job worker inside `serve`; set false when `worker` processes run beside it.",
        default="true",
    ),
    _v(
        "AUTO_MIGRATE",
        "Create or upgrade the schema when `serve` starts.",
        default="true for SQLite, else false",
    ),
    _v(
        "METRICS_TOKEN",
        "When set, `/metrics` wants `Authorization: Bearer <token>`; when unset, it answers "
        "loopback clients only.",
        secret=True,
    ),
    _v(
        "METRICS_PORT",
        "A `resetrelay worker` serves its own `/metrics` on this port (its counters live in "
        "its process); unset, it serves none.",
        example="9100",
    ),
    _v(
        "PWNED_PASSWORDS_URL",
        "A Pwned Passwords-compatible range API: every new password is looked up in known "
        "breaches before it is set; only the first 5 hex digits of its SHA-1 are sent. "
        "Empty (or `off`) disables the check.",
        default=PWNED_PASSWORDS_DEFAULT,
        example="https://pwned.internal.example",
    ),
    _v(
        "PWNED_PASSWORDS_ON_ERROR",
        "When the range API cannot be reached, times out or answers garbage: `allow` sets "
        "the password unchecked, `reject` answers 503 (the link still works).",
        default="allow",
    ),
    _v(
        "PWNED_PASSWORDS_TIMEOUT_SECONDS",
        "The whole range query's deadline (one attempt: a person is waiting).",
        default="2",
    ),
    _v("LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR.", default="INFO"),
    _v(
        "DEV_MODE",
        "Development pages (mail previews); `resetrelay demo` sets it. Never in production.",
        default="false",
    ),
)


def needs(*roles: str) -> frozenset[str]:
    """The names that must be set for a process playing `roles`."""
    return frozenset(v.name for v in VARIABLES if v.roles & set(roles))


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
    dispute_url: str = ""
    dispute_ttl_seconds: int = 604800
    brand_name: str = ""
    brand_logo_url: str = ""
    brand_color: str = "#2f5bea"
    support_email: str = ""
    mail_templates_dir: str = ""
    default_locale: str = "en"
    courtesy_mails: str = "none"  # one of COURTESY_MODES
    signin_url: str = ""
    rate_limit_per_email: RateLimit = RateLimit(3, 3600)
    rate_limit_per_ip: RateLimit = RateLimit(20, 3600)
    mail_codes: bool = True
    code_attempts_per_email: RateLimit = RateLimit(10, 3600)
    requests_ceiling: RateLimit | None = RateLimit(600, 60)
    auth0_rate_limit: RateLimit | None = None
    auth0_live_reserve: int = 20
    bulk_mails_per_minute: int = 600
    mail_retry_initial_seconds: float = 10.0
    retention_days: int = 30
    revoke_sessions: str = "auto"  # one of REVOCATION_MODES
    mark_email_verified: bool = True
    website_events_url: str = ""
    inline_worker: bool = True
    auto_migrate: bool = True
    metrics_token: Secret = field(default_factory=lambda: Secret(""))
    metrics_port: int = 0
    # The field's default is no check: only `from_env` (the environment) turns the public
    # API on, so a Settings built any other way never reaches the internet.
    pwned_passwords_url: str = ""
    pwned_passwords_on_error: str = "allow"  # one of BREACH_ERROR_MODES
    pwned_passwords_timeout_seconds: float = 2.0
    log_level: str = "INFO"
    dev_mode: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        roles: Iterable[str] = (WEB, WORKER),
        demo: bool = False,
    ) -> Settings:
        """Read and validate every variable; raise one SettingsError with every problem.

        `roles` says what the process will do; a variable without a default is
        required only when one of them needs it. Outbound events are signed, so a
        worker needs WEBHOOK_SECRET when WEBSITE_EVENTS_URL is set. `demo` is for
        `resetrelay demo`, which provides the Auth0, SMTP and key settings itself."""
        roles = set(roles)
        required = set(needs(*roles))
        if WORKER in roles and env.get("WEBSITE_EVENTS_URL", "").strip():
            required.add("WEBHOOK_SECRET")
        if demo:
            required -= {"SECRET_KEY", "SMTP_URL", "AUTH0_DOMAIN", "AUTH0_CLIENT_ID"}
            required -= {"AUTH0_CLIENT_SECRET"}
        problems: list[str] = []

        def get(name: str, default: str = "") -> str:
            value = env.get(name, "").strip()
            if not value and name in required:
                problems.append(f"{name} is required but not set")
            return value or default

        def parse(name: str, text: str, parser: Callable[[str, str], T], fallback: T) -> T:
            try:
                return parser(name, text)
            except SettingsError as exc:
                problems.extend(exc.problems)
                return fallback

        def whole(name: str, text: str, minimum: int) -> int:
            fallback = int(text) if text.isdigit() else minimum
            return parse(name, text, lambda n, t: _int(n, t, minimum=minimum), fallback)

        def flag(name: str, default: str) -> bool:
            return parse(name, get(name, default), _bool, default == "true")

        database_url = parse(
            "DATABASE_URL",
            get("DATABASE_URL", "sqlite:///./resetrelay.db"),
            lambda _name, text: normalise_database_url(text),
            "sqlite+aiosqlite:///./resetrelay.db",
        )
        webhook_secrets = tuple(
            parse("WEBHOOK_SECRET", part, _webhook_secret, b"")
            for part in get("WEBHOOK_SECRET").split()
        )
        secret_key = get("SECRET_KEY")
        if secret_key and len(secret_key.encode()) < 32:
            problems.append("SECRET_KEY must be at least 32 bytes of random text")
        reset_url = get("RESET_URL")
        parts = urlsplit(reset_url)
        if reset_url and (
            parts.scheme not in ("https", "http") or not parts.netloc or "{ticket}" not in reset_url
        ):
            problems.append("RESET_URL must be an http(s) URL containing {ticket}")
        dispute_url = get("DISPUTE_URL")
        dispute_parts = urlsplit(dispute_url)
        if dispute_url and (
            dispute_parts.scheme not in ("https", "http")
            or not dispute_parts.netloc
            or "{token}" not in dispute_url
        ):
            problems.append("DISPUTE_URL must be an http(s) URL containing {token}")
        auth0_domain = get("AUTH0_DOMAIN")
        auth0_base_url = get("AUTH0_BASE_URL") or (
            f"https://{auth0_domain}" if auth0_domain else ""
        )
        if auth0_base_url and urlsplit(auth0_base_url).scheme not in ("https", "http"):
            problems.append("AUTH0_BASE_URL must be an http(s) URL")
        smtp_url = get("SMTP_URL")
        if smtp_url and urlsplit(smtp_url).scheme not in ("smtp", "smtps", "smtp+starttls"):
            problems.append("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
        log_level = get("LOG_LEVEL", "INFO").upper()
        if log_level not in _LEVELS:
            problems.append(f"LOG_LEVEL must be one of {', '.join(_LEVELS)}")
        port_text = get("PORT")
        signin_url = get("SIGNIN_URL")
        host = get("HOST") or ("0.0.0.0" if port_text else "127.0.0.1")  # noqa: S104 - platform-assigned PORT means behind a router
        settings = cls(
            database_url=database_url,
            webhook_secrets=webhook_secrets,
            secret_key=Secret(secret_key),
            reset_url=reset_url,
            mail_from=get("MAIL_FROM"),
            smtp_url=Secret(smtp_url),
            auth0_domain=auth0_domain,
            auth0_base_url=auth0_base_url.rstrip("/"),
            auth0_client_id=get("AUTH0_CLIENT_ID"),
            auth0_client_secret=Secret(get("AUTH0_CLIENT_SECRET")),
            auth0_connection=get("AUTH0_CONNECTION") or "Username-Password-Authentication",
            auth0_log_stream_token=Secret(get("AUTH0_LOG_STREAM_TOKEN")),
            auth0_action_secret=Secret(get("AUTH0_ACTION_SECRET")),
            host=host,
            port=whole("PORT", port_text or "8000", 0),
            webhook_tolerance_seconds=whole(
                "WEBHOOK_TOLERANCE_SECONDS", get("WEBHOOK_TOLERANCE_SECONDS", "300"), 1
            ),
            ticket_ttl_seconds=whole("TICKET_TTL_SECONDS", get("TICKET_TTL_SECONDS", "3600"), 60),
            dispute_url=dispute_url,
            dispute_ttl_seconds=whole(
                "DISPUTE_TTL_SECONDS", get("DISPUTE_TTL_SECONDS", "604800"), 3600
            ),
            brand_name=get("BRAND_NAME"),
            brand_logo_url=get("BRAND_LOGO_URL"),
            brand_color=parse("BRAND_COLOR", get("BRAND_COLOR", "#2f5bea"), _colour, "#2f5bea"),
            support_email=get("SUPPORT_EMAIL"),
            mail_templates_dir=get("MAIL_TEMPLATES_DIR"),
            default_locale=get("DEFAULT_LOCALE", "en"),
            courtesy_mails=parse(
                "COURTESY_MAILS", get("COURTESY_MAILS", "none"), _courtesy, "none"
            ),
            signin_url=parse("SIGNIN_URL", signin_url, _page_url, "") if signin_url else "",
            rate_limit_per_email=parse(
                "RATE_LIMIT_PER_EMAIL",
                get("RATE_LIMIT_PER_EMAIL", "3/hour"),
                RateLimit.parse,
                RateLimit(3, 3600),
            ),
            mail_codes=flag("MAIL_CODES", "true"),
            code_attempts_per_email=parse(
                "CODE_ATTEMPTS_PER_EMAIL",
                get("CODE_ATTEMPTS_PER_EMAIL", "10/hour"),
                RateLimit.parse,
                RateLimit(10, 3600),
            ),
            rate_limit_per_ip=parse(
                "RATE_LIMIT_PER_IP",
                get("RATE_LIMIT_PER_IP", "20/hour"),
                RateLimit.parse,
                RateLimit(20, 3600),
            ),
            requests_ceiling=parse(
                "REQUESTS_CEILING",
                get("REQUESTS_CEILING", "600/minute"),
                _ceiling,
                _DEFAULT_CEILING,
            ),
            auth0_rate_limit=parse(
                "AUTH0_RATE_LIMIT", get("AUTH0_RATE_LIMIT", "off"), _ceiling, None
            ),
            auth0_live_reserve=whole("AUTH0_LIVE_RESERVE", get("AUTH0_LIVE_RESERVE", "20"), 0),
            bulk_mails_per_minute=whole(
                "BULK_MAILS_PER_MINUTE", get("BULK_MAILS_PER_MINUTE", "600"), 0
            ),
            mail_retry_initial_seconds=parse(
                "MAIL_RETRY_INITIAL_SECONDS",
                get("MAIL_RETRY_INITIAL_SECONDS", "10"),
                lambda n, t: _float(n, t, minimum=0.0),
                10.0,
            ),
            retention_days=whole("RETENTION_DAYS", get("RETENTION_DAYS", "30"), 1),
            revoke_sessions=parse(
                "REVOKE_SESSIONS", get("REVOKE_SESSIONS", "auto"), _revocation, "auto"
            ),
            mark_email_verified=flag("MARK_EMAIL_VERIFIED", "true"),
            website_events_url=get("WEBSITE_EVENTS_URL"),
            inline_worker=flag("INLINE_WORKER", "true"),
            auto_migrate=flag(
                "AUTO_MIGRATE", "true" if database_url.startswith("sqlite") else "false"
            ),
            metrics_token=Secret(get("METRICS_TOKEN")),
            metrics_port=whole("METRICS_PORT", get("METRICS_PORT", "0"), 0),
            # Unset means the default API; set but empty means disabled (so `get`, which
            # maps empty to the default, is not used here).
            pwned_passwords_url=parse(
                "PWNED_PASSWORDS_URL",
                env.get("PWNED_PASSWORDS_URL", PWNED_PASSWORDS_DEFAULT),
                _range_api,
                "",
            ),
            pwned_passwords_on_error=parse(
                "PWNED_PASSWORDS_ON_ERROR",
                get("PWNED_PASSWORDS_ON_ERROR", "allow"),
                _breach_error_mode,
                "allow",
            ),
            pwned_passwords_timeout_seconds=parse(
                "PWNED_PASSWORDS_TIMEOUT_SECONDS",
                get("PWNED_PASSWORDS_TIMEOUT_SECONDS", "2"),
                lambda n, t: _float(n, t, minimum=0.1),
                2.0,
            ),
            log_level=log_level if log_level in _LEVELS else "INFO",
            dev_mode=flag("DEV_MODE", "false"),
        )
        if settings.pwned_passwords_timeout_seconds > 30:
            problems.append("PWNED_PASSWORDS_TIMEOUT_SECONDS must be at most 30 (a person waits)")
        if settings.auth0_live_reserve > 90:
            problems.append("AUTH0_LIVE_RESERVE must be a percent from 0 to 90")
        if problems:
            raise SettingsError(problems)
        return settings
