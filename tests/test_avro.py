"""Unit tests for pipelines.io.avro: schema files, single-object encoding, container files."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from pipelines.io.avro import (
    DEAD_LETTER,
    ENRICHED,
    FACT,
    RAW,
    SCHEMA_DIR,
    SINGLE_OBJECT_MARKER,
    read_container,
    schema,
    write_container_atomically,
)
from pipelines.records import (
    Article,
    CasualtyFact,
    DeadLetter,
    EnrichedArticle,
    Entity,
    EventFact,
    KafkaRecord,
    SchemaError,
    split_facts,
)

ALL_SCHEMAS = [RAW, ENRICHED, DEAD_LETTER, FACT]

# --- an independent CRC-64-AVRO (Rabin) fingerprint, straight from the Avro spec ---------

_EMPTY = 0xC15D213AA4D7A795
_MASK64 = (1 << 64) - 1


def _fp_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = ((fp >> 1) ^ (_EMPTY & -(fp & 1))) & _MASK64
        table.append(fp)
    return table


_FP_TABLE = _fp_table()


def rabin_fingerprint64(data: bytes) -> int:
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


def spec_single_object_header(canonical_form: str) -> bytes:
    return b"\xc3\x01" + rabin_fingerprint64(canonical_form.encode("utf-8")).to_bytes(8, "little")


@pytest.mark.parametrize(
    ("canonical", "signed_fingerprint"),
    [
        # Test vectors from Apache Avro's share/test/data/schema-tests.txt (signed 64-bit values).
        ('"null"', 7195948357588979594),
        ('"boolean"', -6970731678124411036),
        ('"int"', 8247732601305521295),
    ],
)
def test_reference_fingerprint_matches_avro_test_vectors(canonical: str, signed_fingerprint: int) -> None:
    fp = rabin_fingerprint64(canonical.encode())
    assert struct.unpack("<q", fp.to_bytes(8, "little"))[0] == signed_fingerprint


# --- sample records -------------------------------------------------------------------

RECORD = KafkaRecord(
    topic="news.raw", partition=3, offset=42, timestamp_ms=1_747_735_200_000, key=b"key-1", value=b'{"x": 1}'
)
PROCESSED_MS = 1_747_735_300_000


def millis_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def enriched_article() -> EnrichedArticle:
    article = Article(
        record=RECORD,
        article_id="0123456789abcdef0123456789abcdef",
        source_id="wire-42",
        title="Storm hits Kyiv",
        text="At least five people were killed in Kyiv.",
        published_at=datetime(2025, 5, 20, 10, 0, tzinfo=UTC),
        published_at_source="PAYLOAD",
        url="https://example.com/a?utm_source=x",
        canonical_url="https://example.com/a",
        source="Example Wire",
        language="en",
    )
    entity = Entity(text="Kyiv", label="GPE", start=36, end=40)
    fact = CasualtyFact(
        kind="killed",
        count=5,
        evidence="At least five people were killed in Kyiv.",
        start=0,
        end=41,
        confidence=0.75,
        qualifier="at_least",
        victims="people",
        place="Kyiv",
    )
    event = EventFact("assault", "occurred", "shelling", "Russian shelling hit Kyiv.", 42, 67, 0.75, "Russia")
    return EnrichedArticle(article, (entity,), (fact,), "en_core_web_sm-3.8.0", PROCESSED_MS, (event,))


def enriched_datum() -> dict[str, Any]:
    return enriched_article().to_avro()


def dead_letter_datum() -> dict[str, Any]:
    return DeadLetter("decode", "invalid_json", "not JSON: ...", RECORD, PROCESSED_MS).to_avro()


def expected_after_read(datum: dict[str, Any], millis_fields: tuple[str, ...]) -> dict[str, Any]:
    """Avro readers return timestamp-millis fields as UTC datetimes."""
    expected = dict(datum)
    for name in millis_fields:
        if expected[name] is not None:
            expected[name] = millis_to_datetime(expected[name])
    return expected


def expected_enriched(datum: dict[str, Any]) -> dict[str, Any]:
    expected = expected_after_read(datum, ("published_at", "processed_at"))
    expected["kafka"] = expected_after_read(datum["kafka"], ("timestamp",))
    return expected


# --- schema files -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SCHEMAS)
def test_schema_file_parses(name: str) -> None:
    definition = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
    loaded = schema(name)
    assert loaded.name == name
    assert loaded.definition == definition
    assert f"{definition['namespace']}.{definition['name']}" == name
    parsed: Any = loaded.parsed
    assert parsed["name"] == name


def test_schema_is_cached() -> None:
    assert schema(ENRICHED) is schema(ENRICHED)


def test_unknown_schema_raises_schema_error() -> None:
    with pytest.raises(SchemaError):
        schema("newsflow.DoesNotExist")


def test_the_schemas_have_different_fingerprints() -> None:
    assert len({schema(name).fingerprint for name in ALL_SCHEMAS}) == len(ALL_SCHEMAS)


def test_shared_fact_records_are_inlined_where_first_used() -> None:
    """EnrichedArticle and Fact both use CasualtyFact/EventFact from their own files; the
    fingerprint must be that of the complete schema, which other Avro readers compute."""
    for name in (ENRICHED, FACT):
        canonical = to_parsing_canonical_form(schema(name).parsed)
        assert '"name":"newsflow.CasualtyFact","type":"record"' in canonical
        assert '"name":"newsflow.EventFact","type":"record"' in canonical
    # The split into files did not change what EnrichedArticle v2 writers stamped.
    v2 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history/newsflow.EnrichedArticle.v2.avsc").read_text()))
    assert rabin_fingerprint64(to_parsing_canonical_form(v2).encode()).to_bytes(8, "little").hex() == "9ed41ff9fd9ef5db"


# --- single-object encoding -------------------------------------------------------------


def test_each_fact_is_its_own_record_with_its_article() -> None:
    enriched = enriched_article()
    records = split_facts(enriched)
    assert [r.fact_id for r in records] == [f"{enriched.article.article_id}/c0", f"{enriched.article.article_id}/e0"]
    decoded = [schema(FACT).decode(schema(FACT).encode(r.to_avro())) for r in records]
    casualty, event = decoded
    assert casualty["fact_type"] == "casualty" and casualty["event"] is None
    assert casualty["casualty"] == enriched.facts[0].__dict__
    assert event["fact_type"] == "event" and event["casualty"] is None
    assert event["event"]["type"] == "assault" and event["event"]["source_actor"] == "Russia"
    assert {d["article_id"] for d in decoded} == {enriched.article.article_id}
    assert {d["source_id"] for d in decoded} == {enriched.article.source_id}
    assert casualty["published_at"] == enriched.article.published_at
    assert casualty["url"] == enriched.article.url and casualty["model"] == enriched.model


def test_an_article_without_facts_gives_no_fact_records() -> None:
    enriched = enriched_article()
    assert split_facts(EnrichedArticle(enriched.article, enriched.entities, (), enriched.model)) == []


def test_enriched_article_round_trips() -> None:
    datum = enriched_datum()
    data = schema(ENRICHED).encode(datum)
    decoded = schema(ENRICHED).decode(data)
    assert decoded == expected_enriched(datum)
    assert decoded["entities"][0] == {"text": "Kyiv", "label": "GPE", "start": 36, "end": 40}
    assert decoded["facts"][0]["qualifier"] == "at_least"
    assert decoded["facts"][0]["actor"] is None
    assert decoded["kafka"]["offset"] == 42


def test_enriched_article_without_kafka_origin_round_trips() -> None:
    datum = enriched_datum()
    datum["kafka"] = None
    decoded = schema(ENRICHED).decode(schema(ENRICHED).encode(datum))
    assert decoded["kafka"] is None
    assert decoded["article_id"] == datum["article_id"]


def test_dead_letter_round_trips() -> None:
    datum = dead_letter_datum()
    decoded = schema(DEAD_LETTER).decode(schema(DEAD_LETTER).encode(datum))
    assert decoded == expected_after_read(datum, ("timestamp", "failed_at"))
    assert decoded["original"] == b'{"x": 1}'
    assert decoded["key"] == b"key-1"


@pytest.mark.parametrize("name", ALL_SCHEMAS)
def test_header_is_marker_and_8_byte_fingerprint(name: str) -> None:
    s = schema(name)
    assert SINGLE_OBJECT_MARKER == b"\xc3\x01"
    assert len(s.fingerprint) == 8
    assert s.header == b"\xc3\x01" + s.fingerprint


def test_encoded_bytes_start_with_header_then_binary_datum() -> None:
    datum = dead_letter_datum()
    s = schema(DEAD_LETTER)
    data = s.encode(datum)
    assert data[:10] == s.header
    body = io.BytesIO()
    fastavro.schemaless_writer(body, s.parsed, datum)
    assert data[10:] == body.getvalue()


@pytest.mark.parametrize("name", ALL_SCHEMAS)
def test_fingerprint_is_spec_crc64_avro_little_endian(name: str) -> None:
    s = schema(name)
    canonical = to_parsing_canonical_form(s.parsed)
    assert s.header == spec_single_object_header(canonical)


def test_decodes_bytes_from_a_spec_conforming_producer() -> None:
    s = schema(RAW)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, s.parsed, {"source_id": "s1", "text": "hello"})
    data = spec_single_object_header(to_parsing_canonical_form(s.parsed)) + body.getvalue()
    assert s.decode(data)["text"] == "hello"


def test_bytes_written_with_another_schema_raise_schema_error() -> None:
    data = schema(DEAD_LETTER).encode(dead_letter_datum())
    with pytest.raises(SchemaError) as info:
        schema(ENRICHED).decode(data)
    assert info.value.reason == "invalid_avro"


def test_bytes_without_marker_raise_schema_error() -> None:
    data = schema(DEAD_LETTER).encode(dead_letter_datum())
    with pytest.raises(SchemaError):
        schema(DEAD_LETTER).decode(data[2:])


def test_truncated_body_raises_schema_error() -> None:
    data = schema(DEAD_LETTER).encode(dead_letter_datum())
    with pytest.raises(SchemaError):
        schema(DEAD_LETTER).decode(data[:-3])


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.pop("article_id"), id="missing-required-field"),
        pytest.param(lambda d: d.update(title=None), id="null-for-string"),
        pytest.param(lambda d: d.update(published_at_source="NOT_A_SYMBOL"), id="bad-enum-symbol"),
        pytest.param(lambda d: d["facts"][0].update(count="five"), id="string-for-int"),
        pytest.param(lambda d: d["entities"].append({"text": "x"}), id="incomplete-nested-record"),
        pytest.param(lambda d: d.update(kafka={"topic": "t"}), id="union-matches-no-branch"),
    ],
)
def test_record_that_does_not_fit_raises_schema_error(change: Any) -> None:
    datum = enriched_datum()
    change(datum)
    with pytest.raises(SchemaError):
        schema(ENRICHED).encode(datum)


def test_dead_letter_with_str_original_raises_schema_error() -> None:
    datum = dead_letter_datum()
    datum["original"] = "not bytes"
    with pytest.raises(SchemaError):
        schema(DEAD_LETTER).encode(datum)


# --- container files --------------------------------------------------------------------


def test_write_container_atomically_round_trips(tmp_path: Path) -> None:
    first = enriched_datum()
    second = enriched_datum()
    second["article_id"] = "f" * 32
    second["facts"] = []
    path = tmp_path / "out" / "enriched.avro"

    assert write_container_atomically(path, ENRICHED, iter([first, second])) == 2

    assert read_container(path) == [expected_enriched(first), expected_enriched(second)]
    with open(path, "rb") as fo:
        reader = fastavro.reader(fo)
        writer_schema: Any = reader.writer_schema
        assert writer_schema["name"] == ENRICHED
        assert reader.metadata["avro.codec"] == "deflate"
    assert sorted(p.name for p in path.parent.iterdir()) == ["enriched.avro"]
    assert not list(path.parent.glob(".*.tmp-*"))


def test_write_container_atomically_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "dead.avro"
    write_container_atomically(path, DEAD_LETTER, [dead_letter_datum()] * 3)
    assert write_container_atomically(path, DEAD_LETTER, [dead_letter_datum()]) == 1
    assert len(read_container(path)) == 1
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_empty_container_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "empty.avro"
    assert write_container_atomically(path, DEAD_LETTER, []) == 0
    assert read_container(path) == []


def test_failed_write_leaves_previous_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "dead.avro"
    write_container_atomically(path, DEAD_LETTER, [dead_letter_datum()])
    bad = dead_letter_datum()
    del bad["stage"]
    with pytest.raises(Exception):  # noqa: B017 - any error; the point is the old file survives
        write_container_atomically(path, DEAD_LETTER, [dead_letter_datum(), bad])
    assert read_container(path) == [expected_after_read(dead_letter_datum(), ("timestamp", "failed_at"))]
