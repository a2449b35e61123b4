"""Benchmark: newsflow through Kafka against bare spaCy on the same texts, in one run.

    make bench                      # python -m tools.bench --help

On an embedded Tansu broker, with --articles distinct Reuters-21578 wires (near duplicates
left out with the pipeline's own index, so the pipeline runs spaCy on every one):

1. one streaming ``newsflow run`` on a 2-partition topic, warmed up (one article per
   partition has come out); then rounds of --round-size wires: bare spaCy (``nlp.pipe`` in
   this process, the same model as shipped, over the texts the pipeline gives spaCy, loading
   not timed) while the pipeline idles, then the same wires published at once, timed from
   the first send to the last enriched record a consumer sees. The ratio is the median of
   the rounds': this machine's speed drifts by up to ~30 % over minutes;
2. the same with two processes (``--process-count 2``), each owning one partition;
3. latency: the same warmed-up set-ups fed one article at a time at half the rate of (1),
   then of (2), spread over both partitions; a consumer notes when each article's enriched
   record arrives (latency = arrival - send, p50/p95/p99).

Model loading is left out on both sides. Peak memory is each pipeline process's VmHWM.
One benchmark at a time on a 2-core machine: the bench's own consumer reads keys only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from pipelines.io.decode import decode_record
from pipelines.local.broker import EmbeddedBroker
from pipelines.local.process import rss_mb, spawn_run
from pipelines.nlp.dedup import DuplicateIndex
from pipelines.nlp.entities import MAX_CHARS, load_model
from pipelines.nlp.normalize import normalize
from pipelines.records import KafkaRecord
from tools.bench_latency import Arrivals, pct

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "reuters21578.jsonl.gz"
TOPIC = "news.raw"


@dataclass(frozen=True)
class Wire:
    payload: bytes  # what is produced to news.raw
    article_id: str  # the key of its enriched record
    text: str  # what the pipeline gives spaCy


def wires(path: Path, n: int, tag: str, skip: int = 0) -> list[Wire]:
    """``n`` distinct English wires with text, each with its own id and URL."""
    index = DuplicateIndex(horizon=100_000)
    out: list[Wire] = []
    with gzip.open(path, "rt") as f:
        for i, line in enumerate(f):
            r = json.loads(line)
            if not (r.get("text") or "").strip():
                continue
            payload = json.dumps({"source_id": f"{tag}-{i}", "url": f"https://bench.example/{tag}/{i}",
                                  "title": r.get("title", ""), "text": r["text"],
                                  "published_at": r.get("date")}).encode()  # fmt: skip
            article = normalize(decode_record(KafkaRecord(TOPIC, 0, i, int(time.time() * 1000), None, payload)))
            if not article.english or index.check_and_add(article) is not None:
                continue
            if skip:
                skip -= 1
                continue
            out.append(Wire(payload, article.article_id, article.text[:MAX_CHARS]))
            if len(out) == n:
                break
    return out


def article_key(rec: ConsumerRecord) -> str:
    """An enriched record's key: its article id (nothing decoded)."""
    return str(rec.key.decode())


class PeakMemory(threading.Thread):
    """The largest VmHWM (peak RSS) each watched process reached, in MB."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        super().__init__(daemon=True)
        self.peak = {p.pid: 0.0 for p in procs}
        self._procs = procs

    def run(self) -> None:
        while any(p.poll() is None for p in self._procs):
            for p in self._procs:
                try:
                    self.peak[p.pid] = max(self.peak[p.pid], rss_mb(p.pid, peak=True))
                except (OSError, RuntimeError):  # ended meanwhile
                    continue
            time.sleep(0.2)


_BARE: list[Any] = []  # the as-shipped model, loaded once (its loading is not timed)


def bare_spacy(texts: list[str]) -> float:
    """Seconds for ``nlp.pipe`` over ``texts`` in this process (spaCy's default batch size)."""
    if not _BARE:
        nlp, model, _ = load_model(as_shipped=True)
        list(nlp.pipe(texts[:20]))  # warm up
        _BARE.extend([nlp, model])
    nlp, model = _BARE
    start = time.perf_counter()
    for _doc in nlp.pipe(texts):
        pass
    seconds = time.perf_counter() - start
    print(f"  bare spaCy ({model}, nlp.pipe, 1 process): {len(texts)} texts in {seconds:.1f} s, "
          f"{len(texts) / seconds:.2f} texts/s", flush=True)  # fmt: skip
    return seconds


def pipeline_args(bootstrap: str, out: str, count: int, index: int, extra: list[str]) -> list[str]:
    args = ["--dedup-horizon", "1", *extra]  # the texts are distinct already; copies would skip spaCy
    return [*args, "--process-count", str(count), "--process-index", str(index)] if count > 1 else args


def start(bootstrap: str, tmp: str, tag: str, count: int, warm: list[Wire], extra: list[str],
          arrivals: Arrivals) -> list[subprocess.Popen[bytes]]:  # fmt: skip
    """``count`` streaming processes, each past its model load: one warm-up article per
    partition has come out before this returns."""
    procs = [
        spawn_run(bootstrap, f"{tmp}/{tag}{count}-{i}", *pipeline_args(bootstrap, tmp, count, i, extra),
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(count)
    ]  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    for p, w in enumerate(warm[:2]):
        producer.send(TOPIC, w.payload, partition=p)
    producer.close()
    deadline = time.time() + 180
    while not all(w.article_id in arrivals.seen for w in warm[:2]):
        if time.time() > deadline or any(proc.poll() is not None for proc in procs):
            raise SystemExit("newsflow did not start (warm-up articles never came out)")
        time.sleep(0.1)
    time.sleep(2.0)
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)


def backlog(bootstrap: str, tmp: str, rounds: list[list[Wire]], warm: list[Wire], count: int,
            extra: list[str], bare: bool) -> tuple[float, float, list[float]]:  # fmt: skip
    """(articles/s, peak MB of a process, ratios to bare spaCy) for ``count`` warmed-up
    processes. Each round's wires are published at once; its time runs from the first send
    to the last enriched record's arrival. With ``bare``, spaCy runs over the same texts in
    this process just before each round, the pipeline idle: this machine's speed drifts by
    up to ~30 % over minutes, and adjacent runs compare like with like."""
    arrivals = Arrivals(bootstrap, article_key)
    arrivals.start()
    procs = start(bootstrap, tmp, "backlog", count, warm, extra, arrivals)
    memory = PeakMemory(procs)
    memory.start()
    total_s, ratios = 0.0, []
    try:
        for batch in rounds:
            bare_s = bare_spacy([w.text for w in batch]) if bare else None
            producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
            t0 = time.time()
            for i, w in enumerate(batch):
                producer.send(TOPIC, w.payload, partition=i % 2)
            producer.close()
            deadline = time.time() + 30 + 2 * len(batch)
            while not all(w.article_id in arrivals.seen for w in batch) and time.time() < deadline:
                time.sleep(0.05)
            missing = [w for w in batch if w.article_id not in arrivals.seen]
            if missing:
                raise SystemExit(f"{len(missing)} of {len(batch)} articles never reached news.enriched")
            seconds = max(arrivals.seen[w.article_id] for w in batch) - t0
            total_s += seconds
            ratio = f", ratio to bare spaCy {bare_s / seconds:.3f}" if bare_s else ""
            print(f"  newsflow, {count} process{'es' if count > 1 else ''}: {len(batch)} articles published at "
                  f"once, {len(batch) / seconds:.2f} articles/s from the first send to the last output{ratio}",
                  flush=True)  # fmt: skip
            if bare_s:
                ratios.append(bare_s / seconds)
    finally:
        stop(procs)
        memory.join()
        arrivals.stop()
    rate = sum(map(len, rounds)) / total_s
    print(f"newsflow, {count} process{'es' if count > 1 else ''}: {rate:.2f} articles/s; peak RSS "
          f"{' + '.join(f'{m:.0f}' for m in memory.peak.values())} MB", flush=True)  # fmt: skip
    return rate, max(memory.peak.values()), ratios


def latency(bootstrap: str, tmp: str, load: list[Wire], warm: list[Wire], count: int, rate: float,
            extra: list[str]) -> dict[int, float]:  # fmt: skip
    """p50/p95/p99 seconds from send to the enriched record's arrival, at ``rate``/s."""
    arrivals = Arrivals(bootstrap, article_key)
    arrivals.start()
    procs = start(bootstrap, tmp, "latency", count, warm, extra, arrivals)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    sent: dict[str, float] = {}
    try:
        t0 = time.time()
        for i, w in enumerate(load):
            time.sleep(max(0.0, t0 + i / rate - time.time()))
            sent[w.article_id] = time.time()
            producer.send(TOPIC, w.payload, partition=i % 2)  # spread, as producers keyed by URL do
            producer.flush()
        deadline = time.time() + 60
        while time.time() < deadline and not all(k in arrivals.seen for k in sent):
            time.sleep(0.1)
    finally:
        stop(procs)
        arrivals.stop()
        producer.close()
    lat = [arrivals.seen[k] - t for k, t in sent.items() if k in arrivals.seen]
    got = {q: pct(lat, q) for q in (50, 95, 99)}
    print(f"latency, {count} process{'es' if count > 1 else ''} at {rate:.2f} articles/s for {len(load) / rate:.0f} s: "
          f"{len(lat)}/{len(sent)} arrived; p50 {got[50] * 1000:.0f} ms, p95 {got[95] * 1000:.0f} ms, "
          f"p99 {got[99] * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms", flush=True)  # fmt: skip
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--articles", type=int, default=1500, help="Wires for the throughput runs.")
    ap.add_argument("--round-size", type=int, default=500, help="Wires per round of bare spaCy + pipeline.")
    ap.add_argument("--seconds", type=float, default=60.0, help="Length of each latency run.")
    ap.add_argument("--skip", default="", help="Comma list of parts to leave out: spacy,one,two,latency")
    ap.add_argument("--rate", type=float, default=None, help="Latency runs at this rate instead of half the max.")
    ap.add_argument("newsflow_args", nargs="*", help="Extra `newsflow run` flags, after --")
    a = ap.parse_args()
    skip = set(a.skip.split(",")) - {""}

    batch = wires(a.data, a.articles, "bench")
    texts = [w.text for w in batch]
    print(f"{len(batch)} distinct Reuters-21578 wires from {a.data}, mean {statistics.mean(map(len, texts)):.0f} "
          f"characters; extra newsflow flags: {a.newsflow_args or 'none'}", flush=True)  # fmt: skip
    figures: dict[str, float] = {}
    ratios: list[float] = []
    rounds = [batch[i : i + a.round_size] for i in range(0, len(batch), a.round_size)]
    with EmbeddedBroker() as broker, TemporaryDirectory(prefix="newsflow-bench-") as tmp:
        broker.create_topics([TOPIC], 2)
        broker.create_topics(["news.enriched", "news.facts", "news.deadletter"], 1)
        fresh = wires(a.data, 3000, "fresh", skip=2 * a.articles)  # warm-ups and latency loads

        def take(n: int) -> list[Wire]:
            nonlocal fresh
            got, fresh = fresh[:n], fresh[n:]
            return got

        if "one" not in skip:
            bare = "spacy" not in skip
            figures["one"], figures["one_mb"], ratios = backlog(
                broker.bootstrap, tmp, rounds, take(2), 1, a.newsflow_args, bare
            )
        if "two" not in skip:
            second = wires(a.data, a.articles, "bench2", skip=a.articles)
            figures["two"], figures["two_mb"], _ = backlog(
                broker.bootstrap, tmp, [second], take(2), 2, a.newsflow_args, False
            )
        if "latency" not in skip:
            for count, key in ((1, "one"), (2, "two")):
                rate = a.rate or figures.get(key, 8.0 * count) / 2
                warm = take(2)
                got = latency(broker.bootstrap, tmp, take(int(rate * a.seconds)), warm, count, rate, a.newsflow_args)
                figures[f"p99_{key}"] = got[99]
                figures[f"rate_{key}"] = rate

    print("\nsummary (targets in brackets)")
    if "one" in figures:
        ratio = f", ratio to bare spaCy {statistics.median(ratios):.3f} (>= 0.90; median of rounds " + \
            ", ".join(f"{r:.3f}" for r in ratios) + ")" if ratios else ""  # fmt: skip
        print(f"  newsflow, 1 process                 {figures['one']:6.2f} articles/s{ratio}")
    if "two" in figures:
        print(f"  newsflow, 2 processes               {figures['two']:6.2f} articles/s (>= 12)", end="")
        print(f", {figures['two'] / figures['one']:.2f}x one process (>= 1.7)" if "one" in figures else "")
    for key, label in (("one", "1 process"), ("two", "2 processes")):
        if f"p99_{key}" in figures:
            print(f"  p99 latency, {label:<11} {figures[f'p99_{key}'] * 1000:7.0f} ms at "
                  f"{figures[f'rate_{key}']:.2f} articles/s (<= 1000 ms at half the max rate)")  # fmt: skip
    for key in ("one", "two"):
        if f"{key}_mb" in figures:
            print(f"  peak RSS per process, {key}          {figures[f'{key}_mb']:6.0f} MB")


if __name__ == "__main__":
    main()
