"""Unit tests for pipelines.nlp.normalize: text cleaning, dates, canonical URLs, ids."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import ftfy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.io.decode import decode_record
from pipelines.nlp.normalize import _PLAIN_ASCII, article_id, canonical_url, clean_text, normalize, parse_published_at
from pipelines.records import KafkaRecord, NormalizeError, RawArticle

KAFKA_TS_MS = 1_747_735_200_000  # 2025-05-20T10:00:00Z
KAFKA_TS = datetime(2025, 5, 20, 10, 0, tzinfo=UTC)


def make_raw(text: str, **fields: str | None) -> RawArticle:
    payload = {"source_id": "src-1", "text": text, **fields}
    record = KafkaRecord(
        topic="news.raw",
        partition=2,
        offset=99,
        timestamp_ms=KAFKA_TS_MS,
        key=b"k",
        value=json.dumps(payload).encode("utf-8"),
    )
    return decode_record(record)


# --- clean_text ---------------------------------------------------------------------


def test_module_docstring_example() -> None:
    assert clean_text("<p>Caf\u00c3\u00a9  \u201cnews\u201d</p>") == 'Café "news"'


def test_html_paragraphs_become_separate_lines() -> None:
    lines = [line for line in clean_text("<p>First one.</p><p>Second one.</p>").split("\n") if line]
    assert lines == ["First one.", "Second one."]


def test_br_breaks_a_line_and_inline_tags_do_not() -> None:
    assert clean_text("one<br>two") == "one\ntwo"
    assert clean_text("<p>a <b>bold</b> word</p>") == "a bold word"


@pytest.mark.parametrize(
    "markup",
    [
        "<p>Visible</p><script>var secret = 1;</script><style>p { color: red }</style>",
        "<div><script>one()</script><script>two()</script><style>x{}</style>Visible</div>",
        "<html><head><title>Head title</title></head><body><p>Visible</p><noscript>nojs</noscript></body></html>",
    ],
)
def test_script_style_and_head_are_dropped(markup: str) -> None:
    cleaned = clean_text(markup)
    assert cleaned == "Visible"


def test_text_after_a_dropped_script_is_kept() -> None:
    assert clean_text("<p>before<script>x()</script> after</p>") == "before after"


def test_entities_are_unescaped() -> None:
    assert clean_text("<p>Tom &amp; Jerry&nbsp;show &lt;3</p>") == "Tom & Jerry show <3"


def test_entities_in_plain_text_are_unescaped() -> None:
    assert clean_text("Tom &amp; Jerry") == "Tom & Jerry"


def test_plain_text_with_angle_brackets_is_not_treated_as_html() -> None:
    assert clean_text("if a < b and c > d") == "if a < b and c > d"


def test_mojibake_is_repaired() -> None:
    assert clean_text("Caf\u00c3\u00a9") == "Café"


def test_curly_quotes_become_straight() -> None:
    assert clean_text("\u201cHello,\u201d she said, \u2018it\u2019s fine\u2019") == "\"Hello,\" she said, 'it's fine'"


def test_nfc_composes_combining_accents() -> None:
    cleaned = clean_text("caf" + "e\u0301")
    assert cleaned == "caf\u00e9"
    assert len(cleaned) == 4


def test_runs_of_spaces_tabs_and_nbsp_collapse() -> None:
    assert clean_text("a    b\t\tc\u00a0\u00a0d") == "a b c d"


def test_lines_are_stripped() -> None:
    assert clean_text("  a  \n   b   ") == "a\nb"


def test_three_or_more_newlines_become_two() -> None:
    assert clean_text("a\n\n\n\n\nb") == "a\n\nb"
    assert clean_text("a\n\nb") == "a\n\nb"


def test_crlf_and_cr_become_newlines() -> None:
    assert clean_text("a\r\nb\rc") == "a\nb\nc"


def test_no_three_newlines_survive_html_conversion() -> None:
    cleaned = clean_text("<div><p>a</p></div><div><ul><li>b</li></ul></div>")
    assert "\n\n\n" not in cleaned
    assert [line for line in cleaned.split("\n") if line] == ["a", "b"]


# --- parse_published_at -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-05-20T10:00:00Z", datetime(2025, 5, 20, 10, 0, tzinfo=UTC)),
        ("2025-05-20T10:00:00+02:00", datetime(2025, 5, 20, 8, 0, tzinfo=UTC)),
        ("2025-05-19T22:30:00-05:00", datetime(2025, 5, 20, 3, 30, tzinfo=UTC)),
        ("2025-05-20T10:00:00", datetime(2025, 5, 20, 10, 0, tzinfo=UTC)),
        ("  2025-05-20T10:00:00Z  ", datetime(2025, 5, 20, 10, 0, tzinfo=UTC)),
        ("Tue, 20 May 2025 10:00:00 +0200", datetime(2025, 5, 20, 8, 0, tzinfo=UTC)),
        ("Tue, 20 May 2025 10:00:00 GMT", datetime(2025, 5, 20, 10, 0, tzinfo=UTC)),
    ],
)
def test_parses_payload_dates_to_utc(value: str, expected: datetime) -> None:
    parsed, source = parse_published_at(value, KAFKA_TS_MS)
    assert source == "PAYLOAD"
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "garbage",
        "2025-13-45T99:00:00Z",
        "1800-01-01T00:00:00Z",
        "Mon, 01 Jan 1800 00:00:00 +0000",
    ],
)
def test_missing_bad_or_ancient_dates_fall_back_to_kafka_timestamp(value: str | None) -> None:
    assert parse_published_at(value, KAFKA_TS_MS) == (KAFKA_TS, "KAFKA_TIMESTAMP")


def test_date_five_years_in_the_future_falls_back() -> None:
    now = datetime.now(UTC)
    future = (now + timedelta(days=5 * 365)).isoformat()
    now_ms = int(now.timestamp() * 1000)
    parsed, source = parse_published_at(future, now_ms)
    assert source == "KAFKA_TIMESTAMP"
    assert parsed == datetime.fromtimestamp(now_ms / 1000, tz=UTC)


def test_date_a_few_hours_ahead_is_kept() -> None:
    # Clock skew of a few hours is normal; it is not an absurd date.
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert parse_published_at(ahead.isoformat(), now_ms) == (ahead, "PAYLOAD")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_out_of_range_dates_fall_back_instead_of_crashing(value: str) -> None:
    assert parse_published_at(value, KAFKA_TS_MS) == (KAFKA_TS, "KAFKA_TIMESTAMP")


# --- canonical_url ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM/a/b", "https://example.com/a/b"),
        ("https://example.com/Case/Sensitive", "https://example.com/Case/Sensitive"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a?utm_source=x&utm_medium=y&id=3", "https://example.com/a?id=3"),
        ("https://example.com/a?fbclid=abc&gclid=def", "https://example.com/a"),
        ("https://example.com/a?UTM_Campaign=x&b=2", "https://example.com/a?b=2"),
        ("https://example.com/a?z=1&a=2&m=3", "https://example.com/a?a=2&m=3&z=1"),
        ("  https://example.com/a  ", "https://example.com/a"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_combines_all_rules() -> None:
    messy = "HTTPS://News.Example.COM:443/story?z=1&utm_source=tw&a=2&fbclid=X#comments"
    assert canonical_url(messy) == "https://news.example.com/story?a=2&z=1"


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("HTTP://Example.com:80/p?b=2&a=1&gclid=x#f")
    assert once is not None
    assert canonical_url(once) == once


@pytest.mark.parametrize("url", [None, "", "   ", "not a url", "/relative/path", "example.com/no-scheme"])
def test_non_urls_have_no_canonical_form(url: str | None) -> None:
    assert canonical_url(url) is None


# --- article_id ---------------------------------------------------------------------


def test_article_id_is_32_hex_chars_and_stable() -> None:
    first = article_id("https://example.com/a", "Title", "Text")
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert article_id("https://example.com/a", "Title", "Text") == first


def test_same_canonical_url_gives_same_id_regardless_of_text() -> None:
    url = "https://example.com/a"
    assert article_id(url, "Title one", "Text one") == article_id(url, "Other title", "Other text")


def test_different_urls_give_different_ids() -> None:
    assert article_id("https://example.com/a", "T", "X") != article_id("https://example.com/b", "T", "X")


def test_without_url_id_depends_on_text_and_title() -> None:
    base = article_id(None, "Title", "Text one")
    assert re.fullmatch(r"[0-9a-f]{32}", base)
    assert article_id(None, "Title", "Text one") == base
    assert article_id(None, "Title", "Text two") != base
    assert article_id(None, "Other title", "Text one") != base


def test_url_id_differs_from_text_id() -> None:
    assert article_id("https://example.com/a", "T", "X") != article_id(None, "T", "X")


# --- normalize end to end -----------------------------------------------------------


def test_normalize_full_article() -> None:
    raw = make_raw(
        "<p>Caf\u00c3\u00a9   reopened.</p><script>track()</script><p>\u201cGood\u201d news.</p>",
        title="  The  \u201cCaf\u00c3\u00a9\u201d  ",
        url="HTTPS://Example.com:443/story?utm_source=x&id=5#top",
        published_at="2025-05-20T12:00:00+02:00",
        source="Example Wire",
        language="EN",
    )
    article = normalize(raw)
    assert article.record is raw.record
    assert article.record.offset == 99 and article.record.partition == 2
    assert article.source_id == "src-1"
    assert [line for line in article.text.split("\n") if line] == ["Café reopened.", '"Good" news.']
    assert article.title == 'The "Café"'
    assert article.published_at == datetime(2025, 5, 20, 10, 0, tzinfo=UTC)
    assert article.published_at_source == "PAYLOAD"
    assert article.url == "HTTPS://Example.com:443/story?utm_source=x&id=5#top"
    assert article.canonical_url == "https://example.com/story?id=5"
    assert article.article_id == article_id("https://example.com/story?id=5", article.title, article.text)
    assert article.source == "Example Wire"
    assert article.language == "en"


def test_normalize_minimal_article_uses_kafka_time_and_text_id() -> None:
    article = normalize(make_raw("Plain text body."))
    assert article.text == "Plain text body."
    assert article.title == ""
    assert article.published_at == KAFKA_TS
    assert article.published_at_source == "KAFKA_TIMESTAMP"
    assert article.url is None and article.canonical_url is None
    assert article.language == "en"  # detected: too short to be anything else
    assert article.article_id == article_id(None, "", "Plain text body.")


def test_same_story_with_different_tracking_params_gets_same_id() -> None:
    a = normalize(make_raw("Version one.", url="https://example.com/s?utm_source=tw"))
    b = normalize(make_raw("Version two, edited.", url="https://EXAMPLE.com/s?fbclid=zzz#x"))
    assert a.article_id == b.article_id


@pytest.mark.parametrize(
    "markup", ["<p>   </p>", "<div><br/>\n\t</div>", "<p>\u00a0</p><p></p>", "<script>x()</script>"]
)
def test_markup_only_text_is_empty_text(markup: str) -> None:
    with pytest.raises(NormalizeError) as info:
        normalize(make_raw(markup))
    assert info.value.reason == "empty_text"


def test_comment_only_html_is_empty_text() -> None:
    with pytest.raises(NormalizeError) as info:
        normalize(make_raw("<!-- nothing here -->"))
    assert info.value.reason == "empty_text"


# --- main text of whole pages, dates in other formats, language, the original kept ---------

PAGE = """<!DOCTYPE html><html><head><title>Storm</title><script>var x = 1;</script></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li><li><a href="/sport">Sport</a></li></ul></nav>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div>
<article><h1>Storm kills two in Sydney</h1>
<p>Two schoolgirls died when a tree fell on them at a reserve at Hornsby Heights in Sydney's north
during a violent storm on Saturday afternoon, police said.</p>
<p>The storm brought down power lines across the city and left thousands of homes without
electricity, the energy supplier said on Sunday.</p></article>
<footer>Copyright 2002 Example News. All rights reserved. Privacy policy. Terms of use.</footer>
</body></html>"""


def test_a_whole_page_keeps_the_article_and_drops_navigation_and_footer() -> None:
    text = clean_text(PAGE)
    assert "Two schoolgirls died when a tree fell on them" in text
    assert "left thousands of homes without electricity" in text
    for boilerplate in ("Home", "cookies", "Copyright", "Privacy policy", "var x"):
        assert boilerplate not in text, boilerplate


def test_the_producers_original_text_is_kept_when_normalization_changed_it() -> None:
    article = normalize(make_raw(PAGE))
    assert article.original_text == PAGE and article.text != PAGE
    assert normalize(make_raw("Already clean text.")).original_text is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("27 November 2026 09:15 CET", datetime(2026, 11, 27, 8, 15, tzinfo=UTC)),
        ("Nov 27, 2026 3:05 PM EST", datetime(2026, 11, 27, 20, 5, tzinfo=UTC)),
        ("2026-11-27 09:15 +0530", datetime(2026, 11, 27, 3, 45, tzinfo=UTC)),
        ("27/11/2026 10:00", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
    ],
)
def test_dates_in_other_common_formats_are_parsed_to_utc(value: str, expected: datetime) -> None:
    parsed, source = parse_published_at(value, KAFKA_TS_MS)
    assert (parsed, source) == (expected, "PAYLOAD")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Le président a appelé à un cessez-le-feu de trente jours en Ukraine, selon l'Élysée.", "fr"),
        ("Die Bundesregierung hat am Montag neue Sanktionen gegen Russland beschlossen.", "de"),
        ("El presidente pidió un alto el fuego de treinta días en Ucrania, informó el gobierno.", "es"),
        ("Iran said its forces had captured one of Iraq's strongest fortifications east of Basra.", "en"),
        ("Shr 10 cts vs 5 cts Net 1,000,000 vs 500,000 Revs 12.5 mln vs 10.1 mln", "en"),
    ],
)
def test_the_language_is_identified_when_the_producer_did_not_say(text: str, language: str) -> None:
    assert normalize(make_raw(text)).language == language


def test_the_producers_language_wins_over_detection() -> None:
    assert normalize(make_raw("Le président a appelé à un cessez-le-feu.", language="en-GB")).language == "en"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="\t\n" + "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "&"), max_size=120))
def test_the_plain_ascii_shortcut_skips_only_what_ftfy_would_leave_alone(text: str) -> None:
    assert _PLAIN_ASCII.fullmatch(text), "the shortcut takes every such text"
    assert ftfy.fix_text(text, normalization="NFC") == text, "and ftfy would not have changed it"
    assert not _PLAIN_ASCII.fullmatch(text + "&amp;") and not _PLAIN_ASCII.fullmatch(text + "\r")


def test_control_characters_in_html_do_not_break_the_parser() -> None:
    # Found by tests/test_fuzz.py: lxml raised ValueError on them (an internal_error dead letter).
    article = normalize(make_raw("<p>Shares\x01 rose<br/>\x1e sharply\x00.</p>"))
    assert article.text == "Shares rose\nsharply."
