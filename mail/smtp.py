"""Delivery over SMTP through a small pool of reused connections (aiosmtplib).

`SMTP_URL` (docs/settings.md) names the relay and how to talk to it:

    smtp://user:pass@host:587        STARTTLS when the server offers it (port 25 if omitted)
    smtp+starttls://user:pass@host   STARTTLS required, plaintext refused (port 587)
    smtps://user:pass@host           TLS from the first byte (port 465)

User and password are percent-decoded, so `p%40ss` is `p@ss`. Prefer
`smtp+starttls://` or `smtps://` in production: with plain `smtp://` a
man-in-the-middle can hide the STARTTLS offer and read the login.

Connections are kept open and reused: an idle one is taken, checked with NOOP
only when it has been idle for a while, and replaced when found dead. Every
aiosmtplib and socket error is mapped to `TransientMailError` or
`PermanentMailError` in one place (`_mail_error`); see `mail.errors`.

The envelope's recipients are always the caller's (`send(..., recipients=[...])`),
each exactly one addr-spec: an address list, a group or a display name in a `To`
header can never become extra `RCPT TO`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from enum import StrEnum
from types import TracebackType
from urllib.parse import unquote, urlsplit

import aiosmtplib

from mail.errors import MailError, PermanentMailError, TransientMailError, scrub_addresses
from mail.message import addr_spec

__all__ = [
    "MailError",
    "PermanentMailError",
    "SmtpMailer",
    "SmtpTarget",
    "TlsMode",
    "TransientMailError",
    "parse_smtp_url",
]


class TlsMode(StrEnum):
    OPPORTUNISTIC = "starttls-if-offered"  # smtp://
    STARTTLS = "starttls"  # smtp+starttls://
    IMPLICIT = "tls"  # smtps://


_SCHEMES = {
    "smtp": (TlsMode.OPPORTUNISTIC, 25),
    "smtp+starttls": (TlsMode.STARTTLS, 587),
    "smtps": (TlsMode.IMPLICIT, 465),
}


@dataclass(frozen=True)
class SmtpTarget:
    """A parsed SMTP_URL. The password never shows in `repr`."""

    host: str
    port: int
    tls: TlsMode
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpTarget:
    """Read an SMTP_URL; errors name what is wrong but never echo the URL (it holds a password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL is not a valid URL (check the host and port)") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("SMTP_URL must not carry a path, query or fragment")
    tls, default_port = _SCHEMES[scheme]
    return SmtpTarget(
        host=parts.hostname,
        port=port or default_port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


@dataclass
class _Connection:
    client: aiosmtplib.SMTP
    last_used: float
    reused: bool = False


class SmtpMailer:
    """Sends messages through one relay, over at most `pool_size` connections."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        idle_check_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._target = parse_smtp_url(url)
        self._timeout = timeout
        self._tls_context = tls_context  # None: the system's trust store, hostname checked
        self._local_hostname = local_hostname
        self._idle_check_after = idle_check_after
        self._clock = clock
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[_Connection] = []
        self._closed = False

    def __repr__(self) -> str:
        t = self._target
        return f"SmtpMailer(host={t.host!r}, port={t.port}, tls={t.tls.value!r})"

    async def __aenter__(self) -> SmtpMailer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def send(
        self,
        message: Message,
        *,
        recipients: Sequence[str] | None = None,
        start_within: float | None = None,
    ) -> None:
        """Deliver one message; raises `TransientMailError` or `PermanentMailError`.

        `recipients`: the envelope's `RCPT TO`s, each exactly one addr-spec (else
        `PermanentMailError`, before anything is sent); the message's headers are
        then not read for recipients. Pass them always: None, which takes them from
        the `To`/`Cc`/`Bcc` headers, is left only for the operator's test mail.
        `start_within`: give up, with `TransientMailError`, if no connection is free
        within that many seconds (a caller holding a lease must not start a send
        that could outlive it)."""
        if self._closed:
            raise RuntimeError("this SmtpMailer has been closed")
        envelope: list[str] | None = None
        if recipients is not None:
            if isinstance(recipients, str):  # a str is a Sequence[str] of its letters
                raise TypeError("recipients is a list of addresses, not one string")
            try:
                envelope = [addr_spec(address) for address in recipients]
            except ValueError:
                raise PermanentMailError("a recipient is not exactly one address") from None
            if not envelope:
                raise PermanentMailError("no recipient")
        try:
            async with asyncio.timeout(start_within):
                await self._slots.acquire()
        except TimeoutError:
            raise TransientMailError("no SMTP connection free in time; not sent") from None
        try:
            await self._send(message, envelope)
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            raise _mail_error(exc, self._target, envelope or ()) from exc
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Say QUIT on every idle connection; connections still sending close when done."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await connection.client.quit()
            connection.client.close()

    async def _send(self, message: Message, recipients: list[str] | None) -> None:
        connection = await self._checkout()
        try:
            try:
                await connection.client.send_message(message, recipients=recipients)
            except aiosmtplib.SMTPServerDisconnected:
                if not connection.reused:
                    raise
                # The relay hung up on a pooled connection before we noticed. One fresh
                # attempt carries no more risk of a duplicate than the outbox's own retry.
                connection.client.close()
                connection = await self._connect()
                await connection.client.send_message(message, recipients=recipients)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            self._checkin(connection)  # a refusal; aiosmtplib sent RSET, the session is fine
            raise
        except BaseException:
            connection.client.close()  # cancelled or broken mid-command: state unknown
            raise
        self._checkin(connection)

    async def _checkout(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()  # most recently used first: most likely alive
            if await self._usable(connection):
                return connection
        return await self._connect()

    async def _usable(self, connection: _Connection) -> bool:
        client = connection.client
        if not client.is_connected:
            return False
        if self._clock() - connection.last_used < self._idle_check_after:
            return True
        try:
            await client.noop()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
            return False
        return True

    async def _connect(self) -> _Connection:
        target = self._target
        client = smtp_client(
            target,
            tls_context=self._tls_context,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )
        await client.connect()
        return _Connection(client, last_used=self._clock())

    def _checkin(self, connection: _Connection) -> None:
        if self._closed or not connection.client.is_connected:
            connection.client.close()
            return
        connection.last_used = self._clock()
        connection.reused = True
        self._idle.append(connection)


# Replies to the session itself (greeting, EHLO, AUTH) say nothing about the message.
_SESSION_REPLIES = (
    aiosmtplib.SMTPConnectResponseError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPAuthenticationError,
)


def _mail_error(exc: Exception, target: SmtpTarget, recipients: Sequence[str]) -> MailError:
    """The one place where aiosmtplib and socket errors become ours."""

    def _safe(reason: str) -> str:
        # Reasons end up in logs, `last_error` and events: no password, no address
        # (relays echo the recipient in their refusals, whatever its shape).
        if target.password:
            reason = reason.replace(target.password, "***")
        return scrub_addresses(" ".join(reason.split()), recipients)

    def _by_code(code: int, reason: str) -> MailError:
        if 500 <= code <= 599:
            return PermanentMailError(_safe(reason), code=code)
        return TransientMailError(_safe(reason), code=code)  # 4xx, and anything odd

    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return _by_code(first.code, f"recipient refused: {first.code} {first.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if isinstance(exc, _SESSION_REPLIES):
            reason = f"relay refused the session: {exc.code} {exc.message}"
            return TransientMailError(_safe(reason), code=exc.code)
        stage = {
            aiosmtplib.SMTPSenderRefused: "sender refused",
            aiosmtplib.SMTPRecipientRefused: "recipient refused",
            aiosmtplib.SMTPDataError: "message refused",
        }.get(type(exc), "relay refused")
        return _by_code(exc.code, f"{stage}: {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # e.g. a non-ASCII address and no SMTPUTF8: this relay will never take it.
        return PermanentMailError(_safe(f"relay cannot carry this message: {exc}"))
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        kind = "timed out" if isinstance(exc, TimeoutError) else "connection failed"
        return TransientMailError(_safe(f"SMTP {kind}: {exc}"))
    return PermanentMailError(_safe(f"message cannot be sent: {exc}"))


def smtp_client(
    target: SmtpTarget,
    *,
    tls_context: ssl.SSLContext | None,
    timeout: float,
    local_hostname: str | None = None,
) -> aiosmtplib.SMTP:
    """An unconnected client for `target`, with TLS and login as its URL says."""
    return aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        username=target.username,
        password=target.password,
        use_tls=target.tls is TlsMode.IMPLICIT,
        # None = upgrade if offered, True = insist, False = already TLS.
        start_tls={
            TlsMode.OPPORTUNISTIC: None,
            TlsMode.STARTTLS: True,
            TlsMode.IMPLICIT: False,
        }[target.tls],
        tls_context=tls_context,
        timeout=timeout,
        local_hostname=local_hostname,
    )
