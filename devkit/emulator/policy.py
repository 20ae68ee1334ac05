"""The emulator's password policy, shaped like an Auth0 database connection's:
strength (length and character classes), history, dictionary, and "no personal
info". Passwords are only ever held as scrypt hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = ["COMMON_PASSWORDS", "PasswordPolicy", "check_password", "hash_password"]

STRENGTH: Final = "PasswordStrengthError: Password is too weak"
HISTORY: Final = "PasswordHistoryError: Password has previously been used"
DICTIONARY: Final = "PasswordDictionaryError: Password is too common"
USER_INFO: Final = "PasswordNoUserInfoError: Password contains user information"
MAX_LENGTH: Final = 128

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


def hash_password(password: str, salt: bytes | None = None) -> str:
    """scrypt, so the emulator never holds a password in plain."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**12, r=8, p=1)
    return f"{salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    salt, _, digest = stored.partition("$")
    candidate = hash_password(password, bytes.fromhex(salt)).partition("$")[2]
    return hmac.compare_digest(candidate, digest)


def _classes(password: str) -> int:
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def _longest_run(password: str) -> int:
    longest = run = 0
    previous = ""
    for char in password:
        run = run + 1 if char == previous else 1
        longest, previous = max(longest, run), char
    return longest


@dataclass(frozen=True)
class PasswordPolicy:
    """`min_classes` of lower/upper/digit/special; `history_size` previous
    passwords (the current one counts) may not come back; `max_repeats` limits
    identical characters in a row. Presets follow Auth0's strength levels."""

    min_length: int = 8
    min_classes: int = 3
    max_repeats: int | None = None
    history_size: int = 5
    dictionary: bool = True
    no_user_info: bool = True

    @classmethod
    def none(cls) -> PasswordPolicy:
        return cls(1, 1, None, 0, dictionary=False, no_user_info=False)

    @classmethod
    def low(cls) -> PasswordPolicy:
        return cls(6, 1)

    @classmethod
    def fair(cls) -> PasswordPolicy:
        """Auth0's "fair" names lower, upper and digit; here any three classes count."""
        return cls(8, 3)

    @classmethod
    def good(cls) -> PasswordPolicy:
        return cls(8, 3)

    @classmethod
    def excellent(cls) -> PasswordPolicy:
        return cls(10, 3, max_repeats=2)

    def check(self, password: str, *, email: str, name: str, history: list[str]) -> str | None:
        """None if acceptable, else Auth0's error message for the first rule broken.
        `history` holds hashes, newest last, the current password included."""
        if (
            not self.min_length <= len(password) <= MAX_LENGTH
            or _classes(password) < self.min_classes
            or (self.max_repeats is not None and _longest_run(password) > self.max_repeats)
        ):
            return STRENGTH
        lowered = password.lower()
        if self.dictionary and lowered in COMMON_PASSWORDS:
            return DICTIONARY
        if self.no_user_info:
            parts = [email.partition("@")[0].lower(), *name.lower().split()]
            if any(len(part) >= 3 and part in lowered for part in parts):
                return USER_INFO
        recent = history[-self.history_size :] if self.history_size else []
        if any(check_password(password, stored) for stored in recent):
            return HISTORY
        return None
