"""Turn a template name, a locale and a context into a branded subject, text and HTML.

Each mail is three Jinja2 templates in `mail/templates/`: `<name>_subject.txt`,
`<name>.txt` (a real plain-text part, not stripped HTML) and `<name>.html`, which
extends the one branded `layout.html`. Words come from gettext catalogs
(`mail.catalog`), never from a copy of a template per language. A folder given
as `templates_dir` (MAIL_TEMPLATES_DIR) overrides the built-in files one by one.

Every template is compiled when the renderer is built, so a broken override
stops start-up instead of killing mails one at a time later.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import css_inline
import jinja2
from babel.dates import format_datetime
from babel.lists import format_list
from babel.units import format_unit

from mail.catalog import Catalogs, to_bcp47
from mail.errors import RenderError
from mail.message import RenderedMail

__all__ = ["Brand", "MailRenderer", "RenderedMail"]

TEMPLATES_DIR = Path(__file__).with_name("templates")
_SUFFIXES = ("_subject.txt", ".txt", ".html")  # the three files of one mail
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?")


@dataclass(frozen=True)
class Brand:
    """What makes a mail look like the website's own: BRAND_* and SUPPORT_EMAIL."""

    name: str
    logo_url: str
    color: str
    support_email: str

    def __post_init__(self) -> None:
        # The colour lands inside CSS and the logo inside src=: accept nothing clever.
        if not _HEX_COLOUR.fullmatch(self.color):
            raise ValueError("brand colour must be a hex colour such as #2f5bea")
        if self.logo_url and not self.logo_url.startswith(("https://", "http://")):
            raise ValueError("brand logo URL must be an http(s) URL")

    @property
    def text_color(self) -> str:
        """White or near-black, whichever reads better on the brand colour (WCAG contrast)."""
        digits = self.color[1:]
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
        on_white = 1.05 / (luminance + 0.05)
        on_dark = (luminance + 0.05) / 0.0556  # #111111
        return "#ffffff" if on_white >= on_dark else "#111111"


class MailRenderer:
    """Renders the mails of the reset flow for one brand, in every catalog language: the
    four about a password, and the two courtesy mails (resetrelay.reset.courtesy)."""

    TEMPLATES = ("reset", "changed", "breached", "blocked", "social", "unknown")
    # Context keys whose value becomes a link: each must be an http(s) URL.
    _LINKS = ("link", "signin_url")

    def __init__(
        self, brand: Brand, *, default_locale: str = "en", templates_dir: str | None = None
    ) -> None:
        self.brand = brand
        self._catalogs = Catalogs(default_locale=default_locale)
        search_path = [str(TEMPLATES_DIR)]
        if templates_dir:
            if not Path(templates_dir).is_dir():
                raise RenderError(f"MAIL_TEMPLATES_DIR {templates_dir!r} is not a folder")
            search_path.insert(0, templates_dir)
        # One loader for every language; the user's folder is searched first.
        self._loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(p) for p in search_path])
        self._environments: dict[str, jinja2.Environment] = {}
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False)
        self._compile_all()

    @property
    def locales(self) -> tuple[str, ...]:
        """The catalog ids this renderer can speak."""
        return self._catalogs.available

    def resolve_locale(self, locale: str | None) -> str:
        return self._catalogs.resolve(locale)

    def render(
        self, template: str, locale: str | None, context: Mapping[str, object]
    ) -> RenderedMail:
        if template not in self.TEMPLATES:
            raise RenderError(f"unknown mail template {template!r}")
        for key in self._LINKS:
            link = context.get(key)
            # Never echo the link itself: a reset link carries a live ticket. An empty
            # sign-in URL means "no link" (the templates leave it out).
            if link not in (None, "") and not (
                isinstance(link, str) and link.startswith(("https://", "http://"))
            ):
                raise RenderError(f"the {key} of mail {template!r} is not an http(s) URL")
        used = self.resolve_locale(locale)
        env = self._environment(used)
        variables: dict[str, Any] = {
            **context,
            "brand": self.brand,
            "lang": to_bcp47(used),
            "dir": self._catalogs.text_direction(used),
        }
        # A reset mail's one-time code is optional (MAIL_CODES): absent, the mail
        # simply has no code line, instead of failing on the undefined name.
        variables.setdefault("code", "")
        try:
            subject_text = env.get_template(f"{template}_subject.txt").render(variables)
            variables["subject"] = " ".join(subject_text.split())  # one header line, always
            text = _tidy_text(env.get_template(f"{template}.txt").render(variables))
            html = self._inliner.inline(env.get_template(f"{template}.html").render(variables))
            html = html.rstrip("\n") + "\n"
        except jinja2.TemplateError as exc:
            raise RenderError(f"mail template {template!r} failed: {exc.message}") from exc
        except css_inline.InlineError as exc:
            raise RenderError(f"mail template {template!r} has CSS that cannot be inlined") from exc
        return RenderedMail(subject=variables["subject"], text=text, html=html, locale=used)

    def _environment(self, locale: str) -> jinja2.Environment:
        env = self._environments.get(locale)
        if env is None:
            env = jinja2.Environment(
                loader=self._loader,
                # HTML is escaped; the text part and the subject are not HTML.
                autoescape=jinja2.select_autoescape(("html", "htm", "xml")),
                undefined=jinja2.StrictUndefined,
                extensions=["jinja2.ext.i18n"],
                lstrip_blocks=True,
                auto_reload=False,
            )
            env.policies["ext.i18n.trimmed"] = True
            cast(Any, env).install_gettext_translations(
                self._catalogs.translations(locale), newstyle=True
            )
            env.filters["duration"] = partial(_duration, locale=locale)
            env.filters["datetime"] = partial(_moment, locale=locale)
            env.filters["either"] = partial(_either, locale=locale)
            self._environments[locale] = env
        return env

    def _compile_all(self) -> None:
        # Layouts and macros too: `extends` and `import` resolve only when rendering.
        env = self._environment(self._catalogs.resolve(None))
        names = set(env.list_templates(extensions=("html", "txt")))
        names.update(f"{t}{suffix}" for t in self.TEMPLATES for suffix in _SUFFIXES)
        for name in sorted(names):
            try:
                env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                where = f"{exc.filename or exc.name}, line {exc.lineno}"
                raise RenderError(f"mail template {where}: {exc.message}") from exc
            except jinja2.TemplateError as exc:
                raise RenderError(f"mail template {name}: {exc.message}") from exc


def _duration(minutes: object, *, locale: str) -> str:
    """`60` → "1 hour", `45` → "45 minutes", in the reader's language and plural rules."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        raise RenderError("expires_minutes must be a whole number of minutes, at least 1")
    return _spelled_duration(minutes, locale)


# Babel parses the locale and its unit patterns on every call, a fifth of a reset
# mail's rendering, for an answer that depends on the two arguments only; and a
# fresh ticket's mail nearly always says the same few durations.
@functools.lru_cache(maxsize=4096)
def _spelled_duration(minutes: int, locale: str) -> str:
    if minutes % 1440 == 0:
        return str(format_unit(minutes // 1440, "duration-day", locale=locale))
    if minutes % 60 == 0:
        return str(format_unit(minutes // 60, "duration-hour", locale=locale))
    return str(format_unit(minutes, "duration-minute", locale=locale))


def _moment(value: object, *, locale: str) -> str:
    """A point in time, spelled out in the reader's language, in UTC (we do not know theirs)."""
    if not isinstance(value, datetime):
        raise RenderError("changed_at must be a datetime")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(format_datetime(value, "long", tzinfo=UTC, locale=locale))


def _either(names: object, *, locale: str) -> str:
    """`["Google", "Apple"]` → "Google or Apple", in the reader's language."""
    if isinstance(names, str) or not isinstance(names, list | tuple) or not names:
        raise RenderError("providers must be a non-empty list of names")
    return str(format_list([str(n) for n in names], style="or", locale=locale))


def _tidy_text(text: str) -> str:
    # Template tags leave blank lines behind: keep at most one between paragraphs.
    lines = [line if line == "-- " else line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"
