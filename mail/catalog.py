"""Message catalogs: which languages we speak, which one a reader gets, and its words.

Catalogs are gettext `.po` files under `mail/locales/<id>/LC_MESSAGES/<domain>.po`:
`messages` for the mails, `requirements` for the password-policy feedback the reset
flow answers with (one domain per reader, so each stays small and easy to review).
They are compiled in memory when first needed (`read_po` + `write_mo`), so the
repository holds no binary `.mo` files, and each compiled catalog is cached.

A requested locale falls back step by step until a catalog exists:
`pt-BR` → `pt_BR` → `pt` → any `pt_*` catalog → the default locale → `en`.
Tags are read leniently (`PT-br`, `de_AT.UTF-8`, `zh-Hant-TW`), because they come
from a website's idea of the user's language, not from a validated header.
`mail/babel.cfg` says how to extract new strings and update the catalogs.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

__all__ = ["LOCALES_DIR", "Catalogs", "candidates", "to_bcp47"]

LOCALES_DIR = Path(__file__).with_name("locales")
SOURCE_LOCALE = "en"  # the language the templates are written in

_SUBTAG = re.compile(r"[A-Za-z0-9]{1,8}")


def candidates(tag: str | None) -> list[str]:
    """Catalog ids to try for one tag, most specific first; [] if it is not a language tag."""
    if not tag:
        return []
    # Drop POSIX decorations ("de_DE.UTF-8@euro") and tolerate either separator.
    parts = re.split(r"[-_]", tag.strip().split(".", 1)[0].split("@", 1)[0])
    if len(tag) > 64 or not all(_SUBTAG.fullmatch(part) for part in parts):
        return []
    language = parts[0].lower()
    if not re.fullmatch(r"[a-z]{2,3}", language):
        return []
    script = next((p.title() for p in parts[1:] if re.fullmatch(r"[A-Za-z]{4}", p)), None)
    region = next((p.upper() for p in parts[1:] if re.fullmatch(r"[A-Za-z]{2}|\d{3}", p)), None)
    ordered = [
        f"{language}_{script}_{region}" if script and region else None,
        f"{language}_{region}" if region else None,
        f"{language}_{script}" if script else None,
        language,
    ]
    return [c for c in ordered if c is not None]


def to_bcp47(locale: str) -> str:
    """`pt_BR` → `pt-BR`, the form `lang` attributes and Content-Language expect."""
    return locale.replace("_", "-")


class Catalogs:
    """The catalogs in one folder, resolved and compiled on demand."""

    def __init__(
        self,
        folder: Path = LOCALES_DIR,
        *,
        default_locale: str = SOURCE_LOCALE,
        domain: str = "messages",
    ) -> None:
        self._folder = folder
        self._domain = domain
        found = (path.parent.parent.name for path in folder.glob(f"*/LC_MESSAGES/{domain}.po"))
        self._ids = {name.lower(): name for name in found}
        self._ids.setdefault(SOURCE_LOCALE, SOURCE_LOCALE)
        self._default_locale = default_locale
        self._compiled: dict[str, NullTranslations] = {}

    @property
    def available(self) -> tuple[str, ...]:
        return tuple(sorted(self._ids.values()))

    def resolve(self, locale: str | None) -> str:
        """The catalog id that serves `locale`, after the fallback chain."""
        for tag in (locale, self._default_locale):
            found = self._lookup(tag)
            if found is not None:
                return found
        return SOURCE_LOCALE

    def translations(self, locale: str) -> NullTranslations:
        """Compiled translations of one catalog id (as returned by `resolve`)."""
        compiled = self._compiled.get(locale)
        if compiled is None:
            compiled = self._compile(locale)
            self._compiled[locale] = compiled
        return compiled

    def text_direction(self, locale: str) -> str:
        try:
            order = Locale.parse(locale).character_order
        except (ValueError, UnknownLocaleError):
            return "ltr"
        return "rtl" if order == "right-to-left" else "ltr"

    def _lookup(self, tag: str | None) -> str | None:
        tried = candidates(tag)
        for candidate in tried:
            found = self._ids.get(candidate.lower())
            if found is not None:
                return found
        if tried:
            # No exact or bare-language catalog: a sibling region beats another language
            # (pt-PT readers are better served by pt_BR than by English).
            prefix = tried[-1] + "_"
            siblings = sorted(key for key in self._ids if key.startswith(prefix))
            if siblings:
                return self._ids[siblings[0]]
        return None

    def _compile(self, locale: str) -> NullTranslations:
        path = self._folder / locale / "LC_MESSAGES" / f"{self._domain}.po"
        if not path.is_file():
            return NullTranslations()  # the source language needs no catalog
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=locale, domain=self._domain)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return Translations(buffer, domain=self._domain)
