"""A rendered mail as an RFC 5322 message, ready for any transport.

multipart/alternative with the plain text first and HTML second (clients show the
last part they understand). Both parts are quoted-printable: 7-bit safe for any
relay, readable in a raw dump, and the inlined HTML never breaks the 998-octet
line limit. The headers mark the mail as machine-made so that auto-responders
(RFC 3834 `Auto-Submitted`, Exchange's `X-Auto-Response-Suppress`) stay quiet.

Two builders, one result. When every address is plain ASCII (nearly always),
the message is made with the `email.mime` classes: their headers are strings,
RFC 2047-encoded by `email.header.Header` and `email.utils.formataddr` where
they carry other text. Parsing every header into objects and refolding them
when the message is flattened, as `email.message.EmailMessage` does, was a
third of the outbox's whole cost per mail (bench/outbox.py). A message with
an internationalised address (RFC 6531) needs that machinery, so it gets an
`EmailMessage` under `email.policy.SMTP`, which aiosmtplib sends with
SMTPUTF8 where the relay offers it.
"""

from __future__ import annotations

import binascii
import email.policy
import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    DOMAIN_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    LOCAL_PART_MAX_LENGTH,
)

from mail.catalog import to_bcp47

__all__ = ["POLICY", "RenderedMail", "addr_spec", "build_message"]


# The common address, settled without email-validator: lower-case ASCII, a dot-atom
# local part of letters, digits and `_+-`, and a host name whose labels are letters,
# digits and inner hyphens under a top-level domain of letters. Every string this
# matches (with the checks in `_plain`) is one email-validator accepts with the
# options below, unchanged (tests/mail/test_message.py compares the two on
# generated addresses); anything else, or anything unsure, takes the full check.
# It answers only "accepted", never "refused", so it cannot make the rule stricter
# or looser, only cheaper: this check runs at the door on every reset request.
_PLAIN = re.compile(
    r"(?P<local>[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,63}))"
)


def full_check(value: str) -> None:
    """email-validator's check, every option spelled out (none left to its module-level
    defaults), without DNS; raises EmailNotValidError. tests/mail/test_message.py
    compares `_plain` against it."""
    validate_email(
        value,
        allow_smtputf8=True,
        allow_empty_local=False,
        allow_quoted_local=False,
        allow_domain_literal=False,
        allow_display_name=False,
        strict=False,
        check_deliverability=False,
        test_environment=False,
        globally_deliverable=True,
    )


def _plain(value: str) -> bool:
    match = _PLAIN.fullmatch(value)
    if match is None:
        return False
    domain = match["domain"]
    return (
        len(value) <= EMAIL_MAX_LENGTH
        and len(match["local"]) <= LOCAL_PART_MAX_LENGTH
        and len(domain) <= DOMAIN_MAX_LENGTH
        # "xn--" (Punycode) and "ab--" (reserved) labels need IDNA's rules: the full check.
        and "--" not in domain
        and not _special_use(domain)
    )


# The special-use names email-validator refuses (`.test`, `localhost`, ...), as its
# list stands when this module loads.
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _special_use(domain: str) -> bool:
    """`domain` is one of those names or under one: each of its suffixes at a dot is
    looked up (a set lookup each, where a scan of the list cost a test per name)."""
    while domain not in _SPECIAL_USE:
        dot = domain.find(".")
        if dot < 0:
            return False
        domain = domain[dot + 1 :]
    return True


def addr_spec(value: str) -> str:
    """`value` itself when it is exactly one mailbox address a relay can deliver to,
    else `ValueError` (which names no part of `value`).

    One addr-spec (RFC 5322 3.4.1), internationalised ones included (RFC 6531,
    sent with SMTPUTF8): no display name, no list, no group, no comment, no quoted
    local part, no domain literal, no whitespace or control character, a domain
    with a dot that is not a special-use name (`.test`, `.invalid`, `localhost`).
    Checked by `email-validator`, with every option spelled out here rather than
    taken from its module-level defaults, and without DNS; the plainest addresses
    are recognised first by a pattern that accepts only what it would (`_plain`)."""
    if _plain(value):
        return value
    try:
        full_check(value)
    except EmailNotValidError:
        raise ValueError("not exactly one e-mail address") from None
    return value


@dataclass(frozen=True)
class RenderedMail:
    """A mail as the renderer made it: subject, text and HTML in one language."""

    subject: str
    text: str
    html: str
    locale: str  # the catalog actually used, after fallback ("pt_BR")


class _CachingHeaderRegistry(HeaderRegistry):
    """The standard registry, minus a cost: `HeaderRegistry.__getitem__` builds a new
    header class with `type()` on every lookup (CPython 3.11-3.13), about a third of
    the time it takes to build one of our messages. The class depends only on the
    header's name, so one per name is made and kept."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


# RFC 5322 with CRLF line ends, as email.policy.SMTP, with the registry above.
POLICY = email.policy.SMTP.clone(header_factory=_CachingHeaderRegistry())
# The same line ends for the email.mime builder, so bytes(message) is wire format.
_MIME_POLICY = email.policy.compat32.clone(linesep="\r\n")


def build_message(
    mail: RenderedMail,
    *,
    to: str,
    sender: str,
    message_id: str,
    reply_to: str | None = None,
    date: datetime | None = None,
) -> Message:
    """Wrap `mail` for one recipient.

    `message_id` should stay the same across retries of one outbox entry, so a
    receiving system that saw the first attempt can recognise the second.
    `date` defaults to now; pass it to make the output reproducible.
    """
    message_id = message_id if message_id.startswith("<") else f"<{message_id}>"
    when = email.utils.format_datetime(date or datetime.now(UTC))
    to_header, from_header = _ascii_address(to), _ascii_address(sender)
    reply_header = _ascii_address(reply_to) if reply_to else ""
    if to_header is None or from_header is None or reply_header is None:
        return _build_international(mail, to, sender, message_id, reply_to, when)
    if not message_id.isascii():
        raise ValueError("a Message-ID is ASCII")
    for value in (mail.subject, message_id):
        _one_line(value)
    message = MIMEMultipart("alternative", policy=_MIME_POLICY)
    if mail.subject.isascii():
        message["Subject"] = mail.subject
    else:
        # typeshed types compat32 header values as str; a Header is what the email
        # package documents for text that needs RFC 2047 encoding.
        message["Subject"] = Header(mail.subject, "utf-8")  # type: ignore[assignment]
    _envelope_headers(message, from_header, to_header, reply_header, when, message_id)
    message["Content-Language"] = to_bcp47(mail.locale)
    message.attach(_text_part(mail.text, "plain"))
    message.attach(_text_part(mail.html, "html"))
    return message


def _text_part(text: str, subtype: str) -> Message:
    # What MIMEText does, with UTF-8 in quoted-printable rather than its base64. The
    # encoding is binascii's (C), not the email package's quoprimime (Python), which
    # cost three times as much for a reset mail's inlined HTML; both write RFC 2045
    # quoted-printable, and tests/mail/test_message.py decodes what this writes.
    part = MIMENonMultipart("text", subtype, policy=_MIME_POLICY, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part


# Every character at which str.splitlines() breaks a line, as the header folding
# of email.mime does: CR and LF, and also VT, FF, the file/group/record separators,
# NEL and the Unicode line and paragraph separators.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _one_line(value: str) -> None:
    # The string builder does not police line breaks as EmailMessage does; a header
    # value with one would end the header block early (header injection), and the
    # headers after it (From, To, Message-ID) would be read as the body.
    if not _LINE_BREAKS.isdisjoint(value):
        raise ValueError("header values may not contain line breaks")


def _ascii_address(value: str) -> str | None:
    """`value` as a header-ready address with its display name RFC 2047-encoded, or
    None when the address itself is not plain ASCII (or not an address at all)."""
    _one_line(value)
    parsed = email.utils.getaddresses([value])
    if len(parsed) != 1:
        return None  # none, or a list: the general builder keeps what it was given
    name, address = parsed[0]
    if not address or "@" not in address or not address.isascii():
        return None
    return email.utils.formataddr((name, address), charset="utf-8")


def _build_international(
    mail: RenderedMail, to: str, sender: str, message_id: str, reply_to: str | None, when: str
) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["Subject"] = mail.subject  # the policy encodes non-ASCII per RFC 2047
    _envelope_headers(message, sender, to, reply_to, when, message_id)
    message.set_content(mail.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(mail.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # Last: set_content() and add_alternative() move or drop earlier Content-* headers.
    message["Content-Language"] = to_bcp47(mail.locale)
    return message


def _envelope_headers(
    message: Message, sender: str, to: str, reply_to: str | None, when: str, message_id: str
) -> None:
    """The headers both builders write, in one order: who, when, which message, and
    the marks of a machine-made mail."""
    message["From"] = sender
    message["To"] = to
    if reply_to:
        message["Reply-To"] = reply_to
    message["Date"] = when
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
