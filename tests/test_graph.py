"""The Enrich composite and the file sink on Beam's TestPipeline (FnApiRunner, no Kafka)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.io.avro import read_container
from pipelines.limits import Limits
from pipelines.records import KafkaRecord
from pipelines.transforms.sinks import SinkSettings, WriteAvro, WriteDeadLetters
from pipelines.transforms.stages import Enrich


def records(sample_articles: list[dict[str, Any]]) -> list[KafkaRecord]:
    good = [json.dumps(a).encode() for a in sample_articles[:3]]
    bad = [b"not json", json.dumps({"source_id": "x", "text": "<p> </p>"}).encode()]
    return [KafkaRecord("news.raw", 0, i, 1_700_000_000_000 + i, None, v) for i, v in enumerate(good + bad)]


def test_enrich_composite(sample_articles: list[dict[str, Any]], tmp_path: Path) -> None:
    options = PipelineOptions(flags=[])
    with BeamTestPipeline(runner=FnApiRunner(), options=options) as p:
        out = p | beam.Create(records(sample_articles)) | "Enrich" >> Enrich(Limits(max_bytes=1_000_000), batch_size=2)
        summary = out["enriched"] | beam.Map(
            lambda e: (e.article.source_id, tuple(sorted((f.kind, f.count) for f in e.facts)))
        )
        seed_id = sample_articles[0]["source_id"]
        seed_facts = (
            out["enriched"]
            | beam.Filter(lambda e: e.article.source_id == seed_id)
            | beam.Map(lambda e: sorted((f.kind, f.count, f.place, f.actor) for f in e.facts))
        )
        assert_that(
            seed_facts,
            equal_to([[("injured", 2, "Kherson", "Russia"), ("killed", 1, "Kherson", "Russia")]]),
            label="SeedFacts",
        )
        assert_that(
            summary | beam.Map(lambda s: s[0]),
            equal_to([a["source_id"] for a in sample_articles[:3]]),
            label="EveryGoodArticle",
        )
        assert_that(
            out["Decode"] | beam.Map(lambda d: (d.stage, d.reason, d.record.offset)),
            equal_to([("decode", "invalid_json", 3)]),
            label="DecodeDeadLetters",
        )
        assert_that(
            out["Normalize"] | beam.Map(lambda d: (d.stage, d.reason, d.record.offset)),
            equal_to([("normalize", "empty_text", 4)]),
            label="NormalizeDeadLetters",
        )

        sinks = SinkSettings(kafka=None, output_dir=str(tmp_path))
        out["enriched"] | "WriteAvro" >> WriteAvro(sinks)
        out["Decode"] | "DeadLetters" >> WriteDeadLetters(sinks)

    written = [r for f in (tmp_path / "enriched").rglob("*.avro") for r in read_container(f)]
    assert sorted(r["source_id"] for r in written) == sorted(a["source_id"] for a in sample_articles[:3])
    assert all(r["article_id"] and r["model"].startswith("core_web_sm") for r in written)
    days = {f.parent.name for f in (tmp_path / "enriched").rglob("*.avro")}
    assert "dt=2025-05-20" in days, "partitioned by publication date"
    dead = [r for f in (tmp_path / "deadletter").rglob("*.avro") for r in read_container(f)]
    assert [(d["reason"], d["original"]) for d in dead] == [("invalid_json", b"not json")]


def test_duplicates_and_other_languages_pass_through_marked_without_nlp(
    sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    seed = sample_articles[0]
    resent = {**seed, "source_id": "resent-seed"}  # same URL: a re-send
    edited = {**seed, "source_id": "edited-seed", "url": None, "text": seed["text"] + " (Reporting by X.)"}
    french = {"source_id": "fr-1", "text": "Le président a appelé à un cessez-le-feu de trente jours en Ukraine."}
    values = [json.dumps(a).encode() for a in (seed, resent, edited, french)]
    recs = [KafkaRecord("news.raw", 0, i, 1_747_735_200_000 + i, None, v) for i, v in enumerate(values)]
    with BeamTestPipeline(runner=FnApiRunner(), options=PipelineOptions(flags=[])) as p:
        out = p | beam.Create(recs) | "Enrich" >> Enrich(Limits(max_bytes=1_000_000), batch_size=2)
        sinks = SinkSettings(kafka=None, output_dir=str(tmp_path), write_duplicates=False)
        out["enriched"] | "WriteAvro" >> WriteAvro(sinks)
        assert_that(
            out["enriched"]
            | beam.Map(
                lambda e: (
                    e.article.source_id,
                    e.article.duplicate_kind,
                    e.article.language,
                    bool(e.entities),
                    bool(e.facts),
                )
            ),
            equal_to(
                [
                    ("seed/trump-putin-call", None, "en", True, True),
                    ("resent-seed", "url", "en", False, False),
                    ("edited-seed", "near", "en", False, False),
                    ("fr-1", None, "fr", False, False),
                ]
            ),
        )
    written = sorted(r["source_id"] for f in (tmp_path / "enriched").rglob("*.avro") for r in read_container(f))
    assert written == ["fr-1", "seed/trump-putin-call"], "--skip-duplicates: counted, not written"


def test_a_bundle_end_waits_briefly_for_beams_state_sampler() -> None:
    """Each bundle ends by joining Beam's state-sampler thread, which sleeps up to 200 ms at
    a time once a bundle has run ~1 s; local runs shorten that sleep."""
    import time

    from apache_beam.runners.worker import statesampler
    from apache_beam.utils.counters import CounterFactory

    from pipelines.graph import _SAMPLING_PERIOD_MS, shorten_state_sampler_wait

    defaults = statesampler.StateSampler.__init__.__defaults__
    try:
        shorten_state_sampler_wait()
        sampler = statesampler.StateSampler("stage", CounterFactory())  # as BundleProcessor makes it
        assert sampler.sampling_period_ms == _SAMPLING_PERIOD_MS
        sampler.start()
        time.sleep(1.5)  # long enough for the default period to have ramped up to 200 ms
        begin = time.perf_counter()
        sampler.stop()
        assert time.perf_counter() - begin < 0.05
    finally:
        statesampler.StateSampler.__init__.__defaults__ = defaults


def counted(x: int) -> int:
    from apache_beam.metrics import Metrics

    Metrics.counter("test", "seen").inc()
    return x * 2


def test_local_bundles_report_no_beam_monitoring_infos() -> None:
    """Local runs leave Beam's per-bundle monitoring infos out (nothing local reads them);
    the elements still all come through."""
    from apache_beam.runners.worker import bundle_processor

    from pipelines.graph import skip_bundle_monitoring_infos

    reported = bundle_processor.BundleProcessor.monitoring_infos
    try:
        skip_bundle_monitoring_infos()
        p = beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions(flags=[]))
        assert_that(p | beam.Create([1, 2, 3]) | beam.Map(counted), equal_to([2, 4, 6]))
        result = p.run()
        result.wait_until_finish()
        assert result.metrics().query()["counters"] == []
    finally:
        bundle_processor.BundleProcessor.monitoring_infos = reported  # type: ignore[method-assign]
