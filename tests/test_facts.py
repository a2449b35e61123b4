"""Casualty facts and entities on real and news-style sentences (spaCy, no Beam)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines.nlp.casualties import extract_casualties
from pipelines.nlp.entities import entities_from_doc

PUBLISHED = datetime(2025, 5, 20, 8, tzinfo=UTC)  # a Tuesday


def facts(nlp: Any, text: str) -> set[tuple[str, int, str | None]]:
    return {(f.kind, f.count, f.qualifier) for f in extract_casualties(nlp(text), PUBLISHED)}


def test_seed_kherson_attack(nlp: Any, seed_text: str) -> None:
    found = extract_casualties(nlp(seed_text), PUBLISHED)
    assert [(f.kind, f.count) for f in found] == [("killed", 1), ("injured", 2)]
    killed, injured = found
    assert (killed.place, killed.actor, killed.means) == ("Kherson", "Russia", "bombing")
    assert killed.victims == "a 75-year-old woman" and injured.victims == "two other people"
    assert killed.event_date == "2025-05-18", "'On Sunday' resolved against a Tuesday publication"
    assert seed_text[killed.start : killed.end] == killed.evidence
    assert killed.evidence.startswith("On Sunday, Russia bombed")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "At least 12 people were killed and 30 wounded when a car bomb exploded in Baghdad on Monday.",
            {("killed", 12, "at_least"), ("injured", 30, None)},
        ),
        ("Iraqi jets attacked the tanker, killing three crewmen.", {("killed", 3, None)}),
        ("The attack left 12 dead and 30 wounded.", {("killed", 12, None), ("injured", 30, None)}),
        ("No one was hurt in the blast.", {("injured", 0, None)}),
        ("Two sailors died in the fire.", {("killed", 2, None)}),
        (
            "Iraq said its forces killed or wounded 15,000 Iranian Revolutionary Guards.",
            {("killed_or_injured", 15000, None)},
        ),
        # Hard negatives: ages, years, money, historical spans, hypotheticals.
        ("More than three years after the start of Russia's invasion, the war goes on.", set()),
        ("The 75-year-old minister said the budget would rise to 1,000 mln dlrs in 1988.", set()),
        ("Officials warned that a strike could kill thousands of people.", set()),
        ("Shares of the company rose 12 pct after the report.", set()),
    ],
)
def test_sentences(nlp: Any, text: str, expected: set[tuple[str, int, str | None]]) -> None:
    assert facts(nlp, text) == expected


def test_same_victims_twice_is_one_fact(nlp: Any) -> None:
    text = "Two sailors died in the fire. Officials later confirmed that two sailors died in the fire."
    assert len(extract_casualties(nlp(text), PUBLISHED)) == 1


def test_entity_offsets_index_the_text(nlp: Any, seed_text: str) -> None:
    entities = entities_from_doc(nlp(seed_text))
    assert entities, "the seed names people and places"
    assert all(seed_text[e.start : e.end] == e.text for e in entities)
    labels = {e.text: e.label for e in entities}
    assert labels.get("Vladimir Putin") == "PERSON" and labels.get("Istanbul") == "GPE"
