"""The emulator's password policy and hashing, without HTTP."""

from __future__ import annotations

import pytest

from devkit.emulator.policy import PasswordPolicy, check_password, hash_password

JANE = {"email": "jane@example.com", "name": "Jane Doe"}


def check(policy: PasswordPolicy, password: str, history: list[str] | None = None) -> str | None:
    return policy.check(password, history=history or [], **JANE)


def test_hashes_are_salted_and_verify() -> None:
    one, two = hash_password("S3cret!pass"), hash_password("S3cret!pass")
    assert one != two
    assert "S3cret!pass" not in one
    assert check_password("S3cret!pass", one)
    assert not check_password("S3cret!pasS", one)


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Corr3ct-Horse", None),
        ("Sh0rt!", "PasswordStrengthError: Password is too weak"),
        ("onlylowercase", "PasswordStrengthError: Password is too weak"),
        ("lower-and-symbols", "PasswordStrengthError: Password is too weak"),
        ("Lower-And-Symbols", None),  # three classes of four
        ("A" * 100 + "a1!" * 10, "PasswordStrengthError: Password is too weak"),  # > 128
        ("P@ssw0rd1", "PasswordDictionaryError: Password is too common"),
        ("Welcome1!", "PasswordDictionaryError: Password is too common"),
        ("Hello-Jane-1", "PasswordNoUserInfoError: Password contains user information"),
        ("My-DOE-Secret1", "PasswordNoUserInfoError: Password contains user information"),
    ],
)
def test_default_policy(password: str, expected: str | None) -> None:
    assert check(PasswordPolicy(), password) == expected


def test_history_counts_the_current_password_and_its_size() -> None:
    hashes = [hash_password(f"Previous-{i}-Pass") for i in range(6)]  # oldest first
    policy = PasswordPolicy(history_size=5)
    assert check(policy, "Previous-5-Pass", hashes) is not None  # the current one
    assert check(policy, "Previous-1-Pass", hashes) is not None
    assert check(policy, "Previous-0-Pass", hashes) is None  # six back: forgotten
    assert check(PasswordPolicy(history_size=0), "Previous-5-Pass", hashes) is None


def test_rules_can_be_switched_off() -> None:
    relaxed = PasswordPolicy(dictionary=False, no_user_info=False)
    assert check(relaxed, "P@ssw0rd1") is None
    assert check(relaxed, "Hello-Jane-1") is None
    assert check(PasswordPolicy.none(), "x") is None


@pytest.mark.parametrize(
    ("preset", "password", "ok"),
    [
        (PasswordPolicy.low(), "abcdef", True),
        (PasswordPolicy.low(), "abcde", False),
        (PasswordPolicy.fair(), "Abcdefg1", True),
        (PasswordPolicy.good(), "abcdefg1", False),
        (PasswordPolicy.excellent(), "Abcdefgh1!", True),
        (PasswordPolicy.excellent(), "Abcdefg1!", False),  # 9 characters
        (PasswordPolicy.excellent(), "Abcccdefg1!", False),  # three alike in a row
    ],
)
def test_presets(preset: PasswordPolicy, password: str, ok: bool) -> None:
    assert (check(preset, password) is None) is ok
