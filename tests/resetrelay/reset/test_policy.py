"""The tenant's password policy: both shapes read, the local check, its sentences in
every language, and the brief cache of the policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from babel.messages.pofile import read_po

from mail.catalog import LOCALES_DIR
from resetrelay.reset.policy import MAX_BYTES, Policies, Policy
from resetrelay.reset.wording import BREACHED, SENTENCES, SUMMARY, Wording

pytestmark = pytest.mark.anyio

JANE = "jane@example.com"


def missed(policy: Policy, password: str) -> list[dict[str, Any]]:
    return [r.fields() for r in policy.missed(password, email=JANE)]


# -- the legacy shape ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "password", "expected"),
    [
        ("none", "x", []),
        ("low", "abcde", [{"rule": "min_length", "min": 6}]),
        ("low", "abcdef", []),
        ("fair", "Abcdefg1", []),
        # Three kinds of four, but fair names lower, upper and digit: all three.
        ("fair", "abcdefg1!", [{"rule": "uppercase"}]),
        ("good", "abcdefg1!", []),
        ("good", "abcdefgh", [{"rule": "character_types", "min": 3}]),
        ("good", "abcdefgé1", [{"rule": "character_types", "min": 3}]),  # é: no kind
        ("good", "abcdefg1 ", []),  # the space is a special character (OWASP's list)
        ("excellent", "Abcdefg1!", [{"rule": "min_length", "min": 10}]),
        ("excellent", "Abcccdefg1!", [{"rule": "identical_characters", "max": 2}]),
        ("excellent", "Abccdefg1!", []),
    ],
)
def test_auth0s_levels(level: str, password: str, expected: list[dict[str, Any]]) -> None:
    assert missed(Policy.from_options({"passwordPolicy": level}), password) == expected


def test_the_legacy_fields() -> None:
    policy = Policy.from_options(
        {
            "passwordPolicy": "good",
            "password_complexity_options": {"min_length": 14},
            "password_history": {"enable": True, "size": 7},
            "password_dictionary": {"enable": True, "dictionary": ["Acme2026!", " "]},
            "password_no_personal_info": {"enable": True},
        }
    )
    assert (policy.shape, policy.level, policy.truncates) == ("legacy", "good", True)
    assert [r.fields() for r in policy.requirements()] == [
        {"rule": "min_length", "min": 14},  # supersedes the level's 8
        {"rule": "character_types", "min": 3},
        {"rule": "max_length", "max_bytes": 72},
        {"rule": "dictionary"},
        {"rule": "user_info"},
        {"rule": "history", "size": 7},
    ]
    assert policy.custom_words == ("acme2026!",)
    assert missed(policy, "ACME2026!") == [
        {"rule": "min_length", "min": 14},
        {"rule": "dictionary"},
    ]
    assert missed(policy, "My-jane-Secret-99") == [{"rule": "user_info"}]
    assert missed(policy, "Correct-Horse-99") == []  # history: Auth0's to judge


def test_a_missing_or_null_level_is_none_and_an_unknown_one_excellent() -> None:
    assert Policy.from_options({}).level == "none"
    assert Policy.from_options({"passwordPolicy": None}).level == "none"
    assert Policy.from_options({"passwordPolicy": "ultra"}).level == "excellent"


@pytest.mark.parametrize(
    "options",
    [
        {"passwordPolicy": 3, "password_complexity_options": "12"},
        {"password_complexity_options": {"min_length": True}},
        {"password_complexity_options": {"min_length": 1e309}},
        {"password_history": {"enable": "yes", "size": -4}},
        {"password_dictionary": {"enable": True, "dictionary": "words"}},
        {"password_options": []},
        {"password_options": {"complexity": {"min_length": 900, "character_types": "all"}}},
    ],
)
def test_odd_values_never_raise(options: Mapping[str, Any]) -> None:
    policy = Policy.from_options(options)
    assert policy.min_length >= 1
    assert policy.missed("Correct-Horse-99", email=JANE) == [] or policy.level == "excellent"


# -- the flexible shape ----------------------------------------------------------------


FLEXIBLE = {
    "passwordPolicy": "excellent",  # ignored: password_options replaces the legacy fields
    "password_options": {
        "complexity": {
            "min_length": 12,
            "character_types": ["uppercase", "lowercase", "number", "special"],
            "character_type_rule": "all",
            "identical_characters": "block",
            "sequential_characters": "block",
            "max_length_exceeded": "error",
        },
        "dictionary": {"active": True, "default": "en_100k", "custom": ["rocket"]},
        "history": {"active": True, "size": 3},
        "profile_data": {"active": True, "blocked_fields": ["email"]},
    },
}


def test_the_flexible_shape() -> None:
    policy = Policy.from_options(FLEXIBLE)
    assert (policy.shape, policy.level, policy.truncates) == ("flexible", None, False)
    assert [r.rule for r in policy.requirements()] == [
        "min_length",
        "lowercase",
        "uppercase",
        "number",
        "special",
        "identical_characters",
        "sequential_characters",
        "max_length",
        "dictionary",
        "user_info",
        "history",
    ]
    assert missed(policy, "aaabcd") == [
        {"rule": "min_length", "min": 12},
        {"rule": "uppercase"},
        {"rule": "number"},
        {"rule": "special"},
        {"rule": "identical_characters", "max": 2},
        {"rule": "sequential_characters", "max": 2},
    ]
    assert missed(policy, "Rocket") != []
    assert missed(policy, "rOCKET-92-xq") == []


def test_three_of_four() -> None:
    three = {"character_types": ["lowercase", "uppercase", "number", "special"]}
    policy = Policy.from_options(
        {"password_options": {"complexity": {**three, "character_type_rule": "three_of_four"}}}
    )
    assert [r.fields() for r in policy.requirements()] == [
        {"rule": "character_types", "min": 3},
        {"rule": "max_length", "max_bytes": 72},
    ]
    assert missed(policy, "abc-def") == [{"rule": "character_types", "min": 3}]
    assert missed(policy, "abc-DEF") == []
    # No complexity at all: any non-empty password, as password-sheriff builds no rule.
    assert missed(Policy.from_options({"password_options": {}}), "a") == []


@pytest.mark.parametrize(
    ("password", "longest"),
    [("abc", 3), ("cba", 3), ("ab-cd", 2), ("a1b2", 1), ("xyzA", 3), ("9876", 4), ("ÀÁÂ", 0)],
)
def test_sequences_as_password_sheriff_counts_them(password: str, longest: int) -> None:
    from resetrelay.reset.policy import _longest_sequence

    assert _longest_sequence(password) == longest


# -- the 72-byte rule --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "ok"),
    [("a" * 72, True), ("a" * 73, False), ("é" * 36, True), ("é" * 37, False), ("😀" * 18, True)],
)
def test_the_72_byte_rule_holds_whatever_the_policy(password: str, ok: bool) -> None:
    for policy in (Policy(), Policy.from_options({"passwordPolicy": "low"})):
        refused = {"rule": "max_length", "max_bytes": MAX_BYTES} in missed(policy, password)
        assert refused is not ok


def test_length_is_counted_as_javascript_counts_it() -> None:
    # An emoji is one code point but two UTF-16 units, as Auth0's checks count.
    assert missed(Policy.from_options({"passwordPolicy": "low"}), "😀😀😀") == []
    assert missed(Policy.from_options({"passwordPolicy": "low"}), "😀😀") != []


# -- sentences ---------------------------------------------------------------------------


@pytest.mark.parametrize("locale", ["de", "es", "fr", "ja", "pt_BR"])
def test_every_sentence_is_translated(locale: str) -> None:
    path = LOCALES_DIR / locale / "LC_MESSAGES" / "requirements.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    wanted = {*SENTENCES.values(), SUMMARY, BREACHED}
    translated = {str(m.id): str(m.string) for m in catalog if m.id}
    assert wanted <= set(translated)
    for msgid in wanted:
        assert translated[msgid] and translated[msgid] != msgid
        # The same placeholders, so formatting never fails in any language.
        text = translated[msgid]
        assert sorted(_placeholders(text)) == sorted(_placeholders(str(msgid)))


def _placeholders(text: str) -> list[str]:
    import re

    return re.findall(r"%\((\w+)\)d|%%", text)


@pytest.mark.parametrize(
    ("locale", "sentence"),
    [
        ("de", "Mindestens 12 Zeichen"),
        ("de-AT", "Mindestens 12 Zeichen"),
        ("fr", "Au moins 12 caractères"),
        ("es", "Al menos 12 caracteres"),
        ("ja", "12 文字以上"),
        ("pt-BR", "Pelo menos 12 caracteres"),
        ("en", "At least 12 characters"),
        (None, "At least 12 characters"),
        ("tlh", "At least 12 characters"),
    ],
)
def test_sentences_in_the_readers_language(locale: str | None, sentence: str) -> None:
    policy = Policy.from_options(FLEXIBLE)
    described = Wording().describe(policy.requirements()[0], locale)
    assert described == {"rule": "min_length", "min": 12, "message": sentence}


def test_a_history_refusal_without_a_size() -> None:
    from resetrelay.reset.policy import Requirement

    described = Wording().describe(Requirement("history"), "fr")
    assert described == {"rule": "history", "message": "Pas un mot de passe déjà utilisé"}


# -- the cache ---------------------------------------------------------------------------


class Reads:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.count = 0

    async def __call__(self) -> Mapping[str, Any] | None:
        self.count += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        result: Mapping[str, Any] | None = answer
        return result


async def test_the_policy_is_kept_for_a_while() -> None:
    now = [1000.0]
    reads = Reads({"passwordPolicy": "low"}, {"passwordPolicy": "excellent"})
    policies = Policies(reads, clock=lambda: now[0], ttl=300)
    assert (await policies.current()).level == "low"
    now[0] += 299
    assert (await policies.current()).level == "low"
    assert reads.count == 1
    now[0] += 2
    assert (await policies.current()).level == "excellent"
    assert reads.count == 2


async def test_a_failed_read_keeps_the_last_policy_and_tries_again_soon() -> None:
    now = [1000.0]
    reads = Reads({"passwordPolicy": "good"}, RuntimeError("down"), {"passwordPolicy": "low"})
    policies = Policies(reads, clock=lambda: now[0], ttl=300)
    assert (await policies.current()).level == "good"
    now[0] += 301
    assert (await policies.current()).level == "good"  # the outage does not weaken it
    now[0] += Policies.RETRY - 1
    assert (await policies.current()).level == "good"
    assert reads.count == 2  # not asked on every confirm
    now[0] += 2
    assert (await policies.current()).level == "low"


async def test_nothing_read_yet_falls_back_to_the_72_byte_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policies = Policies(Reads(None), clock=lambda: 0.0)
    policy = await policies.current()
    assert policy.shape == "unread"
    assert [r.rule for r in policy.requirements()] == ["max_length"]
    assert "read:connections_options" in caplog.text


async def test_concurrent_confirms_share_one_read() -> None:
    import anyio

    reads = Reads({"passwordPolicy": "fair"})
    policies = Policies(reads, clock=lambda: 0.0)
    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(policies.current)
    assert reads.count == 1


def test_an_unknown_language_falls_back_to_the_default_locale() -> None:
    policy = Policy.from_options(FLEXIBLE)
    described = Wording.defaulting_to("de").describe(policy.requirements()[0], "tlh")
    assert described["message"] == "Mindestens 12 Zeichen"


def test_profile_fields_that_leave_out_the_address() -> None:
    blocked = {"profile_data": {"active": True, "blocked_fields": ["name", "nickname"]}}
    policy = Policy.from_options({"password_options": blocked})
    assert [r.rule for r in policy.requirements()] == ["max_length", "user_info"]
    assert missed(policy, "jane-Secret-99") == []  # the name is Auth0's to check
    with_email = {"profile_data": {"active": True, "blocked_fields": ["email"]}}
    assert missed(Policy.from_options({"password_options": with_email}), "jane-99") == [
        {"rule": "user_info"}
    ]
