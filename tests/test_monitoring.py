"""Monitoring as an operator gets it: a running pipeline scraped by a real Prometheus loaded
with deploy/prometheus's rules; every dashboard panel, recording rule and alert measure must
return data, and the PNG rendering must draw from it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import dashboard
from pipelines.local.broker import EmbeddedBroker, free_port
from pipelines.local.process import spawn_run
from pipelines.local.prometheus import LocalPrometheus
from tests.kafka_util import produce, read_topic
from tests.test_cli_streaming import interrupt, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))


def rule_definitions() -> list[dict[str, Any]]:
    return [rule for f in RULES for group in yaml.safe_load(f.read_text())["groups"] for rule in group["rules"]]


def test_the_grafana_file_is_the_generated_dashboard() -> None:
    shipped = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "newsflow.json").read_text())
    assert shipped == dashboard.grafana_json(), "regenerate: newsflow dashboard --grafana deploy/grafana/..."
    assert len(shipped["panels"]) == len(dashboard.PANELS) >= 8


def test_every_panel_rule_and_alert_returns_data_from_a_running_pipeline(
    broker: EmbeddedBroker, sample_articles: list[dict[str, Any]], tmp_path: Path
) -> None:
    port = free_port()
    proc = spawn_run(broker.bootstrap, tmp_path / "out", "--metrics-port", str(port), "--progress", "off",
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        with LocalPrometheus([f"127.0.0.1:{port}"], workdir=str(tmp_path / "prom"), rule_files=RULES) as prom:
            good = sample_articles[:4]
            seed = good[0]
            resent = {**seed, "source_id": "seed-resent"}
            values = [json.dumps(a).encode() for a in good] + [json.dumps(resent).encode(), b"\xff not json"]
            produce(broker.bootstrap, "news.raw", values)
            wait_for(lambda: read_topic(broker.bootstrap, "news.enriched", expect=5, timeout_s=1)[4:], 120, "output")
            wait_for(lambda: prom.query('newsflow_sink_records_total{sink="kafka_enriched"} >= 5'), 30, "a scrape")
            # Rates need the increases inside their window, and the rules an evaluation after that.
            wait_for(lambda: prom.query("sum(rate(newsflow_entities_total[1m])) > 0"), 30, "rates")
            wait_for(lambda: prom.query('newsflow:stage_records_out:rate1m{stage="facts"} > 0'), 30, "rules")

            def missing() -> list[str]:
                empty = []
                for panel in dashboard.PANELS:
                    empty += [f"panel {panel.title!r}: {expr}" for expr, _ in panel.targets if not prom.query(expr)]
                for rule in rule_definitions():
                    if "record" in rule and not (prom.query(rule["expr"]) and prom.query(rule["record"])):
                        empty.append(f"recording rule {rule['record']}")
                    if "alert" in rule and not prom.query(rule["annotations"]["measure"]):
                        empty.append(f"alert {rule['alert']} measure: {rule['annotations']['measure']}")
                return empty

            # Series that appeared with the last scrape need one more before a rate() has data.
            try:
                wait_for(lambda: not missing(), 30, "every expression to return data")
            except AssertionError:
                pass
            assert not missing(), "expressions that return nothing:\n" + "\n".join(missing())
            loaded = prom.rules()
            assert len(loaded) == len(rule_definitions())
            assert all(r["health"] == "ok" for r in loaded), [r for r in loaded if r["health"] != "ok"]
            assert prom.query("sum(newsflow_duplicates_total) == 1"), prom.query("newsflow_duplicates_total")
            assert prom.query('newsflow_dead_letters_total{stage="decode"} == 1')
            assert prom.query('newsflow_build_info{version!=""}')

            png = tmp_path / "dashboard.png"
            assert dashboard.render_png(prom.url, png, minutes=2) >= 4
            assert png.stat().st_size > 20_000
        interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_newsflow_run_monitor_starts_prometheus_with_the_rules(tmp_path: Path) -> None:
    """`make monitor`: the embedded run plus a Prometheus that scrapes it and loads the rules."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "run", "--monitor", "--metrics-port", "0", "--max-articles", "26",
         "--output-dir", str(tmp_path / "out"), "--progress", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        url = None
        while url is None:
            line = proc.stdout.readline()
            assert line, "ended before starting Prometheus:\n" + "".join(lines)
            lines.append(line)
            if found := re.search(r"Prometheus on (http://\S+)", line):
                url = found.group(1)
        with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=10) as r:
            groups = json.load(r)["data"]["groups"]
        assert sum(len(g["rules"]) for g in groups) == len(rule_definitions())
        output = "".join(lines) + proc.communicate(timeout=180)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert "articles in        26" in output
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/-/ready", timeout=2)  # stopped with the run
