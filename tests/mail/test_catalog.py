"""mail.catalog: lenient tag parsing, the fallback chain over the shipped catalogs,
compiled translations and text direction."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.support import NullTranslations, Translations

from mail.catalog import Catalogs, candidates, to_bcp47


@pytest.mark.parametrize(
    ("locale", "tag"), [("pt_BR", "pt-BR"), ("de", "de"), ("zh_Hant_TW", "zh-Hant-TW")]
)
def test_to_bcp47(locale: str, tag: str) -> None:
    assert to_bcp47(locale) == tag


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("PT-br", ["pt_BR", "pt"]),
        ("de_AT.UTF-8@euro", ["de_AT", "de"]),
        ("zh-Hant-TW", ["zh_Hant_TW", "zh_TW", "zh_Hant", "zh"]),
        ("es-419", ["es_419", "es"]),
        (" fr ", ["fr"]),
        (None, []),
        ("", []),
        ("english", []),
        ("de-DE;q=0.9", []),
        ("de" + "-AT" * 21, []),  # over 64 characters
    ],
)
def test_candidates(tag: str | None, expected: list[str]) -> None:
    assert candidates(tag) == expected


@pytest.fixture(scope="module")
def catalogs() -> Catalogs:
    return Catalogs()


def test_the_shipped_catalogs(catalogs: Catalogs) -> None:
    assert catalogs.available == ("de", "en", "es", "fr", "ja", "pt_BR")


@pytest.mark.parametrize(
    ("requested", "served"),
    [
        ("pt-BR", "pt_BR"),
        ("pt-PT", "pt_BR"),  # a sibling region beats another language
        ("pt", "pt_BR"),
        ("de-CH", "de"),
        ("FR_fr.UTF-8", "fr"),
        ("nl", "en"),
        ("not a tag", "en"),
        (None, "en"),
    ],
)
def test_resolve_falls_back(catalogs: Catalogs, requested: str | None, served: str) -> None:
    assert catalogs.resolve(requested) == served


def test_the_default_locale_comes_before_english() -> None:
    german = Catalogs(default_locale="de-AT")
    assert german.resolve("nl") == "de"
    assert german.resolve("fr") == "fr"
    assert Catalogs(default_locale="xx").resolve("nl") == "en"


def test_translations_are_compiled_once(catalogs: Catalogs) -> None:
    german = catalogs.translations("de")
    assert isinstance(german, Translations)
    assert german.gettext("Choose a new password") == "Neues Passwort festlegen"
    assert catalogs.translations("de") is german
    assert catalogs.translations("en").gettext("Choose a new password") == "Choose a new password"


def test_an_empty_folder_serves_the_source_language(tmp_path: Path) -> None:
    empty = Catalogs(tmp_path)
    assert empty.available == ("en",)
    assert empty.resolve("de") == "en"
    assert type(empty.translations("en")) is NullTranslations


@pytest.mark.parametrize(
    ("locale", "direction"),
    [("ar", "rtl"), ("he", "rtl"), ("de", "ltr"), ("pt_BR", "ltr"), ("??", "ltr")],
)
def test_text_direction(catalogs: Catalogs, locale: str, direction: str) -> None:
    assert catalogs.text_direction(locale) == direction
