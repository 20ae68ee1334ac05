"""`resetrelay check`: is this deployment ready? One row per check, each ✓ or ✗, and
for every ✗ the one thing to do about it.

    settings          every setting web and worker processes need (`Settings.from_env`)
    database          reachable, and its schema at the newest migration
    Auth0 token       client credentials against AUTH0_BASE_URL
    Auth0 scopes      the token holds every scope of `CALLS` (the calls identity/client.py makes)
    Auth0 answers     what the service's own calls met, recorded in the database: a missing
                      scope Auth0 named (✗), an endpoint the plan lacks (information)
    connection        AUTH0_CONNECTION exists and is a database connection
    SMTP              SMTP_URL reachable (TLS and login as the URL says) and MAIL FROM accepted
    RESET_URL         https (http only on localhost), {ticket} in the path or query, no fragment
    breach check      PWNED_PASSWORDS_URL answers a range query (for a fixed prefix that
                      stands for no password), or "disabled" when it is empty
    log stream, Action   set or not, and what that means (information: ✓ either way)

A check whose settings are missing or malformed is not run and shows ✗ ("not
checked"); the others still run. Every network step has a timeout. Nothing is sent:
the SMTP check ends with RSET and QUIT after MAIL FROM. No secret is printed: every
value of a secret setting is masked in every detail.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote, urlsplit

import aiosmtplib
import anyio
import httpx
from jose import JWTError, jwt
from sqlalchemy import make_url

from identity.answers import error_fields
from mail.smtp import SmtpTarget, parse_smtp_url, smtp_client
from resetrelay.breaches import BreachCorpus, RangeError
from resetrelay.logs import mask_url
from resetrelay.settings import (
    REVOCATION_MODES,
    VARIABLES,
    WEB,
    WORKER,
    Settings,
    SettingsError,
)
from resetrelay.tenant import describe
from storage import auth0_findings
from storage.database import Database, StorageError
from storage.migrate import schema_state

__all__ = ["CALLS", "DEFAULT_TIMEOUT", "Call", "Report", "Row", "run_checks"]

DEFAULT_TIMEOUT: Final = 5.0  # seconds, per network step


@dataclass(frozen=True)
class Call:
    """One Management API call of identity/client.py and the scope Auth0 requires for it
    (Auth0's Management API reference, one page per endpoint)."""

    endpoint: str
    scopes: tuple[str, ...]
    modes: tuple[str, ...] = REVOCATION_MODES  # the REVOKE_SESSIONS modes that make it


REVOKING: Final = ("auto", "revoke_access", "device_credentials")
CALLS: Final = (
    Call("GET /api/v2/users-by-email", ("read:users",)),
    Call("GET /api/v2/users/{id}", ("read:users",)),
    Call("PATCH /api/v2/users/{id}", ("update:users",)),
    Call("DELETE /api/v2/user-blocks/{id}", ("update:users",)),
    Call(
        "POST /api/v2/users/{id}/multifactor/actions/invalidate-remember-browser",
        ("update:users",),
        REVOKING,
    ),
    Call(
        "POST /api/v2/users/{id}/revoke-access",
        ("delete:sessions", "delete:refresh_tokens"),
        ("auto", "revoke_access"),
    ),
    Call(
        "GET /api/v2/device-credentials",
        ("read:device_credentials",),
        ("auto", "device_credentials"),
    ),
    Call(
        "DELETE /api/v2/device-credentials/{id}",
        ("delete:device_credentials",),
        ("auto", "device_credentials"),
    ),
    # The password policy, read before every PATCH: `options` need the second scope.
    Call("GET /api/v2/connections", ("read:connections", "read:connections_options")),
)
REVOCATION_SCOPES: Final = frozenset(
    {"delete:sessions", "delete:refresh_tokens", "read:device_credentials",
     "delete:device_credentials"}
)  # fmt: skip
CONNECTIONS_SCOPE: Final = "read:connections"  # GET /api/v2/connections
GRANT_STEP: Final = (
    "Auth0 Dashboard → Applications → APIs → Auth0 Management API → Machine to Machine "
    "Applications → your application ({client_id}) → tick {scopes} → Update"
)
CREDENTIALS_STEP: Final = (
    "copy Client ID and Client Secret from Auth0 Dashboard → Applications → Applications → "
    "your application → Settings into AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET"
)
LOOPBACK: Final = ("localhost", "127.0.0.1", "::1")

Status = Literal["ok", "fail", "skipped"]


@dataclass(frozen=True)
class Row:
    name: str
    status: Status
    detail: str
    fix: str = ""
    info: bool = False  # says how the deployment is set up; holds either way

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _ok(name: str, detail: str, *, info: bool = False) -> Row:
    return Row(name, "ok", detail, info=info)


def _fail(name: str, detail: str, fix: str) -> Row:
    return Row(name, "fail", detail, fix)


def _skipped(name: str, needs: Iterable[str]) -> Row:
    """Not run: settings it needs are missing or malformed (rows above say which)."""
    names = ", ".join(needs)
    return Row(name, "skipped", f"not checked: {names} missing or malformed", f"fix {names} first")


def _after(name: str, failed: str) -> Row:
    """Not run: it needs what the `failed` row above could not do."""
    return Row(name, "skipped", f"not checked: needs {failed} (above)", f"fix {failed} first")


@dataclass(frozen=True)
class Report:
    rows: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def table(self) -> str:
        width = max(len(row.name) for row in self.rows)
        lines = []
        for row in self.rows:
            mark = "✓" if row.ok else "✗"
            lines.append(f"{mark} {row.name:<{width}} — {row.detail}")
            if row.fix:
                lines.append(f"  {'':<{width}}   fix: {row.fix}")
        failed = sum(not row.ok for row in self.rows)
        lines.append("")
        lines.append(
            "resetrelay: every check holds"
            if not failed
            else f"resetrelay: {failed} of {len(self.rows)} checks do not hold"
        )
        return "\n".join(lines)

    def json(self) -> str:
        rows = [
            {
                "name": row.name,
                "ok": row.ok,
                "status": row.status,
                "detail": row.detail,
                "fix": row.fix or None,
                "info": row.info,
            }
            for row in self.rows
        ]
        return json.dumps({"ok": self.ok, "checks": rows}, ensure_ascii=False, indent=2)


# -- settings --------------------------------------------------------------------------

_NAMES: Final = sorted((v.name for v in VARIABLES), key=len, reverse=True)


def _named(problem: str) -> str | None:
    """The variable a settings problem names (each names exactly one, first)."""
    return next((name for name in _NAMES if problem.startswith(name)), None)


def _settings(env: Mapping[str, str]) -> tuple[Settings, set[str], list[Row]]:
    """Settings for the checks, the variables that are missing or malformed, and rows.

    On problems the checks still get settings: read again without roles (nothing is
    required) and without the malformed variables, whose checks then do not run."""
    try:
        return (
            Settings.from_env(env, roles=(WEB, WORKER)),
            set(),
            [_ok("settings", "every setting web and worker processes need is set")],
        )
    except SettingsError as exc:
        problems = exc.problems
    bad = {name for problem in problems if (name := _named(problem))}
    rows = [
        _fail(
            "settings",
            problem,
            "set it in the environment (`resetrelay config` lists every setting)",
        )
        for problem in problems
    ]
    remaining = dict(env)
    for _ in range(len(VARIABLES)):
        for name in bad:
            remaining.pop(name, None)
        try:
            return Settings.from_env(remaining, roles=()), bad, rows
        except SettingsError as again:
            more = {name for problem in again.problems if (name := _named(problem))}
            if not more - bad:
                break
            bad |= more
    raise RuntimeError("settings could not be read")  # pragma: no cover - every problem names one


def _secrets(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """Every secret value this report could meet, to mask wherever it shows."""
    values = [env.get(v.name, "").strip() for v in VARIABLES if v.secret]
    values += [part for part in env.get("WEBHOOK_SECRET", "").split()]
    for url in (settings.database_url, settings.smtp_url.reveal()):
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            values.append(password)
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def _masked(row: Row, secrets: list[str]) -> Row:
    def mask(text: str) -> str:
        for value in secrets:
            text = text.replace(value, "***")
        return text

    return Row(row.name, row.status, mask(row.detail), mask(row.fix), row.info)


# -- database ----------------------------------------------------------------------------


def _sqlite_file_missing(database_url: str) -> bool:
    # Connecting would create the file: the check says it is missing instead.
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return False
    return not Path(str(url.database)).exists()


async def check_database(database_url: str, step_seconds: float) -> list[Row]:
    shown = mask_url(database_url)
    if _sqlite_file_missing(database_url):
        return [
            _fail("database", f"{shown}: the file does not exist", "run `resetrelay migrate`"),
            _after("database schema", "database"),
        ]
    db = Database(database_url)
    try:
        with anyio.move_on_after(step_seconds):
            if await db.ping():
                try:
                    state = await schema_state(db)
                except StorageError as exc:
                    return [
                        _ok("database", f"{shown} answers"),
                        _fail(
                            "database schema", f"cannot be read ({exc})", "run `resetrelay migrate`"
                        ),
                    ]
                if state.current:
                    schema = _ok("database schema", f"at the newest migration ({state.head})")
                elif state.revision is None:
                    schema = _fail(
                        "database schema",
                        f"no schema yet (this version needs {state.head})",
                        "run `resetrelay migrate`",
                    )
                else:
                    schema = _fail(
                        "database schema",
                        f"at migration {state.revision}, this version needs {state.head}",
                        "run `resetrelay migrate`",
                    )
                rows = [_ok("database", f"{shown} answers"), schema]
                if state.current:
                    rows.append(await _findings_row(db))
                return rows
            return [_unreachable_database(shown, "it does not answer")]
        return [_unreachable_database(shown, f"no answer within {step_seconds:g} s")]
    finally:
        with anyio.CancelScope(shield=True):
            await db.dispose()


async def _findings_row(db: Database) -> Row:
    """What the service's own Auth0 calls met (recorded in the database by every
    process): a missing scope is a ✗ with its fix, a plan limit information."""
    async with db.begin() as conn:
        found = await auth0_findings.active(conn, now=datetime.now(UTC))
    scopes = [f for f in found if f.kind == auth0_findings.SCOPE]
    plans = [f for f in found if f.kind == auth0_findings.PLAN]
    if scopes:
        named = sorted({s for f in scopes for s in f.detail.split()})
        return _fail(
            "Auth0 answers",
            "; ".join(describe(f) for f in scopes),
            GRANT_STEP.format(client_id="AUTH0_CLIENT_ID", scopes=", ".join(named) or "the scope"),
        )
    if plans:
        said = "; ".join(
            f"{f.name} not on this plan ({f.detail}, not asked again before {f.until})"
            for f in plans
        )
        return _ok("Auth0 answers", said, info=True)
    return _ok("Auth0 answers", "no refusal recorded by the service's calls", info=True)


def _unreachable_database(shown: str, why: str) -> Row:
    return _fail(
        "database",
        f"{shown}: {why}",
        "check DATABASE_URL (host, port, user, password) and that the server runs and "
        "lets this host in",
    )


# -- Auth0 -------------------------------------------------------------------------------


def granted_scopes(answer: Mapping[str, Any]) -> set[str] | None:
    """The scopes a client-credentials answer grants: its `scope` field, else the
    access token's `scope` claim (read, not verified: only to list them)."""
    scope = answer.get("scope")
    if isinstance(scope, str):
        return set(scope.split())
    token = answer.get("access_token")
    try:
        claims = jwt.get_unverified_claims(str(token))
    except JWTError:
        return None
    claim = claims.get("scope")
    if isinstance(claim, str):
        return set(claim.split())
    if isinstance(claim, list):
        return {str(s) for s in claim}
    return None


def needed_scopes(revoke_sessions: str) -> dict[str, list[str]]:
    """Each scope resetrelay needs under this REVOKE_SESSIONS mode, with the calls
    that need it."""
    found: dict[str, list[str]] = {}
    for call in CALLS:
        if revoke_sessions not in call.modes:
            continue
        for scope in call.scopes:
            found.setdefault(scope, []).append(call.endpoint)
    return found


def _token_refused(status: int, code: str | None, message: str, domain: str) -> Row:
    said = f"Auth0 answered {status} {code or ''}: {message}".replace("  ", " ").rstrip(": ")
    if status == 401:
        return _fail("Auth0 token", f"{said} (wrong client ID or secret)", CREDENTIALS_STEP)
    if status == 403 and "Service not enabled" in message:
        return _fail(
            "Auth0 token",
            said,
            f"AUTH0_DOMAIN must be the tenant's own domain (e.g. acme.eu.auth0.com), not "
            f"a custom domain; the token's audience is https://{domain}/api/v2/",
        )
    if status == 403:
        return _fail(
            "Auth0 token",
            said,
            "authorize the application for the Management API: Auth0 Dashboard → "
            "Applications → APIs → Auth0 Management API → Machine to Machine Applications "
            "→ switch your application on",
        )
    if status == 429 or status >= 500:
        return _fail("Auth0 token", said, "Auth0 is busy or failing: run the check again later")
    return _fail("Auth0 token", said, "check AUTH0_DOMAIN, AUTH0_BASE_URL and the credentials")


async def check_auth0(settings: Settings, step_seconds: float) -> list[Row]:
    base = settings.auth0_base_url
    async with httpx.AsyncClient(
        base_url=base,
        timeout=httpx.Timeout(step_seconds),
        headers={"user-agent": "resetrelay check"},
        follow_redirects=False,
    ) as http:
        try:
            response = await http.post(
                "/oauth/token",
                json={
                    "grant_type": "client_credentials",
                    "client_id": settings.auth0_client_id,
                    "client_secret": settings.auth0_client_secret.reveal(),
                    "audience": f"https://{settings.auth0_domain}/api/v2/",
                },
            )
        except httpx.HTTPError as exc:
            return [
                _fail(
                    "Auth0 token",
                    f"{base} does not answer ({type(exc).__name__}{_said(exc)})",
                    "check AUTH0_DOMAIN (and AUTH0_BASE_URL, if set) and that this host "
                    "reaches it over HTTPS",
                ),
                _after("Auth0 scopes", "Auth0 token"),
                _after("connection", "Auth0 token"),
            ]
        if response.status_code != 200:
            code, message = error_fields(response)
            return [
                _token_refused(response.status_code, code, message, settings.auth0_domain),
                _after("Auth0 scopes", "Auth0 token"),
                _after("connection", "Auth0 token"),
            ]
        try:
            answer = response.json()
        except ValueError:
            answer = None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or not isinstance(token, str) or not token:
            return [
                _fail(
                    "Auth0 token",
                    f"{base} answered 200 without an access_token",
                    "AUTH0_BASE_URL must be the tenant (or its custom domain), not another site",
                ),
                _after("Auth0 scopes", "Auth0 token"),
                _after("connection", "Auth0 token"),
            ]
        rows = [_ok("Auth0 token", f"client credentials accepted by {base}")]
        granted = granted_scopes(answer)
        rows.append(_scopes_row(granted, settings))
        rows.append(await _connection_row(http, token, granted, settings))
        return rows


def _said(exc: BaseException) -> str:
    text = str(exc).strip()
    return f": {text}" if text else ""


def _scopes_row(granted: set[str] | None, settings: Settings) -> Row:
    needed = needed_scopes(settings.revoke_sessions)
    if granted is None:
        return _fail(
            "Auth0 scopes",
            "the token answer names no scopes (no `scope` field, no `scope` claim)",
            GRANT_STEP.format(client_id=settings.auth0_client_id, scopes=" ".join(needed)),
        )
    missing = [scope for scope in needed if scope not in granted]
    if not missing:
        extra = f" (REVOKE_SESSIONS={settings.revoke_sessions})"
        return _ok("Auth0 scopes", f"granted {' '.join(needed)}{extra}")
    uses = "; ".join(f"{scope} for {', '.join(needed[scope])}" for scope in missing)
    fix = GRANT_STEP.format(client_id=settings.auth0_client_id, scopes=", ".join(missing))
    if set(missing) <= {"delete:sessions", "delete:refresh_tokens"}:
        fix += " (or set REVOKE_SESSIONS=device_credentials: refresh tokens only)"
    elif set(missing) <= REVOCATION_SCOPES:
        fix += " (or set REVOKE_SESSIONS=off: nothing is revoked after a reset)"
    return _fail("Auth0 scopes", f"missing {uses}", fix)


async def _connection_row(
    http: httpx.AsyncClient, token: str, granted: set[str] | None, settings: Settings
) -> Row:
    name = settings.auth0_connection
    grant_fix = (
        GRANT_STEP.format(client_id=settings.auth0_client_id, scopes=CONNECTIONS_SCOPE)
        + " (also needed to read the connection's password policy)"
    )
    if granted is not None and CONNECTIONS_SCOPE not in granted:
        return _fail(
            "connection",
            f"not checked: the token lacks {CONNECTIONS_SCOPE} (needed to look up {name!r})",
            grant_fix,
        )

    async def lookup(strategy: str | None) -> httpx.Response:
        params = {"name": name, **({"strategy": strategy} if strategy else {})}
        return await http.get(
            "/api/v2/connections", params=params, headers={"authorization": f"Bearer {token}"}
        )

    try:
        response = await lookup("auth0")
        if response.status_code == 200 and response.json() == []:
            other = await lookup(None)  # the name of a connection of another kind?
            found = other.json() if other.status_code == 200 else []
            if isinstance(found, list) and found and isinstance(found[0], dict):
                strategy = found[0].get("strategy")
                return _fail(
                    "connection",
                    f"{name!r} is a {strategy} connection, not a database connection",
                    "set AUTH0_CONNECTION to the database connection's name (Auth0 Dashboard "
                    "→ Authentication → Database)",
                )
            return _fail(
                "connection",
                f"no connection named {name!r} in this tenant",
                "set AUTH0_CONNECTION to the name listed under Auth0 Dashboard → "
                "Authentication → Database (names are case-sensitive)",
            )
    except httpx.HTTPError as exc:
        return _fail(
            "connection",
            f"the lookup failed ({type(exc).__name__}{_said(exc)})",
            "run the check again; if it persists, check that this host reaches Auth0",
        )
    except ValueError:
        return _fail("connection", "the answer is not JSON", "check AUTH0_BASE_URL")
    if response.status_code == 403:
        code, message = error_fields(response)
        return _fail("connection", f"Auth0 answered 403 {code or ''}: {message}", grant_fix)
    if response.status_code != 200:
        code, message = error_fields(response)
        return _fail(
            "connection",
            f"Auth0 answered {response.status_code} {code or ''}: {message}",
            "run the check again later",
        )
    found = response.json()
    first = found[0] if isinstance(found, list) and found else {}
    ident = first.get("id", "?") if isinstance(first, dict) else "?"
    return _ok("connection", f"{name!r} is a database connection ({ident})")


# -- SMTP --------------------------------------------------------------------------------


async def check_smtp(
    smtp_url: str, mail_from: str, step_seconds: float, tls_context: ssl.SSLContext | None = None
) -> list[Row]:
    try:
        target = parse_smtp_url(smtp_url)
    except ValueError as exc:
        return [
            _fail("SMTP relay", str(exc), "fix SMTP_URL (docs/settings.md)"),
            _after("MAIL FROM", "SMTP relay"),
        ]
    sender = parseaddr(mail_from)[1]
    where = _describe(target)
    client = smtp_client(target, tls_context=tls_context, timeout=step_seconds)
    try:
        with anyio.fail_after(step_seconds * 3):
            try:
                await client.connect()
            except aiosmtplib.SMTPAuthenticationError as exc:
                return [
                    _fail(
                        "SMTP relay",
                        f"{where}: login refused ({exc.code} {exc.message})",
                        "check the user and password in SMTP_URL (percent-encode @ : / in them)",
                    ),
                    _after("MAIL FROM", "SMTP relay"),
                ]
            except (aiosmtplib.SMTPException, OSError) as exc:
                fix = (
                    "the relay offers no login on this connection: use smtp+starttls:// or "
                    "smtps:// as your mail provider documents"
                    if "AUTH" in str(exc) and not isinstance(exc, aiosmtplib.SMTPConnectError)
                    else "check SMTP_URL's host, port and scheme (smtp://, smtp+starttls://, "
                    "smtps://) and that this host may connect to it"
                )
                return [
                    _fail("SMTP relay", f"{where}: {_smtp_trouble(exc)}", fix),
                    _after("MAIL FROM", "SMTP relay"),
                ]
            secured = "TLS" if client.get_transport_info("sslcontext") is not None else "no TLS"
            login = f", logged in as {target.username}" if target.username else ""
            relay = _ok("SMTP relay", f"{where} answers ({secured}{login})")
            if not sender:
                return [relay, _fail("MAIL FROM", "MAIL_FROM holds no address", "set MAIL_FROM")]
            try:
                await client.mail(sender)
            except aiosmtplib.SMTPResponseException as exc:
                return [
                    relay,
                    _fail(
                        "MAIL FROM",
                        f"the relay refused <{sender}>: {exc.code} {exc.message}",
                        "use a sender address the relay may send as (verify the domain or "
                        "address with your mail provider), or change MAIL_FROM",
                    ),
                ]
            except (aiosmtplib.SMTPException, OSError) as exc:
                return [relay, _fail("MAIL FROM", _smtp_trouble(exc), "run the check again")]
            try:
                await client.rset()
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass  # what mattered was answered; nothing was sent
            return [relay, _ok("MAIL FROM", f"the relay accepts <{sender}> (nothing was sent)")]
    except TimeoutError:
        return [
            _fail(
                "SMTP relay",
                f"{where}: no answer within {step_seconds * 3:g} s",
                "check SMTP_URL's host and port, and that this host may connect to it",
            ),
            _after("MAIL FROM", "SMTP relay"),
        ]
    finally:
        client.close()


def _describe(target: SmtpTarget) -> str:
    return f"{target.host}:{target.port} ({target.tls.value})"


def _smtp_trouble(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    if isinstance(exc, TimeoutError | aiosmtplib.SMTPTimeoutError):
        return "timed out"
    return f"{type(exc).__name__}{_said(exc)}"


# -- the breach check ----------------------------------------------------------------------


async def check_breaches(
    settings: Settings, step_seconds: float, transport: httpx.AsyncBaseTransport | None = None
) -> Row:
    """The range API answers a well-formed range for prefix 00000 (no password's hash
    leaves: the prefix is fixed), within PWNED_PASSWORDS_TIMEOUT_SECONDS."""
    name = "breach check"
    url = settings.pwned_passwords_url
    if not url:
        return _ok(name, "disabled (PWNED_PASSWORDS_URL is empty): new passwords are not "
                   "looked up in known breaches", info=True)  # fmt: skip
    timeout = min(settings.pwned_passwords_timeout_seconds, step_seconds)
    corpus = BreachCorpus(url, timeout=timeout, transport=transport)
    try:
        rows = await corpus.probe()
    except RangeError as exc:
        consequence = (
            "confirms answer 503 until it answers (PWNED_PASSWORDS_ON_ERROR=reject)"
            if settings.pwned_passwords_on_error == "reject"
            else "passwords are set unchecked until it answers (PWNED_PASSWORDS_ON_ERROR=allow)"
        )
        return _fail(
            name,
            f"{mask_url(url)} gave no usable range answer ({exc.reason}): {consequence}",
            "let this host reach PWNED_PASSWORDS_URL, point it at a working range API, "
            "or set it empty to disable the check",
        )
    finally:
        await corpus.aclose()
    return _ok(name, f"{mask_url(url)} answers range queries ({rows} rows for one prefix)")


# -- RESET_URL and the optional routes ------------------------------------------------------


def check_reset_url(reset_url: str) -> Row:
    """https (http only on localhost), {ticket} in the path or query, no fragment."""
    fix = "set RESET_URL like https://www.example.com/account/reset?ticket={ticket}"
    try:
        parts = urlsplit(reset_url)
        host = parts.hostname or ""
    except ValueError:
        return _fail("RESET_URL", "is not a URL", fix)
    problems = []
    if parts.scheme == "http":
        if host not in LOOPBACK and not host.endswith(".localhost"):
            problems.append("is http: links must be https (http only for localhost)")
    elif parts.scheme != "https":
        problems.append("must start with https://")
    if not host:
        problems.append("has no host")
    if parts.username is not None or parts.password is not None:
        problems.append("carries a user or password")
    if parts.fragment or "#" in reset_url:
        problems.append("has a fragment (#…): drop it")
    if "{ticket}" not in parts.path + parts.query:
        problems.append("has no {ticket} in its path or query")
    if problems:
        return _fail("RESET_URL", f"{reset_url} " + "; ".join(problems), fix)
    sample = reset_url.replace("{ticket}", quote("TICKET", safe=""))
    return _ok("RESET_URL", f"links look like {sample}")


def _optional_routes(settings: Settings) -> list[Row]:
    stream = (
        "AUTH0_LOG_STREAM_TOKEN set: POST /hooks/auth0 takes Auth0's log events"
        if settings.auth0_log_stream_token
        else "AUTH0_LOG_STREAM_TOKEN not set (route answers 404): no breached or blocked "
        "mails, no voiding of links after changes made elsewhere"
    )
    action = (
        "AUTH0_ACTION_SECRET set: POST /hooks/auth0/actions takes the Action's calls"
        if settings.auth0_action_secret
        else "AUTH0_ACTION_SECRET not set (route answers 404): a password changed outside "
        "resetrelay leaves open links to the log stream (or to expiry)"
    )
    dispute = (
        'DISPUTE_URL set: the "password changed" mail carries a "Wasn\'t you?" link'
        if settings.dispute_url
        else 'DISPUTE_URL not set: the "password changed" mail has no "Wasn\'t you?" '
        "link, so whoever did not make the change can only write to support"
    )
    return [
        _ok("log stream", stream, info=True),
        _ok("Auth0 Action", action, info=True),
        _ok("dispute link", dispute, info=True),
    ]


# -- all of it ---------------------------------------------------------------------------


async def run_checks(
    env: Mapping[str, str],
    *,
    step_seconds: float = DEFAULT_TIMEOUT,
    tls_context: ssl.SSLContext | None = None,
) -> Report:
    """Every check, the network ones side by side; never raises for what it finds."""
    settings, bad, rows = _settings(env)

    def missing(*names: str) -> list[str]:
        return [n for n in names if n in bad or not env.get(n, "").strip()]

    async def database() -> list[Row]:
        if "DATABASE_URL" in bad:
            return [
                _skipped("database", ["DATABASE_URL"]),
                _skipped("database schema", ["DATABASE_URL"]),
            ]
        return await check_database(settings.database_url, step_seconds)

    async def auth0() -> list[Row]:
        lacking = missing("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET")
        lacking += [n for n in ("AUTH0_BASE_URL",) if n in bad]
        if lacking:
            return [
                _skipped(name, lacking) for name in ("Auth0 token", "Auth0 scopes", "connection")
            ]
        return await check_auth0(settings, step_seconds)

    async def smtp() -> list[Row]:
        lacking = missing("SMTP_URL", "MAIL_FROM")
        if lacking:
            return [_skipped("SMTP relay", lacking), _skipped("MAIL FROM", lacking)]
        return await check_smtp(
            settings.smtp_url.reveal(), settings.mail_from, step_seconds, tls_context
        )

    async def reset_url() -> list[Row]:
        text = env.get("RESET_URL", "").strip()
        if not text:
            return [_skipped("RESET_URL", ["RESET_URL"])]
        return [check_reset_url(text)]

    async def breaches() -> list[Row]:
        if "PWNED_PASSWORDS_URL" in bad or "PWNED_PASSWORDS_TIMEOUT_SECONDS" in bad:
            return [_skipped("breach check", ["PWNED_PASSWORDS_URL"])]
        return [await check_breaches(settings, step_seconds)]

    steps: list[Callable[[], Awaitable[list[Row]]]] = [
        database,
        auth0,
        smtp,
        reset_url,
        breaches,
    ]
    results: list[list[Row]] = [[] for _ in steps]

    async def run(index: int) -> None:
        results[index] = await steps[index]()

    async with anyio.create_task_group() as tg:
        for index in range(len(steps)):
            tg.start_soon(run, index)
    for found in results:
        rows += found
    rows += _optional_routes(settings)
    secrets = _secrets(settings, env)
    return Report(tuple(_masked(row, secrets) for row in rows))
