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
from functools import partial
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from pipelines.io.retry import Backoff, KafkaUnavailable, MissingTopic, retrying
from pipelines.io.security import kafka_client_config, redact
from pipelines.metrics import METRICS, beam_count
from pipelines.records import KafkaRecord
from pipelines.run_control import CONTROL

log = logging.getLogger(__name__)

UNBOUNDED_END = 2**63 - 1
# Tansu (and small clusters) answer a long fetch wait better than many short ones.
_FETCH_MAX_WAIT_MS = 100
# Seconds without records after which the source checks that the broker still answers.
_PROBE_EVERY_S = 10.0
# A partition's poll blocks the whole bundle, and with it the records other partitions
# already returned (they are written when the bundle ends): while another partition of
# this worker has data, an idle one is polled for at most this long. Measured: one busy and
# one idle partition at 8 articles/s, p99 latency 3.4 s before, see README "Performance".
# Once the bundle holds records, the remaining partitions are not waited for at all.
_SHORT_POLL_MS = 5
_BUSY_S = 1.0


@dataclass(frozen=True)
class KafkaSettings:
    """Connection settings shared by the source and the sinks (picklable).

    ``client`` holds extra kafka-python settings (security: SASL, TLS); it is left out of
    the repr, so a password in it never reaches a log line or an error message.
    """

    bootstrap_servers: str
    client: dict[str, Any] = field(default_factory=dict, repr=False)
    timeout_ms: int = 30_000  # a request unanswered this long fails (then: retry, or exit if fail_fast)
    max_request_bytes: int = 16 * 1024 * 1024  # larger records are refused by the producer itself
    fail_fast: bool = False

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v!r}" for k, v in sorted(redact(self.client).items()))
        return f"KafkaSettings({self.bootstrap_servers!r}{', ' + extra if extra else ''}, fail_fast={self.fail_fast})"

    __str__ = __repr__

    @classmethod
    def from_options(cls, o: Any, bootstrap_servers: str | None = None) -> KafkaSettings:
        """From NewsflowOptions: servers, security (options, then NEWSFLOW_KAFKA_* variables),
        request timeout and --fail-fast."""
        return cls(
            bootstrap_servers or o.kafka_bootstrap_servers,
            client=kafka_client_config(o),
            timeout_ms=o.kafka_timeout_ms,
            max_request_bytes=o.kafka_max_request_bytes,
            fail_fast=o.fail_fast,
        )

    def consumer(self, **extra: Any) -> KafkaConsumer:
        """A consumer, once Kafka answers (retried with backoff unless fail_fast)."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": _FETCH_MAX_WAIT_MS,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
            "request_timeout_ms": self.timeout_ms,
            "bootstrap_timeout_ms": self.timeout_ms,
            **self.client,
            **extra,
        }
        what = f"connecting to Kafka at {self.bootstrap_servers}"
        return retrying("source", "connect", what, self.fail_fast, lambda: KafkaConsumer(**config))

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
    process_index: int = 0  # this process reads every process_count-th partition, from this one
    process_count: int = 1


def discover_partitions(kafka: KafkaSettings, topics: list[str], wait: bool = True) -> list[TopicPartition]:
    """Every partition of ``topics``. A missing topic is waited for like an unreachable
    broker (retry with backoff), unless ``kafka.fail_fast`` or not ``wait``: then it
    raises MissingTopic."""
    consumer = kafka.consumer()
    try:

        def partitions(topic: str) -> list[TopicPartition]:
            consumer.topics()  # refreshes metadata; raises while the broker is down
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                raise MissingTopic(f"topic {topic!r} does not exist on {kafka.bootstrap_servers}")
            return [TopicPartition(topic, p) for p in sorted(parts)]

        found: list[TopicPartition] = []
        for topic in topics:
            what = f"looking up topic {topic!r} on {kafka.bootstrap_servers}"
            lookup = partial(partitions, topic)
            found += retrying("source", "metadata", what, kafka.fail_fast, lookup) if wait else lookup()
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
        self._backoffs: dict[TopicPartition, Backoff] = {}
        self._last_contact: dict[TopicPartition, float] = {}
        self._last_data: dict[TopicPartition, float] = {}
        self._bundle_has_records = False

    def start_bundle(self) -> None:
        self._bundle_has_records = False

    def _poll_timeout_ms(self, tp: TopicPartition, now: float) -> int:
        if self._bundle_has_records:
            return 0  # they are written only when the bundle ends: take what is here, go on
        others_busy = any(now - t < _BUSY_S for other, t in self._last_data.items() if other != tp)
        timeout = self._settings.poll_timeout_ms
        return min(timeout, _SHORT_POLL_MS) if others_busy else timeout

    def initial_restriction(self, tp: TopicPartition) -> OffsetRange:
        kafka = self._settings.kafka
        what = f"reading the offsets of {tp.topic}-{tp.partition} from {kafka.bootstrap_servers}"
        return retrying("source", "metadata", what, kafka.fail_fast, lambda: self._initial_restriction(tp))

    def _initial_restriction(self, tp: TopicPartition) -> OffsetRange:
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
        got = self._poll(tp, restriction.start)
        if isinstance(got, float):  # Kafka failed: nothing claimed, the same offsets are polled after the backoff
            if CONTROL.sleep(got):
                tracker.try_claim(restriction.stop)
                return
            tracker.defer_remainder()
            return
        polled, poll_seconds, position, hw = got
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
            self._bundle_has_records = True
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

    def _backoff(self, tp: TopicPartition) -> Backoff:
        backoff = self._backoffs.get(tp)
        if backoff is None:
            kafka = self._settings.kafka
            what = f"reading {tp.topic}-{tp.partition} from {kafka.bootstrap_servers}"
            backoff = self._backoffs[tp] = Backoff("source", what, kafka.fail_fast)
        return backoff

    def _poll(self, tp: TopicPartition, start: int) -> tuple[list[Any], float, int | None, int | None] | float:
        """One poll from ``start``: (records, seconds, position after, high watermark), or
        the backoff delay if Kafka failed.

        An empty poll says nothing about the broker (a paused one looks idle), so after
        ``_PROBE_EVERY_S`` without records a ListOffsets request, which must be answered
        within the request timeout, checks that Kafka is there.
        """
        assert self._lock is not None, "setup() not called"
        op = "fetch"
        with self._lock:
            try:
                consumer = self._consumer(tp)
                if consumer.position(tp) != start:
                    consumer.seek(tp, start)
                poll_start = time.perf_counter()
                polled = consumer.poll(timeout_ms=self._poll_timeout_ms(tp, time.monotonic())).get(tp, [])
                poll_seconds = time.perf_counter() - poll_start
                now = time.monotonic()
                if polled:
                    self._last_data[tp] = now
                if polled or now - self._last_contact.setdefault(tp, now) >= _PROBE_EVERY_S:
                    self._last_contact[tp] = now  # also after a failed probe: the next waits its turn
                    if not polled:
                        op = "probe"
                        consumer.end_offsets([tp], timeout_ms=self._settings.kafka.timeout_ms)
                    self._backoff(tp).ok()
                return polled, poll_seconds, consumer.position(tp), consumer.highwater(tp)
            except KafkaError as exc:
                return self._backoff(tp).failed(op, exc)

    def _commit(self, tp: TopicPartition, offset: int) -> None:
        """Runs after the bundle's sinks flushed (bundle finalization)."""
        assert self._lock is not None
        with self._lock:
            try:
                consumer = self._consumer(tp)
                consumer.commit({tp: OffsetAndMetadata(offset, "", -1)}, timeout_ms=self._settings.kafka.timeout_ms)
                METRICS.commits.labels("ok").inc()
            except Exception as exc:  # noqa: BLE001 - the next bundle's commit covers these offsets
                METRICS.commits.labels("failed").inc()
                METRICS.kafka_errors.labels("source", "commit").inc()
                METRICS.kafka_up.labels("source").set(0)
                log.warning("offset commit %s-%d@%d failed: %s", tp.topic, tp.partition, offset, exc)

    def teardown(self) -> None:
        for consumer in self._consumers.values():
            consumer.close()
        self._consumers = {}


def owned_partitions(partitions: list[TopicPartition], index: int, count: int) -> list[TopicPartition]:
    """One process's share when ``count`` processes read the same topics: every count-th
    partition of the sorted list, starting at ``index``. The shares are disjoint and cover
    every partition, so no record is read twice or skipped; each process commits only its
    own partitions' offsets."""
    ordered = sorted(partitions, key=lambda tp: (tp.topic, tp.partition))
    mine = ordered[index::count]
    if not mine:
        raise KafkaUnavailable(
            f"process {index} of {count} has no partition to read: the topics have only {len(ordered)}"
        )
    return mine


class ReadArticles(beam.PTransform):  # type: ignore[misc]
    """Kafka records from every partition of ``topics``, as ``KafkaRecord``s."""

    def __init__(self, settings: SourceSettings, topics: list[str]) -> None:
        super().__init__()
        self._settings = settings
        self._topics = topics

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        s = self._settings
        found = discover_partitions(s.kafka, self._topics)
        partitions = owned_partitions(found, s.process_index, s.process_count)
        if s.process_count > 1:
            names = ", ".join(f"{tp.topic}-{tp.partition}" for tp in partitions)
            log.info("process %d of %d reads %s", s.process_index, s.process_count, names)
        fn = ReadPartitionFn(self._settings)
        return (
            pbegin
            | "Partitions" >> beam.Create(partitions)
            | "ReadPartitions" >> beam.ParDo(fn).with_output_types(KafkaRecord)
        )


_LINGER_MS = 5
_producers: dict[tuple[str, tuple[tuple[str, Any], ...], int, int], KafkaProducer] = {}
_producers_lock = threading.Lock()


def _shared_producer(settings: KafkaSettings) -> KafkaProducer:
    """One thread-safe producer per process and settings, shared by every sink."""
    key = (settings.bootstrap_servers, tuple(sorted(settings.client.items())), settings.timeout_ms,
           settings.max_request_bytes)  # fmt: skip
    with _producers_lock:
        producer = _producers.get(key)
        if producer is None:
            config: dict[str, Any] = {
                "bootstrap_servers": settings.bootstrap_servers.split(","),
                "acks": "all",
                # At least once by design (replays are keyed by article id). An idempotent
                # kafka-python producer stalls for good on a batch that expired while the
                # broker was unreachable (unresolved sequence numbers), so it is off.
                "enable_idempotence": False,
                "linger_ms": _LINGER_MS,
                "max_request_size": settings.max_request_bytes,
                "request_timeout_ms": settings.timeout_ms,
                "max_block_ms": settings.timeout_ms,
                "bootstrap_timeout_ms": settings.timeout_ms,
                "delivery_timeout_ms": _LINGER_MS + 2 * settings.timeout_ms,
                **settings.client,  # security settings, the same for every client
            }
            what = f"connecting a producer to Kafka at {settings.bootstrap_servers}"
            producer = retrying("sink", "connect", what, settings.fail_fast, lambda: KafkaProducer(**config))
            _producers[key] = producer
        return producer


def close_producers() -> None:
    """Flush and close the shared producers (end of a run)."""
    with _producers_lock:
        for producer in _producers.values():
            producer.close(timeout=10)
        _producers.clear()
