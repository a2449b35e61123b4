"""Test helpers that talk to a real broker: produce, read a topic back, committed offsets."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipelines.io.avro import schema


def produce(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes | None] | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=64 * 1024 * 1024)
    futures = [producer.send(topic, key=(keys[i] if keys else None), value=v) for i, v in enumerate(values)]
    producer.flush()
    for f in futures:
        f.get(timeout=10)
    producer.close()


def read_topic(bootstrap: str, topic: str, expect: int | None = None, timeout_s: float = 20.0) -> list[Any]:
    """Every record of partition 0 of ``topic`` (waiting up to ``timeout_s`` for ``expect`` records)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    idle_polls = 0
    while time.monotonic() < deadline:
        got = consumer.poll(timeout_ms=300).get(tp, [])
        records += got
        idle_polls = 0 if got else idle_polls + 1
        if expect is None and idle_polls >= 3:
            break
        if expect is not None and len(records) >= expect:
            break
    consumer.close()
    return records


def decode_all(records: list[Any], schema_name: str) -> list[dict[str, Any]]:
    s = schema(schema_name)
    return [s.decode(r.value) for r in records]


def committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, partition))
    finally:
        consumer.close()
