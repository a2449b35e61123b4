"""Broker trouble: a paused broker, no broker at start, a missing topic. The pipeline waits
with backoff, says so in its log and metrics, and goes on without losing a record; with
--fail-fast it exits instead."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.io.avro import ENRICHED, read_container
from pipelines.local.broker import EmbeddedBroker, free_port
from pipelines.local.process import spawn_run
from tests.conftest import TOPICS
from tests.kafka_util import decode_all, produce, read_topic
from tests.test_cli_streaming import interrupt, wait_for
from tests.test_restart import backlog

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the pipeline's /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(port: int, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` matching ``labels`` (0 if none or unreachable)."""
    try:
        samples = scrape(port)
    except OSError:
        return 0.0
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def start(bootstrap: str, out: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    # Bundles of up to 40 sample articles take seconds of NLP: time to pause the broker mid-bundle.
    return spawn_run(
        bootstrap, out, "--metrics-port", str(port), "--kafka-timeout-ms", "2000", "--max-poll-records", "40",
        "--progress", "log", *extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def enriched_ids(bootstrap: str, expect: int, timeout_s: float = 1) -> set[str]:
    return {r["source_id"] for r in decode_all(read_topic(bootstrap, "news.enriched", expect, timeout_s), ENRICHED)}


def file_ids(out: Path) -> set[str]:
    return {r["source_id"] for f in (out / "enriched").rglob("*.avro") for r in read_container(f)}


def five_go_through(bootstrap: str, topic: str, sample_articles: list[dict[str, Any]]) -> None:
    """Five articles produced to ``topic`` come out on news.enriched."""
    articles = backlog(sample_articles, 5)
    produce(bootstrap, topic, [json.dumps(a).encode() for a in articles])
    want = {a["source_id"] for a in articles}
    wait_for(lambda: enriched_ids(bootstrap, 5) == want, 180, f"the articles sent to {topic}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_paused_broker_is_waited_out_by_the_source_and_the_sinks(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    articles = backlog(sample_articles, 60)
    port = free_port()
    proc = start(broker.bootstrap, tmp_path / "out", port)
    try:
        # 1. Idle pipeline, paused broker: the source's liveness probe notices.
        produce(broker.bootstrap, "news.raw", [json.dumps(a).encode() for a in articles[:10]])
        wait_for(lambda: len(enriched_ids(broker.bootstrap, 10)) == 10, 120, "the first 10 articles")
        broker.pause()
        wait_for(lambda: metric(port, "newsflow_kafka_errors_total", client="source", op="probe") > 0, 40, "a probe")
        assert metric(port, "newsflow_kafka_up", client="source") == 0
        broker.resume()
        wait_for(lambda: metric(port, "newsflow_kafka_up", client="source") == 1, 40, "the source to recover")

        # 2. Paused while a bundle is in flight: its sinks cannot write, retry, then write.
        read = metric(port, "newsflow_kafka_records_read_total")
        produce(broker.bootstrap, "news.raw", [json.dumps(a).encode() for a in articles[10:]])
        wait_for(lambda: metric(port, "newsflow_kafka_records_read_total") > read, 60, "a bundle to be read")
        broker.pause()
        wait_for(lambda: metric(port, "newsflow_kafka_errors_total", client="sink", op="send") > 0, 60, "send errors")
        assert metric(port, "newsflow_kafka_up", client="sink") == 0
        time.sleep(3)  # a few retries while paused
        broker.resume()
        want = {a["source_id"] for a in articles}
        wait_for(lambda: enriched_ids(broker.bootstrap, len(want)) >= want, 180, "every article after the pause")
        assert proc.poll() is None, "the pipeline kept running"
        assert metric(port, "newsflow_kafka_up", client="sink") == 1
        output = interrupt(proc)
    finally:
        stop(proc)
    assert file_ids(tmp_path / "out") == want
    assert "retrying in" in output and "Kafka answers again" in output, output[-3000:]


def test_no_broker_at_start_is_waited_for(sample_articles: list[dict[str, Any]], tmp_path: Path) -> None:
    kafka_port, port = free_port(), free_port()
    bootstrap = f"127.0.0.1:{kafka_port}"
    proc = start(bootstrap, tmp_path / "out", port)
    try:
        wait_for(lambda: metric(port, "newsflow_kafka_errors_total", client="source", op="connect") >= 2, 60, "retries")
        assert metric(port, "newsflow_kafka_up", client="source") == 0
        assert proc.poll() is None
        with EmbeddedBroker(port=kafka_port, log_path=str(tmp_path / "tansu.log")) as broker:
            broker.create_topics(TOPICS)
            five_go_through(broker.bootstrap, "news.raw", sample_articles)
            output = interrupt(proc)
    finally:
        stop(proc)
    assert f"connecting to Kafka at {bootstrap} failed" in output, output[-3000:]


def test_missing_topic_is_waited_for(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    port = free_port()
    proc = start(broker.bootstrap, tmp_path / "out", port, "--topics", "news.late")
    try:
        wait_for(
            lambda: metric(port, "newsflow_kafka_errors_total", client="source", op="metadata") >= 2, 60, "retries"
        )
        broker.create_topics(["news.late"])
        five_go_through(broker.bootstrap, "news.late", sample_articles)
        output = interrupt(proc)
    finally:
        stop(proc)
    assert "topic 'news.late' does not exist" in output, output[-3000:]


@pytest.mark.parametrize("case", ["no broker", "missing topic"])
def test_fail_fast_exits_with_a_clear_error(case: str, broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}" if case == "no broker" else broker.bootstrap
    topics = "news.raw" if case == "no broker" else "news.late"
    proc = start(bootstrap, tmp_path / "out", free_port(), "--fail-fast", "--topics", topics)
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 1, output
    expected = "Unable to bootstrap" if case == "no broker" else "topic 'news.late' does not exist"
    assert expected in output and "--fail-fast" in output, output[-3000:]
    assert output.count("Traceback") == 0, "a clear error, not a traceback"
