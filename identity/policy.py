"""The emulator's password policy, shaped like an Auth0 database connection's."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "123456",
        "12345678",
        "123456789",
        "qwerty",
        "qwerty123",
        "letmein",
        "welcome",
        "welcome1",
        "iloveyou",
        "admin",
        "admin123",
        "monkey",
        "dragon",
        "football",
        "baseball",
        "sunshine",
        "princess",
        "abc123",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword1",
        "trustno1",
        "changeme",
        "summer2024",
        "winter2024",
    }
)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """scrypt, so the emulator never holds a password in plain."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**12, r=8, p=1)
    return f"{salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    salt, _, digest = stored.partition("$")
    candidate = hash_password(password, bytes.fromhex(salt)).partition("$")[2]
    return hmac.compare_digest(candidate, digest)


@dataclass(frozen=True)
class PasswordPolicy:
    """`min_classes` of lower/upper/digit/special ("fair" = 3 of 4 in Auth0's terms)."""

    min_length: int = 8
    min_classes: int = 3
    history_size: int = 5
    dictionary: bool = True
    no_user_info: bool = True

    def check(self, password: str, *, email: str, name: str, history: list[str]) -> str | None:
        """None if acceptable, else Auth0's error message for the first rule broken."""
        classes = sum(
            (
                any(c.islower() for c in password),
                any(c.isupper() for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() for c in password),
            )
        )
        if len(password) < self.min_length or classes < self.min_classes or len(password) > 128:
            return "PasswordStrengthError: Password is too weak"
        if self.dictionary and password.lower() in COMMON_PASSWORDS:
            return "PasswordDictionaryError: Password is too common"
        if self.no_user_info:
            lowered = password.lower()
            parts = [email.partition("@")[0].lower(), *name.lower().split()]
            if any(len(p) >= 3 and p in lowered for p in parts):
                return "PasswordNoUserInfoError: Password contains user information"
        if self.history_size and any(
            check_password(password, h) for h in history[-self.history_size :]
        ):
            return "PasswordHistoryError: Password has previously been used"
        return None
