"""Sample mails for people, not for users: `resetrelay preview` and the DEV_MODE pages.

`write_previews` renders every template in every language asked for and writes
each twice: `<template>.<locale>.eml` (the whole message, to open in a mail
client) and `<template>.<locale>.html` (the HTML part, to open in a browser).
Nothing here touches the network or a real ticket.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from mail.message import build_message
from mail.render import MailRenderer

__all__ = ["SAMPLE_CODE", "SAMPLE_LINK", "SAMPLE_SIGNIN_URL", "sample_context", "write_previews"]

SAMPLE_LINK = "https://www.example.com/account/reset?ticket=SAMPLE"
SAMPLE_CODE = "K7QM-3XPA"  # a code of the mails' alphabet (reset.codes), shown as they show it
SAMPLE_SIGNIN_URL = "https://www.example.com/signin"
SAMPLE_DISPUTE_LINK = "https://www.example.com/account/dispute?token=SAMPLE"
SAMPLE_EMAIL = "jane.doe@example.com"
_SAMPLE_MOMENT = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


def sample_context(template: str) -> dict[str, object]:
    """Realistic context for one template, as the outbox would pass it."""
    if template == "changed":
        return {
            "email": SAMPLE_EMAIL,
            "changed_at": _SAMPLE_MOMENT,
            "dispute_link": SAMPLE_DISPUTE_LINK,
        }
    if template in ("reset", "breached", "blocked"):
        return {
            "link": SAMPLE_LINK,
            "code": SAMPLE_CODE,
            "expires_minutes": 60,
            "email": SAMPLE_EMAIL,
        }
    # The courtesy mails: no ticket, no reset link; a sign-in link when SIGNIN_URL is set.
    if template == "social":
        return {"email": SAMPLE_EMAIL, "providers": ["Google"], "signin_url": SAMPLE_SIGNIN_URL}
    if template == "unknown":
        return {"email": SAMPLE_EMAIL, "signin_url": SAMPLE_SIGNIN_URL}
    raise ValueError(f"no sample context for mail template {template!r}")


def write_previews(
    renderer: MailRenderer,
    folder: str | Path,
    locales: Iterable[str] | None = None,
    *,
    sender: str = "no-reply@example.com",
) -> list[Path]:
    """Write every template in every locale as .eml and .html; returns the files written.

    `locales` defaults to every catalog the renderer has. A locale without a
    catalog is written under the name of the catalog it falls back to.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for locale in renderer.locales if locales is None else tuple(locales):
        for template in renderer.TEMPLATES:
            mail = renderer.render(template, locale, sample_context(template))
            stem = f"{template}.{mail.locale}"
            message = build_message(
                mail,
                to=f"Jane Doe <{SAMPLE_EMAIL}>",
                sender=f"{renderer.brand.name} <{sender}>",
                message_id=f"<preview.{stem}@resetrelay.invalid>",
                date=_SAMPLE_MOMENT,
            )
            eml = target / f"{stem}.eml"
            eml.write_bytes(bytes(message))
            html = target / f"{stem}.html"
            html.write_text(mail.html, encoding="utf-8")
            written += [eml, html]
    return written
