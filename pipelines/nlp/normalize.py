"""Normalize a raw article: clean text, UTC time, canonical URL, stable id.

A first version: HTML to text (lxml), mojibake and quote repair (ftfy), Unicode NFC,
whitespace clean-up. Pure functions; ``NormalizeError`` marks an input that cannot be
made into an article.

    >>> clean_text("<p>Caf\u00c3\u00a9  \u201cnews\u201d</p>")
    'Café "news"'
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import ftfy
import lxml.etree
import lxml.html

from pipelines.records import Article, NormalizeError, RawArticle

_HTML_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|/[a-zA-Z][a-zA-Z0-9]*|!--)[^<>]{0,2000}>")
_BLOCK_TAGS = frozenset(
    "p div br li h1 h2 h3 h4 h5 h6 tr table section article header footer blockquote pre ul ol".split()
)
_DROP_TAGS = ("script", "style", "noscript", "template", "head")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_TRACKING_PARAMS = re.compile(r"^(utm_.*|fbclid|gclid|mc_cid|mc_eid|ref|ref_src|cmpid|ocid)$", re.I)
# A clock more than this far ahead of the broker is taken as a bad date, not news from the future.
_MAX_FUTURE = timedelta(days=2)


def looks_like_html(text: str) -> bool:
    return _HTML_TAG.search(text) is not None


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment or page, with block elements on their own lines."""
    try:
        root = lxml.html.fromstring(markup)
    except lxml.etree.ParserError as exc:
        if "empty" in str(exc).lower():
            return ""  # only comments or whitespace: no text, reported as empty_text by normalize()
        raise NormalizeError(f"unparseable HTML: {exc}", "bad_html") from exc
    except ValueError as exc:
        raise NormalizeError(f"unparseable HTML: {exc}", "bad_html") from exc
    for bad in root.iter(*_DROP_TAGS):
        bad.drop_tree()
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.lower() in _BLOCK_TAGS:
            el.tail = "\n" + (el.tail or "")
            if el.tag.lower() != "br":
                el.text = "\n" + (el.text or "")
    return str(root.text_content())


def clean_text(text: str) -> str:
    """HTML to text, mojibake and curly quotes repaired, NFC, tidy whitespace."""
    if looks_like_html(text):
        text = html_to_text(text)
    text = ftfy.fix_text(text, normalization="NFC")
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def parse_published_at(value: str | None, fallback_ms: int) -> tuple[datetime, str]:
    """``published_at`` in UTC and where it came from ("PAYLOAD" or "KAFKA_TIMESTAMP").

    Accepts ISO 8601 and RFC 2822; a value without a zone is taken as UTC. Absent,
    unparseable or absurd (far future, before 1900) values fall back to the Kafka
    record timestamp, flagged as such.
    """
    fallback = datetime.fromtimestamp(fallback_ms / 1000, tz=UTC)
    parsed = _parse_date(value) if value else None
    if parsed is None:
        return fallback, "KAFKA_TIMESTAMP"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00+01:00" has no UTC equivalent
        return fallback, "KAFKA_TIMESTAMP"
    if parsed.year < 1900 or parsed > max(fallback, datetime.now(UTC)) + _MAX_FUTURE:
        return fallback, "KAFKA_TIMESTAMP"
    return parsed, "PAYLOAD"


def _parse_date(value: str) -> datetime | None:
    value = value.strip()
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def canonical_url(url: str | None) -> str | None:
    """Lower-case scheme and host, no fragment, no tracking parameters, sorted query."""
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc.lower()
    scheme = parts.scheme.lower()
    if (scheme, host.rsplit(":", 1)[-1]) in {("http", "80"), ("https", "443")}:
        host = host.rsplit(":", 1)[0]
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING_PARAMS.match(k))
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query), ""))


def article_id(canonical: str | None, title: str, text: str) -> str:
    """Stable id: the canonical URL's hash, else the normalized title and text's."""
    basis = f"url:{canonical}" if canonical else f"text:{title}\n{text}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


def normalize(raw: RawArticle) -> Article:
    """Turn a decoded payload into a clean Article.

    Raises:
        NormalizeError: the text is empty once markup and whitespace are removed.
    """
    text = clean_text(raw.text)
    if not text:
        raise NormalizeError("no text left after removing markup and whitespace", "empty_text")
    title = clean_text(raw.title) if raw.title else ""
    published_at, time_source = parse_published_at(raw.published_at, raw.record.timestamp_ms)
    canonical = canonical_url(raw.url)
    return Article(
        record=raw.record,
        article_id=article_id(canonical, title, text),
        source_id=raw.source_id,
        title=title,
        text=text,
        published_at=published_at,
        published_at_source=time_source,
        url=raw.url,
        canonical_url=canonical,
        source=raw.source,
        language=raw.language.lower() if raw.language else None,
    )
