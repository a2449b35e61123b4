"""Normalize a raw article: clean text, UTC time, language, canonical URL, stable id.

HTML pages to their main text (trafilatura, which drops navigation, ads and comments;
fragments and pages it cannot read go through lxml), mojibake and curly-quote repair
(ftfy), Unicode NFC, whitespace clean-up; dates in any common format (ISO 8601, RFC 2822,
then dateparser) to UTC; the language identified. The producer's text is kept beside the
clean one. Pure functions; ``NormalizeError`` marks an input that cannot be made into an
article.

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

from pipelines.nlp.language import detect_language
from pipelines.records import Article, NormalizeError, RawArticle

_HTML_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|/[a-zA-Z][a-zA-Z0-9]*|!--)[^<>]{0,2000}>")
# A long news page has a few thousand tags; hundreds of thousands are an attack (deep
# nesting that the parser would silently cut, or parse time), not an article.
MAX_HTML_TAGS = 50_000
_ANY_TAG = re.compile(r"<[a-zA-Z/!]")
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


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment or page, with block elements on their own lines."""
    # lxml refuses control characters (and ftfy would remove them from the text anyway).
    markup = _NOT_XML.sub("", markup)
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


_PAGE = re.compile(r"<(?:html|body|article|main)\b", re.I)
# trafilatura keeps only the main text; below this share of the visible text, it probably
# cut real content (short fragments), so the whole visible text is kept instead.
_MIN_MAIN_SHARE = 0.2


def main_text(markup: str) -> str:
    """The article's main text from a whole page (trafilatura), else all visible text."""
    visible = html_to_text(markup)
    if not _PAGE.search(markup):
        return visible
    import trafilatura  # imported here: ~0.3 s, only paid when pages arrive

    try:
        main = trafilatura.extract(markup, include_comments=False, include_tables=False, favor_precision=True)
    except Exception:  # noqa: BLE001 - trafilatura failing on odd markup is not the article's fault
        main = None
    if main and len(main) >= _MIN_MAIN_SHARE * len(visible.strip()):
        return str(main)
    return visible


# Printable ASCII, tabs and newlines, no "&" (an HTML entity ftfy would unescape).
_PLAIN_ASCII = re.compile(r"[\t\n\x20-\x25\x27-\x7e]*")


def clean_text(text: str) -> str:
    """HTML to text, mojibake and curly quotes repaired, NFC, tidy whitespace.

    Raises:
        NormalizeError: markup with more than ``MAX_HTML_TAGS`` tags (html_bomb).
    """
    if looks_like_html(text):
        tags = len(_ANY_TAG.findall(text))
        if tags > MAX_HTML_TAGS:
            raise NormalizeError(f"{tags:,} HTML tags, more than the {MAX_HTML_TAGS:,} of any real page", "html_bomb")
        text = main_text(text)
    if not _PLAIN_ASCII.fullmatch(text):  # ftfy leaves plain ASCII as it is: skip its ~1 ms
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
    parsed, _problem = checked_date(value, fallback)
    return (fallback, "KAFKA_TIMESTAMP") if parsed is None else (parsed, "PAYLOAD")


def checked_date(value: str | None, received: datetime) -> tuple[datetime | None, str | None]:
    """(the date in UTC, None), or (None, why not): "invalid_date" (not a date) or
    "implausible_date" (before 1900, or over two days after it was ``received``).
    An absent value is (None, None)."""
    parsed = _parse_date(value) if value and value.strip() else None
    if parsed is None:
        return None, "invalid_date" if value and value.strip() else None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00+01:00" has no UTC equivalent
        return None, "implausible_date"
    if parsed.year < 1900 or parsed > max(received, datetime.now(UTC)) + _MAX_FUTURE:
        return None, "implausible_date"
    return parsed, None


_DATE_PROBLEMS = {
    "invalid_date": "not a date (ISO 8601, RFC 2822 or a dateparser format)",
    "implausible_date": "before 1900 or more than two days in the future",
}

# email.utils alone reads "Nov 27, 2026 3:05 PM EST" as 03:05 UTC: only true RFC 2822 goes there.
_RFC2822 = re.compile(
    r"^(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}(?::\d{2})? (?:[+-]\d{4}|GMT|UTC?|[ECMP][SD]T|Z)$"
)


def _parse_date(value: str) -> datetime | None:
    value = value.strip()
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    if _RFC2822.match(value):
        try:
            return email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            pass
    return _dateparser(value)


def _dateparser(value: str) -> datetime | None:
    """ "27 November 2026 09:15 CET", "Nov 27, 2026 3:05 PM EST", "2026-11-27 09:15 +0530"..."""
    if len(value) > 100:
        return None
    import dateparser  # imported here: ~0.5 s, only paid when a date needs it

    try:
        parsed = dateparser.parse(value, settings={"RETURN_AS_TIMEZONE_AWARE": True, "TO_TIMEZONE": "UTC"})
    except (ValueError, OverflowError, TypeError):
        return None
    return parsed


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


def normalize(raw: RawArticle, bad_dates: str = "dead-letter") -> Article:
    """Turn a decoded payload into a clean Article.

    An absent ``published_at`` becomes the Kafka timestamp (flagged KAFKA_TIMESTAMP); one
    that is not a date or is absurd is an error, unless ``bad_dates`` is "fallback".

    Raises:
        NormalizeError: the text is empty once markup and whitespace are removed
            (empty_text); a bad ``published_at`` (invalid_date, implausible_date).
    """
    received = datetime.fromtimestamp(raw.record.timestamp_ms / 1000, tz=UTC)
    published, problem = checked_date(raw.published_at, received)
    if problem and bad_dates != "fallback":
        raise NormalizeError(f"published_at {(raw.published_at or '')[:80]!r} is {_DATE_PROBLEMS[problem]}", problem)
    text = clean_text(raw.text)
    if not text:
        raise NormalizeError("no text left after removing markup and whitespace", "empty_text")
    title = clean_text(raw.title) if raw.title else ""
    language = raw.language.lower().split("-")[0] if raw.language else detect_language(text)
    published_at, time_source = (published, "PAYLOAD") if published else (received, "KAFKA_TIMESTAMP")
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
        language=language,
        original_text=raw.text if raw.text != text else None,
    )
