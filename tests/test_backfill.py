"""`newsflow backfill` as a user runs it: the same records as `run`, every record accounted
for, idempotent reruns, and resuming after Ctrl-C or kill -9 without loss or doubling."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipelines.io.avro import ENRICHED, read_container
from pipelines.local.broker import EmbeddedBroker
from pipelines.local.process import ROOT, spawn_run
from tests.conftest import SAMPLE, SHARED
from tests.kafka_util import decode_all, produce, read_topic

pytestmark = pytest.mark.integration
PROCESSING_TIME = {"processed_at", "failed_at"}


def backfill(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "backfill", *map(str, args), "--metrics-port", "0", "--progress", "log"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def start_backfill(*args: str | Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "pipelines", "backfill", *map(str, args), "--metrics-port", "0", "--progress", "log"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def records(out: Path, name: str = "enriched") -> list[dict[str, Any]]:
    return [r for path in sorted((out / name).rglob("*.avro")) for r in read_container(path)]


def files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.avro") if "_backfill" not in p.parts)


def without(record: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in fields}


def by_id(rows: list[dict[str, Any]], fields: set[str], key: str = "source_id") -> dict[str, dict[str, Any]]:
    found = {r[key]: without(r, fields) for r in rows}
    assert len(found) == len(rows), f"one record per {key}"
    return found


def test_backfill_accounts_for_every_record_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = backfill(SAMPLE, "--output-dir", out)
    assert "accounted for      26 of 26 (all)" in first.stdout
    assert "dead letters       1" in first.stdout and "articles/s" in first.stdout
    assert "ETA" in first.stderr, "not a terminal: progress as log lines"
    enriched, dead = records(out), records(out, "deadletter")
    assert len(enriched) == 25 and len(dead) == 1
    assert dead[0]["reason"] == "empty_text" and dead[0]["archive"]["path"] == str(SAMPLE)
    line = SAMPLE.read_bytes().splitlines()[dead[0]["archive"]["record"] - 1]
    assert dead[0]["original"] == line, "the original bytes, and the line they came from"
    assert {r["pipeline_version"] for r in enriched} == {"0.1.0"} and all(r["model"] for r in enriched)
    (key,) = [m.stem for m in (out / "_backfill" / "done").glob("*.json")]
    names = {Path(p).name for p in files(out)}
    assert names == {f"{key}.avro", f"{key}.decode.avro"}, "named by chunk (dead letters: and stage)"
    stamps = {p: (out / p).stat().st_mtime_ns for p in files(out)}

    again = backfill(SAMPLE, "--output-dir", out)
    assert "nothing to do" in again.stdout
    assert {p: (out / p).stat().st_mtime_ns for p in files(out)} == stamps, "done chunks are not touched"

    redo = backfill(SAMPLE, "--output-dir", out, "--restart")
    assert "accounted for      26 of 26 (all)" in redo.stdout
    assert files(out) == sorted(stamps), "the same files, replaced: one copy of each record"
    assert by_id(records(out), PROCESSING_TIME) == by_id(enriched, PROCESSING_TIME)
    facts = records(out, "facts")
    assert len({f["fact_id"] for f in facts}) == len(facts) > 0


def test_run_and_backfill_give_identical_records(broker: EmbeddedBroker, tmp_path: Path) -> None:
    broker.create_topics(["bf.enriched", "bf.facts", "bf.deadletter"])
    lines = SAMPLE.read_bytes().splitlines()
    produce(broker.bootstrap, "news.raw", lines)
    run = spawn_run(broker.bootstrap, tmp_path / "run", "--stop-at", "latest", stdout=subprocess.DEVNULL)
    assert run.wait(timeout=300) == 0
    bf_topics = ("--enriched-topic", "bf.enriched", "--facts-topic", "bf.facts", "--deadletter-topic", "bf.deadletter")
    backfill("kafka:news.raw", "--bootstrap-servers", broker.bootstrap, "--output-dir", tmp_path / "kafka", *bf_topics)
    backfill(SAMPLE, "--output-dir", tmp_path / "file", "--files-only")

    streamed = records(tmp_path / "run")
    assert len(streamed) == 25
    # From the same Kafka records: identical but for the processing time.
    assert by_id(records(tmp_path / "kafka"), PROCESSING_TIME) == by_id(streamed, PROCESSING_TIME)
    # From the archive file: also the provenance differs (a file line instead of an offset).
    provenance = PROCESSING_TIME | {"kafka", "archive"}
    from_file = records(tmp_path / "file")
    assert by_id(from_file, provenance) == by_id(streamed, provenance)
    assert all(r["kafka"] is None and r["archive"]["path"] == str(SAMPLE) for r in from_file)
    facts = [records(tmp_path / d, "facts") for d in ("run", "kafka", "file")]
    assert by_id(facts[0], PROCESSING_TIME, "fact_id") == by_id(facts[2], PROCESSING_TIME, "fact_id")
    assert by_id(facts[0], PROCESSING_TIME, "fact_id") == by_id(facts[1], PROCESSING_TIME, "fact_id")

    # Kafka outputs: keyed by article id; a rerun sends the same keys and values.
    backfill("kafka:news.raw", "--bootstrap-servers", broker.bootstrap, "--output-dir", tmp_path / "kafka",
             "--restart", *bf_topics)  # fmt: skip
    sent = read_topic(broker.bootstrap, "bf.enriched", expect=50)
    assert len(sent) == 50
    values = decode_all(sent, ENRICHED)
    assert all(rec.key == v["article_id"].encode() for rec, v in zip(sent, values, strict=True))
    assert by_id(values[:25], PROCESSING_TIME) == by_id(values[25:], PROCESSING_TIME)


def reuters_sample(path: Path, n: int) -> Path:
    with gzip.open(SHARED / "data" / "reuters21578.jsonl.gz", "rb") as fo, gzip.open(path, "wb") as out:
        for i, line in enumerate(fo):
            if i == n:
                break
            out.write(line)
    return path


def wait_for_markers(state: Path, count: int, proc: subprocess.Popen[str], timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(list((state / "done").glob("*.json"))) >= count:
            return
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} chunks done after {timeout_s}s")


def wait_for_read(url: str, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    """Until the workers have read a record (a chunk is in flight), per the summed /metrics."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the backfill ended early"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        read = re.search(r'newsflow_stage_records_in_total\{stage="read"\} (\S+)', text)
        if read and float(read.group(1)) > 0:
            return
        time.sleep(0.2)
    raise AssertionError("no record read")


def worker_pids(job_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(job_dir).encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_interrupted_backfill_resumes_without_losing_or_doubling(tmp_path: Path) -> None:
    archive = reuters_sample(tmp_path / "reuters.jsonl.gz", 1_100)  # chunks of 500, 500, 100
    out, state = tmp_path / "out", tmp_path / "out" / "_backfill"
    args = (archive, "--output-dir", out, "--workers", "1")

    killed = start_backfill(*args)
    wait_for_markers(state, 1, killed)
    os.kill(killed.pid, signal.SIGKILL)  # kill -9 mid-way through the second chunk
    killed.wait(timeout=10)
    deadline = time.monotonic() + 10
    while worker_pids(state / "run") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker_pids(state / "run") == [], "the worker dies with its coordinator"

    stopped = start_backfill(*args)
    assert stopped.stdout is not None
    head: list[str] = []
    metrics_url = None
    while metrics_url is None and len(head) < 50:  # other lines (library warnings) may come first
        head.append(stopped.stdout.readline())
        metrics_url = re.search(r"metrics on (http://\S+)", head[-1])
    assert metrics_url, head
    wait_for_read(metrics_url.group(1), stopped)
    stopped.send_signal(signal.SIGINT)  # Ctrl-C while the second chunk is being processed
    output = "".join(head) + stopped.communicate(timeout=180)[0]
    assert stopped.returncode == 130, output
    assert "1 chunks already done" in output and "not finished: 1 chunks left" in output
    assert len(list((state / "done").glob("*.json"))) == 2, "the chunk in flight was finished, no more"

    finished = backfill(*args)
    assert "2 chunks already done" in finished.stdout and "accounted for      100 of 100 (all)" in finished.stdout

    lines = gzip.open(archive, "rb").read().splitlines()
    texts = [json.loads(line) for line in lines]
    ids = Counter(r["source_id"] for r in records(out))
    assert sorted(ids) == sorted(t["id"] for t in texts if t["text"].strip()), "every article once"
    assert set(ids.values()) == {1}, "none twice"
    dead = records(out, "deadletter")
    assert len(dead) == sum(1 for t in texts if not t["text"].strip())
    assert {d["reason"] for d in dead} == {"empty_text"}
    assert len({(d["archive"]["record"]) for d in dead}) == len(dead)
    assert not list(out.rglob(".*.tmp-*")), "no half-written file left behind"


def test_two_workers_and_a_publication_time_range(tmp_path: Path) -> None:
    archive = reuters_sample(tmp_path / "reuters.jsonl.gz", 1_100)
    out = tmp_path / "out"
    done = backfill(archive, "--output-dir", out, "--workers", "2", "--from", "1987-03-02", "--to", "March 3, 1987")
    rows = [json.loads(line) for line in gzip.open(archive, "rb").read().splitlines()]
    inside = [r for r in rows if "1987-03-02" <= r["date"] < "1987-03-03"]
    assert 0 < len(inside) < len(rows)
    assert f"out of range       {len(rows) - len(inside)} " in done.stdout
    assert "accounted for      1100 of 1100 (all)" in done.stdout
    assert sorted(p.name for p in (out / "_backfill" / "run").glob("*.log")) == ["worker-0.log", "worker-1.log"]
    written = records(out)
    assert sorted(r["source_id"] for r in written) == sorted(r["id"] for r in inside if r["text"].strip())
    assert len(records(out, "deadletter")) == sum(1 for r in inside if not r["text"].strip()), "only in range"
    assert {p.parent.name for p in (out / "enriched").rglob("*.avro")} == {"dt=1987-03-02"}
