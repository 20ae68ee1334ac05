"""The envelope's recipients are the caller's, never read back from a header, and
what relays echo of them in refusals is masked before it becomes a reason.

Real aiosmtpd servers on loopback: `rcpt_tos` is what arrived as `RCPT TO`.
"""

from __future__ import annotations

from email.message import Message
from typing import Any

import pytest

from mail.message import addr_spec, build_message
from mail.render import MailRenderer
from mail.smtp import PermanentMailError, SmtpMailer, TransientMailError
from tests.mail.servers import RefusingRecipients, StartServer

pytestmark = pytest.mark.anyio

LINK = "https://www.example.com/account/reset?ticket=T0k3n&lang=en"
# `To` values that name more than one mailbox, each through a different syntax.
MANY_IN_ONE = [
    "a@x.example, evil@y.example",
    "a@x.example,evil@y.example",
    "Name <evil@y.example>, a@x.example",
    "friends: a@x.example, evil@y.example;",
    '"a@x.example" <evil@y.example>',
]


def message_to(renderer: MailRenderer, to: str) -> Message:
    mail = renderer.render("reset", "en", {"link": LINK, "expires_minutes": 60, "email": to})
    return build_message(
        mail, to=to, sender="Acme <no-reply@acme.example>", message_id="<r1@acme.example>"
    )


@pytest.mark.parametrize("to", MANY_IN_ONE)
async def test_the_envelope_is_the_recipients_given_whatever_the_to_header_says(
    smtp_server: StartServer, renderer: MailRenderer, to: str
) -> None:
    server = smtp_server()
    async with SmtpMailer(server.url()) as mailer:
        await mailer.send(message_to(renderer, to), recipients=["a@x.example"])
    [received] = server.handler.received
    assert received.rcpt_tos == ["a@x.example"]


@pytest.mark.parametrize(
    "recipients",
    [
        *([to] for to in MANY_IN_ONE),
        ["Name <evil@y.example>"],
        ["a@x.example\r\nRCPT TO:<evil@y.example>"],
        ["user@[127.0.0.1]"],
        ["a@x.example", "not an address"],
        [],
    ],
)
async def test_a_recipient_that_is_not_one_address_is_refused_before_any_connection(
    smtp_server: StartServer, renderer: MailRenderer, recipients: list[str]
) -> None:
    server = smtp_server()
    async with SmtpMailer(server.url()) as mailer:
        with pytest.raises(PermanentMailError) as caught:
            await mailer.send(message_to(renderer, "a@x.example"), recipients=recipients)
        assert mailer._idle == []  # no connection was made
    assert "evil" not in caught.value.reason and "127.0.0.1" not in caught.value.reason
    assert server.handler.received == []


async def test_one_string_is_not_a_list_of_recipients(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server()
    async with SmtpMailer(server.url()) as mailer:
        with pytest.raises(TypeError):
            await mailer.send(message_to(renderer, "a@x.example"), recipients="a@x.example")
    assert server.handler.received == []


async def test_an_international_recipient_goes_out_with_smtputf8(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server(enable_SMTPUTF8=True)
    async with SmtpMailer(server.url()) as mailer:
        await mailer.send(
            message_to(renderer, "jöran@example.com"), recipients=["jöran@example.com"]
        )
    [received] = server.handler.received
    assert received.rcpt_tos == ["jöran@example.com"]


# Relays echo the recipient in their refusals; a reason is logged and stored.
@pytest.mark.parametrize(
    ("recipient", "reply", "secrets"),
    [
        (
            "john.smith&evil@x.example",
            "550 5.1.1 <john.smith&evil@x.example>: Recipient address rejected",
            ["john", "smith", "evil"],
        ),
        ("first/last#x@x.example", "550 5.1.1 <first/last#x@x.example> unknown", ["last", "#x"]),
        ("Jane.Doe@x.example", "550 5.1.1 <JANE.DOE@X.EXAMPLE> unknown", ["JANE", "DOE", "Doe"]),
        ("a@x.example", "550 5.7.1 relaying denied for u.ser@[127.0.0.1]", ["ser", "127.0.0"]),
        ("o'brien@x.example", "450 4.2.1 o'brien@x.example: try later", ["brien"]),
    ],
)
async def test_a_refusal_reason_carries_no_part_of_a_local_part(
    smtp_server: StartServer,
    renderer: MailRenderer,
    recipient: str,
    reply: str,
    secrets: list[str],
) -> None:
    server = smtp_server(RefusingRecipients(reply=reply, times=99))
    async with SmtpMailer(server.url()) as mailer:
        with pytest.raises((PermanentMailError, TransientMailError)) as caught:
            await mailer.send(message_to(renderer, recipient), recipients=[addr_spec(recipient)])
    error: Any = caught.value
    assert error.reason.startswith(f"recipient refused: {reply[:3]}")
    for secret in secrets:
        assert secret not in error.reason and secret not in str(error) and secret not in repr(error)
    assert server.handler.received == []
