"""Rendering: templates, languages, branding, HTML hygiene, and the MIME message."""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import re
from datetime import UTC, datetime
from pathlib import Path

import html5lib
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from mail.catalog import LOCALES_DIR, candidates, to_bcp47
from mail.errors import PermanentMailError, RenderError
from mail.message import POLICY, RenderedMail, _build_international, build_message
from mail.preview import sample_context
from mail.render import TEMPLATES_DIR, Brand, MailRenderer

LINK = "https://www.example.com/account/reset?ticket=abc&next=%2Fhome"
CONTEXT = {"link": LINK, "expires_minutes": 60, "email": "jane@example.com"}
LOCALES = ("en", "de", "fr", "es", "pt_BR", "ja")


def links_and_images(html: str) -> tuple[list[str], list[str]]:
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    hrefs = [a.get("href") for a in tree.iter("a")]
    images = [img.get("src") for img in tree.iter("img")]
    return hrefs, images


# -- every template, every language -----------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("template", MailRenderer.TEMPLATES)
def test_every_template_renders_valid_html_and_text(
    renderer: MailRenderer, template: str, locale: str
) -> None:
    mail = renderer.render(template, locale, sample_context(template))

    assert mail.locale == locale
    assert mail.subject
    assert "\n" not in mail.subject
    assert "Acme Travel" in mail.subject
    html5lib.HTMLParser(strict=True).parse(mail.html)  # raises on the first parse error
    assert '<meta name="color-scheme" content="light dark">' in mail.html
    assert '<meta name="supported-color-schemes" content="light dark">' in mail.html
    assert "prefers-color-scheme: dark" in mail.html  # the kept <style> survived inlining
    assert 'class="rr-preheader"' in mail.html
    assert mail.text.endswith("\n")
    assert "Acme Travel" in mail.text
    assert "help@acme.example" in mail.text
    if template == "changed":
        # No reset link in "your password was changed": only the dispute link, once.
        dispute = str(sample_context(template)["dispute_link"])
        assert mail.text.count("https://") == 1 and mail.text.count(dispute) == 1
        hrefs, _ = links_and_images(mail.html)
        assert [h for h in hrefs if h.startswith("https://")] == [dispute]
        assert "rr-button" not in mail.html
    elif template in ("social", "unknown"):  # courtesy mails: only the sign-in link
        signin = sample_context(template)["signin_url"]
        assert [line for line in mail.text.splitlines() if "https://" in line] == [signin]
        hrefs, _ = links_and_images(mail.html)
        assert [h for h in hrefs if not h.startswith("mailto:")] == [signin, signin]
    else:
        link = sample_context(template)["link"]
        assert link in mail.text.splitlines()
        hrefs, _ = links_and_images(mail.html)
        assert hrefs.count(link) == 2  # the button and the raw link under it


def test_the_link_stands_on_its_own_line_and_is_escaped_only_in_html(
    renderer: MailRenderer,
) -> None:
    mail = renderer.render("reset", "en", CONTEXT)
    lines = mail.text.splitlines()
    at = lines.index(LINK)
    assert lines[at - 1] == ""
    assert lines[at + 1] == ""
    assert "&amp;" not in mail.text
    assert 'href="https://www.example.com/account/reset?ticket=abc&amp;next=%2Fhome"' in mail.html


def test_context_values_are_escaped_in_html(renderer: MailRenderer) -> None:
    context = {**CONTEXT, "email": '"><script>alert(1)</script>@example.com'}
    mail = renderer.render("reset", "en", context)
    assert "<script>" not in mail.html
    assert "&lt;script&gt;" in mail.html
    assert "<script>" in mail.text  # plain text is not HTML


def test_brand_colour_name_and_inlined_styles(renderer: MailRenderer) -> None:
    html = renderer.render("reset", "en", CONTEXT).html
    assert re.search(r'<td class="rr-button-cell"[^>]*style="[^"]*background-color: #0a7d5a', html)
    assert re.search(r'<a class="rr-button"[^>]*style="[^"]*color: #ffffff', html)
    assert re.search(r'<span class="rr-brand"[^>]*>Acme Travel</span>', html)
    # Only the dark-mode/responsive block stays a <style>; the rest is inlined.
    assert html.count("<style") == 1
    assert 'data-css-inline="keep"' in html


def test_a_light_brand_colour_gets_dark_button_text() -> None:
    assert Brand("A", "", "#ffd400", "").text_color == "#111111"
    assert Brand("A", "", "#2f5bea", "").text_color == "#ffffff"
    assert Brand("A", "", "#fff", "").text_color == "#111111"


@pytest.mark.parametrize("colour", ["red", "#12345", "#1234567", "url(x)", "#2f5bea;x:y"])
def test_brand_rejects_anything_but_a_hex_colour(colour: str) -> None:
    with pytest.raises(ValueError, match="hex colour"):
        Brand("A", "", colour, "")


def test_no_remote_image_without_a_logo_and_only_the_logo_with_one(brand: Brand) -> None:
    for template in MailRenderer.TEMPLATES:
        html = MailRenderer(brand).render(template, "en", sample_context(template)).html
        hrefs, images = links_and_images(html)
        assert images == []
        assert all(h.startswith(("https://www.example.com/", "mailto:")) for h in hrefs)

    logo = "https://cdn.acme.example/logo.png"
    branded = MailRenderer(Brand("Acme", logo, "#0a7d5a", ""))
    _, images = links_and_images(branded.render("reset", "en", CONTEXT).html)
    assert images == [logo]


def test_without_support_address_the_changed_mail_still_says_whom_to_contact() -> None:
    renderer = MailRenderer(Brand("Acme", "", "#0a7d5a", ""))
    mail = renderer.render("changed", "en", sample_context("changed"))
    assert "If this wasn't you, contact Acme support right away" in mail.text
    assert "mailto:" not in mail.html


@pytest.mark.parametrize(
    ("locale", "subject", "phrase"),
    [
        ("en", "Your Acme Travel password was changed", "If this wasn't you"),
        ("de", "Ihr Passwort für Acme Travel wurde geändert", "Falls Sie das nicht waren"),
        ("fr", "Votre mot de passe Acme Travel a été modifié", "Si ce n'était pas vous"),
        ("es", "Tu contraseña de Acme Travel se ha cambiado", "Si no fuiste tú"),
        ("pt-BR", "A senha da sua conta Acme Travel foi alterada", "Se não foi você"),
        ("ja", "Acme Travel のパスワードが変更されました", "お心当たりがない場合"),
    ],
)
def test_changed_mail_in_each_language_with_a_local_date(
    renderer: MailRenderer, locale: str, subject: str, phrase: str
) -> None:
    context = {"email": "jane@example.com", "changed_at": datetime(2025, 3, 5, 14, 3, tzinfo=UTC)}
    mail = renderer.render("changed", locale, context)
    assert mail.subject == subject
    assert phrase in mail.text
    assert "2025" in mail.text
    assert "UTC" in mail.text.replace("TU", "UTC")


@pytest.mark.parametrize(
    ("locale", "phrase"),
    [
        ("en", "Wasn't you? Secure your account: "),
        ("de", "Das waren nicht Sie? Sichern Sie Ihr Konto: "),
        ("fr", "Ce n'était pas vous ? Sécurisez votre compte : "),
        ("es", "¿No fuiste tú? Protege tu cuenta: "),
        ("pt-BR", "Não foi você? Proteja sua conta: "),
        ("ja", "心当たりがない場合は、こちらからアカウントを保護してください: "),
    ],
)
def test_changed_mail_carries_the_dispute_link_in_each_language(
    renderer: MailRenderer, locale: str, phrase: str
) -> None:
    link = "https://www.example.com/account/dispute?token=abc&x=1"
    context = {**sample_context("changed"), "dispute_link": link}
    mail = renderer.render("changed", locale, context)
    assert phrase + link in mail.text
    hrefs, _ = links_and_images(mail.html)
    assert link in hrefs  # the href, escaped in the HTML source, reads back as the link
    # Without a link (DISPUTE_URL unset) the sentence is left out, not half-written.
    plain = renderer.render("changed", locale, {**context, "dispute_link": ""})
    assert phrase.strip() not in plain.text


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(45, "45 minutes"), (60, "1 hour"), (90, "90 minutes"), (120, "2 hours"), (1440, "1 day")],
)
def test_expiry_reads_naturally(renderer: MailRenderer, minutes: int, expected: str) -> None:
    mail = renderer.render("breached", "en", {**CONTEXT, "expires_minutes": minutes})
    assert f"expires in {expected} " in mail.text


# -- locale fallback --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "used"),
    [
        ("pt-BR", "pt_BR"),
        ("pt_BR", "pt_BR"),
        ("PT-br", "pt_BR"),
        ("pt", "pt_BR"),  # no bare "pt" catalog: the sibling region beats English
        ("pt-PT", "pt_BR"),
        ("de-AT", "de"),
        ("de_DE.UTF-8", "de"),
        ("FR", "fr"),
        ("es-419", "es"),
        ("ja-JP", "ja"),
        ("en-GB", "en"),
        ("nl-NL", "en"),
        ("zh-Hant-TW", "en"),
        ("", "en"),
        (None, "en"),
        ("../../etc/passwd", "en"),
        ("x" * 200, "en"),
    ],
)
def test_locale_fallback_chain(renderer: MailRenderer, asked: str | None, used: str) -> None:
    assert renderer.resolve_locale(asked) == used


def test_default_locale_comes_before_english(brand: Brand) -> None:
    renderer = MailRenderer(brand, default_locale="fr")
    assert renderer.resolve_locale("nl") == "fr"
    assert renderer.resolve_locale(None) == "fr"
    assert renderer.resolve_locale("de-CH") == "de"
    assert MailRenderer(brand, default_locale="xx").resolve_locale("nl") == "en"
    mail = renderer.render("reset", "nl-BE", CONTEXT)
    assert (mail.locale, mail.subject) == ("fr", "Réinitialisez votre mot de passe Acme Travel")


def test_candidates_are_most_specific_first() -> None:
    assert candidates("zh-hant-tw") == ["zh_Hant_TW", "zh_TW", "zh_Hant", "zh"]
    assert candidates("pt-br") == ["pt_BR", "pt"]
    assert candidates("1337") == []


# -- catalogs ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _template_messages() -> set[str]:
    options = {"trimmed": "true", "newstyle_gettext": "true", "extensions": "jinja2.ext.i18n"}
    found = extract_from_dir(
        str(TEMPLATES_DIR),
        method_map=[("**.html", "jinja2"), ("**.txt", "jinja2")],
        options_map={"**": options},
    )
    # No template uses ngettext, so every message is a single string.
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


@pytest.mark.parametrize("locale", LOCALES)
def test_every_catalog_translates_every_template_string(locale: str) -> None:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    wanted = _template_messages()
    present = {m.id: m for m in catalog if m.id}
    assert wanted <= set(present), f"missing in {locale}: {wanted - set(present)}"
    for msgid in wanted:
        entry = present[msgid]
        assert entry.string, msgid
        assert not entry.fuzzy, msgid
        # Same names, so no translation drops the link's context or invents a variable.
        assert set(_PLACEHOLDER.findall(str(entry.string))) == set(_PLACEHOLDER.findall(msgid))


def test_no_compiled_catalogs_in_the_tree() -> None:
    assert list(LOCALES_DIR.rglob("*.mo")) == []


# -- overrides and errors ---------------------------------------------------------------


def test_templates_dir_overrides_one_file(tmp_path: Path, brand: Brand) -> None:
    (tmp_path / "reset.txt").write_text(
        "{% trans %}Reset your password{% endtrans %}, {{ email }}!\n\n{{ link }}\n",
        encoding="utf-8",
    )
    renderer = MailRenderer(brand, templates_dir=str(tmp_path))
    mail = renderer.render("reset", "de", CONTEXT)
    assert mail.text == f"Passwort zurücksetzen, jane@example.com!\n\n{LINK}\n"
    assert "Neues Passwort festlegen" in mail.html  # the HTML is still the built-in one
    assert mail.subject == "Setzen Sie Ihr Passwort für Acme Travel zurück"


@pytest.mark.parametrize("name", ["blocked.html", "layout.html", "_macros.html", "layout.txt"])
def test_a_broken_override_stops_construction(tmp_path: Path, brand: Brand, name: str) -> None:
    (tmp_path / name).write_text("{% if %}", encoding="utf-8")
    with pytest.raises(RenderError, match=re.escape(name)):
        MailRenderer(brand, templates_dir=str(tmp_path))


def test_a_missing_templates_dir_is_refused(tmp_path: Path, brand: Brand) -> None:
    with pytest.raises(RenderError, match="MAIL_TEMPLATES_DIR"):
        MailRenderer(brand, templates_dir=str(tmp_path / "nope"))


def test_render_errors_are_permanent_and_never_echo_the_link(renderer: MailRenderer) -> None:
    with pytest.raises(RenderError, match="'link' is undefined"):
        renderer.render("reset", "en", {"expires_minutes": 60, "email": "a@example.com"})
    with pytest.raises(RenderError, match="not an http") as caught:
        renderer.render("reset", "en", {**CONTEXT, "link": "javascript:alert('T1CKET')"})
    assert "T1CKET" not in str(caught.value)
    with pytest.raises(RenderError, match="expires_minutes"):
        renderer.render("reset", "en", {**CONTEXT, "expires_minutes": "soon"})
    with pytest.raises(RenderError, match="changed_at"):
        renderer.render("changed", "en", {"email": "a@example.com", "changed_at": "today"})
    with pytest.raises(PermanentMailError, match="unknown mail template"):
        renderer.render("welcome", "en", CONTEXT)


# -- the MIME message -------------------------------------------------------------------


def test_build_message_headers_and_parts(renderer: MailRenderer) -> None:
    mail = renderer.render("reset", "pt-BR", CONTEXT)
    message = build_message(
        mail,
        to="Jane <jane@example.com>",
        sender="Acme Travel <no-reply@acme.example>",
        message_id="outbox-42@acme.example",
        reply_to="help@acme.example",
        date=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    raw = bytes(message)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    raw.decode("ascii")  # 7-bit clean: any relay can carry it

    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Message-ID"] == "<outbox-42@acme.example>"
    assert parsed["Date"] == "Thu, 02 Jan 2025 03:04:05 +0000"
    assert parsed["From"] == "Acme Travel <no-reply@acme.example>"
    assert parsed["To"] == "Jane <jane@example.com>"
    assert parsed["Reply-To"] == "help@acme.example"
    assert parsed["Content-Language"] == "pt-BR"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["Subject"] == mail.subject
    assert [part.get_content_type() for part in parsed.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    text, html = (part.get_content() for part in parsed.iter_parts())
    assert text.replace("\r\n", "\n") == mail.text
    assert html.replace("\r\n", "\n") == mail.html


def test_japanese_subject_is_rfc2047_encoded_and_round_trips(renderer: MailRenderer) -> None:
    mail = renderer.render("blocked", "ja", sample_context("blocked"))
    raw = bytes(build_message(mail, to="a@example.com", sender="b@example.com", message_id="<x@y>"))
    assert b"=?utf-8?" in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Acme Travel アカウントがブロックされました"


def _parsed(raw: bytes) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_a_non_ascii_sender_name_is_encoded_and_round_trips(renderer: MailRenderer) -> None:
    mail = renderer.render("reset", "de", CONTEXT)
    sender = "Café Ünïcode <no-reply@acme.example>"
    raw = bytes(build_message(mail, to="jane@example.com", sender=sender, message_id="<a@b>"))
    raw.decode("ascii")
    assert _parsed(raw)["From"] == sender


def test_an_internationalised_recipient_gets_the_general_builder(renderer: MailRenderer) -> None:
    mail = renderer.render("reset", "de", CONTEXT)
    message = build_message(
        mail, to="jöran@example.com", sender="a@acme.example", message_id="<x@y>"
    )
    assert isinstance(message, email.message.EmailMessage)  # sent with SMTPUTF8 if offered
    assert message["To"] == "jöran@example.com"
    assert message["Content-Language"] == "de"


def test_both_builders_make_the_same_message(renderer: MailRenderer) -> None:
    mail = renderer.render("changed", "ja", sample_context("changed"))
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    fast = build_message(
        mail, to="a@example.com", sender="b@example.com", message_id="<m@x>", date=when
    )
    # A list of two recipients is not a single address: the general builder keeps it.
    general = build_message(
        mail,
        to="a@example.com, c@example.com",
        sender="b@example.com",
        message_id="<m@x>",
        date=when,
    )
    assert isinstance(general, email.message.EmailMessage)
    assert not isinstance(fast, email.message.EmailMessage)
    one, two = _parsed(bytes(fast)), _parsed(bytes(general))
    for header in ("Subject", "From", "Date", "Message-ID", "Content-Language", "Auto-Submitted"):
        assert one[header] == two[header], header
    assert [(p.get_content_type(), p.get_content()) for p in one.iter_parts()] == [
        (p.get_content_type(), p.get_content()) for p in two.iter_parts()
    ]


@pytest.mark.parametrize("field", ["to", "sender", "reply_to"])
def test_header_values_with_line_breaks_are_refused(renderer: MailRenderer, field: str) -> None:
    mail = renderer.render("reset", "en", CONTEXT)
    values = {"to": "a@example.com", "sender": "b@example.com", "reply_to": "c@example.com"}
    values[field] = "x@example.com\r\nBcc: victim@example.com"
    with pytest.raises(ValueError, match="line breaks"):
        build_message(
            mail,
            to=values["to"],
            sender=values["sender"],
            reply_to=values["reply_to"],
            message_id="<m@x>",
        )


def test_a_non_ascii_reply_to_name_round_trips_in_a_crlf_message(renderer: MailRenderer) -> None:
    mail = renderer.render("reset", "fr", CONTEXT)
    name = "Café Ünïcode <help@acme.example>"
    message = build_message(
        mail, to="jane@example.com", sender=name, reply_to=name, message_id="<m@x>"
    )
    assert not isinstance(message, email.message.EmailMessage)  # the email.mime builder
    raw = bytes(message)
    raw.decode("ascii")
    assert not re.search(rb"[^\r]\n", raw)  # CRLF line ends throughout, bodies included
    (address,) = _parsed(raw)["Reply-To"].addresses
    assert (address.display_name, address.addr_spec) == ("Café Ünïcode", "help@acme.example")


def test_an_internationalised_recipient_goes_on_the_wire_as_utf8(renderer: MailRenderer) -> None:
    mail = renderer.render("reset", "de", CONTEXT)
    message = build_message(
        mail, to="jöran@example.com", sender="Acme <no-reply@acme.example>", message_id="<m@x>"
    )
    wire = message.as_bytes(policy=POLICY.clone(utf8=True))  # as sent under SMTPUTF8
    assert "To: jöran@example.com\r\n".encode() in wire
    parsed = email.message_from_string(wire.decode(), policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == "jöran@example.com"


@pytest.mark.parametrize("to", ["jane@example.com", "jöran@example.com"])
@pytest.mark.parametrize("subject", ["Reset\nBcc: x@evil.example", "Reset\rnow", "Reset\r\n now"])
def test_a_subject_with_a_line_break_is_refused_by_either_builder(to: str, subject: str) -> None:
    mail = RenderedMail(subject=subject, text="text\n", html="<p>html</p>\n", locale="en")
    with pytest.raises(ValueError, match="line"):
        build_message(mail, to=to, sender="no-reply@acme.example", message_id="<m@x>")


def test_a_message_id_with_a_line_break_is_refused(renderer: MailRenderer) -> None:
    mail = renderer.render("reset", "en", CONTEXT)
    with pytest.raises(ValueError, match="line breaks"):
        build_message(
            mail, to="a@example.com", sender="b@example.com", message_id="<m@x>\r\nBcc: c@d.e"
        )


@pytest.mark.parametrize(("template", "locale"), [("reset", "pt-BR"), ("changed", "ja")])
def test_both_builders_agree_header_for_header_on_the_same_input(
    renderer: MailRenderer, template: str, locale: str
) -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    mail = renderer.render(template, locale, {**CONTEXT, "changed_at": when})
    to, sender = "Jane Doe <jane@example.com>", "Café Ünïcode <no-reply@acme.example>"
    reply_to, message_id = "help@acme.example", "<outbox-1@acme.example>"
    fast = build_message(
        mail, to=to, sender=sender, reply_to=reply_to, message_id=message_id, date=when
    )
    general = _build_international(
        mail, to, sender, message_id, reply_to, email.utils.format_datetime(when)
    )
    one, two = _parsed(bytes(fast)), _parsed(bytes(general))
    assert one["Content-Language"] == two["Content-Language"] == to_bcp47(mail.locale)
    assert sorted(one.keys()) == sorted(two.keys())
    for header in one:
        if header != "Content-Type":  # the boundary is random
            assert one[header] == two[header], header
    assert one.get_content_type() == two.get_content_type() == "multipart/alternative"

    def parts(message: email.message.EmailMessage) -> list[tuple[str, str | None, str]]:
        return [
            (part.get_content_type(), part["Content-Transfer-Encoding"], part.get_content())
            for part in message.iter_parts()
        ]

    assert parts(one) == parts(two)
    assert [content.replace("\r\n", "\n") for *_, content in parts(one)] == [mail.text, mail.html]


# Found by review: the folding of email.mime breaks lines wherever str.splitlines()
# does, not only at CR and LF; a subject with a vertical tab ended the header block.
@pytest.mark.parametrize("brk", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028"])
@pytest.mark.parametrize("to", ["jane@example.com", "jöran@example.com"])
def test_a_subject_with_any_line_break_is_refused_by_either_builder(brk: str, to: str) -> None:
    mail = RenderedMail(subject=f"Reset{brk}now", text="text\n", html="<p>html</p>\n", locale="en")
    with pytest.raises(ValueError, match="line"):
        build_message(mail, to=to, sender="no-reply@acme.example", message_id="<m@x>")


@pytest.mark.parametrize("brk", ["\x0b", "\x0c", "\x1c", "\u2029"])
def test_a_display_name_with_any_line_break_is_refused(brk: str) -> None:
    mail = RenderedMail(subject="Reset", text="text\n", html="<p>html</p>\n", locale="en")
    with pytest.raises(ValueError, match="line"):
        build_message(
            mail,
            to="jane@example.com",
            sender=f"Acme{brk}Travel <a@acme.example>",
            message_id="<m@x>",
        )
