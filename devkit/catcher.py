"""A local mail catcher with a web inbox, for `resetrelay demo` and end-to-end tests.

`MailCatcher` runs an SMTP server (aiosmtpd, in its own thread) on loopback that
accepts every message, delivers none, and keeps the newest `limit` in memory.
`web_app()` shows them:

    GET    /                    the inbox, newest first
    GET    /messages/{id}       one message: headers, links, HTML (sandboxed), text
    GET    /messages/{id}/html  the HTML part alone, under a sandboxing CSP
    GET    /messages/{id}/raw   the message exactly as received
    POST   /clear               empty the inbox (the inbox page's button)
    GET    /api/messages        JSON, newest first: [{id, to, from, subject, date, text,
                                html, links, received_at}]
    DELETE /api/messages        empty the inbox

Development only: anyone who reaches the port can drop mail into it.
"""

from __future__ import annotations

import asyncio
import email.policy
import re
import threading
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any, Final

import jinja2
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = ["CaughtMessage", "MailCatcher"]

# The mail's HTML may hold anything: it runs with no script, no same-origin, no
# forms, and may only open links in a new tab (which leaves the sandbox).
HTML_PART_CSP: Final = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "img-src * data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
PAGE_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_URL: Final = re.compile(r"https?://[^\s<>\"'\]\)]+")


@dataclass(frozen=True)
class CaughtMessage:
    id: str
    received_at: datetime
    mail_from: str  # the envelope sender (MAIL FROM)
    rcpt_tos: tuple[str, ...]  # the envelope recipients (RCPT TO)
    to: str
    sender: str  # the From header
    subject: str
    date: str
    headers: tuple[tuple[str, str], ...]
    text: str
    html: str
    links: tuple[str, ...]
    raw: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "to": self.to,
            "from": self.sender,
            "subject": self.subject,
            "date": self.date,
            "text": self.text,
            "html": self.html,
            "links": list(self.links),
            "received_at": self.received_at.isoformat(),
        }


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to bind port 0 and report the real port."""

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self._bind()

    async def _bind(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port
        )
        # Set before start() connects to the server to check that it is up.
        self.port = int(server.sockets[0].getsockname()[1])
        return server


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self._catcher = catcher

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        self._catcher.catch(bytes(raw), str(envelope.mail_from), list(envelope.rcpt_tos))
        return "250 2.0.0 caught"


class MailCatcher:
    """An SMTP sink on `host:smtp_port` (0 picks a free port) with a web inbox."""

    def __init__(self, host: str = "127.0.0.1", smtp_port: int = 0, *, limit: int = 200) -> None:
        self.host = host
        self._port = smtp_port
        self._messages: deque[CaughtMessage] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._count = 0
        self._controller: _Controller | None = None

    @property
    def smtp_port(self) -> int:
        """The port SMTP listens on: the real one once started, even when asked for 0."""
        return self._port

    @property
    def messages(self) -> list[CaughtMessage]:
        """Caught messages, newest first."""
        with self._lock:
            return list(reversed(self._messages))

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("the mail catcher is already running")
        # A fixed server name: the default looks up this machine's FQDN, which can stall.
        controller = _Controller(
            _Handler(self), hostname=self.host, port=self._port, server_hostname="mailcatcher"
        )
        controller.start()
        self._controller = controller
        self._port = int(controller.port)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def get(self, message_id: str) -> CaughtMessage | None:
        with self._lock:
            return next((m for m in self._messages if m.id == message_id), None)

    def catch(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> CaughtMessage:
        """Keep one message (called from the SMTP thread; public for tests and tools)."""
        with self._lock:
            self._count += 1
            message = _parse(str(self._count), raw, mail_from, tuple(rcpt_tos))
            self._messages.append(message)
            return message

    def web_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self._inbox),
                Route("/clear", self._clear_page, methods=["POST"]),
                Route("/messages/{id}", self._detail),
                Route("/messages/{id}/html", self._html_part),
                Route("/messages/{id}/raw", self._raw),
                Route("/api/messages", self._api_list, methods=["GET"]),
                Route("/api/messages", self._api_clear, methods=["DELETE"]),
            ]
        )

    # -- Web inbox ----------------------------------------------------------------------

    async def _inbox(self, request: Request) -> Response:
        return _page("inbox.html", messages=self.messages)

    async def _clear_page(self, request: Request) -> Response:
        self.clear()
        return RedirectResponse("/", status_code=303)

    async def _detail(self, request: Request) -> Response:
        message = self.get(request.path_params["id"])
        if message is None:
            return _page("missing.html", status=404)
        return _page("message.html", message=message)

    async def _html_part(self, request: Request) -> Response:
        message = self.get(request.path_params["id"])
        if message is None or not message.html:
            return _text("no HTML part", 404)
        headers = {
            "Content-Security-Policy": HTML_PART_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
        return HTMLResponse(_links_open_in_new_tab(message.html), headers=headers)

    async def _raw(self, request: Request) -> Response:
        message = self.get(request.path_params["id"])
        if message is None:
            return _text("no such message", 404)
        return _text(message.raw)

    async def _api_list(self, request: Request) -> Response:
        return JSONResponse([m.as_json() for m in self.messages])

    async def _api_clear(self, request: Request) -> Response:
        self.clear()
        return Response(status_code=204)


# -- Parsing --------------------------------------------------------------------------


def _parse(message_id: str, raw: bytes, mail_from: str, rcpt_tos: tuple[str, ...]) -> CaughtMessage:
    received_at = datetime.now(UTC)
    try:
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
        headers = tuple((name, str(value)) for name, value in parsed.items())
        text, html = _body(parsed, "plain"), _body(parsed, "html")
        to = str(parsed.get("To", "")) or ", ".join(rcpt_tos)
        sender = str(parsed.get("From", "")) or mail_from
        subject, date = str(parsed.get("Subject", "")), str(parsed.get("Date", ""))
    except Exception:  # a catcher keeps even mail it cannot read
        headers, html, to, sender, date = (), "", ", ".join(rcpt_tos), mail_from, ""
        text, subject = raw.decode("utf-8", "replace"), "(unreadable message)"
    return CaughtMessage(
        id=message_id,
        received_at=received_at,
        mail_from=mail_from,
        rcpt_tos=rcpt_tos,
        to=to,
        sender=sender,
        subject=subject,
        date=date or received_at.isoformat(),
        headers=headers,
        text=text,
        html=html,
        links=_links(text, html),
        raw=raw,
    )


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError):  # unknown charset, broken bytes
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def _links(text: str, html: str) -> tuple[str, ...]:
    """Every http(s) link of the mail, in order, once: the inbox shows them clickable."""
    anchors = _Anchors()
    anchors.feed(html)
    anchors.close()
    found = [href.strip() for href in anchors.hrefs] + _URL.findall(text)
    return tuple(dict.fromkeys(u for u in found if u.startswith(("http://", "https://"))))


def _links_open_in_new_tab(html: str) -> str:
    # The page the reset link opens refuses to be framed, so links leave the frame.
    base = '<base target="_blank">'
    head = re.search(r"<head\b[^>]*>", html, re.IGNORECASE)
    if head is None:
        return base + html
    return html[: head.end()] + base + html[head.end() :]


# -- Pages ----------------------------------------------------------------------------

_TEMPLATES: Final = {
    "base.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{% block head %}{% endblock %}
<title>{% block title %}Inbox{% endblock %} · mail catcher</title>
<style>
  body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: #1f2937; background: #f6f7f9; }
  header { display: flex; gap: 1rem; align-items: center; justify-content: space-between;
           padding: .75rem 1.5rem; background: #111827; color: #fff; }
  header a { color: #fff; text-decoration: none; font-weight: 600; }
  main { max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; }
  table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #e5e7eb; }
  th, td { text-align: left; padding: .55rem .8rem; border-bottom: 1px solid #e5e7eb; }
  th { font-size: .8rem; text-transform: uppercase; color: #6b7280; }
  td a { color: #1d4ed8; }
  .empty { padding: 2rem; text-align: center; color: #6b7280; background: #fff; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
  dt { color: #6b7280; } dd { margin: 0; word-break: break-all; }
  section { margin: 1rem 0; padding: 1rem; background: #fff; border: 1px solid #e5e7eb; }
  h2 { margin: 0 0 .6rem; font-size: 1rem; }
  iframe { width: 100%; height: 44rem; border: 1px solid #e5e7eb; background: #fff; }
  pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
  button { font: inherit; padding: .3rem .8rem; cursor: pointer; }
  .links li { word-break: break-all; }
</style></head>
<body><header><a href="/">📬 mail catcher</a>
<form method="post" action="/clear"><button type="submit">Clear inbox</button></form></header>
<main>{% block content %}{% endblock %}</main></body></html>""",
    "inbox.html": """{% extends "base.html" %}
{% block head %}<meta http-equiv="refresh" content="5">{% endblock %}
{% block content %}
{% if messages %}
<table><thead><tr><th>To</th><th>Subject</th><th>Received</th></tr></thead><tbody>
{% for m in messages %}
<tr><td>{{ m.to }}</td><td><a href="/messages/{{ m.id }}">{{ m.subject or "(no subject)" }}</a></td>
<td><time datetime="{{ m.received_at.isoformat() }}">
{{- m.received_at.strftime("%H:%M:%S") }}</time></td></tr>
{% endfor %}
</tbody></table>
{% else %}<p class="empty">No mail yet. This page refreshes itself.</p>{% endif %}
{% endblock %}""",
    "message.html": """{% extends "base.html" %}
{% block title %}{{ message.subject }}{% endblock %}
{% block content %}
<h1>{{ message.subject or "(no subject)" }}</h1>
<section><h2>Headers</h2><dl>
<dt>Envelope</dt><dd>{{ message.mail_from }} → {{ message.rcpt_tos | join(", ") }}</dd>
{% for name, value in message.headers %}<dt>{{ name }}</dt><dd>{{ value }}</dd>{% endfor %}
</dl></section>
{% if message.links %}<section><h2>Links</h2><ul class="links">
{% for link in message.links %}
<li><a href="{{ link }}" target="_blank" rel="noopener noreferrer">{{ link }}</a></li>
{% endfor %}
</ul></section>{% endif %}
{% if message.html %}<section><h2>HTML</h2>
<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" src="/messages/{{ message.id }}/html"
        title="HTML part of the message" referrerpolicy="no-referrer"></iframe></section>{% endif %}
{% if message.text %}<section><h2>Text</h2><pre>{{ message.text }}</pre></section>{% endif %}
<p><a href="/messages/{{ message.id }}/raw">Raw message</a></p>
{% endblock %}""",
    "missing.html": """{% extends "base.html" %}
{% block title %}Not found{% endblock %}
{% block content %}<p class="empty">No such message (the inbox keeps only the newest).</p>
{% endblock %}""",
}

_env: Final = jinja2.Environment(
    loader=jinja2.DictLoader(_TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
)


def _text(content: str | bytes, status: int = 200) -> Response:
    # A raw mail holds its reset link: not cached, not sniffed into HTML.
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return Response(content, status, media_type="text/plain; charset=utf-8", headers=headers)


def _page(name: str, status: int = 200, **context: Any) -> Response:
    headers = {
        "Content-Security-Policy": PAGE_CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(_env.get_template(name).render(**context), status, headers=headers)
