"""The emulator's password policy and hashing, without HTTP."""

from __future__ import annotations

import pytest

from devkit.emulator.policy import PasswordPolicy, check_password, hash_password


def check(policy: PasswordPolicy, password: str, history: list[str] | None = None) -> str | None:
    return policy.check(password, history=history or [], email="jane@example.com", name="Jane Doe")


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
        ("A" * 100 + "a1!" * 10, None),  # past 72 bytes: the legacy policy truncates
        ("Ünïcödé-lëttérs", "PasswordStrengthError: Password is too weak"),  # ASCII only
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
        (PasswordPolicy.fair(), "abcdefg1!", False),  # three kinds, but no upper-case
        (PasswordPolicy.fair(), "ABCDEFG1!", False),  # no lower-case
        (PasswordPolicy.good(), "abcdefg1", False),
        (PasswordPolicy.good(), "abcdefg1!", True),  # lower, digit, special
        (PasswordPolicy.good(), "abcdefg1 ", True),  # the space is special (OWASP's list)
        (PasswordPolicy.good(), "abcdefg1é", False),  # "é" is none of the four kinds
        (PasswordPolicy.excellent(), "Abccdefg1!", True),  # two alike in a row is fine
        (PasswordPolicy.excellent(), "Abcdefgh1!", True),
        (PasswordPolicy.excellent(), "Abcdefg1!", False),  # 9 characters
        (PasswordPolicy.excellent(), "Abcccdefg1!", False),  # three alike in a row
    ],
)
def test_presets(preset: PasswordPolicy, password: str, ok: bool) -> None:
    assert (check(preset, password) is None) is ok


def test_only_the_first_72_bytes_count_as_bcrypt() -> None:
    long = "Correct-Horse-" * 6  # 84 bytes
    stored = hash_password(long)
    assert check_password(long[:72], stored)
    assert check_password(long[:72] + "anything else", stored)
    assert not check_password(long[:71], stored)


def test_the_flexible_policy_can_refuse_past_72_bytes() -> None:
    refusing = PasswordPolicy(flexible=True, max_length_exceeded="error", dictionary=False)
    assert check(refusing, "Correct-Horse-" * 6) == "PasswordStrengthError: Password is too weak"
    assert check(refusing, "Correct-Horse-" * 5) is None  # 70 bytes
    truncating = PasswordPolicy(flexible=True, dictionary=False)
    assert check(truncating, "Correct-Horse-" * 6) is None


def test_sequential_characters_as_password_sheriff_counts_them() -> None:
    policy = PasswordPolicy(max_sequential=2, dictionary=False)
    assert check(policy, "Xabc-Horse-9") == "PasswordStrengthError: Password is too weak"
    assert check(policy, "X321-Horse-9") == "PasswordStrengthError: Password is too weak"
    assert check(policy, "Xab-ce-Horse-9") is None  # the dash breaks the run


@pytest.mark.parametrize(
    ("enforce", "password", "expected"),
    [
        ("strength", "weak", "PasswordStrengthError: Password is too weak"),
        ("strength", "P@ssw0rd1", None),  # the dictionary is not a strength rule
        ("strength", "Hello-Jane-1", None),
        ("none", "x", None),
        ("all", "P@ssw0rd1", "PasswordDictionaryError: Password is too common"),
    ],
)
def test_what_a_patch_enforces(enforce: str, password: str, expected: str | None) -> None:
    policy = PasswordPolicy()
    found = policy.check(
        password,
        email="jane@example.com",
        name="Jane Doe",
        history=[],
        enforce=enforce,  # type: ignore[arg-type]
    )
    assert found == expected


def test_the_default_patch_enforces_strength_only() -> None:
    assert PasswordPolicy().patch_enforces == "strength"


def test_the_legacy_shape() -> None:
    options = PasswordPolicy.excellent().options()
    assert options == {
        "passwordPolicy": "excellent",
        "password_complexity_options": {"min_length": 10},
        "password_history": {"enable": True, "size": 5},
        "password_dictionary": {"enable": True, "dictionary": []},
        "password_no_personal_info": {"enable": True},
    }


def test_the_flexible_shape() -> None:
    policy = PasswordPolicy(
        14,
        0,
        required_kinds=("lowercase", "number"),
        max_repeats=2,
        max_sequential=2,
        flexible=True,
        max_length_exceeded="error",
        history_size=0,
        custom_words=("acme",),
    )
    assert policy.options() == {
        "password_options": {
            "complexity": {
                "min_length": 14,
                "character_types": ["lowercase", "number"],
                "character_type_rule": "all",
                "identical_characters": "block",
                "sequential_characters": "block",
                "max_length_exceeded": "error",
            },
            "dictionary": {"active": True, "default": "en_10k", "custom": ["acme"]},
            "history": {"active": False, "size": 5},
            "profile_data": {"active": True, "blocked_fields": []},
        }
    }
    assert check(policy, "abcdefghijklm1") is not None  # "abcdefghijklm" is a sequence
    assert check(policy, "qwzx-plmk-7392") is None
    assert check(policy, "QWZX-PLMK-7392") == "PasswordStrengthError: Password is too weak"
