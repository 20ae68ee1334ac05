"""A rendered mail as an RFC 5322 message, ready for any transport.

multipart/alternative with the plain text first and HTML second (clients show the
last part they understand). Both parts are quoted-printable: 7-bit safe for any
relay, readable in a raw dump, and the inlined HTML never breaks the 998-octet
line limit. The headers mark the mail as machine-made so that auto-responders
(RFC 3834 `Auto-Submitted`, Exchange's `X-Auto-Response-Suppress`) stay quiet.
"""

from __future__ import annotations

import email.policy
import email.utils
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from mail.catalog import to_bcp47

if TYPE_CHECKING:
    from mail.render import RenderedMail

__all__ = ["build_message"]


def build_message(
    mail: RenderedMail,
    *,
    to: str,
    sender: str,
    message_id: str,
    reply_to: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """Wrap `mail` for one recipient.

    `message_id` should stay the same across retries of one outbox entry, so a
    receiving system that saw the first attempt can recognise the second.
    `date` defaults to now; pass it to make the output reproducible.
    """
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = mail.subject  # the policy encodes non-ASCII per RFC 2047
    message["From"] = sender
    message["To"] = to
    if reply_to:
        message["Reply-To"] = reply_to
    message["Date"] = email.utils.format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = message_id if message_id.startswith("<") else f"<{message_id}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(mail.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(mail.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # Last: set_content() and add_alternative() move or drop earlier Content-* headers.
    message["Content-Language"] = to_bcp47(mail.locale)
    return message
