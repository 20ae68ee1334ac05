"""Outbound mail: render branded, translated mails and deliver them over SMTP.

- `mail.render`  — `MailRenderer`, `Brand`, `RenderedMail` (templates + gettext catalogs)
- `mail.message` — `build_message`: a rendered mail as a multipart/alternative message
- `mail.smtp`    — `SmtpMailer`, `parse_smtp_url`: a pooled aiosmtplib client
- `mail.errors`  — the exception tree every caller handles
- `mail.preview` — sample data and preview files for people
"""
