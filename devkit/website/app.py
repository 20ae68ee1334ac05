"""Acme's website: a demo customer of resetrelay, written to be copied.

The website owns every page the user sees; resetrelay owns tickets, mail and
Auth0. They talk through one signed endpoint, `POST {resetrelay}/hooks/website`:

    POST /forgot           -> password_reset.requested   (always the same answer page)
    GET  /account/reset    -> password_reset.verify      (does not use the ticket up)
    POST /account/reset    -> password_reset.confirm     (sets the password in Auth0)
    POST /account/code     -> password_reset.redeem_code (the mail's code, on any device)
    GET  /account/dispute  -> password_reset.dispute, confirm false (what changed)
    POST /account/dispute  -> password_reset.dispute, confirm true  (lock the account)

What to copy: `sign_webhook` (the whole signing scheme, stdlib only), `ResetRelay`
(one POST per event, a fresh webhook-id each time), the ticket handling in
`Website.reset_page`, and `SecurityHeaders`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
from starlette.applications import Starlette
from starlette.datastructures import FormData, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Answer", "ResetRelay", "create_website", "sign_webhook"]

log = logging.getLogger("devkit.website")

HERE: Final = Path(__file__).parent
RESET_PATH: Final = "/account/reset"
DISPUTE_PATH: Final = "/account/dispute"
TICKET_COOKIE: Final = "reset_ticket"
TICKET_COOKIE_SECONDS: Final = 15 * 60
CSRF_COOKIE: Final = "csrftoken"
CSRF_FIELD: Final = "csrf_token"

_TICKET: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")  # URL-safe; anything else is not a ticket
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{32,64}")
_DISPUTE_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_EMAIL: Final = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_LANGUAGE: Final = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
REASONS: Final = frozenset({"expired", "used", "revoked", "unknown", "missing"})

# Strict and self-only: the reset form runs no inline script (its JS is /static/reset.js).
# Nothing is allowed unless named: the pages load one stylesheet and one script of
# their own, post forms to themselves, and are never framed.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


# -- Talking to resetrelay ------------------------------------------------------------


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks v1 headers for one request.

    `secret` is the `whsec_...` value you share with resetrelay (its WEBHOOK_SECRET):
    the part after `whsec_` is the base64 of the HMAC key. The signature is the
    base64 of HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}") over the exact bytes
    you send, so serialise the body once and send those bytes unchanged.
    """
    encoded = secret.removeprefix("whsec_")
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


@dataclass(frozen=True)
class Answer:
    """resetrelay's answer: the status and the JSON body (`{}` when there was none)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> str:
        return str(self.body.get("error", ""))


UNREACHABLE: Final = Answer(503, {"error": "upstream_unavailable", "message": "unreachable"})


class ResetRelay:
    """Sends events to `POST /hooks/website`."""

    def __init__(self, client: httpx.AsyncClient, url: str, secret: str) -> None:
        self._client = client
        self._url = url
        self._secret = secret
        # A missing or malformed secret fails at start-up, not at the first request.
        if not secret.removeprefix("whsec_"):
            raise ValueError("webhook_secret is empty")
        sign_webhook(secret, "msg_check", 0, b"")

    async def send(self, event_type: str, data: Mapping[str, Any]) -> Answer:
        event = {"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data}
        body = json.dumps(event).encode()
        # A fresh id per call: resetrelay answers a repeated id with the first answer.
        msg_id = "msg_" + secrets.token_urlsafe(18)
        headers = sign_webhook(self._secret, msg_id, int(time.time()), body)
        headers["content-type"] = "application/json"
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            # Network trouble reads as "busy": the ticket stays usable, the user retries.
            log.warning("resetrelay unreachable (%s): %s", event_type, type(exc).__name__)
            return UNREACHABLE
        return Answer(response.status_code, _json(response))


# -- Security headers -----------------------------------------------------------------


class SecurityHeaders:
    """Headers for every response. Pages are never cached and never send a Referer,
    so a reset ticket cannot leak through the cache, history, or a link on the page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Content-Security-Policy"] = CSP
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- Pages ----------------------------------------------------------------------------


class CsrfError(Exception):
    """A form came without the token of its double-submit cookie."""


RULE_HINTS: Final = {
    "strength": "Use a longer password with a mix of letters, digits and symbols.",
    "history": "You have used this password recently. Choose one you haven't used before.",
    "dictionary": "That password is too common. Choose something less predictable.",
    "user_info": "Don't use your name or email address in your password.",
    "breached": "Attackers try passwords from known breaches first. Choose one of your own.",
    "unknown": "",
}


class Website:
    def __init__(
        self,
        relay: ResetRelay,
        client: httpx.AsyncClient,
        templates: Jinja2Templates,
        auth0_url: str | None,
        auth0_client_id: str,
    ) -> None:
        self.relay = relay
        self.client = client
        self.templates = templates
        self.auth0_url = auth0_url
        self.auth0_client_id = auth0_client_id

    # The plumbing: pages, the CSRF double-submit cookie, the ticket cookie.

    def page(self, request: Request, template: str, status: int = 200, **ctx: Any) -> Response:
        """Render a page; every form carries the CSRF token of this browser's cookie."""
        token = request.cookies.get(CSRF_COOKIE, "")
        fresh = not _TOKEN.fullmatch(token)
        if fresh:
            token = secrets.token_urlsafe(32)
        context = {"csrf_token": token, **ctx}
        response = self.templates.TemplateResponse(request, template, context, status)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_https(request)
            )
        return response

    async def form(self, request: Request) -> FormData:
        """The posted form, once its token matches the cookie (double submit: a
        cross-site page can make the browser post, but cannot read our cookie)."""
        form = await request.form(max_files=0, max_fields=16)
        sent = _field(form, CSRF_FIELD)
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not (sent and cookie and hmac.compare_digest(sent.encode(), cookie.encode())):
            raise CsrfError
        return form

    def forget_ticket(self, request: Request, response: Response) -> Response:
        response.delete_cookie(
            TICKET_COOKIE, path=RESET_PATH, httponly=True, samesite="strict",
            secure=_https(request),
        )  # fmt: skip
        return response

    # Home and sign-in.

    async def home(self, request: Request) -> Response:
        return self.page(request, "home.html")

    async def signin_page(self, request: Request) -> Response:
        return self.page(request, "signin.html")

    async def signin(self, request: Request) -> Response:
        form = await self.form(request)
        email, password = _field(form, "email").strip(), _field(form, "password")
        if self.auth0_url is None:
            error = "Sign-in is not connected to Auth0 on this website."
            return self.page(request, "signin.html", 503, email=email, error=error)
        try:
            # The Resource Owner Password grant; a real site would use Universal Login.
            response = await self.client.post(
                f"{self.auth0_url}/oauth/token",
                data={
                    "grant_type": "password",
                    "username": email,
                    "password": password,
                    "client_id": self.auth0_client_id,
                    "scope": "openid profile email",
                },
            )
        except httpx.HTTPError:
            error = "The sign-in service cannot be reached. Please try again shortly."
            return self.page(request, "signin.html", 503, email=email, error=error)
        if response.status_code == 200:
            return self.page(request, "signin.html", signed_in=email)
        body = _json(response)
        description = str(body.get("error_description") or "")
        if response.status_code == 429:
            error = description or "Too many attempts. Your account is blocked for now."
            return self.page(request, "signin.html", 429, email=email, error=error)
        if response.status_code in (400, 401, 403):
            error = description or "Wrong email or password."
            return self.page(request, "signin.html", 401, email=email, error=error)
        error = "The sign-in service is unavailable. Please try again shortly."
        return self.page(request, "signin.html", 503, email=email, error=error)

    # Forgot password: one answer page for everyone.

    async def forgot_page(self, request: Request) -> Response:
        return self.page(request, "forgot.html")

    async def forgot(self, request: Request) -> Response:
        form = await self.form(request)
        email = _field(form, "email").strip()
        if len(email) > 254 or not _EMAIL.fullmatch(email):
            error = "Enter an email address like name@example.com."
            return self.page(request, "forgot.html", 422, email=email, error=error)
        data = {"email": email}
        if locale := _first_language(request.headers.get("accept-language", "")):
            data["locale"] = locale
        if request.client is not None:  # behind a proxy: run uvicorn with --proxy-headers
            data["client_ip"] = request.client.host
        if user_agent := request.headers.get("user-agent", "")[:512]:
            data["user_agent"] = user_agent
        answer = await self.relay.send("password_reset.requested", data)
        if answer.status != 202:
            log.warning("password_reset.requested: %s %s", answer.status, answer.error)
        # The same page whatever happened, so nobody learns which addresses have accounts.
        return self.page(request, "forgot_sent.html")

    # The code from the mail: typed on any device, traded for a ticket.

    async def code_page(self, request: Request) -> Response:
        return self.page(request, "reset_code.html")

    async def code(self, request: Request) -> Response:
        form = await self.form(request)
        email, code = _field(form, "email").strip(), _field(form, "code").strip()
        if len(email) > 254 or not _EMAIL.fullmatch(email):
            error = "Enter the email address the code was sent to."
            return self.page(request, "reset_code.html", 422, email=email, error=error)
        if not code or len(code) > 16:
            error = "Enter the code from the email, like K7QM-3XPA."
            return self.page(request, "reset_code.html", 422, email=email, error=error)
        answer = await self.relay.send("password_reset.redeem_code", {"email": email, "code": code})
        ticket = answer.body.get("ticket")
        if answer.status == 200 and answer.body.get("valid") is True and isinstance(ticket, str):
            # The ticket goes where the link's goes: a cookie only the reset path sees,
            # never the URL. The reset page then verifies it and shows the form.
            response = RedirectResponse(RESET_PATH, status_code=303)
            response.set_cookie(
                TICKET_COOKIE, ticket, max_age=TICKET_COOKIE_SECONDS, path=RESET_PATH,
                httponly=True, samesite="strict", secure=_https(request),
            )  # fmt: skip
            return response
        if answer.status == 200:
            # One message for a wrong code, an unknown address and a used-up code alike.
            error = "That code doesn't work. Check it, or request a new email."
            return self.page(request, "reset_code.html", 422, email=email, error=error)
        if answer.status == 400 and answer.error == "invalid_payload":
            error = "That isn't a code from our email: 8 letters and digits, like K7QM-3XPA."
            return self.page(request, "reset_code.html", 422, email=email, error=error)
        return self.failed(request, answer)

    # Reset: the link from the mail, the form, the outcome.

    async def reset_page(self, request: Request) -> Response:
        ticket = request.query_params.get("ticket")
        if ticket is not None:
            # First load, straight from the mail: move the ticket out of the URL (and so
            # out of the address bar, history and Referer) into a short-lived cookie
            # only this path sees, then load the page again without it.
            if not _TICKET.fullmatch(ticket):
                return self.invalid(request, "unknown", 400)
            response = RedirectResponse(RESET_PATH, status_code=302)
            response.set_cookie(
                TICKET_COOKIE, ticket, max_age=TICKET_COOKIE_SECONDS, path=RESET_PATH,
                httponly=True, samesite="strict", secure=_https(request),
            )  # fmt: skip
            return response
        ticket = request.cookies.get(TICKET_COOKIE)
        if ticket:
            return await self.reset_form(request, ticket)
        if "resume" in request.query_params:
            return self.invalid(request, "missing", 400)
        # No cookie yet. When the link was clicked in webmail, the redirect above
        # counts as cross-site and the browser holds back our SameSite=Strict cookie;
        # a reload started by our own page is same-site and carries it.
        return self.page(request, "reset_opening.html")

    async def reset_form(
        self, request: Request, ticket: str, status: int = 200, **ctx: Any
    ) -> Response:
        """Ask resetrelay whether the ticket is open (this does not use it up), then
        show the form or the reason it cannot be used."""
        answer = await self.relay.send("password_reset.verify", {"ticket": ticket})
        if answer.status == 200 and answer.body.get("valid") is True:
            email = str(answer.body.get("email", ""))
            policy = answer.body.get("policy")
            # The tenant's requirements as resetrelay lists them: the hints follow them.
            listed = _requirements(policy.get("requirements") if isinstance(policy, dict) else None)
            return self.page(
                request, "reset_form.html", status, email=email, requirements=listed, **ctx
            )
        if answer.status == 200:
            return self.invalid(request, str(answer.body.get("reason", "unknown")))
        return self.failed(request, answer)

    async def reset(self, request: Request) -> Response:
        form = await self.form(request)
        ticket = request.cookies.get(TICKET_COOKIE)
        if not ticket:
            return self.invalid(request, "missing", 400)
        password, again = _field(form, "password"), _field(form, "password_confirm")
        if not password:
            return await self.reset_form(request, ticket, 422, error="Enter a new password.")
        if password != again:
            error = "The two passwords don't match."
            return await self.reset_form(request, ticket, 422, error=error)
        answer = await self.relay.send(
            "password_reset.confirm", {"ticket": ticket, "new_password": password}
        )
        if answer.status == 200 and answer.body.get("status") == "completed":
            return self.forget_ticket(request, self.page(request, "reset_done.html"))
        if answer.status == 422 and answer.error == "password_rejected":
            # The policy (or a known breach) said no; the ticket is still good, so the form
            # comes back.
            rule = str(answer.body.get("rule", "unknown"))
            return await self.reset_form(
                request, ticket, 422,
                error=str(answer.body.get("message", "")) or "That password is not allowed.",
                rule=rule if rule in RULE_HINTS else "unknown",
                hint=RULE_HINTS.get(rule, ""),
                missed=_requirements(answer.body.get("requirements")),
            )  # fmt: skip
        if answer.status == 410:
            return self.invalid(request, str(answer.body.get("reason", "unknown")), 410)
        return self.failed(request, answer)

    def invalid(self, request: Request, reason: str, status: int = 200) -> Response:
        reason = reason if reason in REASONS else "unknown"
        return self.forget_ticket(
            request, self.page(request, "reset_invalid.html", status, reason=reason)
        )

    def failed(self, request: Request, answer: Answer) -> Response:
        """Every other answer: retryable ones say so, the rest get a generic page."""
        if answer.status == 409:
            return self.page(request, "reset_retry.html", 409, busy=True)
        if answer.status == 503:
            return self.page(request, "reset_retry.html", 503, busy=False)
        # 400/401 mean this website is misconfigured or out of date: log, don't explain.
        log.error("resetrelay answered %s %s", answer.status, answer.error)
        return self.page(request, "error.html", 502)

    # Dispute: the "Wasn't you?" link from the "password changed" mail.

    async def dispute_page(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        if not _DISPUTE_TOKEN.fullmatch(token):
            return self.dispute_invalid(request, "unknown", 400)
        # confirm false only reads: a mail scanner opening the link locks nothing.
        answer = await self.relay.send("password_reset.dispute", {"token": token, "confirm": False})
        if answer.status == 200 and answer.body.get("valid") is True:
            changed_at = str(answer.body.get("changed_at", ""))
            return self.page(
                request, "dispute.html", token=token, email=str(answer.body.get("email", "")),
                changed_at=changed_at, changed_when=_when(changed_at),
            )  # fmt: skip
        if answer.status == 200:
            return self.dispute_invalid(request, str(answer.body.get("reason", "unknown")))
        return self.failed(request, answer)

    async def dispute(self, request: Request) -> Response:
        form = await self.form(request)
        token = _field(form, "token")
        if not _DISPUTE_TOKEN.fullmatch(token):
            return self.dispute_invalid(request, "unknown", 400)
        answer = await self.relay.send("password_reset.dispute", {"token": token, "confirm": True})
        if answer.status == 200 and answer.body.get("status") == "disputed":
            return self.page(request, "dispute_done.html")
        if answer.status == 410:
            return self.dispute_invalid(request, str(answer.body.get("reason", "unknown")), 410)
        return self.failed(request, answer)

    def dispute_invalid(self, request: Request, reason: str, status: int = 200) -> Response:
        reason = reason if reason in ("expired", "used") else "unknown"
        return self.page(request, "dispute_invalid.html", status, reason=reason)

    async def csrf_failed(self, request: Request, exc: Exception) -> Response:
        return self.page(request, "error.html", 403, csrf=True)


def create_website(
    *,
    resetrelay_url: str,
    webhook_secret: str,
    auth0_url: str | None = None,
    auth0_client_id: str = "emulator-client",
    brand_name: str = "Acme",
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The website as an ASGI app.

    `resetrelay_url` is resetrelay's origin (or the full `/hooks/website` URL);
    `webhook_secret` its WEBHOOK_SECRET (of a space-separated list, the first: the
    newest); `auth0_url` the Auth0 (or emulator) origin for the sign-in page;
    `transport` replaces the network in tests.
    """
    url = resetrelay_url.rstrip("/")
    if not url.endswith("/hooks/website"):
        url += "/hooks/website"
    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(10.0))
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["brand"] = brand_name
    site = Website(
        ResetRelay(client, url, next(iter(webhook_secret.split()), "")),
        client,
        templates,
        auth0_url.rstrip("/") if auth0_url else None,
        auth0_client_id,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(
        routes=[
            Route("/", site.home),
            Route("/signin", site.signin_page, methods=["GET"]),
            Route("/signin", site.signin, methods=["POST"]),
            Route("/forgot", site.forgot_page, methods=["GET"]),
            Route("/forgot", site.forgot, methods=["POST"]),
            Route(RESET_PATH, site.reset_page, methods=["GET"]),
            Route(RESET_PATH, site.reset, methods=["POST"]),
            Route("/account/code", site.code_page, methods=["GET"]),
            Route("/account/code", site.code, methods=["POST"]),
            Route(DISPUTE_PATH, site.dispute_page, methods=["GET"]),
            Route(DISPUTE_PATH, site.dispute, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={CsrfError: site.csrf_failed},
        lifespan=lifespan,
    )


# The numbers a requirement may carry (resetrelay's `requirements` items).
_NUMBERS: Final = ("min", "max", "max_bytes", "size")


def _requirements(found: Any) -> list[dict[str, Any]]:
    """Requirement items from resetrelay, kept only in the shape the page uses."""
    if not isinstance(found, list):
        return []
    kept: list[dict[str, Any]] = []
    for item in found:
        if not isinstance(item, dict) or not isinstance(item.get("rule"), str):
            continue
        numbers = {k: item[k] for k in _NUMBERS if isinstance(item.get(k), int) and item[k] >= 0}
        message = str(item.get("message") or item["rule"])
        kept.append({"rule": item["rule"], "message": message, **numbers})
    return kept


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _first_language(header: str) -> str:
    """`de-CH,de;q=0.9,en;q=0.8` -> `de-CH`; resetrelay falls back from there."""
    tag = header.split(",", 1)[0].split(";", 1)[0].strip()
    return tag if len(tag) <= 35 and _LANGUAGE.fullmatch(tag) else ""


def _when(iso: str) -> str:
    """`2026-12-01T22:31:06Z` -> `1 December 2026, 22:31 UTC`; as given if unreadable."""
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return iso
    return f"{at.day} {at:%B %Y, %H:%M} UTC"


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
