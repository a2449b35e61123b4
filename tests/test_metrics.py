"""Unit tests for pipelines.metrics: bounded series exist from the start, freshness is computed
at scrape time, build info is set."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry

from pipelines import __version__
from pipelines.metrics import EVENT_TYPES, MODALITIES, STAGES, Metrics, sample


def test_bounded_label_sets_start_at_zero() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    for stage in STAGES:
        assert sample("newsflow_dead_letters_total", {"stage": stage}, registry) == 0
    names = {(s.name, tuple(sorted(s.labels.items()))) for m in registry.collect() for s in m.samples}
    assert ("newsflow_duplicates_total", (("kind", "near"),)) in names
    assert sum(1 for n, _ in names if n == "newsflow_events_total") == len(EVENT_TYPES) * len(MODALITIES)


def test_freshness_is_the_age_of_the_newest_record_written() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert sample("newsflow_freshness_seconds", None, registry) == 0, "nothing written: no series"
    metrics.last_written.labels("kafka_enriched").set(time.time() - 30)
    age = sample("newsflow_freshness_seconds", {"sink": "kafka_enriched"}, registry)
    assert 29 <= age <= 40
    time.sleep(1.1)
    assert sample("newsflow_freshness_seconds", {"sink": "kafka_enriched"}, registry) >= age + 1, "ages by itself"


def test_build_info_names_the_version() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    assert sample("newsflow_build_info", {"version": __version__}, registry) == 1


def test_dashboard_legends_drop_labels_a_series_lacks() -> None:
    from pipelines.dashboard import _legend

    assert _legend("failed {{stage}}", {"stage": "decode"}) == "failed decode"
    assert _legend("failed {{stage}}", {}) == "failed"


def test_newsflow_dashboard_writes_the_shipped_grafana_file(tmp_path: Any) -> None:
    from pathlib import Path

    from pipelines.cli import main

    target = tmp_path / "newsflow.json"
    assert main(["dashboard", "--grafana", str(target)]) == 0
    shipped = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards" / "newsflow.json"
    assert target.read_text() == shipped.read_text()
