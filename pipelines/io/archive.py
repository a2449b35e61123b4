"""Archive sources for a backfill, cut into fixed chunks: the unit of work and of naming.

A source is a JSON Lines file (plain or gzip), an Avro container file, a directory or a
glob of them, or a Kafka topic (``kafka:TOPIC``, ``kafka:TOPIC:PARTITION`` or
``kafka:TOPIC:PARTITION:FIRST-LAST``, offsets inclusive). :func:`plan` turns sources
into :class:`Chunk`\\ s of at most ``CHUNK_RECORDS`` records; :class:`ChunkReader` reads
one back as ``KafkaRecord``\\ s. No Beam here.

Chunk keys are deterministic (file name + hash of its absolute path + chunk number, or
topic + partition + offset / CHUNK_RECORDS), and the backfill names its output files
after them, so a rerun overwrites the files of a chunk instead of adding copies.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import fastavro
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pipelines.io.kafka import KafkaSettings, discover_partitions, high_watermark, offset_at
from pipelines.io.produce import key_for, open_archive
from pipelines.nlp.normalize import parse_published_at
from pipelines.records import DEAD_LETTER_STAGES, KafkaRecord

# Fixed, not an option: chunk keys name output files, so another size would name the
# same records differently and a rerun would add copies instead of overwriting.
CHUNK_RECORDS = 500
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json.gz")
AVRO_SUFFIXES = (".avro",)
_KAFKA = re.compile(r"^kafka:(?P<topic>[\w.\-]+)(?::(?P<partition>\d+)(?::(?P<first>\d+)-(?P<last>\d+))?)?$")


class SourceError(ValueError):
    """A source that names nothing readable; the message says which and why."""


@dataclass(frozen=True)
class Chunk:
    """Records ``[start, stop)`` of one source: lines from 1 (JSON Lines), records from 0
    (Avro) or offsets (Kafka). ``records`` is how many it holds (at most, for Kafka)."""

    key: str
    kind: str  # jsonl | avro | kafka
    path: str  # file path, or topic
    partition: int
    start: int
    stop: int
    records: int
    bytes: int = 0  # input size, to balance workers by work rather than count (0: unknown)


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(AVRO_SUFFIXES):
        return "avro"
    return None


def expand_files(spec: str) -> list[Path]:
    """The archive files a path, directory or glob names, sorted; SourceError if none."""
    if any(c in spec for c in "*?["):
        found = [Path(p) for p in glob.glob(spec, recursive=True)]
    elif Path(spec).is_dir():
        found = [p for p in Path(spec).rglob("*") if p.is_file()]
    elif Path(spec).is_file():
        if _kind(Path(spec)) is None:
            raise SourceError(f"{spec}: not an archive (expected {', '.join(JSONL_SUFFIXES + AVRO_SUFFIXES)})")
        return [Path(spec)]
    else:
        raise SourceError(f"{spec}: no such file or directory")
    files = sorted(p for p in found if p.is_file() and _kind(p) is not None and not p.name.startswith("."))
    if not files:
        raise SourceError(f"{spec}: no .jsonl[.gz] or .avro files there")
    return files


def _file_key(path: Path) -> str:
    digest = hashlib.sha1(str(path.resolve()).encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{safe_name(path.name)}-{digest}"


def safe_name(name: str) -> str:
    """A file or topic name as part of an output file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def plan_file(path: Path) -> list[Chunk]:
    """Chunks of CHUNK_RECORDS records of one archive file (one pass to count them)."""
    kind, key = _kind(path), _file_key(path)
    chunks: list[Chunk] = []
    if kind == "avro":
        with open(path, "rb") as fo:
            blocks = [(block.num_records, block.size) for block in fastavro.block_reader(fo)]
        total = sum(n for n, _ in blocks)
        per_record = sum(size for _, size in blocks) // max(total, 1)
        for i, start in enumerate(range(0, total, CHUNK_RECORDS)):
            stop = min(total, start + CHUNK_RECORDS)
            n = stop - start
            chunks.append(Chunk(f"{key}-{i:06d}", "avro", str(path), 0, start, stop, n, n * per_record))
        return chunks
    # JSON Lines: a chunk is CHUNK_RECORDS non-blank lines; blank lines are not records.
    start, count, size, line_no = 1, 0, 0, 0
    with open_archive(path) as fo:
        for line_no, line in enumerate(fo, start=1):
            if line.strip():
                count += 1
                size += len(line)
                if count == CHUNK_RECORDS:
                    chunks.append(
                        Chunk(f"{key}-{len(chunks):06d}", "jsonl", str(path), 0, start, line_no + 1, count, size)
                    )
                    start, count, size = line_no + 1, 0, 0
    if count:
        chunks.append(Chunk(f"{key}-{len(chunks):06d}", "jsonl", str(path), 0, start, line_no + 1, count, size))
    return chunks


def plan_kafka(
    spec: str, kafka: KafkaSettings, since: datetime | None = None, until: datetime | None = None
) -> list[Chunk]:
    """Chunks of a topic's offset range: the whole retained log up to the high watermark at
    planning time, cut by record timestamp (``since``/``until``) or by explicit offsets.
    Chunks are aligned to multiples of CHUNK_RECORDS, so reruns name them alike."""
    m = _KAFKA.match(spec)
    if m is None:
        raise SourceError(f"{spec}: expected kafka:TOPIC[:PARTITION[:FIRST-LAST]]")
    topic = m["topic"]
    try:
        partitions = discover_partitions(kafka, [topic], wait=False)
    except KafkaError as exc:
        raise SourceError(f"{spec}: {exc}") from exc
    if m["partition"] is not None:
        partitions = [tp for tp in partitions if tp.partition == int(m["partition"])]
        if not partitions:
            raise SourceError(f"{spec}: topic {topic} has no partition {m['partition']}")
    chunks: list[Chunk] = []
    consumer = kafka.consumer()
    try:
        for tp in partitions:
            consumer.assign([tp])
            first = int(consumer.beginning_offsets([tp])[tp])
            end = high_watermark(consumer, tp)
            start, stop = first, end
            if m["first"] is not None:
                start, stop = max(first, int(m["first"])), min(end, int(m["last"]) + 1)
            if since is not None:
                start = max(start, offset_at(consumer, tp, since, end))
            if until is not None:
                stop = min(stop, offset_at(consumer, tp, until, end))
            offset = start
            while offset < stop:
                index = offset // CHUNK_RECORDS
                upto = min(stop, (index + 1) * CHUNK_RECORDS)
                key = f"{safe_name(topic)}-{tp.partition}-{index:09d}"
                chunks.append(Chunk(key, "kafka", topic, tp.partition, offset, upto, upto - offset))
                offset = upto
    finally:
        consumer.close()
    return chunks


def plan(
    specs: list[str],
    kafka: KafkaSettings | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Chunk]:
    """Every chunk of every source, in order; a file named twice is read once."""
    chunks: list[Chunk] = []
    seen: set[Path] = set()
    for spec in specs:
        if spec.startswith("kafka:"):
            if kafka is None:
                raise SourceError(f"{spec}: a Kafka source needs --bootstrap-servers")
            chunks += plan_kafka(spec, kafka, since, until)
            continue
        for path in expand_files(spec):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                chunks += plan_file(path)
    return chunks


def _avro_to_json(rec: dict[str, Any]) -> bytes:
    """An Avro record (RawArticle, or an EnrichedArticle to reprocess) as the JSON a producer
    would send: reprocessing starts again from the producer's text when it was kept."""
    published = rec.get("published_at")
    if isinstance(published, datetime):
        published = published.astimezone(UTC).isoformat()
    fields = {
        "source_id": rec.get("source_id") or rec.get("id"),
        "url": rec.get("url"),
        "title": rec.get("title"),
        "text": rec.get("original_text") or rec.get("text"),
        "published_at": published,
        "source": rec.get("source"),
        "language": rec.get("language"),
    }
    return json.dumps({k: v for k, v in fields.items() if v is not None}, ensure_ascii=False).encode()


class ChunkReader:
    """Reads chunks back as records. Keeps the last file open, so the chunks of one file
    read in order cost one pass (a gzip stream cannot seek)."""

    def __init__(self, kafka: KafkaSettings | None = None) -> None:
        self._kafka = kafka
        # The open file: path, next line/record, its rows, its handle.
        self._file: tuple[str, int, Iterator[tuple[int, Any]], IO[bytes]] | None = None
        self._consumer: KafkaConsumer | None = None

    def read(self, chunk: Chunk) -> Iterator[KafkaRecord]:
        if chunk.kind == "kafka":
            yield from self._read_kafka(chunk)
            return
        mtime_ms = int(os.stat(chunk.path).st_mtime * 1000)
        rows, handle = self._rows(chunk)
        position = chunk.start
        while position < chunk.stop:
            try:
                index, row = next(rows)
            except StopIteration:
                handle.close()
                raise SourceError(f"{chunk.path} ended before record {chunk.stop}: it changed since planning") from None
            position = index + 1
            if chunk.kind == "jsonl":
                value = row.rstrip(b"\r\n")
                if not value.strip():
                    continue
            else:
                value = _avro_to_json(row)
            yield KafkaRecord("", 0, index, mtime_ms, key_for(value), value, archive=chunk.path, chunk=chunk.key)
        # Kept open only once the chunk was read whole: an abandoned read reopens next time.
        self._file = (chunk.path, position, rows, handle)

    def _rows(self, chunk: Chunk) -> tuple[Iterator[tuple[int, Any]], IO[bytes]]:
        kept, self._file = self._file, None
        if kept is not None and kept[0] == chunk.path and kept[1] <= chunk.start:
            _, position, rows, handle = kept
        else:
            if kept is not None:
                kept[3].close()
            handle = open_archive(Path(chunk.path)) if chunk.kind == "jsonl" else open(chunk.path, "rb")  # noqa: SIM115
            position = 1 if chunk.kind == "jsonl" else 0
            rows = enumerate(handle if chunk.kind == "jsonl" else fastavro.reader(handle), start=position)
        for _ in range(chunk.start - position):
            next(rows)
        return rows, handle

    def _read_kafka(self, chunk: Chunk) -> Iterator[KafkaRecord]:
        if self._kafka is None:
            raise SourceError(f"kafka:{chunk.path} needs --bootstrap-servers")
        if self._consumer is None:
            self._consumer = self._kafka.consumer(max_poll_records=CHUNK_RECORDS)
        consumer, tp = self._consumer, TopicPartition(chunk.path, chunk.partition)
        consumer.assign([tp])
        consumer.seek(tp, chunk.start)
        empty_polls = 0
        while consumer.position(tp) < chunk.stop:
            polled = consumer.poll(timeout_ms=500).get(tp, [])
            if not polled:
                empty_polls += 1
                hw = consumer.highwater(tp)
                if hw is not None and consumer.position(tp) >= hw:
                    return  # the log ends before the planned stop (compacted or deleted records)
                if empty_polls >= 60:
                    raise SourceError(f"kafka:{chunk.path}:{chunk.partition}: no records at {consumer.position(tp)}")
                continue
            empty_polls = 0
            for rec in polled:
                if chunk.start <= rec.offset < chunk.stop:
                    value = rec.value if rec.value is not None else b""
                    yield KafkaRecord(
                        chunk.path, chunk.partition, rec.offset, rec.timestamp, rec.key, value, chunk=chunk.key
                    )
            if polled[-1].offset + 1 >= chunk.stop:
                return

    def close(self) -> None:
        if self._file is not None:
            self._file[3].close()
            self._file = None

    def teardown(self) -> None:
        self.close()
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def in_time_range(record: KafkaRecord, since: datetime | None, until: datetime | None) -> bool:
    """Whether an archive record was published in ``[since, until)``, by the date Normalize
    would give it (its ``published_at`` or ``date``, else the file's time). A record that is
    not a JSON object is kept: the Decode stage dead-letters it with its reason."""
    if since is None and until is None:
        return True
    try:
        fields = json.loads(record.value)
    except (ValueError, RecursionError):
        return True
    if not isinstance(fields, dict):
        return True
    value = fields.get("published_at") or fields.get("date")
    published, _ = parse_published_at(value if isinstance(value, str) else None, record.timestamp_ms)
    return (since is None or published >= since) and (until is None or published < until)


# Progress of a backfill: one small JSON file per finished chunk, written after the chunk's
# sinks flushed (bundle finalization), so a rerun skips exactly the chunks that are whole.
def done_marker(state_dir: str, key: str) -> Path:
    return Path(state_dir) / "done" / f"{key}.json"


def mark_done(state_dir: str, chunk: Chunk, version: str, read: int, skipped: int) -> None:
    path = done_marker(state_dir, chunk.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"chunk": chunk.key, "version": version, "read": read, "skipped": skipped}))
    os.replace(tmp, path)


def done_chunks(state_dir: str, version: str) -> dict[str, dict[str, Any]]:
    """Markers of the chunks finished by this pipeline and model version (others are redone)."""
    found: dict[str, dict[str, Any]] = {}
    for path in (Path(state_dir) / "done").glob("*.json"):
        try:
            marker = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # unreadable: the chunk is redone
        if marker.get("version") == version:
            found[marker["chunk"]] = marker
    return found


def chunk_file_name(key: str, dead_letter_stage: str | None = None) -> str:
    return f"{key}.{dead_letter_stage}.avro" if dead_letter_stage else f"{key}.avro"


def clear_chunk_files(output_dir: str | None, key: str) -> int:
    """Delete what an earlier attempt wrote for a chunk (in every ``dt=`` folder), so that
    a redone chunk leaves only its new files, even where its records moved day or output."""
    if not output_dir:
        return 0
    names = {
        "enriched": [chunk_file_name(key)],
        "facts": [chunk_file_name(key)],
        "deadletter": [chunk_file_name(key, stage) for stage in DEAD_LETTER_STAGES],
    }
    removed = 0
    for output, files in names.items():
        folder = Path(output_dir) / output
        if not folder.is_dir():
            continue
        for day in os.scandir(folder):
            for name in files:
                path = Path(day.path) / name
                if day.is_dir() and path.exists():
                    path.unlink()
                    removed += 1
    return removed
