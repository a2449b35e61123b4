"""At least once under fire: a producer streams 3,000 articles while the pipeline is killed
with SIGKILL at random moments five times and restarted each time. Afterwards every input
id is on news.enriched and in the files; the duplicates (in-flight bundles replayed after
a kill) are counted, reported, and at most one bundle per kill."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from pipelines.io.avro import ENRICHED
from pipelines.local.broker import EmbeddedBroker, free_port
from pipelines.local.process import spawn_run
from tests.kafka_util import decode_all, read_topic
from tests.test_cli_streaming import wait_for
from tests.test_faults import file_ids, metric
from tests.test_restart import finish

pytestmark = pytest.mark.integration
ARTICLES = 3000
KILLS = 5
POLL = 64  # --max-poll-records: the most one partition's bundle holds


def stream(bootstrap: str, articles: list[dict[str, Any]], rate: float, done: threading.Event) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    start = time.monotonic()
    for i, a in enumerate(articles):
        producer.send("news.raw", json.dumps(a).encode())
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    producer.flush()
    producer.close()
    done.set()


def test_five_sigkills_while_streaming_lose_nothing(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    texts = [a["text"][:400] for a in sample_articles if a["text"]]
    articles = [
        {"source_id": f"crash-{i}", "url": f"https://example.org/crash/{i}", "text": f"{texts[i % len(texts)]} ({i})"}
        for i in range(ARTICLES)
    ]
    out = tmp_path / "out"
    produced = threading.Event()
    producer = threading.Thread(target=stream, args=(broker.bootstrap, articles, 40.0, produced), daemon=True)
    producer.start()
    rng = random.Random()
    kills: list[float] = []
    for _ in range(KILLS):
        port = free_port()
        proc = spawn_run(broker.bootstrap, out, "--metrics-port", str(port), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_for(lambda p=port: metric(p, "newsflow_sink_records_total", sink="kafka_enriched") > 0, 120, "output")
            delay = rng.uniform(0.0, 4.0)  # a random moment: mid-poll, mid-NLP, mid-flush or mid-commit
            time.sleep(delay)
            kills.append(round(delay, 2))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    producer.join(timeout=300)
    assert produced.is_set(), "the producer finished"
    finish(spawn_run(broker.bootstrap, out, "--stop-at", "latest", stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True), timeout_s=600)  # fmt: skip

    want = {a["source_id"] for a in articles}
    kafka = Counter(r["source_id"] for r in decode_all(read_topic(broker.bootstrap, "news.enriched"), ENRICHED))
    assert not want - set(kafka), f"lost on news.enriched: {len(want - set(kafka))}"
    assert not want - file_ids(out), f"lost in files: {len(want - file_ids(out))}"
    duplicates = sum(kafka.values()) - len(kafka)
    print(f"\n{KILLS} SIGKILLs (at +{kills} s after output began): {ARTICLES} articles, all delivered; "
          f"{duplicates} duplicates on news.enriched (bound {KILLS * POLL})")  # fmt: skip
    assert set(kafka) == want, "nothing but the input"
    assert duplicates <= KILLS * POLL, "only the in-flight bundle repeats after each kill"
