"""Backfill sources: planning archives into chunks and reading them back (no Beam, no broker
except for the Kafka source)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.backfill import parse_time, shards
from pipelines.io.archive import (
    CHUNK_RECORDS,
    Chunk,
    ChunkReader,
    SourceError,
    clear_chunk_files,
    done_chunks,
    expand_files,
    in_time_range,
    mark_done,
    plan,
)
from pipelines.io.avro import ENRICHED, write_container_atomically
from pipelines.io.kafka import KafkaSettings
from pipelines.local.broker import EmbeddedBroker
from pipelines.records import KafkaRecord
from tests.kafka_util import produce


def article(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"a{i}",
        "title": f"T{i}",
        "text": f"Text {i}.",
        "date": f"1987-03-{1 + i % 28:02d}T10:00:00",
        **extra,
    }


def write_jsonl(path: Path, rows: list[Any], blank_every: int = 0) -> Path:
    lines = []
    for i, row in enumerate(rows):
        lines.append(row if isinstance(row, str) else json.dumps(row))
        if blank_every and i % blank_every == 0:
            lines.append("")
    data = ("\n".join(lines) + "\n").encode()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fo:
            fo.write(data)
    else:
        path.write_bytes(data)
    return path


def read_all(chunks: list[Chunk], kafka: KafkaSettings | None = None) -> list[KafkaRecord]:
    reader = ChunkReader(kafka)
    try:
        return [r for c in chunks for r in reader.read(c)]
    finally:
        reader.teardown()


def test_jsonl_chunks_cover_every_record_once_and_skip_blank_lines(tmp_path: Path) -> None:
    rows = [article(i) for i in range(CHUNK_RECORDS * 2 + 7)]
    path = write_jsonl(tmp_path / "a.jsonl.gz", rows, blank_every=50)
    chunks = plan([str(path)])
    assert [c.records for c in chunks] == [CHUNK_RECORDS, CHUNK_RECORDS, 7]
    records = read_all(chunks)
    assert [json.loads(r.value)["id"] for r in records] == [r["id"] for r in rows]
    assert all(r.archive == str(path) and r.topic == "" for r in records)
    assert len({r.offset for r in records}) == len(rows), "line numbers are distinct provenance"
    first = records[0]
    assert first.offset == 1 and first.key == b"a0", "line from 1; keyed by id like `newsflow produce`"
    assert records[-1].chunk == chunks[-1].key


def test_chunk_keys_are_deterministic_and_distinct_per_file(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [article(i) for i in range(3)])
    (tmp_path / "sub").mkdir()
    b = write_jsonl(tmp_path / "sub" / "a.jsonl", [article(9)])
    first, again = plan([str(a), str(b)]), plan([str(a), str(b)])
    assert [c.key for c in first] == [c.key for c in again]
    assert len({c.key for c in first}) == 2, "same name, other folder: another key"


def test_reading_chunks_out_of_order_or_twice_gives_the_same_records(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [article(i) for i in range(CHUNK_RECORDS * 3)])
    chunks = plan([str(path)])
    reader = ChunkReader()
    third = [r.offset for r in reader.read(chunks[2])]
    first = [r.offset for r in reader.read(chunks[0])]
    first_again = [r.offset for r in reader.read(chunks[0])]
    assert third[0] == 2 * CHUNK_RECORDS + 1 and first[0] == 1 and first == first_again
    reader.teardown()


def test_directories_globs_and_avro_files(tmp_path: Path) -> None:
    (tmp_path / "d" / "deeper").mkdir(parents=True)
    write_jsonl(tmp_path / "d" / "x.jsonl", [article(1)])
    write_jsonl(tmp_path / "d" / "deeper" / "y.jsonl.gz", [article(2)])
    (tmp_path / "d" / "notes.txt").write_text("not an archive")
    enriched = {
        "article_id": "f" * 32, "source_id": "s-7", "url": "https://ex.org/a", "canonical_url": "https://ex.org/a",
        "title": "Old", "text": "Clean text.", "original_text": "<p>Clean text.</p>",
        "published_at": 541_000_000_000, "published_at_source": "PAYLOAD", "source": "wire", "language": "en",
        "entities": [], "facts": [], "events": [], "kafka": None, "pipeline_version": "0.0.9", "model": "m",
        "processed_at": 1_700_000_000_000,
    }  # fmt: skip
    write_container_atomically(tmp_path / "d" / "deeper" / "old.avro", ENRICHED, [enriched])
    assert [p.name for p in expand_files(str(tmp_path / "d"))] == ["old.avro", "y.jsonl.gz", "x.jsonl"]
    assert [p.name for p in expand_files(str(tmp_path / "d" / "**" / "*.jsonl*"))] == ["y.jsonl.gz", "x.jsonl"]
    records = read_all(plan([str(tmp_path / "d")]))
    assert len(records) == 3
    reprocessed = json.loads(records[0].value)
    # Reprocessing an enriched file starts again from the producer's text, same id and time.
    assert reprocessed["source_id"] == "s-7" and reprocessed["text"] == "<p>Clean text.</p>"
    assert datetime.fromisoformat(reprocessed["published_at"]).timestamp() == 541_000_000
    assert records[0].offset == 0, "Avro records count from 0"


@pytest.mark.parametrize(
    ("spec", "message"),
    [("missing.jsonl", "no such file"), ("notes.txt", "not an archive"), ("empty", "no .jsonl"),
     ("kafka:news.raw", "needs --bootstrap-servers")],
)  # fmt: skip
def test_sources_that_name_nothing_readable_say_why(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=message):
        plan([spec if spec.startswith("kafka:") else str(tmp_path / spec)])


def test_kafka_source_by_partition_offsets_and_time(broker: EmbeddedBroker) -> None:
    values = [json.dumps(article(i)).encode() for i in range(12)]
    produce(broker.bootstrap, "news.raw", values)
    kafka = KafkaSettings(broker.bootstrap)
    whole = plan(["kafka:news.raw"], kafka)
    assert sum(c.records for c in whole) == 12 and whole[0].key == "news.raw-0-000000000"
    assert [r.value for r in read_all(whole, kafka)] == values
    part = read_all(plan(["kafka:news.raw:0:5-8"], kafka), kafka)
    assert [r.offset for r in part] == [5, 6, 7, 8] and part[0].topic == "news.raw"
    # The broker stamps records on receipt: everything here is before "in an hour".
    later = plan(["kafka:news.raw"], kafka, since=datetime.now(UTC).replace(year=2100))
    assert later == []
    with pytest.raises(SourceError, match="does not exist"):
        plan(["kafka:no.such.topic"], kafka)


def test_time_range_filters_archive_records_by_publication(tmp_path: Path) -> None:
    def rec(value: dict[str, Any] | str) -> KafkaRecord:
        data = value.encode() if isinstance(value, str) else json.dumps(value).encode()
        return KafkaRecord("", 0, 1, 0, None, data, archive="a.jsonl")

    since, until = parse_time("1987-03-02"), parse_time("1987-03-04")
    assert in_time_range(rec(article(2)), since, until)  # 1987-03-03
    assert not in_time_range(rec(article(0)), since, until)  # 1987-03-01
    assert not in_time_range(rec(article(3)), since, until), "--to is exclusive"
    assert in_time_range(rec("{not json"), since, until), "kept, for Decode to dead-letter with its reason"
    with pytest.raises(ValueError, match="cannot read"):
        parse_time("the day after")


def test_shards_are_contiguous_and_balanced() -> None:
    chunks = [Chunk(f"k{i}", "jsonl", "a", 0, i, i + 1, 500 if i < 9 else 78) for i in range(10)]
    parts = shards(chunks, 2)
    assert [c for part in parts for c in part] == chunks
    sizes = [sum(c.records for c in part) for part in parts]
    assert len(parts) == 2 and abs(sizes[0] - sizes[1]) <= 500
    assert shards(chunks[:1], 4) == [chunks[:1]]


def test_done_markers_are_per_version_and_clearing_removes_every_day(tmp_path: Path) -> None:
    chunk = Chunk("a.jsonl-0000-000000", "jsonl", "a.jsonl", 0, 1, 3, 2)
    mark_done(str(tmp_path / "state"), chunk, "v1", read=2, skipped=0)
    assert done_chunks(str(tmp_path / "state"), "v1")[chunk.key]["read"] == 2
    assert done_chunks(str(tmp_path / "state"), "v2") == {}, "another version redoes the chunk"
    written = [("enriched", "1987-03-01", ""), ("enriched", "1987-03-02", ""), ("deadletter", "2026-01-01", ".decode"),
               ("deadletter", "2026-01-01", ".entities")]  # fmt: skip
    for out, day, stage in written:
        (tmp_path / "out" / out / f"dt={day}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / out / f"dt={day}" / f"{chunk.key}{stage}.avro").write_bytes(b"x")
    (tmp_path / "out" / "enriched" / "dt=1987-03-01" / "other-000001.avro").write_bytes(b"x")
    assert clear_chunk_files(str(tmp_path / "out"), chunk.key) == 4
    assert [p.name for p in (tmp_path / "out").rglob("*.avro")] == ["other-000001.avro"]


def test_every_stage_that_dead_letters_has_its_chunk_file_name() -> None:
    from pipelines.metrics import SINKS, STAGES
    from pipelines.records import DEAD_LETTER_STAGES

    assert set(DEAD_LETTER_STAGES) == set(STAGES) - {"read", *SINKS}


def test_progress_shows_rate_eta_and_counts(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from pipelines.backfill import BackfillProgress

    counts = {"read": 40.0, "written": 30.0, "kafka": 0.0, "duplicates": 2.0, "dead": 8.0}
    bar = BackfillProgress(100, "bar")
    bar.update(counts, final=True)
    bar.close()
    shown = capsys.readouterr().out
    assert "40/100" in shown and "/s ETA" in shown and "written 30 · dup 2 · dead 8" in shown
    with caplog.at_level("INFO", logger="newsflow.backfill"):
        BackfillProgress(100, "log").update(counts, final=True)
    assert "40/100 articles (40.0 %)" in caplog.text and "ETA" in caplog.text
