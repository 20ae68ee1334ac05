"""`resetrelay send-test-mail`: any mail, the courtesy mails included, through real SMTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mail.preview import SAMPLE_SIGNIN_URL
from resetrelay.settings import Settings
from resetrelay.testmail import send_test_mail
from tests.mail.servers import StartServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("template", "words"), [("social", "Google"), ("unknown", "Acme")])
async def test_a_courtesy_mail_goes_out_as_a_test(
    smtp_server: StartServer, settings_for: Callable[..., Settings], template: str, words: str
) -> None:
    server = smtp_server()
    settings = settings_for(SMTP_URL=server.url())
    await send_test_mail(settings, "ops@acme-travel.net", template, "de")
    (received,) = server.handler.received
    message = received.message()
    assert message["To"] == "ops@acme-travel.net" and message["Content-Language"] == "de"
    text = message.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert words in content and SAMPLE_SIGNIN_URL in content and "ticket" not in content
