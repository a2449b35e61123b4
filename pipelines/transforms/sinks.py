"""Sinks: Kafka topics (Avro single-object encoding) and Avro container files.

Both flush in ``finish_bundle``; the source commits its offsets only after that (bundle
finalization), so a crash replays at most the in-flight bundle. Files are named by the
Kafka offset range they hold and appear atomically (temp file + rename).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import apache_beam as beam
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from pipelines.io.archive import chunk_file_name, safe_name
from pipelines.io.avro import DEAD_LETTER, ENRICHED, FACT, schema, write_container_atomically
from pipelines.io.java_kafka import WriteKafkaJava
from pipelines.io.kafka import KafkaSettings
from pipelines.io.retry import Backoff, KafkaUnavailable
from pipelines.metrics import METRICS, beam_count
from pipelines.records import DeadLetter, EnrichedArticle, FactRecord, KafkaRecord, split_facts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkSettings:
    kafka: KafkaSettings | None  # None: no Kafka sinks (files only)
    output_dir: str | None  # None: no file sinks
    enriched_topic: str = "news.enriched"
    deadletter_topic: str = "news.deadletter"
    facts_topic: str = "news.facts"
    write_duplicates: bool = True  # duplicates are always counted; this decides if they are written
    java_kafka: bool = False  # Kafka sinks through Beam's Java WriteToKafka (--kafka-io java)
    expansion_service: str | None = None  # for java_kafka; None: Beam's default (a jar)


class SinkError(RuntimeError):
    """A sink could not flush; the bundle fails and its offsets are not committed."""


Sinkable = EnrichedArticle | FactRecord | DeadLetter


def _origin(element: Sinkable) -> KafkaRecord:
    return element.record if isinstance(element, DeadLetter) else element.article.record


def _key(element: Sinkable) -> bytes | None:
    """Articles and facts are keyed by article id (one partition per article); dead
    letters keep the input's key."""
    return element.record.key if isinstance(element, DeadLetter) else element.article.article_id.encode()


# Kafka refuses the record itself: no retry helps, so it becomes a dead letter.
_REFUSED = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError, CorruptRecordError)


class _KafkaSinkFn(beam.DoFn):  # type: ignore[misc]
    """Produces each element to ``topic``; waits for every ack in finish_bundle.

    A record Kafka refuses as such (too large, invalid) is replaced by a dead letter (stage
    write, reason refused_by_kafka) on ``dead_topic``; any other failure is retried.
    """

    def __init__(self, kafka: KafkaSettings, topic: str, schema_name: str, sink: str, dead_topic: str) -> None:
        self._kafka = kafka
        self._topic = topic
        self._schema_name = schema_name
        self._sink = sink
        self._dead_topic = dead_topic
        self._pending: list[tuple[Any, Sinkable]] = []

    def setup(self) -> None:
        self._producer = self._kafka.producer()
        self._schema = schema(self._schema_name)
        self._dead_schema = schema(DEAD_LETTER)

    def start_bundle(self) -> None:
        self._pending = []

    def process(self, element: Sinkable) -> None:
        METRICS.records_in.labels(self._sink).inc()
        self._pending.append((self._send(element), element))

    def _send(self, element: Sinkable) -> Any:
        """The send's future; a send that fails at once (too large, no metadata in time) is a
        failed future. Dead letters go to the dead-letter topic, whichever sink made them."""
        topic, codec = (self._dead_topic, self._dead_schema) if isinstance(element, DeadLetter) else (
            self._topic, self._schema)  # fmt: skip
        try:
            return self._producer.send(topic, key=_key(element), value=codec.encode(element.to_avro()))
        except KafkaError as exc:
            return FailedFuture(exc)

    def _refused(self, element: Sinkable, exc: KafkaError) -> DeadLetter:
        METRICS.records_failed.labels(self._sink, "refused_by_kafka").inc()
        METRICS.dead_letters.labels("write").inc()
        log.error("Kafka refused a record for %s (%s); it goes to %s", self._topic, exc, self._dead_topic)
        return DeadLetter("write", "refused_by_kafka", f"{self._topic}: {type(exc).__name__}: {exc}", _origin(element))

    def finish_bundle(self) -> None:
        """Waits for every ack. Records Kafka did not take are sent again with backoff until
        it does (or, with fail_fast, the bundle fails and nothing is committed); records it
        refuses as such are replaced by dead letters."""
        if not self._pending:
            return
        start = time.perf_counter()
        backoff = Backoff("sink", f"writing to {self._topic}", self._kafka.fail_fast)
        waiting = self._pending
        not_written: set[int] = set()
        while True:
            try:  # flush() alone can wait forever on a request to a paused broker
                self._producer.flush(timeout=self._kafka.timeout_ms / 1000)
            except KafkaTimeoutError:
                pass
            failed = [(f, e) for f, e in waiting if f.failed()]
            waiting = [(f, e) for f, e in waiting if not f.is_done]
            # A dead letter refused in turn is retried (and alerted on), never replaced again.
            refused = [(f, e) for f, e in failed if isinstance(f.exception, _REFUSED) and not isinstance(e, DeadLetter)]
            if refused:
                dead = [(e, self._refused(e, f.exception)) for f, e in refused]
                waiting += [(self._send(d), d) for _, d in dead]
                not_written.update(id(e) for e, _ in dead)
                failed = [(f, e) for f, e in failed if id(e) not in not_written]
                if not failed:
                    continue
            if not failed and not waiting:
                break
            error = failed[-1][0].exception if failed else KafkaTimeoutError(f"{len(waiting)} records not acknowledged")
            METRICS.records_failed.labels(self._sink, "send_failed").inc(len(failed))
            METRICS.send_errors.labels(self._topic).inc(len(failed))
            try:
                backoff.wait("send", error)
            except KafkaUnavailable as exc:
                raise SinkError(f"sink {self._sink} could not write to {self._topic}: {exc}") from exc
            # Unacknowledged records stay with the producer, which retries them itself.
            waiting += [(self._send(element), element) for _, element in failed]
        backoff.ok()
        seconds = time.perf_counter() - start
        METRICS.send_latency.labels(self._topic).observe(seconds)
        _written(self._sink, [e for _, e in self._pending if id(e) not in not_written], seconds)
        self._pending = []


class FailedFuture:
    """Stands for a send that raised before it had a future."""

    is_done = True

    def __init__(self, error: KafkaError) -> None:
        self.exception = error

    def failed(self) -> bool:
        return True


class _FileSinkFn(beam.DoFn):  # type: ignore[misc]
    """Buffers a bundle and writes one Avro file per (day, topic, partition)."""

    def __init__(self, folder: str, schema_name: str, sink: str, day_of: Callable[[Any], str]) -> None:
        self._folder = folder
        self._schema_name = schema_name
        self._sink = sink
        self._day_of = day_of
        self._buffer: list[Any] = []

    def start_bundle(self) -> None:
        self._buffer = []

    def process(self, element: Sinkable) -> None:
        METRICS.records_in.labels(self._sink).inc()
        self._buffer.append(element)

    def finish_bundle(self) -> None:
        if not self._buffer:
            return
        start = time.perf_counter()
        groups: dict[tuple[str, str, int], list[Any]] = defaultdict(list)
        for element in self._buffer:
            origin = _origin(element)
            groups[(self._day_of(element), origin.topic or "none", origin.partition)].append(element)
        for (day, topic, partition), items in groups.items():
            path = Path(self._folder) / f"dt={day}" / _file_name(items, topic, partition)
            write_container_atomically(path, self._schema_name, (e.to_avro() for e in items))
        _written(self._sink, self._buffer, time.perf_counter() - start)
        self._buffer = []


def _file_name(items: list[Sinkable], topic: str, partition: int) -> str:
    """A backfill chunk's files are named after the chunk (a bundle is one chunk), so a rerun
    overwrites them; a stream's after the offset range they hold. Each stage has its own
    dead-letter sink, so a chunk's dead letters are named by stage too."""
    chunk = _origin(items[0]).chunk
    if chunk:
        return chunk_file_name(chunk, items[0].stage if isinstance(items[0], DeadLetter) else None)
    offsets = [_origin(e).offset for e in items]
    return f"{safe_name(topic)}-{partition}-{min(offsets):012d}-{max(offsets):012d}.avro"


def _written(sink: str, elements: list[Sinkable], seconds: float) -> None:
    """Count what a sink wrote and how late: from the Kafka timestamp and from publication."""
    now = time.time()
    METRICS.sink_records.labels(sink).inc(len(elements))
    METRICS.records_out.labels(sink).inc(len(elements))
    METRICS.stage_latency.labels(sink).observe(seconds / max(1, len(elements)))
    beam_count(f"{sink}_written", len(elements))
    newest = 0
    for element in elements:
        origin = _origin(element)
        if origin.timestamp_ms > 0:
            METRICS.end_to_end.labels(sink).observe(max(0.0, now - origin.timestamp_ms / 1000))
            newest = max(newest, origin.timestamp_ms)
        if not isinstance(element, DeadLetter):
            published = element.article.published_at.timestamp()
            METRICS.published_to_written.labels(sink).observe(max(0.0, now - published))
    if newest:
        METRICS.last_written.labels(sink).set(newest / 1000)


def _published_day(element: EnrichedArticle | FactRecord) -> str:
    return element.article.published_at.strftime("%Y-%m-%d")


def _failed_day(element: DeadLetter) -> str:
    """By the input's timestamp (so a rerun writes a dead letter to the same folder), else
    by when it failed."""
    ms = element.record.timestamp_ms if element.record.timestamp_ms > 0 else element.failed_at_ms
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _to_kafka_and_files(
    pcoll: beam.PCollection, s: SinkSettings, topic: str, schema_name: str, name: str, day_of: Callable[[Any], str]
) -> None:
    """The two sinks of an output: Kafka ``topic`` and ``<out>/<name>/dt=.../`` files."""
    if s.kafka is not None and s.java_kafka:
        encode = partial(_encoded, schema_name)
        pcoll | "ToKafka" >> WriteKafkaJava(s.kafka, topic, encode, s.expansion_service)
    elif s.kafka is not None:
        sink = _KafkaSinkFn(s.kafka, topic, schema_name, f"kafka_{name}", s.deadletter_topic)
        pcoll | "ToKafka" >> beam.ParDo(sink)
    if s.output_dir is not None:
        folder = str(Path(s.output_dir) / name)
        pcoll | "ToFiles" >> beam.ParDo(_FileSinkFn(folder, schema_name, f"files_{name}", day_of))


def _encoded(schema_name: str, element: Sinkable) -> tuple[bytes, bytes]:
    """(key, value) as the Python Kafka sink writes them (no key: empty, see WriteKafkaJava)."""
    return _key(element) or b"", schema(schema_name).encode(element.to_avro())


class WriteAvro(beam.PTransform):  # type: ignore[misc]
    """Enriched articles to Kafka ``news.enriched`` and to ``<out>/enriched/dt=.../``."""

    def __init__(self, settings: SinkSettings) -> None:
        super().__init__()
        self._s = settings

    def expand(self, enriched: beam.PCollection) -> None:
        s = self._s
        if not s.write_duplicates:
            enriched = enriched | "SkipDuplicates" >> beam.Filter(lambda e: e.article.duplicate_of is None)
        _to_kafka_and_files(enriched, s, s.enriched_topic, ENRICHED, "enriched", _published_day)


class WriteFacts(beam.PTransform):  # type: ignore[misc]
    """Each fact on its own to Kafka ``news.facts`` and to ``<out>/facts/dt=.../``."""

    def __init__(self, settings: SinkSettings) -> None:
        super().__init__()
        self._s = settings

    def expand(self, enriched: beam.PCollection) -> None:
        s = self._s
        facts = enriched | "Split" >> beam.FlatMap(split_facts)
        _to_kafka_and_files(facts, s, s.facts_topic, FACT, "facts", _published_day)


class WriteDeadLetters(beam.PTransform):  # type: ignore[misc]
    """Dead letters to Kafka ``news.deadletter`` and to ``<out>/deadletter/dt=.../``."""

    def __init__(self, settings: SinkSettings) -> None:
        super().__init__()
        self._s = settings

    def expand(self, dead: beam.PCollection) -> None:
        s = self._s
        counted = dead | "Count" >> beam.Map(_count_dead)
        _to_kafka_and_files(counted, s, s.deadletter_topic, DEAD_LETTER, "deadletter", _failed_day)


def _count_dead(element: DeadLetter) -> DeadLetter:
    METRICS.dead_letters.labels(element.stage).inc()
    return element
