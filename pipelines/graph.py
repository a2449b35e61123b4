"""The one pipeline graph: ReadArticles (or ReadArchive) -> Enrich -> WriteAvro, dead letters beside it.

newsflow run --bootstrap-servers 127.0.0.1:9092 --topics news.raw
"""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.metrics import monitoring_infos
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.worker import bundle_processor, statesampler

from pipelines.io.java_kafka import ReadArticlesJava
from pipelines.io.kafka import KafkaSettings, ReadArticles, SourceSettings, close_producers
from pipelines.io.read_archive import ArchiveSettings, ReadArchive
from pipelines.limits import Limits
from pipelines.options import NewsflowOptions
from pipelines.transforms.sinks import SinkSettings, WriteAvro, WriteDeadLetters, WriteFacts
from pipelines.transforms.stages import Enrich

log = logging.getLogger(__name__)


def source_settings(o: NewsflowOptions) -> SourceSettings:
    return SourceSettings(
        kafka=KafkaSettings.from_options(o),
        group_id=o.group_id,
        start_from=o.start_from,
        stop_at=o.stop_at,
        poll_timeout_ms=o.poll_timeout_ms,
        max_poll_records=o.max_poll_records,
        process_index=o.process_index,
        process_count=o.process_count,
    )


def sink_settings(o: NewsflowOptions) -> SinkSettings:
    to_kafka = o.kafka_bootstrap_servers and not o.files_only
    return SinkSettings(
        kafka=KafkaSettings.from_options(o) if to_kafka else None,
        output_dir=o.output_dir or None,
        enriched_topic=o.enriched_topic,
        deadletter_topic=o.deadletter_topic,
        facts_topic=o.facts_topic,
        write_duplicates=not o.skip_duplicates,
        java_kafka=o.kafka_io == "java",
        expansion_service=o.expansion_service,
    )


def build(p: beam.Pipeline, o: NewsflowOptions, worker_metrics: bool = False) -> None:
    """Wire the composites; every label is stable so a running job can be updated.
    ``worker_metrics``: each worker process serves /metrics itself (on a cluster)."""
    topics = [t.strip() for t in o.topics.split(",") if t.strip()]
    source: beam.PTransform
    if o.kafka_io == "java":
        kafka = KafkaSettings.from_options(o)
        source = ReadArticlesJava(kafka, topics, o.group_id, o.start_from, o.expansion_service)
    else:
        source = ReadArticles(source_settings(o), topics)
    enrich_and_write(p | "ReadArticles" >> source, o, worker_metrics)


def build_backfill(p: beam.Pipeline, o: NewsflowOptions, archive: ArchiveSettings) -> None:
    """The same graph as ``build`` behind a bounded source: archive chunks instead of Kafka."""
    enrich_and_write(p | "ReadArchive" >> ReadArchive(archive), o)


def enrich_and_write(records: beam.PCollection, o: NewsflowOptions, worker_metrics: bool = False) -> None:
    limits = Limits(o.max_message_bytes, o.max_json_depth, o.article_seconds, o.bad_dates)
    serve = (o.metrics_port, o.metrics_addr) if worker_metrics else None
    enrich = Enrich(limits, o.batch_size, o.dedup_horizon, o.dedup_threshold, o.dedup_memory_mb, serve)
    out = records | "Enrich" >> enrich
    sinks = sink_settings(o)
    out["enriched"] | "WriteAvro" >> WriteAvro(sinks)
    out["enriched"] | "WriteFacts" >> WriteFacts(sinks)
    for stage, dead in out.items():
        if stage != "enriched":
            dead | f"DeadLetters{stage}" >> WriteDeadLetters(sinks)


def fix_fn_runner_monitoring_leak() -> None:
    """Materialize FnApiRunner's per-bundle monitoring infos (see DESIGN.md).

    Beam 2.77 folds them into a lazy chain nothing reads until the end: ~47 KB per
    bundle, and a RecursionError after ~1,000 bundles. Drop this when Beam fixes it.
    """
    fn_runner.consolidate_monitoring_infos = lambda infos: list(  # type: ignore[assignment,misc]
        monitoring_infos.consolidate(infos)
    )


# Beam's execution-time sampler thread sleeps up to 200 ms at a time, and every bundle ends
# by joining it ("may have to wait up to sampling_period_ms", statesampler_fast.pyx): the
# one thread of a local run stood idle for 8 % of its time at 20 articles/s (py-spy --idle).
# Each wake costs a little CPU off the main thread (1 ms: +1.1 % of a core in a backlog).
_SAMPLING_PERIOD_MS = 2


def shorten_state_sampler_wait() -> None:
    """Make a bundle's end wait at most ``_SAMPLING_PERIOD_MS`` for Beam's state sampler
    (it has no option for its period). The sampler sleeps without the GIL, so waking more
    often costs little; nothing local reads its execution times."""
    statesampler.StateSampler.__init__.__defaults__ = (_SAMPLING_PERIOD_MS,)


def skip_bundle_monitoring_infos() -> None:
    """Local runs: bundles report no Beam monitoring infos.

    Every bundle builds one per transform and counter, the runner folds them into its
    totals, and nothing local reads them (metrics are Prometheus's): at 10 articles/s that
    was 7 % of the worker thread (py-spy --idle), about 7 ms a bundle. Cluster runners
    keep them (Flink reporters, Dataflow monitoring)."""
    bundle_processor.BundleProcessor.monitoring_infos = lambda self: []  # type: ignore[method-assign]


def cluster_pipeline(o: NewsflowOptions, beam_args: list[str]) -> beam.Pipeline:
    """The pipeline for the runner named in ``beam_args`` (Beam's own flags: --runner,
    --job_endpoint, --project...), built but not started."""
    options = PipelineOptions(beam_args)
    options.view_as(SetupOptions).save_main_session = False  # everything the workers need is importable
    p = beam.Pipeline(options=options)
    build(p, o, worker_metrics=True)
    return p


def submit(o: NewsflowOptions, beam_args: list[str]) -> None:
    """Run on the cluster runner; wait for the job unless --no_wait_until_finish."""
    p = cluster_pipeline(o, beam_args)
    result = p.run()
    log.info("submitted to %s: %s", p.options.view_as(StandardOptions).runner, getattr(result, "job_id", lambda: "")())
    if not p.options.view_as(StandardOptions).no_wait_until_finish:
        result.wait_until_finish()


def run(o: NewsflowOptions, archive: ArchiveSettings | None = None) -> None:
    """Build and run the pipeline on the local FnApiRunner until the source ends: Kafka
    (``run``), or the chunks of ``archive`` (a backfill worker)."""
    fix_fn_runner_monitoring_leak()
    shorten_state_sampler_wait()
    skip_bundle_monitoring_infos()
    # flags=[]: without it PipelineOptions parses sys.argv, which belongs to the CLI.
    options = PipelineOptions(flags=[], runner="FnApiRunner", direct_num_workers=1)
    try:
        with beam.Pipeline(runner=fn_runner.FnApiRunner(), options=options) as p:
            if archive is None:
                build(p, o)
            else:
                build_backfill(p, o, archive)
    finally:
        close_producers()
