"""Unit tests for pipelines.nlp.numbers: victim counts and the qualifiers before them."""

from __future__ import annotations

import pytest

from pipelines.nlp.numbers import parse_number, qualifier_before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # digits
        ("12", 12),
        ("0", 0),
        (" 12 ", 12),
        ("1,000", 1000),
        ("12,345,678", 12_345_678),
        # English number words
        ("two", 2),
        ("one", 1),
        ("seventy-five", 75),
        ("Twenty", 20),
        ("TWO", 2),
        ("one hundred", 100),
        # vague quantities (ACLED coding rules)
        ("dozen", 12),
        ("dozens", 12),
        ("Dozens", 12),
        ("scores", 20),
        ("hundreds", 100),
        ("thousands", 1000),
        # zero words
        ("no", 0),
        ("none", 0),
        ("zero", 0),
    ],
)
def test_parse_number(text: str, expected: int) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    "text",
    ["abc", "12.5", "", "   ", "-5", "1,00", "1,0000", "12abc", "twelve!", "the"],
)
def test_not_a_number(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["at", "least"], "at_least"),
        (["more", "than"], "more_than"),
        (["up", "to"], "up_to"),
        (["at", "most"], "up_to"),
        (["about"], "about"),
        (["around"], "about"),
        (["nearly"], "about"),
        (["over"], "more_than"),
        # only the words right before the number count
        (["killed", "at", "least"], "at_least"),
        (["police", "said", "about"], "about"),
    ],
)
def test_qualifier_before(words: list[str], expected: str) -> None:
    assert qualifier_before(words) == expected


@pytest.mark.parametrize(
    "words",
    [
        ["the"],
        [],
        ["at"],
        ["least"],
        ["to"],
        ["least", "at"],
        ["at", "least", "the"],
    ],
)
def test_no_qualifier(words: list[str]) -> None:
    assert qualifier_before(words) is None
