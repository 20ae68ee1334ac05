"""Preview helpers: sample data and the .eml/.html files `resetrelay preview` writes."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import html5lib
import pytest

from mail.preview import SAMPLE_LINK, SAMPLE_SIGNIN_URL, sample_context, write_previews
from mail.render import MailRenderer


@pytest.mark.parametrize("template", MailRenderer.TEMPLATES)
def test_sample_context_renders_every_template(renderer: MailRenderer, template: str) -> None:
    context = sample_context(template)
    mail = renderer.render(template, "en", context)
    if template == "changed":
        assert "link" not in context
    elif template in ("social", "unknown"):  # courtesy mails: a sign-in link, never a ticket
        assert "link" not in context and "ticket" not in mail.text + mail.html
        assert context["signin_url"] == SAMPLE_SIGNIN_URL
        assert SAMPLE_SIGNIN_URL in mail.text.splitlines()
    else:
        assert context["link"] == SAMPLE_LINK
        assert SAMPLE_LINK in mail.text.splitlines()


def test_sample_context_refuses_unknown_templates() -> None:
    with pytest.raises(ValueError, match="welcome"):
        sample_context("welcome")


def test_write_previews_writes_every_template_and_locale(
    renderer: MailRenderer, tmp_path: Path
) -> None:
    written = write_previews(renderer, tmp_path / "previews")

    expected = {
        f"{template}.{locale}.{kind}"
        for template in renderer.TEMPLATES
        for locale in ("en", "de", "fr", "es", "pt_BR", "ja")
        for kind in ("eml", "html")
    }
    assert {path.name for path in written} == expected
    assert {path.name for path in (tmp_path / "previews").iterdir()} == expected

    eml = (tmp_path / "previews" / "reset.ja.eml").read_bytes()
    message = email.message_from_bytes(eml, policy=email.policy.default)
    assert message["Content-Language"] == "ja"
    assert message["Subject"] == "Acme Travel のパスワードの再設定"
    assert message["From"] == "Acme Travel <no-reply@example.com>"
    text, html = (part.get_content() for part in message.iter_parts())
    assert SAMPLE_LINK in text.splitlines()

    page = (tmp_path / "previews" / "reset.ja.html").read_text(encoding="utf-8")
    assert page == html.replace("\r\n", "\n")
    html5lib.HTMLParser(strict=True).parse(page)


def test_write_previews_for_chosen_locales_names_files_by_the_catalog_used(
    renderer: MailRenderer, tmp_path: Path
) -> None:
    written = write_previews(renderer, tmp_path, ["pt-BR", "nl"])
    names = sorted(path.name for path in written)
    assert "reset.pt_BR.eml" in names
    assert "blocked.en.html" in names  # "nl" has no catalog and falls back to English
    assert len(names) == 2 * 2 * len(renderer.TEMPLATES)


def test_previews_are_reproducible(renderer: MailRenderer, tmp_path: Path) -> None:
    first = write_previews(renderer, tmp_path / "a", ["de"])
    second = write_previews(renderer, tmp_path / "b", ["de"])
    for one, two in zip(first, second, strict=True):
        if one.suffix == ".html":
            assert one.read_bytes() == two.read_bytes()
        else:  # only the MIME boundary is random
            strip = [line for line in one.read_bytes().splitlines() if b"==" not in line]
            again = [line for line in two.read_bytes().splitlines() if b"==" not in line]
            assert strip == again
