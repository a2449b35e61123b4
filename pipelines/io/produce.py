"""Publish JSON Lines articles to a Kafka topic (the sample, demos, load tests).

    newsflow produce pipelines/data/sample_articles.jsonl --topic news.raw --bootstrap-servers HOST:PORT

Each line is sent as-is (so malformed lines reach the pipeline's dead letter, as they
would from any producer), keyed by the canonical URL, else ``source_id``, so one article
always lands on one partition.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipelines.io.kafka import KafkaSettings
from pipelines.nlp.normalize import canonical_url


def read_lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fo:
        for line in fo:
            line = line.rstrip(b"\r\n")
            if line:
                yield line


def key_for(value: bytes) -> bytes | None:
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    url = doc.get("url")
    key = canonical_url(url) if isinstance(url, str) else None
    key = key or doc.get("source_id")
    return key.encode() if isinstance(key, str) else None


def publish(kafka: KafkaSettings, topic: str, values: Iterable[bytes]) -> int:
    """Send every value and wait for the acks; returns how many were sent."""
    producer = kafka.producer()
    futures = [producer.send(topic, key=key_for(v), value=v) for v in values]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    return len(futures)
