"""Publish JSON Lines articles to a Kafka topic (the sample, demos, load tests).

    newsflow produce pipelines/data/sample_articles.jsonl --topic news.raw --bootstrap-servers HOST:PORT
    newsflow produce archive.jsonl.gz --rate 50 ...        # 50 records a second
    newsflow produce archive.jsonl.gz --speedup 3600 ...   # original pacing, an hour a second

Each line is sent as-is (so malformed lines reach the pipeline's dead letter, as they
would from any producer), keyed by the canonical URL, else ``source_id`` (or ``id``), so one article
always lands on one partition.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pipelines.io.kafka import KafkaSettings
from pipelines.nlp.normalize import canonical_url

# The clock pacing uses; tests pass a fake one.
Clock = tuple[Callable[[], float], Callable[[float], None]]
REAL_CLOCK: Clock = (time.monotonic, time.sleep)


def open_archive(path: Path) -> IO[bytes]:
    """A JSON Lines file for reading, gunzipped when it ends in .gz."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[return-value]  # noqa: SIM115


def read_lines(path: Path) -> Iterator[bytes]:
    with open_archive(path) as fo:
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
    key = key or doc.get("source_id") or doc.get("id")
    return key.encode() if isinstance(key, str) else None


def published_at(value: bytes) -> float | None:
    """The record's ``published_at`` (or ``date``) as epoch seconds, if it has a readable one."""
    try:
        doc = json.loads(value)
        raw = doc.get("published_at") or doc.get("date")
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except (ValueError, TypeError, AttributeError):
        return None


def paced(
    values: Iterable[bytes], rate: float | None = None, speedup: float | None = None, clock: Clock = REAL_CLOCK
) -> Iterator[bytes]:
    """``values`` at ``rate`` a second, or at their original pacing (by publication time) sped
    up ``speedup`` times; as fast as possible with neither. Records without a readable time
    keep the pace of the one before."""
    now, sleep = clock
    start = now()
    first: float | None = None
    for n, value in enumerate(values):
        due = None
        if rate:
            due = start + n / rate
        elif speedup and (t := published_at(value)) is not None:
            first = t if first is None else first
            due = start + max(0.0, t - first) / speedup
        if due is not None and (wait := due - now()) > 0:
            sleep(wait)
        yield value


def publish(
    kafka: KafkaSettings,
    topic: str,
    values: Iterable[bytes],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send every value, keyed by canonical URL, and wait for the acks; returns how many.

    Acks are checked every 1,000 records, so a long replay holds little in memory and stops
    at the first failure."""
    producer = kafka.producer()
    pending = []
    sent = 0
    for value in values:
        pending.append(producer.send(topic, key=key_for(value), value=value))
        sent += 1
        if len(pending) >= 1000:
            _acked(producer, pending)
        if progress is not None:
            progress(sent)
    _acked(producer, pending)
    return sent


def _acked(producer: Any, pending: list[Any]) -> None:
    producer.flush()
    for future in pending:
        future.get(timeout=30)
    pending.clear()
