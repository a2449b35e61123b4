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
