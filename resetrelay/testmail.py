"""`resetrelay send-test-mail`: one branded mail through the configured SMTP, now."""

from __future__ import annotations

from mail.message import build_message
from mail.preview import sample_context
from mail.render import Brand, MailRenderer
from mail.smtp import SmtpMailer
from resetrelay.cleanup import new_message_id
from resetrelay.settings import Settings


async def send_test_mail(settings: Settings, to: str, template: str, locale: str | None) -> None:
    renderer = MailRenderer(
        Brand(
            settings.brand_name,
            settings.brand_logo_url,
            settings.brand_color,
            settings.support_email,
        ),
        default_locale=settings.default_locale,
        templates_dir=settings.mail_templates_dir or None,
    )
    rendered = renderer.render(template, locale, sample_context(template))
    message = build_message(
        rendered, to=to, sender=settings.mail_from, message_id=new_message_id(settings)
    )
    async with SmtpMailer(settings.smtp_url.reveal()) as mailer:
        await mailer.send(message)
