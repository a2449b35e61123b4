"""Integration: a real Tansu broker, the whole pipeline, records read back and decoded."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from pipelines import graph
from pipelines.io.avro import DEAD_LETTER, ENRICHED, FACT, read_container
from pipelines.local.broker import EmbeddedBroker
from pipelines.options import NewsflowOptions
from pipelines.run_control import CONTROL
from tests.kafka_util import committed, decode_all, produce, read_topic

pytestmark = pytest.mark.integration

POISON = {
    b"\xff\xfe\x00binary junk \x80\x81": "invalid_utf8",
    b'{"source_id": "poison-2", "text": "cut off': "invalid_json",
    b'{"source_id": "poison-3", "title": "a story with no body"}': "missing_text",
}


def run_bounded(bootstrap: str, out: Path, group: str = "it", **options: Any) -> None:
    """Run the whole pipeline in this process until the end offsets present at start."""
    CONTROL.reset()
    options.setdefault("stop_at", "latest")
    graph.run(
        NewsflowOptions(flags=[], kafka_bootstrap_servers=bootstrap, group_id=group, output_dir=str(out), **options)
    )


def test_seed_reuters_and_poison_end_to_end(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    good = [a for a in sample_articles if a["text"]][:8]  # the seed first, then Reuters stories
    assert good[0]["source_id"] == "seed/trump-putin-call"
    values = [json.dumps(a).encode() for a in good] + list(POISON)
    produce(broker.bootstrap, "news.raw", values)

    run_bounded(broker.bootstrap, tmp_path / "out")

    enriched = decode_all(read_topic(broker.bootstrap, "news.enriched", expect=len(good)), ENRICHED)
    source_ids = [r["source_id"] for r in enriched]
    assert sorted(source_ids) == sorted(a["source_id"] for a in good), "every good input exactly once"

    seed = next(r for r in enriched if r["source_id"] == "seed/trump-putin-call")
    names = " | ".join(e["text"] for e in seed["entities"])
    for name in ("Trump", "Putin", "Zelensky", "Kherson", "Istanbul"):
        assert name in names, f"{name} missing from the seed's entities: {names}"
    facts = {(f["kind"], f["count"], f["place"]) for f in seed["facts"]}
    assert ("killed", 1, "Kherson") in facts and ("injured", 2, "Kherson") in facts
    assert all(seed["text"][f["start"] : f["end"]] == f["evidence"] for f in seed["facts"])
    assert seed["kafka"]["topic"] == "news.raw" and seed["kafka"]["offset"] == 0

    # news.facts: one record per fact of every article, keyed by its article id.
    n_facts = sum(len(r["facts"]) + len(r["events"]) for r in enriched)
    fact_records = read_topic(broker.bootstrap, "news.facts", expect=n_facts)
    facts_alone = decode_all(fact_records, FACT)
    assert len(facts_alone) == n_facts and len({f["fact_id"] for f in facts_alone}) == n_facts
    assert all(r.key.decode() == f["article_id"] for r, f in zip(fact_records, facts_alone, strict=True))
    seed_facts = [f for f in facts_alone if f["article_id"] == seed["article_id"]]
    assert [f["casualty"] for f in seed_facts if f["fact_type"] == "casualty"] == seed["facts"]
    assert [f["event"] for f in seed_facts if f["fact_type"] == "event"] == seed["events"]
    assert {"consult", "release", "demand", "sanction", "assault"} <= {e["type"] for e in seed["events"]}
    fact_files = [r for f in (tmp_path / "out" / "facts").rglob("*.avro") for r in read_container(f)]
    assert sorted(f["fact_id"] for f in fact_files) == sorted(f["fact_id"] for f in facts_alone)

    dead = decode_all(read_topic(broker.bootstrap, "news.deadletter", expect=len(POISON)), DEAD_LETTER)
    assert {d["original"]: d["reason"] for d in dead} == POISON
    assert all(d["stage"] == "decode" and d["topic"] == "news.raw" and d["offset"] >= len(good) for d in dead)

    files = sorted((tmp_path / "out" / "enriched").rglob("*.avro"))
    in_files = [r["source_id"] for f in files for r in read_container(f)]
    assert sorted(in_files) == sorted(source_ids)
    assert not list((tmp_path / "out").rglob(".*tmp*")), "no temporary file left behind"
    dead_files = [r for f in (tmp_path / "out" / "deadletter").rglob("*.avro") for r in read_container(f)]
    assert len(dead_files) == len(POISON)

    assert committed(broker.bootstrap, "it", "news.raw") == len(values), "offsets committed after the sinks"


def test_avro_input_and_resume_from_committed(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    from pipelines.io.avro import RAW, schema

    first = sample_articles[1]
    avro_value = schema(RAW).encode(
        {k: first[k] for k in ("source_id", "url", "title", "text", "published_at", "source", "language")}
    )
    produce(broker.bootstrap, "news.raw", [avro_value])
    run_bounded(broker.bootstrap, tmp_path / "out")
    second = sample_articles[2]
    produce(broker.bootstrap, "news.raw", [json.dumps(second).encode()])
    run_bounded(broker.bootstrap, tmp_path / "out")  # resumes after the committed offset

    enriched = decode_all(read_topic(broker.bootstrap, "news.enriched", expect=2), ENRICHED)
    assert [r["source_id"] for r in enriched] == [first["source_id"], second["source_id"]]
    assert committed(broker.bootstrap, "it", "news.raw") == 2


def test_several_topics_and_partitions(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    from kafka import KafkaProducer

    broker.create_topics(["wire.a"], partitions=3)
    broker.create_topics(["wire.b"], partitions=1)
    texts = [a for a in sample_articles if a["text"]]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    sent = []
    for i in range(12):
        topic, partition = ("wire.a", i % 3) if i < 9 else ("wire.b", 0)
        article = {**texts[i % len(texts)], "source_id": f"multi-{i}", "url": f"https://example.org/m/{i}"}
        producer.send(topic, json.dumps(article).encode(), partition=partition)
        sent.append(article["source_id"])
    producer.flush()
    producer.close()

    run_bounded(broker.bootstrap, tmp_path / "out", group="multi", topics="wire.a,wire.b")

    enriched = decode_all(read_topic(broker.bootstrap, "news.enriched", expect=12), ENRICHED)
    assert sorted(r["source_id"] for r in enriched) == sorted(sent)
    assert {(r["kafka"]["topic"], r["kafka"]["partition"]) for r in enriched} == {
        ("wire.a", 0),
        ("wire.a", 1),
        ("wire.a", 2),
        ("wire.b", 0),
    }
    assert [committed(broker.bootstrap, "multi", "wire.a", p) for p in range(3)] == [3, 3, 3]


def test_bounded_run_stops_at_a_timestamp(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    import time
    from datetime import datetime

    texts = [a for a in sample_articles if a["text"]]
    early = [{**texts[i], "source_id": f"early-{i}"} for i in range(3)]
    late = [{**texts[i + 3], "source_id": f"late-{i}"} for i in range(2)]
    produce(broker.bootstrap, "news.raw", [json.dumps(a).encode() for a in early])
    time.sleep(1.0)
    cut = datetime.now(UTC).isoformat()
    time.sleep(1.0)
    produce(broker.bootstrap, "news.raw", [json.dumps(a).encode() for a in late])

    run_bounded(broker.bootstrap, tmp_path / "out", group="ts", stop_at=cut)
    enriched = decode_all(read_topic(broker.bootstrap, "news.enriched"), ENRICHED)
    assert [r["source_id"] for r in enriched] == [a["source_id"] for a in early]


def test_a_resent_article_is_marked_duplicate_and_its_facts_are_not_repeated(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    seed = sample_articles[0]
    resent = {**seed, "source_id": "seed-resent", "title": seed["title"] + " (updated)"}
    url = seed["url"].encode()
    produce(broker.bootstrap, "news.raw", [json.dumps(seed).encode(), json.dumps(resent).encode()], keys=[url, url])

    run_bounded(broker.bootstrap, tmp_path / "out")

    first, second = decode_all(read_topic(broker.bootstrap, "news.enriched", expect=2), ENRICHED)
    assert first["duplicate_of"] is None and first["facts"] and first["entity_groups"]
    assert (second["source_id"], second["duplicate_of"], second["duplicate_kind"]) == (
        "seed-resent",
        first["article_id"],
        "url",
    )
    assert second["facts"] == [] and second["events"] == [] and second["entities"] == []
    facts = decode_all(read_topic(broker.bootstrap, "news.facts", expect=None), FACT)
    assert len(facts) == len(first["facts"]) + len(first["events"]), "a duplicate adds no facts"
    assert {f["source_id"] for f in facts} == {seed["source_id"]}
    kyiv = next(g for g in first["entity_groups"] if g["name"] == "Kyiv")
    assert (kyiv["country"], kyiv["feature"]) == ("UA", "city") and kyiv["latitude"] is not None


def test_an_idle_partition_does_not_hold_a_bundle_that_has_records(broker: EmbeddedBroker) -> None:
    """A bundle's records are written only when it ends, so once it holds some, the other
    partitions are not waited for; a bundle without records waits briefly on an idle
    partition while another is busy, and the full poll timeout when all are idle."""
    import time

    from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
    from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
    from apache_beam.runners.sdf_utils import ThreadsafeRestrictionTracker
    from kafka import KafkaProducer, TopicPartition

    from pipelines.io.kafka import _SHORT_POLL_MS, UNBOUNDED_END, KafkaSettings, ReadPartitionFn, SourceSettings

    broker.create_topics(["wire.two"], partitions=2)
    busy, idle = TopicPartition("wire.two", 0), TopicPartition("wire.two", 1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send("wire.two", b'{"source_id": "one", "text": "x"}', partition=0).get(timeout=10)
    producer.close()
    fn = ReadPartitionFn(SourceSettings(KafkaSettings(broker.bootstrap), "idle-test", poll_timeout_ms=1500))
    fn.setup()

    def read(tp: TopicPartition) -> tuple[int, float]:
        tracker = ThreadsafeRestrictionTracker(OffsetRestrictionTracker(OffsetRange(0, UNBOUNDED_END)))
        watermark = ManualWatermarkEstimator(None)
        finalizer = type("Finalizer", (), {"register": lambda self, callback: None})()
        start = time.perf_counter()
        got = list(fn.process(tp, finalizer=finalizer, tracker=tracker, watermark=watermark))
        return len(got), time.perf_counter() - start

    try:
        fn.start_bundle()
        assert fn._poll_timeout_ms(idle, time.monotonic()) == 1500, "nothing busy: the full poll timeout"
        deadline = time.monotonic() + 10
        while read(busy)[0] == 0:  # the first poll of a new consumer may come back empty
            assert time.monotonic() < deadline, "the record never came"
        assert fn._poll_timeout_ms(idle, time.monotonic()) == 0
        assert read(idle) == (0, pytest.approx(0, abs=0.3)), "the bundle holds a record: no wait"
        fn.start_bundle()  # the next bundle, nothing in it yet, the other partition busy
        assert fn._poll_timeout_ms(idle, time.monotonic()) == _SHORT_POLL_MS
        time.sleep(1.1)  # the busy partition has had nothing for a while
        count, seconds = read(idle)
        assert count == 0 and seconds >= 1.4, "all idle: the poll blocks (no busy loop)"
    finally:
        fn.teardown()
