"""aiosmtpd handlers that record, refuse or hang up, for the SMTP tests."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devkit.ports import HOST, free_port

__all__ = ["HOST", "free_port"]


@dataclass
class Received:
    peer: tuple[str, int]
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: str | None

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """aiosmtpd handler: accepts everything and remembers what came on which connection."""

    received: list[Received] = field(default_factory=list)
    noops: int = 0
    noop_reply: str = "250 OK"

    @property
    def connections(self) -> int:
        return len({item.peer for item in self.received})

    async def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:
        self.noops += 1
        return self.noop_reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.received.append(
            Received(
                peer=session.peer,
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=envelope.original_content or envelope.content,
                tls=session.ssl is not None,
                login=login,
            )
        )
        return "250 2.0.0 queued"


@dataclass
class RefusingRecipients(Recorder):
    """Answers RCPT with `reply` for the first `times` recipients, then accepts."""

    reply: str = "451 4.3.0 try again later"
    times: int = 1

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.times > 0:
            self.times -= 1
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"


@dataclass
class DroppingAtMail(Recorder):
    """Hangs up when a connection starts its second transaction, as a relay closing an
    idle session does at the worst moment (before the client noticed)."""

    transactions: dict[tuple[str, int], int] = field(default_factory=dict)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        seen = self.transactions.get(session.peer, 0)
        self.transactions[session.peer] = seen + 1
        if seen >= 1:
            server.transport.close()
            return "421 4.4.2 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


@dataclass
class DroppingAtData(Recorder):
    """Hangs up during DATA once, after the message arrived but before the reply."""

    drops: int = 1

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.drops > 0:
            self.drops -= 1
            server.transport.close()
            return "451 4.3.0 lost"
        return await super().handle_DATA(server, session, envelope)


class Credentials:
    """aiosmtpd authenticator that accepts one user and remembers every attempt."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.attempts: list[tuple[str, str, bool]] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        ok = (login, password) == (self.username, self.password)
        self.attempts.append((mechanism, login, session.ssl is not None))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass
class Server:
    controller: Controller
    handler: Recorder

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def url(self, scheme: str = "smtp", userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}{HOST}:{self.port}"


StartServer = Callable[..., Server]
