"""Benchmark: throughput on the sample backlog, and end-to-end latency at a light steady load.

    make bench-latency            # or: python tools/bench_latency.py --rate 2 --seconds 60

1. Throughput: the shipped sample (repeated to --copies x 25 articles with distinct URLs)
   is published first, then `newsflow run --stop-at latest` processes the backlog;
   articles/s is measured between the first and last enriched record a consumer sees,
   and over the whole run including start-up.
2. Latency: a streaming `newsflow run` is warmed up, then articles are produced at
   --rate per second for --seconds; a consumer on news.enriched notes when each one
   arrives. Latency = arrival - send, as a user would see it (p50/p95/p99).
Runs against the embedded Tansu broker; one benchmark at a time on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from pipelines.io.avro import ENRICHED, schema
from pipelines.local.broker import EmbeddedBroker
from pipelines.local.process import spawn_run

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pipelines" / "data" / "sample_articles.jsonl"


def articles(copies: int, tag: str) -> list[dict[str, Any]]:
    base = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    base = [a for a in base if a["text"]]
    return [
        {**a, "source_id": f"{tag}-{c}-{i}", "url": f"https://bench.example/{tag}/{c}/{i}"}
        for c in range(copies)
        for i, a in enumerate(base)
    ]


def source_id(rec: ConsumerRecord) -> str:
    """An enriched record's source_id (decodes the Avro value)."""
    return str(schema(ENRICHED).decode(rec.value)["source_id"])


class Arrivals(threading.Thread):
    """Notes the wall-clock time each enriched record (by ``ident``: source_id, or e.g. the
    key alone, which costs the bench less CPU) first reaches a consumer (``seen``), its
    Kafka timestamp (``stamped``: when the pipeline's producer sent it), and how many
    times each arrives, from every partition of news.enriched.

    ``fetch_wait_ms`` is how long the broker may hold a fetch: 20 ms keeps arrival times
    sharp; a throughput run, timed by ``stamped``, can wait longer and leave the CPU
    (measured: 0.12 -> 0.04 cores for the bench, 0.04 -> 0.01 for Tansu at 300 ms)."""

    def __init__(self, bootstrap: str, ident: Callable[[ConsumerRecord], str] = source_id,
                 fetch_wait_ms: int = 20) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.stamped: dict[str, float] = {}
        self.count: Counter[str] = Counter()
        self._servers = bootstrap
        self._identify = ident  # not _ident: Thread keeps its thread id there
        self._fetch_wait_ms = fetch_wait_ms
        self._halt = threading.Event()

    def run(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self._servers, fetch_max_wait_ms=self._fetch_wait_ms)
        partitions = consumer.partitions_for_topic("news.enriched") or {0}
        consumer.assign([TopicPartition("news.enriched", p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        while not self._halt.is_set():
            for batch in consumer.poll(timeout_ms=50).values():
                now = time.time()
                for rec in batch:
                    ident = self._identify(rec)
                    self.count[ident] += 1
                    self.seen.setdefault(ident, now)
                    self.stamped.setdefault(ident, rec.timestamp / 1000)
        consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join()


def newsflow(bootstrap: str, out: str, *extra: str) -> subprocess.Popen[bytes]:
    # The copies share their text, so the duplicate index would skip NLP for all but the
    # first; a horizon of one article (copies are 25 apart) makes every copy cost what a
    # distinct article costs.
    return spawn_run(
        bootstrap, out, "--dedup-horizon", "1", *extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--rate", type=float, default=2.0, help="articles/s for the latency part")
    ap.add_argument("--seconds", type=float, default=60.0)
    a = ap.parse_args()

    with EmbeddedBroker() as broker, TemporaryDirectory() as tmp:
        broker.create_topics(["news.raw", "news.enriched", "news.deadletter"])
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)
        arrivals = Arrivals(broker.bootstrap)
        arrivals.start()

        backlog = articles(a.copies, "backlog")
        for art in backlog:
            producer.send("news.raw", json.dumps(art).encode())
        producer.flush()
        started = time.time()
        proc = newsflow(broker.bootstrap, tmp + "/out1", "--stop-at", "latest")
        proc.wait()
        wall = time.time() - started
        times = sorted(arrivals.seen[x["source_id"]] for x in backlog if x["source_id"] in arrivals.seen)
        steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
        print(
            f"throughput: {len(times)}/{len(backlog)} sample articles enriched; "
            f"{steady:.2f} articles/s steady (first to last output), "
            f"{len(times) / wall:.2f} articles/s over the whole run incl. start-up ({wall:.1f} s)"
        )

        proc = newsflow(broker.bootstrap, tmp + "/out2")
        warm = articles(1, "warmup")[:1]
        producer.send("news.raw", json.dumps(warm[0]).encode())
        producer.flush()
        while warm[0]["source_id"] not in arrivals.seen:
            time.sleep(0.05)
        load = articles(int(a.rate * a.seconds / 25) + 1, "steady")[: int(a.rate * a.seconds)]
        sent: dict[str, float] = {}
        t0 = time.time()
        for i, art in enumerate(load):
            time.sleep(max(0.0, t0 + i / a.rate - time.time()))
            sent[art["source_id"]] = time.time()
            producer.send("news.raw", json.dumps(art).encode())
            producer.flush()
        deadline = time.time() + 30
        while time.time() < deadline and not all(k in arrivals.seen for k in sent):
            time.sleep(0.1)
        proc.terminate()
        proc.wait(timeout=60)
        arrivals.stop()
        producer.close()
        lat = [arrivals.seen[k] - t for k, t in sent.items() if k in arrivals.seen]
        print(
            f"latency at {a.rate:g} articles/s for {a.seconds:g} s: {len(lat)}/{len(sent)} arrived; "
            f"p50 {pct(lat, 50) * 1000:.0f} ms, p95 {pct(lat, 95) * 1000:.0f} ms, "
            f"p99 {pct(lat, 99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
