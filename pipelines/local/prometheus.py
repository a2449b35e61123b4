"""Debian's Prometheus server as a plain local process scraping newsflow (tests, demos).

with LocalPrometheus(targets=["127.0.0.1:9464"]) as prom:
    prom.query("sum(rate(newsflow_stage_records_in_total[1m]))")
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from pipelines.local.broker import free_port
from pipelines.local.process import LocalProcess


class PrometheusError(RuntimeError):
    pass


class LocalPrometheus(LocalProcess):
    def __init__(
        self,
        targets: list[str],
        scrape_interval: str = "1s",
        workdir: str | None = None,
        rule_files: list[Path] | None = None,
        port: int | None = None,
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusError("prometheus is not installed (Debian: apt-get install prometheus)")
        self._binary = binary
        self._targets = targets
        self._interval = scrape_interval
        self._dir = Path(workdir or tempfile.mkdtemp(prefix="newsflow-prom-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self._rules = list(rule_files or [])
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> LocalPrometheus:
        config = self._dir / "prometheus.yml"
        rules = []
        for rule_file in self._rules:
            copy = self._dir / "rules" / rule_file.name
            copy.parent.mkdir(exist_ok=True)
            shutil.copyfile(rule_file, copy)
            rules.append(str(copy))
        config.write_text(
            "global:\n"
            f"  scrape_interval: {self._interval}\n"
            f"  evaluation_interval: {self._interval}\n"
            f"rule_files: {json.dumps(rules)}\n"
            "scrape_configs:\n"
            "  - job_name: newsflow\n"
            "    static_configs:\n"
            f"      - targets: {json.dumps(self._targets)}\n"
        )
        args = [self._binary, f"--config.file={config}", f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]  # fmt: skip
        try:
            self._launch(args, self._dir / "prometheus.log", self._ready, timeout_s)
        except RuntimeError as exc:
            raise PrometheusError(str(exc)) from exc
        return self

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:  # noqa: S310 - http://127.0.0.1 only
            return bool(r.status == 200)

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its evaluation health (``/api/v1/rules``)."""
        with urllib.request.urlopen(f"{self.url}/api/v1/rules", timeout=10) as r:  # noqa: S310 - http://127.0.0.1 only
            body = json.load(r)
        return [rule for group in body["data"]["groups"] for rule in group["rules"]]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - http://127.0.0.1 only
            body = json.load(r)
        if body.get("status") != "success":
            raise PrometheusError(f"query {expr!r} failed: {body}")
        return list(body["data"]["result"])
