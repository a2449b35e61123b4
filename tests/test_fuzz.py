"""Property-based fuzzing of the pure stages: decode, normalize and extraction.

More than 10,000 generated inputs in all. Each stage either returns its record or raises
a NewsflowError (which becomes a dead letter with its reason); anything else would be an
uncaught exception. Each call must finish within its deadline (no hang), and memory stays
bounded over each test (no input balloons it, none leaves it bigger). The regular
expressions of every pure module are also run on adversarial strings, to catch
catastrophic backtracking.
"""

from __future__ import annotations

import json
import re
import resource
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.io import archive, decode, produce
from pipelines.io.decode import decode_record
from pipelines.local.process import rss_mb
from pipelines.nlp import casualties, context, dedup, entities, events, gazetteer, language, normalize, numbers
from pipelines.nlp.casualties import extract_casualties
from pipelines.nlp.entities import entities_from_doc, group_entities
from pipelines.nlp.events import extract_events
from pipelines.nlp.normalize import normalize as normalize_article
from pipelines.records import KafkaRecord, NewsflowError

NOW = datetime(2026, 11, 27, tzinfo=UTC)
FIELDS = ("source_id", "id", "url", "title", "text", "published_at", "date", "source", "language")


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Load langid's model and dateparser's tables once, outside the per-input deadlines."""
    language.warm_up()
    normalize.parse_published_at("next Tuesday at noon", 0)


@pytest.fixture(autouse=True)
def _bounded_memory(fixed_nlp: Any) -> Iterator[None]:
    """Thousands of inputs leave the process no bigger, and none makes it balloon: the peak
    (ru_maxrss) and the resident size may grow by at most 300 MB over a whole test."""
    peak, rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss_mb()
    yield
    peak_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak
    rss_growth = rss_mb() - rss
    assert peak_growth < 300 and rss_growth < 300, f"peak +{peak_growth:.0f} MB, resident +{rss_growth:.0f} MB"


def record(value: bytes) -> KafkaRecord:
    return KafkaRecord("news.raw", 0, 1, int(NOW.timestamp() * 1000), None, value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
articles = st.dictionaries(st.sampled_from(FIELDS), json_values | st.text(max_size=200), max_size=len(FIELDS))


@settings(max_examples=2500, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=600), articles.map(lambda d: json.dumps(d).encode())))
def test_decode_returns_an_article_or_a_reasoned_error(value: bytes) -> None:
    try:
        raw = decode_record(record(value))
    except NewsflowError as exc:
        assert exc.reason and exc.reason != "error"
        return
    assert raw.text.strip() and raw.source_id


html_bits = st.sampled_from(
    ["<p>", "</p>", "<div>", "<script>x()</script>", "<b>", "&amp;", "&lt;", "&#x27;", "<!--", "-->", "<br/>",
     "<table><tr><td>", "\u00e2\u20ac\u2122", "\x00", "\r\n", "\u202e", "\ufeff", "  ", "\t"]
)  # fmt: skip
texts = st.lists(st.one_of(st.text(max_size=40), html_bits), max_size=30).map("".join)
dates = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 1, 1)).map(str),
    st.sampled_from(["0000-00-00", "9999-12-31T23:59:59Z", "Tue, 31 Feb 2026 25:61:00 +9999", "1e309", "-1"]),
)


@settings(max_examples=3000, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(texts, texts, dates, st.one_of(st.none(), st.text(max_size=60), st.just("http://[::1")), st.booleans())
def test_normalize_returns_an_article_or_a_reasoned_error(
    text: str, title: str, date: str | None, url: Any, strict_dates: bool
) -> None:
    payload = {"source_id": "s", "text": text or "x", "title": title, "published_at": date, "url": url}
    try:
        raw = decode_record(record(json.dumps(payload).encode()))
        # A bad date is refused before the text is cleaned: half the inputs fall back, so
        # the cleaning sees them all the same.
        article = normalize_article(raw, "dead-letter" if strict_dates else "fallback")
    except NewsflowError as exc:
        assert exc.reason and exc.reason != "error"
        return
    assert article.text and article.article_id and article.published_at.tzinfo is not None


WORDS = (
    "killed wounded injured dead died missing arrested kidnapped displaced attack attacked bombing shelling "
    "strike protest agreed talks sanctions released threatened Russia Kyiv Kherson Ukraine police troops "
    "people woman man children soldiers civilians at least more than about up to some dozens hundreds "
    "one two three seventy-five 1,000 12 0 no none the a and but on in by of with after Sunday yesterday "
    "said told reported , . ; : - ' \" ( ) % $ 1987 2026"
).split()
sentences = st.lists(st.sampled_from(WORDS), min_size=1, max_size=40).map(" ".join)


@pytest.fixture(scope="module")
def fixed_nlp() -> Any:
    from pipelines.nlp.entities import EntityFixer, load_model

    nlp, _name, _secs = load_model()
    return nlp, EntityFixer(nlp)


@settings(max_examples=4600, deadline=3000, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(sentences, min_size=1, max_size=4).map(". ".join), dates)
def test_extraction_never_raises_on_newsy_nonsense(fixed_nlp: Any, text: str, date: Any) -> None:
    nlp, fix = fixed_nlp
    doc = fix(nlp(text))
    found = entities_from_doc(doc)
    group_entities(found, text, "")
    for fact in extract_casualties(doc, NOW):
        assert fact.count is None or fact.count >= 0
        assert 0 <= fact.start <= fact.end <= len(text)
    for event in extract_events(doc, NOW):
        assert 0 <= event.start <= event.end <= len(text)


MODULES: tuple[ModuleType, ...] = (
    archive,
    decode,
    produce,
    casualties,
    context,
    dedup,
    entities,
    events,
    gazetteer,
    language,
    normalize,
    numbers,
)
ADVERSARIAL = [
    "a" * 20_000 + "!",
    " " * 20_000 + "x",
    "1," * 10_000 + "x",
    "1 " * 10_000 + "killed",
    "<" * 10_000 + ">" * 10_000,
    "-" * 20_000,
    "\n" * 20_000 + "a",
    "ab" * 10_000,
    "&" * 10_000 + ";",
    "one hundred " * 3_000 + "people",
]


def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    found = []
    for module in MODULES:
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                found.append((f"{module.__name__}.{name}", value))
    return found


def test_regular_expressions_stay_linear_on_adversarial_input() -> None:
    patterns = _patterns()
    assert len(patterns) >= 10, "the pure modules' patterns were found"
    for name, pattern in patterns:
        for text in ADVERSARIAL:
            start = time.perf_counter()
            pattern.search(text)
            list(pattern.finditer(text[:5000]))
            seconds = time.perf_counter() - start
            assert seconds < 0.5, f"{name} took {seconds:.2f}s on {text[:12]!r}x{len(text)}"
