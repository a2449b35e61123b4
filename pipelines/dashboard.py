"""The operator's dashboard: its panels (PromQL), the Grafana JSON made from them, and a PNG
rendering from Prometheus data for machines without Grafana.

    newsflow dashboard --grafana deploy/grafana/dashboards/newsflow.json
    newsflow dashboard --png dashboard.png --prometheus http://127.0.0.1:9090 --minutes 15

The panels are defined once here; the Grafana file is generated from them (a test keeps the
two identical) and the integration test sends every panel's query to a real Prometheus.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str  # Grafana unit id
    targets: tuple[tuple[str, str], ...]  # (PromQL, legend)
    main: bool = False  # drawn in the PNG


PANELS = (
    Panel("Throughput by stage (records/s)", "ops",
          (("newsflow:stage_records_out:rate1m", "{{stage}}"),), main=True),
    Panel("End-to-end latency, Kafka timestamp to news.enriched", "s",
          (('newsflow:end_to_end_latency_seconds:p50{sink="kafka_enriched"}', "p50"),
           ('newsflow:end_to_end_latency_seconds:p95{sink="kafka_enriched"}', "p95"),
           ('newsflow:end_to_end_latency_seconds:p99{sink="kafka_enriched"}', "p99")), main=True),
    Panel("Consumer lag by partition (records)", "short",
          (("newsflow_consumer_lag_records", "{{topic}}/{{partition}}"),), main=True),
    Panel("Failures and dead letters (records/s)", "ops",
          (("sum by (stage) (newsflow:stage_records_failed:rate5m) or vector(0)", "failed {{stage}}"),
           ("newsflow:dead_letters:rate5m", "dead letter {{stage}}")), main=True),
    Panel("Entities per minute", "short", (("sum by (label) (rate(newsflow_entities_total[1m])) * 60", "{{label}}"),)),
    Panel("Facts and events per minute", "short",
          (("sum by (kind) (rate(newsflow_facts_total[1m])) * 60", "{{kind}}"),
           ("sum by (type) (rate(newsflow_events_total[1m])) * 60", "event {{type}}")), main=True),
    Panel("Casualties reported per hour", "short", (("newsflow:casualties_reported:increase1h", "{{kind}}"),)),
    Panel("Duplicates (records/s)", "ops", (("sum by (kind) (rate(newsflow_duplicates_total[5m]))", "{{kind}}"),)),
    Panel("Freshness: age of the newest record written (s)", "s",
          (("min by (sink) (newsflow_freshness_seconds)", "{{sink}}"),)),
    Panel("Worker health", "short",
          (('up{job="newsflow"}', "up {{instance}}"),
           ('process_resident_memory_bytes{job="newsflow"} / 2^20', "RSS MiB {{instance}}"),
           ("newsflow_dedup_index_articles / 1000", "dedup index (k articles) {{instance}}"))),
    Panel("Kafka: reachable (1) and failed requests (per s, each retried)", "short",
          (("min by (instance, client) (newsflow_kafka_up)", "up {{client}} {{instance}}"),
           ("sum by (client, op) (rate(newsflow_kafka_errors_total[5m]))", "errors {{client}} {{op}}"))),
)  # fmt: skip


def grafana_json() -> dict[str, Any]:
    """A Grafana dashboard (schema 39) with one time-series panel per ``PANELS`` entry."""
    panels = []
    for i, panel in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": panel.title,
                "datasource": {"type": "prometheus", "uid": "newsflow-prometheus"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "targets": [
                    {"refId": chr(65 + j), "expr": expr, "legendFormat": legend}
                    for j, (expr, legend) in enumerate(panel.targets)
                ],
            }
        )
    return {
        "uid": "newsflow",
        "title": "newsflow",
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "tags": ["newsflow"],
        "panels": panels,
    }


def write_grafana(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(grafana_json(), indent=2) + "\n")


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    if urllib.parse.urlsplit(prometheus).scheme not in ("http", "https"):
        raise ValueError(f"--prometheus must be an http(s) URL, not {prometheus!r}")
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    url = f"{prometheus}/api/v1/query_range?{params}"
    with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 - http(s) only, checked above
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"query {expr!r} failed: {body}")
    return list(body["data"]["result"])


def _legend(template: str, labels: dict[str, str]) -> str:
    for key, value in labels.items():
        template = template.replace("{{" + key + "}}", value)
    return re.sub(r"\s*\{\{\w+\}\}", "", template)  # a label the series does not have


def render_png(prometheus: str, path: Path, minutes: float = 15.0) -> int:
    """Draw the main panels from ``prometheus`` over the last ``minutes``; returns panels drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = [p for p in PANELS if p.main]
    end = time.time()
    start = end - minutes * 60
    step = max(1.0, minutes * 60 / 300)
    fig, axes = plt.subplots(len(main), 1, figsize=(10, 3 * len(main)), sharex=True)
    for ax, panel in zip(axes, main, strict=True):
        flat = []
        for expr, legend in panel.targets:
            for series in query_range(prometheus, expr, start, end, step):
                xs = [(float(t) - end) / 60 for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                if any(y != 0 for y in ys):
                    ax.plot(xs, ys, label=_legend(legend, series["metric"]))
                else:
                    flat.append((xs, _legend(legend, series["metric"])))
        if not ax.has_data() and flat:  # all zero: draw one flat line, not a dozen
            xs, label = flat[0]
            ax.plot(xs, [0.0] * len(xs), label=f"{label} (all {len(flat)} series 0)")
        ax.set_title(panel.title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7, loc="upper left")
    axes[-1].set_xlabel("minutes ago")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return len(main)
