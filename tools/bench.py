"""Benchmark: newsflow through Kafka against bare spaCy on the same texts, in one run.

    make bench                      # python -m tools.bench --help

On an embedded Tansu broker, with --articles distinct Reuters-21578 wires (near duplicates
left out with the pipeline's own index, so the pipeline runs spaCy on every one):

1. throughput: two warmed-up streaming set-ups, each on its own 2-partition topic: one
   ``newsflow run``, and two with ``--process-count 2`` (one partition each). Then rounds
   of --round-size wires, the same texts for each: bare spaCy (``nlp.pipe`` in this
   process, the same model as shipped, over the texts the pipeline gives spaCy, loading
   not timed) while the pipelines idle; the wires published at once to the one-process
   set-up; then to the two-process one. Each is timed from the first send to the last
   enriched record's Kafka timestamp (when the pipeline sent it; the bench's consumer then
   fetches lazily, leaving the CPU to the pipelines). The ratios (to bare spaCy, two to
   one process) are the medians of the rounds': this machine's speed drifts by up to ~30 %
   over minutes, and adjacent runs on the same texts compare like with like;
2. latency: fresh warmed-up set-ups, one process then two, fed one article at a time at
   half the rate each reached in (1), on the same wires (the same mix of lengths) under
   new ids, spread over both partitions; a consumer notes when each article's enriched
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
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import islice
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


def _payload(r: dict[str, Any], tag: str, line: int) -> bytes:
    return json.dumps({"source_id": f"{tag}-{line}", "url": f"https://bench.example/{tag}/{line}",
                       "title": r.get("title", ""), "text": r["text"],
                       "published_at": r.get("date")}).encode()  # fmt: skip


def _article(payload: bytes, line: int) -> Any:
    return normalize(decode_record(KafkaRecord(TOPIC, 0, line, int(time.time() * 1000), None, payload)))


def _scan(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, wire) for each English wire with text that is no near duplicate of an earlier
    one (the pipeline's own index): which wires these are does not depend on their ids."""
    index = DuplicateIndex(horizon=100_000)
    with gzip.open(path, "rt") as f:
        for i, line in enumerate(f):
            r = json.loads(line)
            if not (r.get("text") or "").strip():
                continue
            article = _article(_payload(r, "scan", i), i)
            if article.english and index.check_and_add(article) is None:
                yield i, r


_DISTINCT: dict[Path, tuple[Iterator[tuple[int, dict[str, Any]]], list[tuple[int, dict[str, Any]]]]] = {}


def wires(path: Path, n: int, tag: str, skip: int = 0) -> list[Wire]:
    """``n`` distinct English wires with text after the first ``skip``, each with an id and
    URL of ``tag``'s own. The archive is read and checked for duplicates once (~8 s for
    1,500 wires); each set of ids after that only normalizes its wires again."""
    scan, found = _DISTINCT.setdefault(path, (_scan(path), []))
    found.extend(islice(scan, max(0, skip + n - len(found))))
    out = []
    for i, r in found[skip : skip + n]:
        payload = _payload(r, tag, i)
        article = _article(payload, i)
        out.append(Wire(payload, article.article_id, article.text[:MAX_CHARS]))
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


@cache
def _bare_model() -> tuple[Any, str]:
    """The model as shipped, loaded once (loading is not timed)."""
    nlp, model, _ = load_model(as_shipped=True)
    return nlp, model


def bare_spacy(texts: list[str]) -> float:
    """Seconds for ``nlp.pipe`` over ``texts`` in this process (spaCy's default batch size)."""
    first = _bare_model.cache_info().currsize == 0
    nlp, model = _bare_model()
    if first:
        list(nlp.pipe(texts[:20]))  # warm up
    start = time.perf_counter()
    for _doc in nlp.pipe(texts):
        pass
    seconds = time.perf_counter() - start
    print(f"  bare spaCy ({model}, nlp.pipe, 1 process): {len(texts)} texts in {seconds:.1f} s, "
          f"{len(texts) / seconds:.2f} texts/s", flush=True)  # fmt: skip
    return seconds


def pipeline_args(topic: str, count: int, index: int, extra: list[str]) -> list[str]:
    args = ["--topics", topic, "--group-id", f"bench-{topic}",
            "--dedup-horizon", "1", *extra]  # fmt: skip  # the texts are distinct already; copies would skip spaCy
    return [*args, "--process-count", str(count), "--process-index", str(index)] if count > 1 else args


def start(bootstrap: str, tmp: str, topic: str, count: int, warm: list[Wire], extra: list[str],
          arrivals: Arrivals) -> list[subprocess.Popen[bytes]]:  # fmt: skip
    """``count`` streaming processes reading ``topic``, each past its model load: one
    warm-up article per partition has come out before this returns."""
    procs = [
        spawn_run(bootstrap, f"{tmp}/{topic}-{i}", *pipeline_args(topic, count, i, extra),
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(count)
    ]  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    for p, w in enumerate(warm[:2]):
        producer.send(topic, w.payload, partition=p)
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


def processes(count: int) -> str:
    return f"{count} process{'es' if count > 1 else ''}"


def publish_round(bootstrap: str, topic: str, batch: list[Wire], arrivals: Arrivals) -> float:
    """Seconds from publishing ``batch`` at once to ``topic`` (both partitions) until the
    pipeline sent the last of its enriched records (its Kafka timestamp)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    t0 = time.time()
    for i, w in enumerate(batch):
        producer.send(topic, w.payload, partition=i % 2)
    producer.close()
    deadline = time.time() + 30 + 2 * len(batch)
    while not all(w.article_id in arrivals.seen for w in batch) and time.time() < deadline:
        time.sleep(0.05)
    missing = [w for w in batch if w.article_id not in arrivals.seen]
    if missing:
        raise SystemExit(f"{len(missing)} of {len(batch)} articles never reached news.enriched")
    return max(arrivals.stamped[w.article_id] for w in batch) - t0


@dataclass
class Throughput:
    rate: dict[int, float]  # articles/s over all rounds, by process count
    peak_mb: dict[int, list[float]]  # each process's VmHWM
    bare_ratio: list[float]  # per round: bare spaCy seconds / one process's seconds
    scale: list[float]  # per round: one process's seconds / two processes' seconds


def throughput(bootstrap: str, tmp: str, rounds: dict[int, list[list[Wire]]], warm: dict[int, list[Wire]],
               extra: list[str], bare: bool) -> Throughput:  # fmt: skip
    """Warmed-up set-ups of 1 and/or 2 processes (the keys of ``rounds``), each on its own
    2-partition topic, all started first; then, round by round and on the same texts:
    bare spaCy in this process (with ``bare``), one process, two processes, each while the
    others idle. Each round's wires are published at once and timed from the first send to
    the Kafka timestamp of the last enriched record (when the pipeline sent it): the bench's
    consumer can then fetch lazily and leave the CPU to the pipelines. This machine's speed
    drifts by up to ~30 % over minutes: adjacent runs on the same texts compare like with
    like."""
    arrivals = Arrivals(bootstrap, article_key, fetch_wait_ms=300)  # timed by the records' own timestamps
    arrivals.start()
    setups = {count: start(bootstrap, tmp, f"{TOPIC}.{count}", count, warm[count], extra, arrivals) for count in rounds}
    memory = PeakMemory([p for procs in setups.values() for p in procs])
    memory.start()
    seconds: dict[int, list[float]] = {count: [] for count in rounds}
    got = Throughput({}, {}, [], [])
    try:
        for r in range(len(next(iter(rounds.values())))):
            bare_s = bare_spacy([w.text for w in rounds[1][r]]) if bare and 1 in rounds else None
            for count in rounds:
                batch = rounds[count][r]
                seconds[count].append(publish_round(bootstrap, f"{TOPIC}.{count}", batch, arrivals))
                note = ""
                if count == 1 and bare_s:
                    got.bare_ratio.append(bare_s / seconds[1][-1])
                    note = f", ratio to bare spaCy {got.bare_ratio[-1]:.3f}"
                if count == 2 and 1 in rounds:
                    got.scale.append(seconds[1][-1] / seconds[2][-1])
                    note = f", {got.scale[-1]:.2f}x one process"
                print(f"  newsflow, {processes(count)}: {len(batch)} articles published at once, "
                      f"{len(batch) / seconds[count][-1]:.2f} articles/s from the first send to the last output"
                      f"{note}", flush=True)  # fmt: skip
    finally:
        for procs in setups.values():
            stop(procs)
        memory.join()
        arrivals.stop()
    for count, procs in setups.items():
        got.rate[count] = sum(map(len, rounds[count])) / sum(seconds[count])
        got.peak_mb[count] = [memory.peak[p.pid] for p in procs]
        print(f"newsflow, {processes(count)}: {got.rate[count]:.2f} articles/s; peak RSS "
              f"{' + '.join(f'{m:.0f}' for m in got.peak_mb[count])} MB", flush=True)  # fmt: skip
    return got


def latency(bootstrap: str, tmp: str, load: list[Wire], warm: list[Wire], count: int, rate: float,
            extra: list[str]) -> dict[int, float]:  # fmt: skip
    """p50/p95/p99 seconds from send to the enriched record's arrival, at ``rate``/s."""
    arrivals = Arrivals(bootstrap, article_key)
    arrivals.start()
    topic = f"{TOPIC}.latency{count}"
    procs = start(bootstrap, tmp, topic, count, warm, extra, arrivals)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    sent: dict[str, float] = {}
    try:
        t0 = time.time()
        for i, w in enumerate(load):
            time.sleep(max(0.0, t0 + i / rate - time.time()))
            sent[w.article_id] = time.time()
            producer.send(topic, w.payload, partition=i % 2)  # spread, as producers keyed by URL do
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
    print(f"latency, {processes(count)} at {rate:.2f} articles/s for {len(load) / rate:.0f} s: "
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
    ap.add_argument("--rate", default=None,
                    help="Latency runs at this rate instead of half the max: one for both set-ups, "
                         "or ONE,TWO (articles/s), e.g. 10.4,18.4 to repeat a run's latency part alone.")  # fmt: skip
    ap.add_argument("newsflow_args", nargs="*", help="Extra `newsflow run` flags, after --")
    a = ap.parse_args()
    skip = set(a.skip.split(",")) - {""}
    given = [float(r) for r in a.rate.split(",")] * 2 if a.rate else []  # one rate: the same for both
    counts = [count for count, name in ((1, "one"), (2, "two")) if name not in skip]

    # The same texts for each set-up, with ids of its own (an id arrives once).
    batches = {count: wires(a.data, a.articles, f"bench{count}") for count in counts}
    texts = [w.text for w in next(iter(batches.values()), [])]
    if texts:
        print(f"{len(texts)} distinct Reuters-21578 wires from {a.data}, mean "
              f"{statistics.mean(map(len, texts)):.0f} characters; extra newsflow flags: "
              f"{a.newsflow_args or 'none'}", flush=True)  # fmt: skip
    rounds = {count: [b[i : i + a.round_size] for i in range(0, len(b), a.round_size)] for count, b in batches.items()}
    rate: dict[int, float] = {}
    p99: dict[int, float] = {}
    tp: Throughput | None = None
    with EmbeddedBroker() as broker, TemporaryDirectory(prefix="newsflow-bench-") as tmp:
        topics = [f"{TOPIC}.{count}" for count in (1, 2)] + [f"{TOPIC}.latency{count}" for count in (1, 2)]
        broker.create_topics(topics, 2)
        broker.create_topics(["news.enriched", "news.facts", "news.deadletter"], 1)
        warm = wires(a.data, 8, "warm", skip=a.articles)  # 2 per set-up, never timed
        if counts:
            tp = throughput(broker.bootstrap, tmp, rounds, {1: warm[0:2], 2: warm[2:4]}, a.newsflow_args,
                            "spacy" not in skip)  # fmt: skip
        if "latency" not in skip:
            for count in (1, 2):
                half = (tp.rate[count] if tp and count in tp.rate else 8.0 * count) / 2
                rate[count] = given[count - 1] if given else half
                # The wires whose maximum rate was measured (new ids): half the rate, the same mix of lengths.
                load = wires(a.data, int(rate[count] * a.seconds), f"latency{count}")
                warm_up = warm[2 + 2 * count : 4 + 2 * count]
                p99[count] = latency(broker.bootstrap, tmp, load, warm_up, count, rate[count], a.newsflow_args)[99]

    print("\nsummary (targets in brackets)")
    if tp and 1 in tp.rate:
        ratio = f", ratio to bare spaCy {statistics.median(tp.bare_ratio):.3f} (>= 0.90; median of rounds " + \
            ", ".join(f"{r:.3f}" for r in tp.bare_ratio) + ")" if tp.bare_ratio else ""  # fmt: skip
        print(f"  newsflow, 1 process                 {tp.rate[1]:6.2f} articles/s{ratio}")
    if tp and 2 in tp.rate:
        print(f"  newsflow, 2 processes               {tp.rate[2]:6.2f} articles/s (>= 12)", end="")
        print(f", {statistics.median(tp.scale):.2f}x one process (>= 1.7; median of rounds "
              + ", ".join(f"{r:.2f}" for r in tp.scale) + ")" if tp.scale else "")  # fmt: skip
    for count in p99:
        print(f"  p99 latency, {processes(count):<11} {p99[count] * 1000:7.0f} ms at "
              f"{rate[count]:.2f} articles/s (<= 1000 ms at half the max rate)")  # fmt: skip
    for count, peaks in (tp.peak_mb if tp else {}).items():
        print(f"  peak RSS per process, {processes(count):<11} {max(peaks):6.0f} MB")


if __name__ == "__main__":
    main()
