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
the server echoes back are masked (`scrub_addresses`, `mask_address`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "MailError",
    "PermanentMailError",
    "RenderError",
    "TransientMailError",
    "mask_address",
    "scrub_addresses",
]


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


# -- addresses in what we log --------------------------------------------------------

# A plain domain: dot-separated labels of letters, digits and inner hyphens (IDN
# labels in Unicode too), at least two of them. Anything else after the last `@`
# (a domain literal, a list, a display name's `>`, a comment) is not shown.
_LABEL = r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?"
_PLAIN_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


def mask_address(address: str) -> str:
    """What a log line may carry of an address: `jane.doe@example.com` -> `j***@example.com`.

    Of the local part at most its first character, and only when that is a letter or
    a digit; the domain only when it is a plain domain (`user@[127.0.0.1]` ->
    `u***@***`). Whatever the input, nothing else of it comes out."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    first = local[:1] if local[:1].isalnum() else ""
    if len(domain) > 253 or not _PLAIN_DOMAIN.fullmatch(domain):
        domain = "***"
    return f"{first}***@{domain}"


# A run of characters that may belong to an address: no whitespace and none of the
# brackets and separators that surround addresses in SMTP replies, but a quoted
# string (a quoted local part may hold spaces), a comment inside the run and a
# bracketed domain literal after an `@` are taken whole, and a stray quote does not
# end the run. Linear: each of those ends at its first closing character.
_PART = r'[^\s<>()\[\],;:"@]|"[^"]*"|"|@\[[^\]]*\]|@'
_ADDRESSISH = re.compile(rf"(?:{_PART})(?:{_PART}|\([^()]*\))*")


def scrub_addresses(text: str, known: Iterable[str] = ()) -> str:
    """`text` (an SMTP reply, an error message) with every address in it masked.

    The `known` addresses (the recipients of the message at hand, which relays echo
    in their refusals) are replaced wherever they occur, in any case; then any run of
    address characters that holds an `@` is masked as a whole, so a local part with
    `&`, `/`, `#` or quotes in it does not leave its first part behind."""
    for address in sorted({a for a in known if a}, key=len, reverse=True):
        text = _replace_all(text, address, mask_address(address))
    if "@" not in text:
        return text
    return _ADDRESSISH.sub(
        lambda m: mask_address(m.group()) if "@" in m.group() else m.group(), text
    )


def _replace_all(text: str, old: str, new: str) -> str:
    """Every occurrence of `old` in `text`, in any letter case, replaced by `new`."""
    return re.compile(re.escape(old), re.IGNORECASE).sub(lambda _: new, text)
