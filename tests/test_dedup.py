"""Unit tests for pipelines.nlp.dedup: exact, near and template look-alikes, replays, horizon."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.nlp.dedup import DuplicateIndex, containment, shingle_hashes
from pipelines.records import Article, KafkaRecord

T0 = datetime(1987, 3, 2, 12, 0, tzinfo=UTC)
STORY = (
    "Iran said its forces had captured one of Iraq's strongest fortifications east of Basra on the "
    "Gulf War southern front in a major battle overnight. The official news agency said Iranian troops "
    "killed or wounded 1,500 Iraqi soldiers and destroyed 45 tanks and personnel carriers in the fighting, "
    "which began late on Sunday near the Shatt al-Arab waterway. Iraq said it had repelled the attack."
)
LONGER = STORY + (
    " Baghdad radio said Iraqi aircraft had struck Iranian positions behind the front line and that "
    "the situation was under control. Diplomats in the Gulf said the battle was the biggest since January."
)
TEMPLATE = (
    "The Federal Reserve entered the U.S. Government securities market to arrange {n} billion dlrs of "
    "customer repurchase agreements, a Fed spokesman said. Dealers said federal funds were trading at "
    "{rate} pct when the Fed began its temporary and indirect supply of reserves to the banking system. "
    "Economists had expected the Fed to add reserves today given the level of bank borrowing."
)

_offsets = iter(range(1_000_000))


def article(text: str, when: datetime = T0, url: str | None = None, aid: str | None = None) -> Article:
    record = KafkaRecord("news.raw", 0, next(_offsets), 0, None, b"")
    return Article(record, aid or f"id-{record.offset}", "src", "", text, when, "PAYLOAD", url, url)


def test_a_new_story_is_not_a_duplicate_and_is_remembered() -> None:
    index = DuplicateIndex()
    assert index.check_and_add(article(STORY)) is None
    assert len(index) == 1


def test_same_canonical_url_is_a_url_duplicate() -> None:
    index = DuplicateIndex()
    first = article(STORY, url="https://example.com/a", aid="a")
    index.check_and_add(first)
    match = index.check_and_add(article("A rewritten body entirely.", url="https://example.com/a", aid="b"))
    assert match is not None and (match.duplicate_of, match.kind, match.similarity) == ("a", "url", 1.0)


def test_same_text_up_to_case_and_punctuation_is_a_text_duplicate() -> None:
    index = DuplicateIndex()
    index.check_and_add(article(STORY, aid="a"))
    match = index.check_and_add(article("  " + STORY.upper().replace(". ", " -- "), aid="b"))
    assert match is not None and match.kind == "text" and match.duplicate_of == "a"


def test_a_lengthened_version_of_the_same_story_is_a_near_duplicate() -> None:
    index = DuplicateIndex()
    index.check_and_add(article(STORY, aid="a"))
    match = index.check_and_add(article(LONGER, when=T0 + timedelta(hours=3), aid="b"))
    assert match is not None and match.kind == "near" and match.duplicate_of == "a"
    assert 0.9 <= match.similarity <= 1.0  # all of the shorter text is in the longer one
    assert len(index) == 1, "a duplicate is not added: the first article stands for the story"


def test_the_same_template_with_other_figures_is_another_story() -> None:
    index = DuplicateIndex()
    index.check_and_add(article(TEMPLATE.format(n="2.5", rate="6-1/8")))
    assert index.check_and_add(article(TEMPLATE.format(n="1.5", rate="6-3/16"), when=T0 + timedelta(hours=20))) is None


def test_the_same_story_two_weeks_later_is_not_a_near_duplicate() -> None:
    index = DuplicateIndex()
    index.check_and_add(article(STORY))
    assert index.check_and_add(article(LONGER, when=T0 + timedelta(days=14))) is None


def test_a_replayed_kafka_record_is_not_its_own_duplicate() -> None:
    index = DuplicateIndex()
    first = article(STORY, url="https://example.com/a", aid="a")
    index.check_and_add(first)
    assert index.check_and_add(replace(first)) is None  # same topic, partition and offset


def test_the_oldest_articles_leave_the_index_beyond_its_horizon() -> None:
    index = DuplicateIndex(horizon=2)
    index.check_and_add(article(STORY, url="https://x/1", aid="a"))
    index.check_and_add(article(TEMPLATE.format(n="1", rate="6"), url="https://x/2", aid="b"))
    index.check_and_add(article("Short note three.", url="https://x/3", aid="c"))
    assert len(index) == 2
    assert index.check_and_add(article(STORY, url="https://x/1", aid="d")) is None, "forgotten"


def test_a_memory_budget_caps_the_horizon() -> None:
    assert DuplicateIndex(horizon=1_000_000, memory_mb=8).horizon == 1_000
    with pytest.raises(ValueError):
        DuplicateIndex(memory_mb=0)


def test_short_texts_are_compared_exactly_only() -> None:
    assert shingle_hashes("Too short to compare by shingles.") is None
    index = DuplicateIndex()
    index.check_and_add(article("Shr 10 cts vs 5 cts Net 1,000 vs 500"))
    assert index.check_and_add(article("Shr 11 cts vs 5 cts Net 1,100 vs 500")) is None


def test_containment_is_the_share_of_the_smaller_set() -> None:
    small, big = shingle_hashes(STORY), shingle_hashes(LONGER)
    assert small is not None and big is not None
    assert containment(small, big) == 1.0
    assert containment(big, small) == 1.0
