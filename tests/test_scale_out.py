"""Scale-out: several pipeline processes share a topic, each reading its own partitions.
The union of their outputs is the input, with nothing read twice or skipped."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition

from pipelines.io.avro import read_container
from pipelines.io.kafka import owned_partitions
from pipelines.io.retry import KafkaUnavailable
from pipelines.local.broker import EmbeddedBroker
from pipelines.local.process import spawn_run
from tests.kafka_util import produce
from tests.test_restart import backlog


def test_shares_are_disjoint_cover_everything_and_balance() -> None:
    parts = [TopicPartition(t, p) for t in ("b", "a") for p in range(3)]
    shares = [owned_partitions(parts, i, 4) for i in range(4)]
    assert sorted(tp for share in shares for tp in share) == sorted(parts, key=lambda tp: (tp.topic, tp.partition))
    assert [len(s) for s in shares] == [2, 2, 1, 1]
    assert shares[0] == [TopicPartition("a", 0), TopicPartition("b", 1)]
    with pytest.raises(KafkaUnavailable, match="process 6 of 7 has no partition"):
        owned_partitions(parts, 6, 7)


@pytest.mark.integration
def test_two_processes_split_the_partitions_and_together_read_everything(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    broker.create_topics(["news.wide"], partitions=4)
    articles = backlog(sample_articles, 40)
    keys = [a["url"].encode() for a in articles]
    produce(broker.bootstrap, "news.wide", [json.dumps(a).encode() for a in articles], keys)
    procs = [
        spawn_run(
            broker.bootstrap,
            tmp_path / f"out{i}",
            "--topics",
            "news.wide",
            "--stop-at",
            "latest",
            "--process-index",
            str(i),
            "--process-count",
            "2",
            "--dedup-horizon",
            "1",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    read: list[Counter[str]] = []
    partitions: list[set[int]] = []
    for i in range(2):
        records = [r for f in (tmp_path / f"out{i}" / "enriched").rglob("*.avro") for r in read_container(f)]
        read.append(Counter(r["source_id"] for r in records))
        partitions.append({r["kafka"]["partition"] for r in records})
    assert partitions == [{0, 2}, {1, 3}], "each process read only its own partitions"
    assert not set(read[0]) & set(read[1]), "no article was processed by both"
    assert read[0] + read[1] == Counter(a["source_id"] for a in articles), "together: every article, once"
    assert "process 0 of 2 reads news.wide-0, news.wide-2" in outputs[0]
