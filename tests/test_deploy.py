"""Deployment files are valid for the tools that read them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_prometheus_config_checks() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus: apt-get install prometheus"
    result = subprocess.run(
        [promtool, "check", "config", str(ROOT / "deploy/prometheus/prometheus.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus: apt-get install prometheus"
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=ROOT / "deploy/prometheus")


def test_recording_and_alert_rules_check() -> None:
    result = _promtool("check", "rules", "rules/newsflow.rules.yml", "rules/newsflow.alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 rules found" in result.stdout and "6 rules found" in result.stdout


def test_alert_rules_fire_on_their_unit_test_series() -> None:
    """promtool's rule unit tests: each alert fires on series that should trip it, and the
    worker-down alert stays quiet when the worker is up."""
    result = _promtool("test", "rules", "tests/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
