"""The emulator's password policy, shaped like an Auth0 database connection's, and what
a Management API PATCH enforces of it. Passwords are only ever held as scrypt hashes.

Sources (docs/auth0.md, "The password policy", says the same for operators):

- The five legacy levels are Auth0's password-sheriff presets (`index.js`): none = at
  least 1 character; low = 6; fair = 8 with a lower-case letter, an upper-case letter
  and a digit; good = 8 with three of lower, upper, digit, special; excellent = 10,
  three of four, no more than 2 identical characters in a row. Letters and digits are
  ASCII only, "special" is OWASP's list (`lib/rules/contains.js`); length is counted in
  UTF-16 code units, as JavaScript's `length`. `password_complexity_options.min_length`
  supersedes the level's length (Auth0, "Password Strength in Auth0 Database
  Connections").
- The Flexible Password Policy (`options.password_options`; Auth0's Management API
  schema `ConnectionPasswordOptions`, password-sheriff `createRulesFromOptions`):
  chosen character types, all of them or three of four, identical and sequential
  characters blocked (more than 2), and past 72 bytes either truncate or error.
- Like bcrypt, only the first 72 bytes of a password count: the legacy policy accepts a
  longer password and silently truncates it (Auth0, "Flexible Password Policy").

What a PATCH of a password enforces is contested, so it is a setting, `patch_enforces`:
  "strength"  (default) the strength rules only. Auth0's docs promise exactly this
              ("If you use Management API to set or update a user's password ... the
              strength policy you set in Auth0 Dashboard applies"): the strictest
              behaviour a source confirms.
  "none"      nothing at all, as an Auth0 community knowledge article (149990) says.
  "all"       strength, dictionary, personal data and history. No source confirms
              that a PATCH checks the last three; kept for tests of Auth0's answers.
Unconfirmed as well: the exact messages of the dictionary, personal-data and history
errors on the Management API, Auth0's dictionary (here a short sample), and which
profile fields the personal-data rule compares (here the name and the address's
local part).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["COMMON_PASSWORDS", "PasswordPolicy", "check_password", "hash_password"]

STRENGTH: Final = "PasswordStrengthError: Password is too weak"
HISTORY: Final = "PasswordHistoryError: Password has previously been used"
DICTIONARY: Final = "PasswordDictionaryError: Password is too common"
USER_INFO: Final = "PasswordNoUserInfoError: Password contains user information"
MAX_BYTES: Final = 72  # bcrypt's limit: what Auth0 hashes of a password

Enforced = Literal["strength", "none", "all"]
KINDS: Final = ("lowercase", "uppercase", "number", "special")
_SPECIAL: Final = frozenset(string.punctuation + " ")

# A short sample of the most common passwords; Auth0's list has ~10,000.
COMMON_PASSWORDS: Final = frozenset(
    {
        "password", "password1", "password123", "password123!", "123456", "12345678",
        "123456789", "1234567890", "qwerty", "qwerty123", "qwertyuiop", "letmein",
        "letmein1!", "welcome", "welcome1", "welcome1!", "welcome123", "iloveyou",
        "admin", "admin123", "monkey", "dragon", "football", "baseball", "sunshine",
        "princess", "abc123", "passw0rd", "passw0rd!", "p@ssw0rd", "p@ssword1",
        "p@ssw0rd1", "trustno1", "changeme", "changeme1!", "summer2024", "winter2024",
        "summer2025!", "winter2025!", "spring2026!", "autumn2026!",
    }
)  # fmt: skip


def _bcrypt_input(password: str) -> bytes:
    """What bcrypt reads of a password: its first 72 bytes."""
    return password.encode()[:MAX_BYTES]


def hash_password(password: str, salt: bytes | None = None) -> str:
    """scrypt, so the emulator never holds a password in plain; of the first 72 bytes
    only, as Auth0's bcrypt hashes."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(_bcrypt_input(password), salt=salt, n=2**12, r=8, p=1)
    return f"{salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    salt, _, digest = stored.partition("$")
    candidate = hash_password(password, bytes.fromhex(salt)).partition("$")[2]
    return hmac.compare_digest(candidate, digest)


def _kinds(password: str) -> int:
    return sum(
        (
            any("a" <= c <= "z" for c in password),
            any("A" <= c <= "Z" for c in password),
            any("0" <= c <= "9" for c in password),
            any(c in _SPECIAL for c in password),
        )
    )


_RANGES: Final = {"lowercase": ("a", "z"), "uppercase": ("A", "Z"), "number": ("0", "9")}


def _has(kind: str, password: str) -> bool:
    if kind == "special":
        return any(c in _SPECIAL for c in password)
    low, high = _RANGES[kind]
    return any(low <= c <= high for c in password)


def _longest_run(password: str) -> int:
    longest = run = 0
    previous = ""
    for char in password:
        run = run + 1 if char == previous else 1
        longest, previous = max(longest, run), char
    return longest


def _longest_sequence(password: str) -> int:
    """password-sheriff's `sequentialChars`: ASCII letters or digits stepping by one."""
    longest = length = direction = 0
    previous: str | None = None
    for char in password:
        if not char.isascii() or not char.isalnum():
            length, direction, previous = 0, 0, None
            continue
        step = ord(char) - ord(previous) if previous is not None else 0
        if previous is not None and step in (1, -1):
            length, direction = (length + 1, step) if step == direction else (2, step)
        else:
            length, direction = 1, 0
        previous = char
        longest = max(longest, length)
    return longest


def _length(password: str) -> int:
    return len(password.encode("utf-16-le")) // 2  # JavaScript's `length`


@dataclass(frozen=True)
class PasswordPolicy:
    """One connection's policy. `min_classes` of lower/upper/digit/special, or every kind
    in `required_kinds`; `max_repeats` identical characters in a row; `max_sequential`
    sequential characters; `history_size` previous passwords (the current one counts)
    may not come back. `flexible` shows it as `password_options` (else the legacy
    fields, with `level`); `max_length_exceeded` ("truncate" | "error") is the flexible
    choice past 72 bytes (the legacy policy always truncates)."""

    min_length: int = 8
    min_classes: int = 3
    max_repeats: int | None = None
    history_size: int = 5
    dictionary: bool = True
    no_user_info: bool = True
    required_kinds: tuple[str, ...] = ()
    max_sequential: int | None = None
    level: str = "good"
    flexible: bool = False
    max_length_exceeded: str = "truncate"
    custom_words: tuple[str, ...] = ()
    patch_enforces: Enforced = "strength"

    @classmethod
    def none(cls) -> PasswordPolicy:
        return cls(1, 0, None, 0, dictionary=False, no_user_info=False, level="none")

    @classmethod
    def low(cls) -> PasswordPolicy:
        return cls(6, 0, level="low")

    @classmethod
    def fair(cls) -> PasswordPolicy:
        """Lower-case, upper-case and a digit, all three (not any three of four)."""
        return cls(8, 0, required_kinds=("lowercase", "uppercase", "number"), level="fair")

    @classmethod
    def good(cls) -> PasswordPolicy:
        return cls(8, 3, level="good")

    @classmethod
    def excellent(cls) -> PasswordPolicy:
        return cls(10, 3, max_repeats=2, level="excellent")

    # -- checks ---------------------------------------------------------------------

    def strength_problem(self, password: str) -> bool:
        if not password or _length(password) < self.min_length:
            return True
        too_long = len(password.encode()) > MAX_BYTES
        if self.flexible and self.max_length_exceeded == "error" and too_long:
            return True
        if _kinds(password) < self.min_classes:
            return True
        if not all(_has(kind, password) for kind in self.required_kinds):
            return True
        if self.max_repeats is not None and _longest_run(password) > self.max_repeats:
            return True
        return self.max_sequential is not None and _longest_sequence(password) > self.max_sequential

    def check(
        self,
        password: str,
        *,
        email: str,
        name: str,
        history: list[str],
        enforce: Enforced = "all",
    ) -> str | None:
        """None if acceptable, else Auth0's error message for the first rule broken.
        `history` holds hashes, newest last, the current password included; `enforce`
        says which rules apply (a PATCH passes `patch_enforces`)."""
        if enforce == "none":
            return None
        if self.strength_problem(password):
            return STRENGTH
        if enforce == "strength":
            return None
        lowered = password.lower()
        if self.dictionary and (lowered in COMMON_PASSWORDS or lowered in self.custom_words):
            return DICTIONARY
        if self.no_user_info:
            parts = [email.partition("@")[0].lower(), *name.lower().split()]
            if any(len(part) >= 3 and part in lowered for part in parts):
                return USER_INFO
        recent = history[-self.history_size :] if self.history_size else []
        if any(check_password(password, stored) for stored in recent):
            return HISTORY
        return None

    # -- as a connection shows it -------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The policy's part of a database connection's `options`, in its shape."""
        if self.flexible:
            kinds = list(self.required_kinds) or list(KINDS)
            return {
                "password_options": {
                    "complexity": {
                        "min_length": self.min_length,
                        "character_types": kinds,
                        "character_type_rule": "three_of_four" if self.min_classes else "all",
                        "identical_characters": "block" if self.max_repeats else "allow",
                        "sequential_characters": "block" if self.max_sequential else "allow",
                        "max_length_exceeded": self.max_length_exceeded,
                    },
                    "dictionary": {
                        "active": self.dictionary,
                        "default": "en_10k",
                        "custom": list(self.custom_words),
                    },
                    "history": {"active": bool(self.history_size), "size": self.history_size or 5},
                    "profile_data": {"active": self.no_user_info, "blocked_fields": []},
                }
            }
        return {
            "passwordPolicy": self.level,
            "password_complexity_options": {"min_length": self.min_length},
            "password_history": {"enable": bool(self.history_size), "size": self.history_size or 5},
            "password_dictionary": {
                "enable": self.dictionary,
                "dictionary": list(self.custom_words),
            },
            "password_no_personal_info": {"enable": self.no_user_info},
        }
