"""What can go wrong on the way out, as the outbox needs to see it.

```
MailError
 ├── TransientMailError     try again later: 4xx replies, timeouts, disconnects,
 │                          refused connections, TLS and login trouble
 └── PermanentMailError     this message will never go through: 5xx replies to
     │                      MAIL, RCPT or DATA, an address the relay cannot carry
     └── RenderError        a template is broken or its context incomplete
```

Library errors (aiosmtplib, OSError, Jinja2) are mapped onto this tree at one
boundary each (`mail.smtp`, `mail.render`) and re-raised `from` the original,
so callers never import the layer below. A failed login or a missing STARTTLS
is transient on purpose: it says nothing about the message, and a reset mail
must survive until an operator fixes the relay ("nothing is lost", docs/routes.md).

Every `reason` is safe to log: it never holds a password, and e-mail addresses
the server echoes back are masked.
"""

from __future__ import annotations

__all__ = ["MailError", "PermanentMailError", "RenderError", "TransientMailError"]


class MailError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # the SMTP reply code, when a server gave one

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, code={self.code!r})"


class TransientMailError(MailError):
    """Delivery failed for now; the same message may well go through later."""


class PermanentMailError(MailError):
    """Delivery of this message will not succeed however often it is tried."""


class RenderError(PermanentMailError):
    """A template could not be compiled or rendered with the context given."""
