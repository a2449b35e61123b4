"""Typed events on the seed article and on news-style sentences (spaCy, no Beam)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines.nlp.casualties import extract_casualties
from pipelines.nlp.events import extract_events

PUBLISHED = datetime(2025, 5, 20, 8, tzinfo=UTC)


def kinds(nlp: Any, text: str) -> set[tuple[str, str]]:
    return {(e.type, e.modality) for e in extract_events(nlp(text), PUBLISHED)}


def test_seed_events(nlp: Any, seed_text: str) -> None:
    events = extract_events(nlp(seed_text), PUBLISHED)
    found = {(e.type, e.modality) for e in events}
    assert ("consult", "occurred") in found, "the Trump-Putin call and the Istanbul talks"
    assert ("demand", "occurred") in found, "Macron called on Russia to accept a ceasefire"
    assert ("sanction", "threatened") in found, "von der Leyen threatened further sanctions"
    assert ("assault", "occurred") in found, "the drone attacks and the Kherson bombing"
    exchange = [e for e in events if e.type == "release"]
    assert exchange and exchange[0].count == 1000 and exchange[0].place == "Istanbul"
    bombing = [e for e in events if e.type == "assault" and e.trigger == "bombed"]
    assert bombing and (bombing[0].source_actor, bombing[0].place, bombing[0].event_date) == (
        "Russia", "Kherson", "2025-05-18")  # fmt: skip
    assert all(seed_text[e.start : e.end] == e.evidence for e in events)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Iraqi warplanes attacked a Greek tanker in the Gulf.", {("assault", "occurred")}),
        ("Iranian and Iraqi troops clashed near Basra.", {("fight", "occurred")}),
        ("The two countries signed a trade agreement on Monday.", {("agree", "occurred")}),
        ("Japan threatened to impose sanctions on U.S. goods.", {("threaten", "occurred"),
                                                                 ("sanction", "threatened")}),
        ("Thousands of seamen went on strike over pay.", {("protest", "occurred")}),
        ("Ministers will meet in Geneva next week.", {("consult", "proposed")}),
        ("The union refused to sign the agreement.", {("agree", "refused")}),
        # Other senses of the same words are not events.
        ("The central bank stepped up its attack on inflation.", set()),
        ("The option's strike price was 50 dlrs.", set()),
    ],
)  # fmt: skip
def test_sentences(nlp: Any, text: str, expected: set[tuple[str, str]]) -> None:
    assert kinds(nlp, text) == expected


@pytest.mark.timeout(120)
def test_work_per_article_is_bounded(nlp: Any) -> None:
    sentence = "Iraqi jets attacked the tanker, killing 12 crewmen, and troops clashed near Basra as talks began. "
    doc = nlp(sentence * 900)
    facts = extract_casualties(doc, PUBLISHED)
    events = extract_events(doc, PUBLISHED)
    # Identical sentences collapse into one fact each; and the sentence cap holds.
    assert [(f.kind, f.count) for f in facts] == [("killed", 12)]
    assert {e.type for e in events} == {"assault", "fight", "consult"}
