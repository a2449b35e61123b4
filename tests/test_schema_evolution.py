"""Schema evolution: each version of EnrichedArticle stays compatible with the ones before it
both ways, so old consumers keep reading and new ones read old records.

v2 added events, count bounds and the GDELT type; v3 the original text, duplicates and
entity groups; v4 the archive a backfill read the record from."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastavro

from pipelines.io.avro import ENRICHED, SCHEMA_DIR, schema

V1 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "newsflow.EnrichedArticle.v1.avsc").read_text()))
V2 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "newsflow.EnrichedArticle.v2.avsc").read_text()))


def v1_record() -> dict[str, Any]:
    return {
        "article_id": "a" * 32, "source_id": "s", "url": None, "canonical_url": None, "title": "t",
        "text": "Two sailors died.", "published_at": 1_700_000_000_000, "published_at_source": "PAYLOAD",
        "source": None, "language": "en", "entities": [],
        "facts": [{"kind": "killed", "count": 2, "qualifier": None, "victims": "Two sailors", "actor": None,
                   "means": None, "place": None, "event_date": None, "evidence": "Two sailors died.",
                   "start": 0, "end": 17, "confidence": 0.9}],
        "kafka": None, "pipeline_version": "0.1.0", "model": "m", "processed_at": 1_700_000_000_000,
    }  # fmt: skip


def roundtrip(record: dict[str, Any], writer: Any, reader: Any) -> dict[str, Any]:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, record)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, writer, reader)  # type: ignore[return-value]


def test_new_reader_reads_v1_records_with_defaults() -> None:
    got = roundtrip(v1_record(), V1, schema(ENRICHED).parsed)
    assert got["events"] == []
    assert got["facts"][0]["count"] == 2 and got["facts"][0]["gdelt_type"] is None
    assert got["facts"][0]["count_min"] is None


def test_v1_reader_reads_new_records() -> None:
    record = v1_record()
    record["facts"][0].update(count_min=2, count_max=2, gdelt_type="KILL")
    record["events"] = [{"type": "assault", "modality": "occurred", "trigger": "attack", "source_actor": "Iraq",
                         "target_actor": None, "place": None, "event_date": None, "count": None,
                         "evidence": "x", "start": 0, "end": 1, "confidence": 0.7}]  # fmt: skip
    got = roundtrip(record, schema(ENRICHED).parsed, V1)
    assert "events" not in got and got["facts"][0]["kind"] == "killed"


def test_v2_records_read_as_v3_with_no_duplicate_and_no_original() -> None:
    record = v1_record()
    record["events"] = []
    got = roundtrip(record, V2, schema(ENRICHED).parsed)
    assert got["duplicate_of"] is None and got["original_text"] is None and got["facts"][0]["count"] == 2


def test_v2_reader_reads_v3_records() -> None:
    record = {**v1_record(), "events": [], "original_text": "<p>Two sailors died.</p>", "duplicate_of": "b" * 32,
              "duplicate_kind": "near", "duplicate_similarity": 0.8}  # fmt: skip
    got = roundtrip(record, schema(ENRICHED).parsed, V2)
    assert "duplicate_of" not in got and got["text"] == "Two sailors died."


def test_history_file_is_the_previous_version() -> None:
    assert Path(SCHEMA_DIR / "history" / "newsflow.EnrichedArticle.v1.avsc").exists()
    assert schema(ENRICHED).definition != json.loads(
        (SCHEMA_DIR / "history/newsflow.EnrichedArticle.v1.avsc").read_text()
    )


def _with_fact_types(path: Path) -> Any:
    """v3 refers to CasualtyFact and EventFact by name, from their own (unchanged) files."""
    named: dict[str, Any] = {}
    for name in ("CasualtyFact", "EventFact"):
        fastavro.parse_schema(json.loads((SCHEMA_DIR / f"newsflow.{name}.avsc").read_text()), named_schemas=named)
    return fastavro.parse_schema(json.loads(path.read_text()), named_schemas=named)


V3 = _with_fact_types(SCHEMA_DIR / "history" / "newsflow.EnrichedArticle.v3.avsc")


def v3_record() -> dict[str, Any]:
    return {**v1_record(), "events": [], "original_text": None, "duplicate_of": None, "duplicate_kind": None,
            "duplicate_similarity": None, "entity_groups": []}  # fmt: skip


def test_v3_records_read_as_v4_with_no_archive_origin() -> None:
    got = roundtrip(v3_record(), V3, schema(ENRICHED).parsed)
    assert got["archive"] is None and got["facts"][0]["count"] == 2


def test_v3_reader_reads_backfilled_v4_records() -> None:
    record = {**v3_record(), "archive": {"path": "reuters.jsonl.gz", "record": 12}}
    got = roundtrip(record, schema(ENRICHED).parsed, V3)
    assert "archive" not in got and got["text"] == "Two sailors died."
