"""The faster attribute ruler must annotate exactly as the model's own AttributeRuler."""

from __future__ import annotations

import gzip
import json
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from pipelines.nlp.attribute_rules import FastAttributeRuler, speed_up

ROOT = Path(__file__).resolve().parents[1]
REUTERS = ROOT.parent / "shared" / "data" / "reuters21578.jsonl.gz"


@pytest.fixture(scope="module")
def shipped() -> Any:
    from pipelines.nlp.entities import load_model

    return load_model(as_shipped=True)[0]


def _texts() -> list[str]:
    gold = [json.loads(line)["text"] for line in (ROOT / "tests/data/facts_gold.jsonl").read_text().splitlines()]
    with gzip.open(REUTERS, "rt") as f:
        wires = [t for t in (json.loads(line).get("text") or "" for line in islice(f, 150)) if t.strip()]
    return gold + wires


def _annotations(doc: Any) -> list[tuple[Any, ...]]:
    return [(t.pos_, t.tag_, str(t.morph), t.lemma_, t.dep_, t.head.i, t.ent_type_, t.norm_) for t in doc]


def test_same_annotations_as_spacy_on_gold_sentences_and_wires(nlp: Any, shipped: Any) -> None:
    assert isinstance(nlp.get_pipe("attribute_ruler"), FastAttributeRuler)
    assert nlp.pipe_names == shipped.pipe_names
    texts = _texts()
    tokens = 0
    for theirs, ours in zip(shipped.pipe(texts), nlp.pipe(texts), strict=True):
        assert _annotations(ours) == _annotations(theirs), theirs.text[:200]
        tokens += len(ours)
    assert tokens > 50_000  # ~1,300 gold sentences and ~130 wires


def test_later_rules_win_and_index_picks_the_token(shipped: Any) -> None:
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    ruler.add([[{"LOWER": "saw"}]], {"LEMMA": "first"})
    ruler.add([[{"LOWER": "saw"}]], {"LEMMA": "second"})  # added later: wins
    ruler.add([[{"LOWER": "we"}, {"LOWER": {"IN": ["saw", "see"]}}]], {"NORM": "us"}, index=0)
    ruler.add([[{"LOWER": {"REGEX": "^ha"}}, {"LOWER": "it"}]], {"LEMMA": "have"}, index=-2)
    text = "We saw it and had it"
    expected = [(t.lemma_, t.norm_) for t in nlp(text)]
    speed_up(nlp)
    assert isinstance(nlp.get_pipe("attribute_ruler"), FastAttributeRuler)
    got = [(t.lemma_, t.norm_) for t in nlp(text)]
    assert got == expected
    assert got[0][1] == "us" and got[1][0] == "second" and got[3][0] == "" and got[4][0] == "have"


def test_patterns_it_cannot_match_exactly_are_refused() -> None:
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    ruler.add([[{"LOWER": "a", "OP": "+"}]], {"LEMMA": "x"})
    with pytest.raises(ValueError, match="cannot match"):
        FastAttributeRuler(ruler)
