"""hooks.inputs.storable: what text the routes accept before it reaches a database."""

from __future__ import annotations

import json

import pytest

from hooks.inputs import storable


@pytest.mark.parametrize(
    "text",
    ["", "jane@example.com", "Grüße, 東京 🙂", "tab\tand\nnewline", "\x01 other controls"],
)
def test_ordinary_text_is_storable(text: str) -> None:
    assert storable(text)


@pytest.mark.parametrize("text", ["\x00", "abc\x00", "\x00def", "a\x00b"])
def test_nul_anywhere_is_refused(text: str) -> None:
    assert not storable(text)


@pytest.mark.parametrize("text", ["\ud800", "x\udfffy", "\udc00\ud800"])
def test_lone_surrogates_are_refused(text: str) -> None:
    assert not storable(text)


def test_a_surrogate_pair_decoded_from_json_is_one_character_and_storable() -> None:
    decoded = json.loads('"\\ud83d\\ude42"')  # a valid pair in JSON becomes one code point
    assert decoded == "🙂"
    assert storable(decoded)
    assert not storable(json.loads('"\\ud83d"'))  # half of it is not
