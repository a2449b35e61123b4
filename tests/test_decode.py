"""Unit tests for pipelines.io.decode.decode_record (JSON and Avro single-object payloads)."""

from __future__ import annotations

import json

import pytest

from pipelines.io.avro import RAW, schema
from pipelines.io.decode import MAX_BYTES, decode_record
from pipelines.records import DecodeError, KafkaRecord, RawArticle

TIMESTAMP_MS = 1_747_735_200_000  # 2025-05-20T10:00:00Z

FULL_FIELDS = {
    "source_id": "wire-42",
    "url": "https://example.com/news/1",
    "title": "Storm hits coast",
    "text": "A storm hit the coast on Monday.",
    "published_at": "2025-05-20T10:00:00Z",
    "source": "Example Wire",
    "language": "en",
}


def make_record(value: bytes, offset: int = 7) -> KafkaRecord:
    return KafkaRecord(topic="news.raw", partition=0, offset=offset, timestamp_ms=TIMESTAMP_MS, key=None, value=value)


def as_json(fields: object) -> bytes:
    return json.dumps(fields).encode("utf-8")


def decode_error(value: bytes, max_bytes: int = MAX_BYTES) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_record(make_record(value), max_bytes)
    return info.value


# --- successful decodes -------------------------------------------------------------


def test_json_with_all_fields() -> None:
    record = make_record(as_json(FULL_FIELDS))
    raw = decode_record(record)
    assert isinstance(raw, RawArticle)
    assert raw.record is record
    assert raw.source_id == "wire-42"
    assert raw.url == "https://example.com/news/1"
    assert raw.title == "Storm hits coast"
    assert raw.text == "A storm hit the coast on Monday."
    assert raw.published_at == "2025-05-20T10:00:00Z"
    assert raw.source == "Example Wire"
    assert raw.language == "en"


def test_json_without_optional_fields_gets_defaults() -> None:
    raw = decode_record(make_record(as_json({"source_id": "s1", "text": "Only text."})))
    assert raw.source_id == "s1"
    assert raw.text == "Only text."
    assert raw.title == ""
    assert raw.url is None
    assert raw.published_at is None
    assert raw.source is None
    assert raw.language is None


def test_json_null_and_empty_optional_fields_become_none() -> None:
    fields = {"source_id": "s1", "text": "x", "title": None, "url": "", "published_at": None, "language": ""}
    raw = decode_record(make_record(as_json(fields)))
    assert raw.title == ""
    assert raw.url is None
    assert raw.published_at is None
    assert raw.language is None


def test_json_unknown_fields_are_ignored() -> None:
    raw = decode_record(make_record(as_json({"source_id": "s1", "text": "x", "extra": [1, 2]})))
    assert (raw.source_id, raw.text) == ("s1", "x")


def test_avro_single_object_decodes_to_same_fields_as_json() -> None:
    payload = schema(RAW).encode(FULL_FIELDS)
    assert payload[:2] == b"\xc3\x01"
    from_avro = decode_record(make_record(payload))
    from_json = decode_record(make_record(as_json(FULL_FIELDS)))
    for name in ("source_id", "url", "title", "text", "published_at", "source", "language"):
        assert getattr(from_avro, name) == getattr(from_json, name) == FULL_FIELDS[name]


def test_avro_without_optional_fields_uses_schema_defaults() -> None:
    payload = schema(RAW).encode({"source_id": "s1", "text": "Only text."})
    raw = decode_record(make_record(payload))
    assert (raw.source_id, raw.text, raw.title) == ("s1", "Only text.", "")
    assert raw.url is None and raw.published_at is None and raw.source is None and raw.language is None


def test_message_of_exactly_max_bytes_is_accepted() -> None:
    value = as_json({"source_id": "s1", "text": "x"})
    raw = decode_record(make_record(value), max_bytes=len(value))
    assert raw.text == "x"


# --- failures and their reason codes ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(b"", "empty_message", id="empty-bytes"),
        pytest.param(b"\xff\xfe{}", "invalid_utf8", id="invalid-utf8"),
        pytest.param(b'{"source_id": "s1", "text": ', "invalid_json", id="truncated-json"),
        pytest.param(b"{not json}", "invalid_json", id="not-json"),
        pytest.param(b"[" * 100_000, "too_deep", id="deeply-nested-array"),
        pytest.param(b'{"a":' * 100_000, "too_deep", id="deeply-nested-object"),
        pytest.param(b"[1, 2, 3]", "wrong_shape", id="json-array"),
        pytest.param(b"42", "wrong_shape", id="json-number"),
        pytest.param(b'"text"', "wrong_shape", id="json-string"),
        pytest.param(b"null", "wrong_shape", id="json-null"),
        pytest.param(b'{"source_id": "s1", "text": 5}', "wrong_shape", id="text-is-int"),
        pytest.param(b'{"source_id": 5, "text": "x"}', "wrong_shape", id="source_id-is-int"),
        pytest.param(b'{"source_id": "s1", "text": "x", "title": ["a"]}', "wrong_shape", id="title-is-list"),
        pytest.param(b'{"source_id": "s1"}', "missing_text", id="missing-text"),
        pytest.param(b'{"source_id": "s1", "text": null}', "missing_text", id="null-text"),
        pytest.param(b'{"source_id": "s1", "text": " \\n\\t  "}', "empty_text", id="whitespace-text"),
        pytest.param(b'{"text": "x"}', "missing_source_id", id="missing-source_id"),
        pytest.param(b'{"text": "x", "source_id": ""}', "missing_source_id", id="empty-source_id"),
    ],
)
def test_json_failures_carry_reason(value: bytes, reason: str) -> None:
    assert decode_error(value).reason == reason


def test_too_large() -> None:
    value = as_json({"source_id": "s1", "text": "x" * 100})
    assert decode_error(value, max_bytes=len(value) - 1).reason == "too_large"


def test_size_is_checked_before_parsing() -> None:
    # Invalid UTF-8 that is also too large must be rejected for its size, without parsing.
    assert decode_error(b"\xff" * 64, max_bytes=10).reason == "too_large"


def test_whitespace_text_in_avro_is_empty_text() -> None:
    payload = schema(RAW).encode({"source_id": "s1", "text": "   "})
    assert decode_error(payload).reason == "empty_text"


def test_avro_with_unknown_fingerprint_is_invalid_avro() -> None:
    good = schema(RAW).encode(FULL_FIELDS)
    unknown = b"\xc3\x01" + b"\x00" * 8 + good[10:]
    assert unknown[2:10] != good[2:10]
    assert decode_error(unknown).reason == "invalid_avro"


@pytest.mark.parametrize("cut", [1, 5, 20], ids=lambda n: f"minus-{n}-bytes")
def test_truncated_avro_body_is_invalid_avro(cut: int) -> None:
    good = schema(RAW).encode(FULL_FIELDS)
    assert decode_error(good[:-cut]).reason == "invalid_avro"


def test_avro_header_without_body_is_invalid_avro() -> None:
    good = schema(RAW).encode(FULL_FIELDS)
    assert decode_error(good[:10]).reason == "invalid_avro"


def test_avro_with_invalid_union_branch_is_invalid_avro() -> None:
    # source_id "s" (02 73), then union index 2 (zigzag 04) for url: the union has only 2 branches.
    header = schema(RAW).encode(FULL_FIELDS)[:10]
    assert decode_error(header + b"\x02s\x04").reason == "invalid_avro"


def test_archive_field_names_id_and_date_are_accepted_when_the_usual_ones_are_missing() -> None:
    reuters = {"id": "reuters21578/7", "date": "1987-02-26T15:14:36", "text": "Cocoa rose.", "title": "COCOA"}
    raw = decode_record(make_record(as_json(reuters)))
    assert (raw.source_id, raw.published_at) == ("reuters21578/7", "1987-02-26T15:14:36")
    assert decode_record(make_record(as_json({"id": 41, "text": "x"}))).source_id == "41"
    both = decode_record(make_record(as_json({**reuters, "source_id": "s", "published_at": "2025-01-01"})))
    assert (both.source_id, both.published_at) == ("s", "2025-01-01"), "the usual names win"
    with pytest.raises(DecodeError, match="source_id"):
        decode_record(make_record(as_json({"id": True, "text": "x"})))
