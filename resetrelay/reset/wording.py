"""The password requirements in the reader's language: one sentence per `rule` of
`reset.policy`, translated in the `requirements` gettext domain beside the mail
catalogs (`mail/locales/<id>/LC_MESSAGES/requirements.po`), resolved as the mails'
languages are (`pt-BR` → `pt_BR` → `pt` → DEFAULT_LOCALE → English)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from mail.catalog import Catalogs
from resetrelay.reset.policy import Requirement

__all__ = ["BREACHED", "SENTENCES", "SUMMARY", "Wording"]

SUMMARY: Final = "This password does not meet the password requirements."
# The message of a breached refusal (resetrelay.breaches): it says what to do, too.
BREACHED: Final = "This password has appeared in a known data breach. Choose a different one."


@dataclass(frozen=True)
class Wording:
    """The requirement sentences in the reader's language (the `requirements` gettext
    domain beside the mail catalogs)."""

    catalogs: Catalogs = field(default_factory=lambda: Catalogs(domain="requirements"))

    @classmethod
    def defaulting_to(cls, locale: str) -> Wording:
        """Sentences for readers whose language has no catalog in `locale` (the
        DEFAULT_LOCALE setting, as for the mails)."""
        return cls(Catalogs(domain="requirements", default_locale=locale))

    def describe(self, requirement: Requirement, locale: str | None) -> dict[str, Any]:
        """The requirement as JSON: rule, numbers, and a sentence in `locale`."""
        gettext = self.catalogs.translations(self.catalogs.resolve(locale)).gettext
        numbers = dict(requirement.numbers)
        key = requirement.rule
        if key == "history" and "size" not in numbers:
            key = "history_any"  # Auth0 said "used before", the policy's size is unknown
        sentence = SENTENCES.get(key, SENTENCES["unknown"])
        return {**requirement.fields(), "message": gettext(sentence) % numbers}

    def summary(self, locale: str | None) -> str:
        gettext = self.catalogs.translations(self.catalogs.resolve(locale)).gettext
        return gettext(SUMMARY)

    def breached(self, locale: str | None) -> str:
        gettext = self.catalogs.translations(self.catalogs.resolve(locale)).gettext
        return gettext(BREACHED)


SENTENCES: Final = {
    "min_length": "At least %(min)d characters",
    "character_types": (
        "At least %(min)d of these 4 kinds: lower-case letters (a-z), upper-case letters "
        "(A-Z), numbers (0-9), special characters (such as !@#$%%^&*)"
    ),
    "lowercase": "A lower-case letter (a-z)",
    "uppercase": "An upper-case letter (A-Z)",
    "number": "A number (0-9)",
    "special": "A special character (such as !@#$%%^&*)",
    "identical_characters": "No more than %(max)d identical characters in a row",
    "sequential_characters": (
        "No more than %(max)d sequential letters or digits (such as abc or 123)"
    ),
    "max_length": "At most %(max_bytes)d bytes (accented and non-Latin characters take 2 to 4)",
    "dictionary": "Not a commonly used password",
    "user_info": "Not based on your name or email address",
    "history": "Not one of your last %(size)d passwords",
    "history_any": "Not a password you have used before",
    "strength": "The account service found this password too weak",
    "breached": "Not a password found in known data breaches",
    "unknown": "The account service did not accept this password",
}
