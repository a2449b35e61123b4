"""Restarts lose nothing: a clean stop part-way through a backlog, and a SIGKILL mid-run."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from pipelines.io.avro import ENRICHED, read_container
from pipelines.local.broker import EmbeddedBroker
from pipelines.local.process import spawn_run
from tests.kafka_util import committed, decode_all, produce, read_topic

pytestmark = pytest.mark.integration


def backlog(sample_articles: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """n distinct articles (distinct URLs give distinct article ids) from the real sample texts."""
    texts = [a for a in sample_articles if a["text"]]
    return [
        {**texts[i % len(texts)], "source_id": f"backlog-{i}", "url": f"https://example.org/story/{i}"}
        for i in range(n)
    ]


def newsflow(bootstrap: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    return spawn_run(
        bootstrap, out, "--max-poll-records", "8", *extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(proc: subprocess.Popen[str], timeout_s: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout_s)
    assert proc.returncode == 0, out
    return out


def outputs(bootstrap: str, out: Path) -> tuple[Counter[str], Counter[str]]:
    kafka = Counter(r["source_id"] for r in decode_all(read_topic(bootstrap, "news.enriched"), ENRICHED))
    files = Counter(r["source_id"] for f in (out / "enriched").rglob("*.avro") for r in read_container(f))
    return kafka, files


def test_clean_stop_then_restart_loses_nothing(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    articles = backlog(sample_articles, 30)
    produce(broker.bootstrap, "news.raw", [json.dumps(a).encode() for a in articles])
    out = tmp_path / "out"

    first = finish(newsflow(broker.bootstrap, out, "--max-articles", "12"))
    assert "articles in        12" in first
    assert committed(broker.bootstrap, "newsflow", "news.raw") == 12

    second = finish(newsflow(broker.bootstrap, out, "--stop-at", "latest"))
    assert "articles in        18" in second, "resumed at the committed offset, not from the start"

    kafka, files = outputs(broker.bootstrap, out)
    want = Counter(a["source_id"] for a in articles)
    assert kafka == want and files == want, "every article exactly once after a clean stop"


def test_sigkill_mid_run_then_restart_loses_nothing(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    articles = backlog(sample_articles, 120)
    produce(broker.bootstrap, "news.raw", [json.dumps(a).encode() for a in articles])
    out = tmp_path / "out"

    proc = newsflow(broker.bootstrap, out)
    # Repeats of the sample texts skip NLP and go fast: watch closely, kill at once.
    watch = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    watch.assign([TopicPartition("news.enriched", 0)])
    seen, deadline = 0, time.monotonic() + 90
    while time.monotonic() < deadline and seen < 10:
        seen += sum(len(batch) for batch in watch.poll(timeout_ms=20).values())
    proc.send_signal(signal.SIGKILL)
    watch.close()
    proc.communicate(timeout=30)
    done_before = len(read_topic(broker.bootstrap, "news.enriched"))
    assert 10 <= done_before < len(articles), "killed part-way through the backlog"

    finish(newsflow(broker.bootstrap, out, "--stop-at", "latest"))

    kafka, files = outputs(broker.bootstrap, out)
    want = set(a["source_id"] for a in articles)
    assert set(kafka) == want, f"lost in Kafka: {sorted(want - set(kafka))}"
    assert set(files) == want, f"lost in files: {sorted(want - set(files))}"
    duplicates = sum(kafka.values()) - len(want)
    # At-least-once: only the in-flight bundle (at most --max-poll-records records) may repeat.
    assert duplicates <= 8, f"{duplicates} duplicates after one SIGKILL"
