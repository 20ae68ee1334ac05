"""`resetrelay send-test-mail`: one branded mail through the configured SMTP, now."""

from __future__ import annotations

from mail.message import build_message
from mail.preview import sample_context
from mail.smtp import SmtpMailer
from resetrelay.courier import new_message_id
from resetrelay.runtime import renderer_for
from resetrelay.settings import Settings


async def send_test_mail(settings: Settings, to: str, template: str, locale: str | None) -> None:
    rendered = renderer_for(settings).render(template, locale, sample_context(template))
    message = build_message(
        rendered, to=to, sender=settings.mail_from, message_id=new_message_id(settings.mail_from)
    )
    async with SmtpMailer(settings.smtp_url.reveal()) as mailer:
        await mailer.send(message, recipients=[to])
