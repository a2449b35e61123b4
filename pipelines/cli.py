"""Command line: ``newsflow run``, ``backfill``, ``produce``, ``broker``, ``dashboard``.

newsflow run                                   # embedded broker + sample articles
newsflow run --bootstrap-servers HOST:PORT     # an existing Kafka
newsflow produce FILE.jsonl --topic news.raw --bootstrap-servers HOST:PORT
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from pipelines import __version__
from pipelines.io.kafka import KafkaSettings
from pipelines.io.produce import paced, publish, read_lines
from pipelines.io.security import kafka_client_config, protect_kafka_logs
from pipelines.local.broker import EmbeddedBroker, port_is_free
from pipelines.local.prometheus import LocalPrometheus
from pipelines.metrics import samples, serve
from pipelines.options import NewsflowOptions
from pipelines.run_control import CONTROL

log = logging.getLogger("newsflow")
SAMPLE = Path(__file__).resolve().parent / "data" / "sample_articles.jsonl"
DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


def _options_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run the newsflow streaming pipeline.")
    NewsflowOptions._add_argparse_args(parser)
    return parser


def _counts() -> dict[str, float]:
    return samples({
        "read": ("newsflow_kafka_records_read_total", None),
        "enriched": ("newsflow_stage_records_out_total", {"stage": "facts"}),
        "facts": ("newsflow_facts_total", None),
        "events": ("newsflow_events_total", None),
        "duplicates": ("newsflow_duplicates_total", None),
        "dead": ("newsflow_dead_letters_total", None),
        "lag": ("newsflow_consumer_lag_records", None),
    })  # fmt: skip


class Progress(threading.Thread):
    """A live line of counts (rewritten on a terminal, logged otherwise).

    It samples the counters every half second, which also gives the busy-time
    throughput for the summary (first to last record read, idle time excluded).
    """

    def __init__(self, mode: str) -> None:
        super().__init__(daemon=True, name="newsflow-progress")
        self._mode = ("line" if sys.stderr.isatty() else "log") if mode == "auto" else mode
        self._print_every = 1.0 if self._mode == "line" else 10.0
        self._done = threading.Event()
        self.started_at = time.monotonic()
        self._history: list[tuple[float, float]] = [(self.started_at, 0.0)]  # (time, records read)
        self.first_read: float | None = None
        self.last_read: float | None = None

    def run(self) -> None:
        last_print = time.monotonic()
        while not self._done.wait(0.5):
            counts = self._sample()
            if time.monotonic() - last_print >= self._print_every:
                self._show(counts)
                last_print = time.monotonic()

    def _sample(self) -> dict[str, float]:
        counts = _counts()
        now = time.monotonic()
        if counts["read"] > self._history[-1][1]:
            self.first_read = self.first_read or self._history[-1][0]
            self.last_read = now
        self._history = [h for h in self._history if now - h[0] <= 5.0] + [(now, counts["read"])]
        return counts

    def busy_rate(self, read: float) -> float:
        if self.first_read is None or self.last_read is None:
            return 0.0
        return read / max(self.last_read - self.first_read, 0.5)

    def _show(self, c: dict[str, float]) -> None:
        (t0, n0), (t1, n1) = self._history[0], self._history[-1]
        rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
        text = (
            f"read {c['read']:.0f} | enriched {c['enriched']:.0f} | facts {c['facts']:.0f} | "
            f"dead letters {c['dead']:.0f} | lag {c['lag']:.0f} | {rate:.1f} articles/s (last 5 s)"
        )
        if self._mode == "line":
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()
        elif self._mode == "log":
            log.info(text)

    def finish(self) -> None:
        self._done.set()
        self.join(timeout=2)
        counts = self._sample()
        if self._mode == "line":
            self._show(counts)
            sys.stderr.write("\n")


def kafka_failure(exc: BaseException) -> str | None:
    """The message of a KafkaUnavailable under ``exc``: raised directly while the graph is
    built, or re-raised by the runner from a DoFn (then only its text survives)."""
    from pipelines.io.retry import KafkaUnavailable

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, KafkaUnavailable):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    found = re.search(r"(?:KafkaUnavailable|StopRequested|SinkError): (.+)", str(exc))
    return found.group(1) if found else None


def install_stop_handlers() -> None:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        if CONTROL.stopping():
            raise KeyboardInterrupt  # second Ctrl-C: give up waiting for the bundle
        log.info("stopping: finishing the current bundle, flushing sinks, committing offsets")
        CONTROL.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def cmd_run(argv: list[str]) -> int:
    parser = _options_parser("newsflow run")
    parser.epilog = ("Any other flag is one of Beam's pipeline options: with --runner (PortableRunner, "
                     "FlinkRunner, DataflowRunner...) the pipeline is submitted to that runner.")  # fmt: skip
    o, beam_args = parser.parse_known_args(argv)
    if not 0 <= o.process_index < o.process_count:
        parser.error(f"--process-index must be 0 to {o.process_count - 1} (--process-count {o.process_count})")
    opts = NewsflowOptions(flags=[], **vars(o))
    if beam_args:
        if not any(a == "--runner" or a.startswith("--runner=") for a in beam_args):
            parser.error(f"unrecognized arguments: {' '.join(beam_args)} (Beam options need --runner)")
        if not opts.kafka_bootstrap_servers:
            parser.error("on a cluster runner, --bootstrap-servers is required (no embedded broker)")
        return _submit(opts, beam_args)
    with ExitStack() as stack:
        if not opts.kafka_bootstrap_servers:
            broker = stack.enter_context(EmbeddedBroker())
            outputs = [opts.enriched_topic, opts.facts_topic, opts.deadletter_topic]
            topics = [t for t in opts.topics.split(",") if t] + outputs
            broker.create_topics(topics, opts.partitions)
            opts = NewsflowOptions(flags=[], **{**vars(o), "kafka_bootstrap_servers": broker.bootstrap})
            sample_path = Path(opts.sample) if opts.sample else SAMPLE
            sent = publish(KafkaSettings(broker.bootstrap), topics[0], read_lines(sample_path))
            print(
                f"embedded Kafka-compatible broker (Tansu) on {broker.bootstrap}; "
                f"published {sent} sample articles from {sample_path} to {topics[0]}",
                flush=True,
            )
        return _run_pipeline(opts)
    return 0


def _submit(opts: NewsflowOptions, beam_args: list[str]) -> int:
    """Hand the pipeline to a cluster runner; the workers serve their own /metrics."""
    from pipelines import graph  # imports Beam; kept out of `newsflow --help`

    try:
        graph.submit(opts, beam_args)
    except Exception as exc:
        reason = kafka_failure(exc)
        if reason is None:
            raise
        log.error("%s", reason)
        return 1
    return 0


def _run_pipeline(opts: NewsflowOptions) -> int:
    port = serve(opts.metrics_port, opts.metrics_addr)
    print(
        f"metrics on http://{opts.metrics_addr}:{port}/metrics; reading {opts.topics} "
        f"from {opts.kafka_bootstrap_servers}; Ctrl-C stops cleanly",
        flush=True,
    )
    with ExitStack() as stack:
        if opts.monitor:
            prom = stack.enter_context(_monitor(port))
            print(f"Prometheus on {prom.url} (rules and alerts of {DEPLOY}); newsflow dashboard --png FILE "
                  f"--prometheus {prom.url} draws the main panels", flush=True)  # fmt: skip
        return _stream(opts)


def _monitor(metrics_port: int) -> LocalPrometheus:
    rules = sorted((DEPLOY / "rules").glob("*.yml"))
    port = 9090 if port_is_free(9090) else None
    return LocalPrometheus([f"127.0.0.1:{metrics_port}"], scrape_interval="5s", rule_files=rules, port=port)


def _stream(opts: NewsflowOptions) -> int:
    from pipelines import graph  # imports Beam; kept out of `newsflow --help`

    CONTROL.reset(opts.max_articles)
    install_stop_handlers()
    timer = threading.Timer(opts.duration, CONTROL.stop) if opts.duration else None
    if timer:
        timer.daemon = True
        timer.start()
    progress = Progress(opts.progress)
    progress.start()
    try:
        graph.run(opts)
    except Exception as exc:
        reason = kafka_failure(exc)
        if reason is None:
            raise
        if CONTROL.stopping():  # Ctrl-C while waiting for Kafka: the uncommitted records are read again next time
            log.info("stopped while waiting for Kafka; nothing uncommitted is lost, the next run reads it again")
            return 130
        log.error("%s", reason)
        return 1
    finally:
        if timer:
            timer.cancel()
        progress.finish()
    elapsed = time.monotonic() - progress.started_at
    c = _counts()
    out = Path(opts.output_dir).resolve() if opts.output_dir else None
    print("\nnewsflow summary")
    print(f"  articles in        {c['read']:.0f}")
    print(f"  enriched out       {c['enriched']:.0f}")
    print(f"  facts              {c['facts']:.0f} casualty facts, {c['events']:.0f} events")
    print(f"  duplicates         {c['duplicates']:.0f}")
    print(f"  dead letters       {c['dead']:.0f}")
    print(f"  throughput         {progress.busy_rate(c['read']):.2f} articles/s while busy; ran {elapsed:.1f} s")
    topics = f"{opts.enriched_topic}, {opts.facts_topic}, {opts.deadletter_topic}"
    print(f"  Kafka topics       {topics} on {opts.kafka_bootstrap_servers}")
    folders = ", ".join(str(out / sub) for sub in ("enriched", "facts", "deadletter")) if out else "off"
    print(f"  Avro files         {folders}")
    return 0


# Kafka security (SASL, TLS): every command that talks to Kafka takes them.
_SECURITY_FLAGS = {
    "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password_file", "ssl_cafile", "ssl_certfile",
    "ssl_keyfile", "ssl_no_check_hostname",
}  # fmt: skip
# The run flags that mean something to a backfill (the rest are about a live Kafka source).
_BACKFILL_FLAGS = _SECURITY_FLAGS | {
    "kafka_bootstrap_servers", "output_dir", "files_only", "enriched_topic", "deadletter_topic", "facts_topic",
    "metrics_port", "metrics_addr", "batch_size", "dedup_horizon", "dedup_memory_mb", "dedup_threshold",
    "skip_duplicates", "max_message_bytes", "max_json_depth", "article_seconds", "bad_dates", "kafka_timeout_ms",
    "fail_fast",
}  # fmt: skip


def _add_flags(parser: argparse.ArgumentParser, dests: set[str]) -> argparse.ArgumentParser:
    """Add the NewsflowOptions flags named by ``dests`` to ``parser``; return the full parser."""
    full = _options_parser(parser.prog)
    for action in full._actions:
        if action.dest in dests:
            parser._add_action(action)
    return full


def cmd_backfill(argv: list[str]) -> int:
    from pipelines.backfill import backfill, parse_time

    parser = argparse.ArgumentParser(
        prog="newsflow backfill",
        description="Run archives (JSON Lines, gzip, Avro; files, folders, globs) or Kafka ranges "
        "(kafka:TOPIC[:PARTITION[:FIRST-LAST]]) through the pipeline to an end. Idempotent: a rerun "
        "resumes, skipping the chunks already done, and replaces the files of any chunk it redoes.",
    )
    parser.add_argument("sources", nargs="+", help="Archive files, folders, globs, or kafka:TOPIC[:P[:FIRST-LAST]].")
    parser.add_argument(
        "--from", dest="since", help="Only articles published at or after this time (Kafka: record timestamp)."
    )
    parser.add_argument(
        "--to", dest="until", help="Only articles published before this time (Kafka: record timestamp)."
    )
    parser.add_argument("--workers", type=int, default=None, help="Worker processes (default: one per core).")
    parser.add_argument("--restart", action="store_true", help="Redo every chunk, even those a previous run finished.")
    parser.add_argument(
        "--state-dir", default=None, help="Where chunks are marked done (default: OUTPUT_DIR/_backfill)."
    )
    parser.add_argument(
        "--progress", default="auto", choices=["auto", "bar", "log", "off"],
        help="A progress bar on a terminal, log lines every 10 s otherwise.",
    )  # fmt: skip
    full = _add_flags(parser, _BACKFILL_FLAGS)
    a = parser.parse_args(argv)
    if a.output_dir == "" and a.files_only:
        parser.error("--files-only with --output-dir '' leaves no output")
    if a.output_dir == "" and not a.kafka_bootstrap_servers:
        parser.error("no output: give --output-dir or --bootstrap-servers")
    try:  # parsed once, here, so a bad time is a usage error
        a.since = parse_time(a.since, "--from") if a.since else None
        a.until = parse_time(a.until, "--to") if a.until else None
    except ValueError as exc:
        parser.error(str(exc))
    options = {**vars(full.parse_args([])), **{k: v for k, v in vars(a).items() if k in _BACKFILL_FLAGS}}
    return backfill(a, options)


def cmd_backfill_worker(argv: list[str]) -> int:
    from pipelines.backfill import run_worker

    return run_worker(Path(argv[0]))


def cmd_produce(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="newsflow produce", description="Publish JSON Lines articles to Kafka, keyed by canonical URL."
    )
    parser.add_argument("files", nargs="+", type=Path, help="JSON Lines files (.jsonl or .jsonl.gz).")
    parser.add_argument("--topic", default="news.raw")
    parser.add_argument("--bootstrap-servers", required=True)
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="Records per second (default: as fast as possible).")
    pace.add_argument(
        "--speedup", type=float, help="Original pacing by published_at, sped up this many times (3600: an hour/s)."
    )
    _add_flags(parser, _SECURITY_FLAGS)
    a = parser.parse_args(argv)
    try:
        kafka = KafkaSettings(a.bootstrap_servers, client=kafka_client_config(a))
    except ValueError as exc:
        parser.error(str(exc))
    started = last_line = time.monotonic()

    def progress(sent: int) -> None:
        nonlocal last_line
        now = time.monotonic()
        if now - last_line >= 2.0:
            last_line = now
            print(f"  {sent:,} sent, {sent / (now - started):.1f}/s", flush=True)

    values = (line for f in a.files for line in read_lines(f))
    total = publish(kafka, a.topic, paced(values, a.rate, a.speedup), progress)
    elapsed = time.monotonic() - started
    print(f"published {total} records to {a.topic} in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f}/s)")
    return 0


def cmd_broker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="newsflow broker", description="Run the embedded broker until Ctrl-C.")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--topics", default="news.raw,news.enriched,news.facts,news.deadletter")
    parser.add_argument("--partitions", type=int, default=1)
    a = parser.parse_args(argv)
    with EmbeddedBroker(a.port) as broker:
        broker.create_topics([t for t in a.topics.split(",") if t], a.partitions)
        print(f"broker on {broker.bootstrap} (topics {a.topics}); Ctrl-C stops it", flush=True)
        try:
            while broker.process is not None and broker.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_dashboard(argv: list[str]) -> int:
    from pipelines import dashboard

    parser = argparse.ArgumentParser(
        prog="newsflow dashboard", description="Write the Grafana dashboard, or draw its main panels to a PNG."
    )
    parser.add_argument("--grafana", type=Path, help="Write the Grafana dashboard JSON here.")
    parser.add_argument("--png", type=Path, help="Draw the main panels from Prometheus data to this PNG file.")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL (for --png).")
    parser.add_argument("--minutes", type=float, default=15.0, help="Time range to draw, ending now.")
    a = parser.parse_args(argv)
    if not a.grafana and not a.png:
        parser.error("give --grafana FILE and/or --png FILE")
    if a.grafana:
        dashboard.write_grafana(a.grafana)
        print(f"wrote {a.grafana} ({len(dashboard.PANELS)} panels)")
    if a.png:
        drawn = dashboard.render_png(a.prometheus, a.png, a.minutes)
        print(f"drew {drawn} panels from {a.prometheus} (last {a.minutes:g} min) to {a.png}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "backfill": cmd_backfill,
    "produce": cmd_produce,
    "broker": cmd_broker,
    "dashboard": cmd_dashboard,
    "backfill-worker": cmd_backfill_worker,  # started by backfill, not by users
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # force: importing Beam may already have configured the root logger (at WARNING) by
    # logging a warning, and then our INFO progress lines would vanish.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("kafka", "apache_beam"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kafka-python's IO thread warns whenever spaCy holds the GIL for >100 ms: expected here.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    protect_kafka_logs()  # kafka-python's DEBUG request dumps include SASL passwords
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        public = ",".join(c for c in COMMANDS if c != "backfill-worker")
        print(f"newsflow {__version__}\nusage: newsflow {{{public}}} [options]  (newsflow CMD --help)")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])
