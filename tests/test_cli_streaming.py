"""The `newsflow run` command as a user runs it: streaming, scraped by a real Prometheus,
stopped with Ctrl-C (SIGINT), printing its summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.io.avro import ENRICHED
from pipelines.local.broker import EmbeddedBroker, free_port
from pipelines.local.process import spawn_run
from pipelines.local.prometheus import LocalPrometheus
from tests.kafka_util import decode_all, produce, read_topic

pytestmark = pytest.mark.integration


def start_run(bootstrap: str, out: Path, metrics_port: int) -> subprocess.Popen[str]:
    return spawn_run(
        bootstrap,
        out,
        "--metrics-port",
        str(metrics_port),
        "--progress",
        "log",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def interrupt(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C a streaming run; it must finish cleanly. Returns its output."""
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    return str(output)


def wait_for(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_streaming_run_scraped_by_prometheus_and_stopped_by_ctrl_c(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    port = free_port()
    proc = start_run(broker.bootstrap, tmp_path / "out", port)
    try:
        with LocalPrometheus([f"127.0.0.1:{port}"], workdir=str(tmp_path / "prom")) as prom:
            first, second = sample_articles[0], sample_articles[1]
            produce(broker.bootstrap, "news.raw", [json.dumps(first).encode()])
            wait_for(lambda: read_topic(broker.bootstrap, "news.enriched", expect=1, timeout_s=1), 90, "first record")
            # The pipeline is warm now: one more article must come through while it keeps running.
            produce(broker.bootstrap, "news.raw", [json.dumps(second).encode()])
            records = wait_for(
                lambda: read_topic(broker.bootstrap, "news.enriched", expect=2, timeout_s=1)[1:],
                15,
                "second record while streaming",
            )
            assert decode_all(records, ENRICHED)[0]["source_id"] == second["source_id"]
            assert proc.poll() is None, "still streaming"

            def scraped() -> list[dict[str, Any]]:
                return prom.query('newsflow_stage_records_out_total{stage="facts"} >= 2')

            wait_for(scraped, 30, "Prometheus to scrape the pipeline's counters")
            # Idle now: the source's polls block (a poll that stopped waiting would spin a core).
            before, start = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(4)
            idle_cores = (cpu_seconds(proc.pid) - before) / (time.monotonic() - start)
            assert idle_cores < 0.3, f"an idle run used {idle_cores:.2f} cores"
            for expr in (
                'up{job="newsflow"} == 1',
                "newsflow_end_to_end_latency_seconds_count > 0",
                "newsflow_stage_latency_seconds_count > 0",
                "newsflow_consumer_lag_records",
                "newsflow_model_load_seconds > 0",
            ):
                assert prom.query(expr), f"no data for {expr}"
        output = interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "newsflow summary" in output
    assert "articles in        2" in output and "enriched out       2" in output
    files = list((tmp_path / "out" / "enriched").rglob("*.avro"))
    assert len(files) == 2, "one file per bundle, each visible only when complete"
