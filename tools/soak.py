"""Soak test: a streaming `newsflow run` fed at a steady rate for a long time.

    make soak                      # 35 minutes at 8 articles/s (python -m tools.soak --help)

Reuters-21578 wires (distinct ids and URLs) are produced to an embedded Tansu broker at
--rate per second for --minutes. Every 10 s the pipeline's RSS, consumer lag and counts are
sampled (CSV in --out). At the end, production stops, the pipeline drains the lag and is
stopped with SIGINT, and every produced id is looked for on news.enriched and in the
files: lost records, duplicates, throughput, lag, end-to-end latency and RSS at the start
(after --warmup minutes: model loaded, duplicate index full) and at the end.

The duplicate index grows until it holds --dedup-horizon articles, by design (bounded by
--dedup-memory-mb); the soak uses a horizon of 2,000 so it is full within the warm-up and
RSS growth after it measures leaks, not the index filling up.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import signal
import statistics
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from pipelines.io.avro import read_container
from pipelines.local.broker import EmbeddedBroker, free_port
from pipelines.local.process import rss_mb, spawn_run
from tools.bench_latency import Arrivals

ROOT = Path(__file__).resolve().parents[1]


def wires(path: Path, n: int) -> list[dict[str, Any]]:
    """n articles with text from the archive (cycled if needed), each with its own id and URL."""
    texts = []
    with gzip.open(path, "rt") as f:
        for line in f:
            r = json.loads(line)
            if (r.get("text") or "").strip():
                texts.append(r)
    return [
        {"source_id": f"soak-{i}", "url": f"https://soak.example/{i}", "title": texts[i % len(texts)].get("title", ""),
         "text": texts[i % len(texts)]["text"], "published_at": texts[i % len(texts)].get("date")}
        for i in range(n)
    ]  # fmt: skip


def scrape(port: int) -> dict[str, float]:
    """Sums of the pipeline's metrics by name (labels summed)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            sums[s.name] = sums.get(s.name, 0.0) + s.value
    return sums


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "reuters21578.jsonl.gz")
    parser.add_argument("--minutes", type=float, default=35.0)
    parser.add_argument("--rate", type=float, default=8.0, help="Articles per second.")
    parser.add_argument("--warmup", type=float, default=5.0, help="Minutes before the start RSS is taken.")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "soak")
    a = parser.parse_args()

    total = int(a.minutes * 60 * a.rate)
    articles = wires(a.data, total)
    a.out.mkdir(parents=True, exist_ok=True)
    files = a.out / "files"
    port = free_port()
    samples: list[dict[str, float]] = []
    sent_at: dict[str, float] = {}
    with EmbeddedBroker(log_path=str(a.out / "tansu.log")) as broker:
        broker.create_topics(["news.raw", "news.enriched", "news.facts", "news.deadletter"])
        log = (a.out / "newsflow.log").open("w")
        proc = spawn_run(broker.bootstrap, files, "--metrics-port", str(port), "--progress", "log",
                         "--dedup-horizon", "2000", stdout=log, stderr=log)  # fmt: skip
        arrivals = Arrivals(broker.bootstrap)
        arrivals.start()
        try:
            time.sleep(20)  # start-up: imports, spaCy, langid
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
            start = time.monotonic()
            next_sample = start
            print(f"soak: {total} articles at {a.rate}/s for {a.minutes} min; pipeline PID {proc.pid}", flush=True)
            for i, article in enumerate(articles):
                due = start + i / a.rate
                while time.monotonic() < due:
                    if time.monotonic() >= next_sample:
                        samples.append(_sample(proc.pid, port, start, i, len(arrivals.seen)))
                        next_sample += 10
                        if len(samples) % 30 == 1:
                            print(f"  {samples[-1]}", flush=True)
                    time.sleep(min(0.05, max(0.0, due - time.monotonic())))
                sent_at[article["source_id"]] = time.time()
                producer.send("news.raw", json.dumps(article).encode())
                if proc.poll() is not None:
                    raise SystemExit(f"the pipeline exited ({proc.returncode}); see {a.out / 'newsflow.log'}")
            producer.flush()
            produced_s = time.monotonic() - start
            drain_start = time.monotonic()
            while len(arrivals.seen) < total and time.monotonic() - drain_start < 600:
                time.sleep(1)
            samples.append(_sample(proc.pid, port, start, total, len(arrivals.seen)))
            final = scrape(port)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            arrivals.stop()
            log.close()

    with (a.out / "samples.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(samples[0]))
        writer.writeheader()
        writer.writerows(samples)
    want = {x["source_id"] for x in articles}
    in_files = Counter(r["source_id"] for p in (files / "enriched").rglob("*.avro") for r in read_container(p))
    lost_kafka = want - set(arrivals.count)
    lost_files = want - set(in_files)
    latencies = sorted(arrivals.seen[s] - sent_at[s] for s in want & set(arrivals.seen))
    rss_start, rss_end = rss_windows(samples, a.warmup * 60)
    lags = [s["lag"] for s in samples]
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 2 else [0.0] * 99
    print("\nsoak result")
    print(f"  produced           {total} articles in {produced_s / 60:.1f} min ({total / produced_s:.2f}/s)")
    print(f"  enriched           {len(arrivals.seen)} distinct on news.enriched, {len(in_files)} in files")
    print(f"  lost               {len(lost_kafka)} on news.enriched, {len(lost_files)} in files")
    print(f"  duplicates         {arrivals.count.total() - len(arrivals.count)} on news.enriched")
    print(f"  dead letters       {final.get('newsflow_dead_letters_total', 0):.0f}")
    print(f"  throughput         {len(arrivals.seen) / (produced_s + time.monotonic() - drain_start):.2f} articles/s")
    print(f"  lag (records)      median {statistics.median(lags):.0f}, max {max(lags):.0f}")
    print(f"  latency            p50 {q[49]:.2f} s, p95 {q[94]:.2f} s, p99 {q[98]:.2f} s (send to news.enriched)")
    growth = (rss_end - rss_start) / rss_start * 100
    rss = [s["rss_mb"] for s in samples]
    print(f"  RSS                median {rss_start:.0f} MB in the 5 min after the warm-up ({a.warmup:g} min), "
          f"{rss_end:.0f} MB in the last 5 min ({growth:+.1f} %); first {rss[0]:.0f}, min {min(rss):.0f}, "
          f"max {max(rss):.0f} MB")  # fmt: skip
    print(f"  samples            {a.out / 'samples.csv'}")
    ok = not lost_kafka and not lost_files and growth < 10
    print("  verdict            " + ("PASS" if ok else "FAIL") + " (zero lost, RSS growth < 10 %)")
    return 0 if ok else 1


def rss_windows(samples: list[dict[str, float]], warmup_s: float) -> tuple[float, float]:
    """Median RSS in the 5 minutes after the warm-up and in the last 5 minutes of the run:
    RSS swings by tens of MB between garbage collections, so single samples mislead."""
    end_t = samples[-1]["t_s"]
    first = [s["rss_mb"] for s in samples if warmup_s <= s["t_s"] < warmup_s + 300] or [samples[0]["rss_mb"]]
    last = [s["rss_mb"] for s in samples if s["t_s"] > end_t - 300]
    return statistics.median(first), statistics.median(last)


def _sample(pid: int, port: int, start: float, sent: int, arrived: int) -> dict[str, float]:
    m = scrape(port)
    return {
        "t_s": round(time.monotonic() - start, 1),
        "sent": sent,
        "enriched": arrived,
        "read": m.get("newsflow_kafka_records_read_total", 0),
        "lag": m.get("newsflow_consumer_lag_records", 0),
        "rss_mb": round(rss_mb(pid), 1),
        "dedup_index": m.get("newsflow_dedup_index_articles", 0),
    }


if __name__ == "__main__":
    raise SystemExit(main())
