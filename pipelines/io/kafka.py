"""Kafka in and out: a pure-Python unbounded Splittable DoFn source and a shared producer.

Beam's Python ``ReadFromKafka`` is a Java cross-language transform that no local runner
here can run, so the source is our own SDF over kafka-python (see DESIGN.md):

- one element per topic partition, restriction ``OffsetRange(start, 2**63-1)``
  (streaming) or ``OffsetRange(start, end)`` (bounded: stop at the high watermark seen
  at start, or at the first offset at/after a timestamp);
- start from the group's committed offset, else earliest (``start_from`` overrides);
- a blocking poll with a bounded timeout (FnApiRunner ignores resume delays, so a
  non-blocking poll would busy-loop), then ``defer_remainder()`` to checkpoint;
- offsets committed from a bundle finalizer, i.e. only after every sink in the fused
  stage flushed that bundle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pipelines.metrics import METRICS, beam_count
from pipelines.records import KafkaRecord
from pipelines.run_control import CONTROL

log = logging.getLogger(__name__)

UNBOUNDED_END = 2**63 - 1
# Tansu (and small clusters) answer a long fetch wait better than many short ones.
_FETCH_MAX_WAIT_MS = 100


@dataclass(frozen=True)
class KafkaSettings:
    """Connection settings shared by the source and the sinks (picklable)."""

    bootstrap_servers: str
    client: dict[str, Any] = field(default_factory=dict)

    def consumer(self, **extra: Any) -> KafkaConsumer:
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": _FETCH_MAX_WAIT_MS,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
            **self.client,
            **extra,
        }
        return KafkaConsumer(**config)

    def producer(self) -> KafkaProducer:
        return _shared_producer(self)


@dataclass(frozen=True)
class SourceSettings:
    kafka: KafkaSettings
    group_id: str
    start_from: str = "committed"  # committed | earliest | latest
    stop_at: str | None = None  # None: run forever; "latest"; or an ISO 8601 timestamp
    poll_timeout_ms: int = 200
    max_poll_records: int = 64


def discover_partitions(kafka: KafkaSettings, topics: list[str], timeout_s: float = 30.0) -> list[TopicPartition]:
    """Every partition of ``topics``; raises ValueError naming a topic the broker lacks."""
    consumer = kafka.consumer()
    try:
        found: list[TopicPartition] = []
        for topic in topics:
            deadline = time.monotonic() + timeout_s
            parts = consumer.partitions_for_topic(topic)
            while not parts and time.monotonic() < deadline:
                time.sleep(0.2)
                consumer.topics()  # refreshes metadata
                parts = consumer.partitions_for_topic(topic)
            if not parts:
                raise ValueError(f"topic {topic!r} does not exist on {kafka.bootstrap_servers}")
            found += [TopicPartition(topic, p) for p in sorted(parts)]
        return found
    finally:
        consumer.close()


def high_watermark(consumer: KafkaConsumer, tp: TopicPartition, timeout_s: float = 10.0) -> int:
    """The partition's high watermark as a fetch reports it.

    Some brokers (Tansu) answer ListOffsets with the last batch's base offset + 1, which
    undercounts; the fetch response's high watermark is right everywhere.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=100, max_records=1, update_offsets=False)
        hw = consumer.highwater(tp)
        if hw is not None:
            return int(hw)
    return int(consumer.end_offsets([tp])[tp])


def offset_at(consumer: KafkaConsumer, tp: TopicPartition, when: datetime, end: int | None = None) -> int:
    """The first offset with a timestamp at or after ``when``; ``end`` (default: the high
    watermark) when there is none."""
    found = consumer.offsets_for_times({tp: int(when.timestamp() * 1000)})[tp]
    # Kafka answers None when no record is that late; Tansu answers offset 0, timestamp -1.
    if found is not None and found.timestamp >= 0:
        return int(found.offset)
    return high_watermark(consumer, tp) if end is None else end


class ReadPartitionFn(beam.DoFn, RestrictionProvider):  # type: ignore[misc]
    """Reads one Kafka partition per element, checkpointing after every poll.

    It is its own RestrictionProvider, so the restriction logic sees the settings.
    """

    def __init__(self, settings: SourceSettings) -> None:
        self._settings = settings
        self._consumers: dict[TopicPartition, KafkaConsumer] = {}
        self._lock: threading.Lock | None = None  # made in setup(): locks do not pickle

    def setup(self) -> None:
        self._consumers = {}
        self._lock = threading.Lock()

    def initial_restriction(self, tp: TopicPartition) -> OffsetRange:
        s = self._settings
        consumer = s.kafka.consumer(group_id=s.group_id)
        try:
            consumer.assign([tp])
            earliest = int(consumer.beginning_offsets([tp])[tp])
            if s.start_from == "earliest":
                start = earliest
            elif s.start_from == "latest":
                start = high_watermark(consumer, tp)
            else:
                committed = consumer.committed(tp)
                start = earliest if committed is None else max(int(committed), earliest)
            if s.stop_at is None:
                stop = UNBOUNDED_END
            elif s.stop_at == "latest":
                consumer.seek(tp, start)
                stop = high_watermark(consumer, tp)
            else:
                stop = offset_at(consumer, tp, datetime.fromisoformat(s.stop_at.replace("Z", "+00:00")))
            log.info(
                "partition %s-%d: reading offsets [%d, %s)",
                tp.topic,
                tp.partition,
                start,
                "end" if stop == UNBOUNDED_END else stop,
            )
            return OffsetRange(start, max(start, stop))
        finally:
            consumer.close()

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element: TopicPartition, restriction: OffsetRange) -> int:
        return int(restriction.size())

    def _consumer(self, tp: TopicPartition) -> KafkaConsumer:
        consumer = self._consumers.get(tp)
        if consumer is None:
            s = self._settings
            consumer = s.kafka.consumer(group_id=s.group_id, max_poll_records=s.max_poll_records)
            consumer.assign([tp])
            self._consumers[tp] = consumer
        return consumer

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        tp: TopicPartition,
        finalizer: Any = beam.DoFn.BundleFinalizerParam,
        # Beam passes these two by keyword: they must come after the positional params.
        tracker: Any = beam.DoFn.RestrictionParam(),  # a ThreadsafeRestrictionTracker at run time
        watermark: Any = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider()),
    ) -> Iterator[TimestampedValue]:
        restriction = tracker.current_restriction()
        if CONTROL.stopping():
            tracker.try_claim(restriction.stop)  # nothing more this run; nothing claimed, nothing committed
            return
        assert self._lock is not None, "setup() not called"
        with self._lock:
            consumer = self._consumer(tp)
            if consumer.position(tp) != restriction.start:
                consumer.seek(tp, restriction.start)
            poll_start = time.perf_counter()
            polled = consumer.poll(timeout_ms=self._settings.poll_timeout_ms).get(tp, [])
            poll_seconds = time.perf_counter() - poll_start
            position = consumer.position(tp)
            hw = consumer.highwater(tp)
        claimed: list[KafkaRecord] = []
        finished = False
        for rec in polled:
            if rec.offset < restriction.start:
                continue
            if CONTROL.stopping():
                break
            if not tracker.try_claim(rec.offset):
                finished = True  # bounded range: reached its end
                break
            CONTROL.take()  # counts toward --max-articles; the last one sets the stop
            value = rec.value if rec.value is not None else b""
            claimed.append(KafkaRecord(tp.topic, tp.partition, rec.offset, rec.timestamp, rec.key, value))
        next_offset = claimed[-1].offset + 1 if claimed else restriction.start
        read = METRICS.kafka_records_read.labels(tp.topic, str(tp.partition))
        read_bytes = METRICS.kafka_bytes_read.labels(tp.topic, str(tp.partition))
        if claimed:
            METRICS.records_in.labels("read").inc(len(polled))
            METRICS.records_out.labels("read").inc(len(claimed))
            METRICS.stage_latency.labels("read").observe(poll_seconds / len(claimed))
        for record in claimed:
            read.inc()
            read_bytes.inc(len(record.value))
            yield TimestampedValue(record, record.timestamp_ms / 1000.0)
        if hw is not None:
            METRICS.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, hw - next_offset))
        if next_offset > restriction.start:
            beam_count("records_read", next_offset - restriction.start)
            finalizer.register(lambda: self._commit(tp, next_offset))
        if claimed:
            ts = Timestamp(micros=max(r.timestamp_ms for r in claimed) * 1000)
            current = watermark.current_watermark()
            if current is None or ts > current:
                watermark.set_watermark(ts)
        if finished:
            return
        bounded_done = restriction.stop != UNBOUNDED_END and max(position or 0, next_offset) >= restriction.stop
        if CONTROL.stopping() or bounded_done:
            tracker.try_claim(restriction.stop)
            return
        tracker.defer_remainder()

    def _commit(self, tp: TopicPartition, offset: int) -> None:
        """Runs after the bundle's sinks flushed (bundle finalization)."""
        assert self._lock is not None
        with self._lock:
            try:
                self._consumer(tp).commit({tp: OffsetAndMetadata(offset, "", -1)})
                METRICS.commits.labels("ok").inc()
            except Exception as exc:  # noqa: BLE001 - the next bundle's commit covers these offsets
                METRICS.commits.labels("failed").inc()
                log.warning("offset commit %s-%d@%d failed: %s", tp.topic, tp.partition, offset, exc)

    def teardown(self) -> None:
        for consumer in self._consumers.values():
            consumer.close()
        self._consumers = {}


class ReadArticles(beam.PTransform):  # type: ignore[misc]
    """Kafka records from every partition of ``topics``, as ``KafkaRecord``s."""

    def __init__(self, settings: SourceSettings, topics: list[str]) -> None:
        super().__init__()
        self._settings = settings
        self._topics = topics

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        partitions = discover_partitions(self._settings.kafka, self._topics)
        fn = ReadPartitionFn(self._settings)
        return (
            pbegin
            | "Partitions" >> beam.Create(partitions)
            | "ReadPartitions" >> beam.ParDo(fn).with_output_types(KafkaRecord)
        )


_producers: dict[tuple[str, tuple[tuple[str, Any], ...]], KafkaProducer] = {}
_producers_lock = threading.Lock()


def _shared_producer(settings: KafkaSettings) -> KafkaProducer:
    """One thread-safe producer per process and settings, shared by every sink."""
    key = (settings.bootstrap_servers, tuple(sorted(settings.client.items())))
    with _producers_lock:
        producer = _producers.get(key)
        if producer is None:
            producer = KafkaProducer(
                bootstrap_servers=settings.bootstrap_servers.split(","),
                acks="all",
                linger_ms=5,
                max_request_size=16 * 1024 * 1024,
                **{k: v for k, v in settings.client.items() if k in _PRODUCER_KEYS},
            )
            _producers[key] = producer
        return producer


_PRODUCER_KEYS = frozenset(
    {
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "api_version",
        "client_id",
    }
)


def close_producers() -> None:
    """Flush and close the shared producers (end of a run)."""
    with _producers_lock:
        for producer in _producers.values():
            producer.close(timeout=10)
        _producers.clear()
