"""Local helper processes (broker, Prometheus, pipeline workers) started and ended by PID.

proc = spawn_run("127.0.0.1:9092", "out", "--stop-at", "latest")
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T", bound="LocalProcess")
ROOT = Path(__file__).resolve().parents[2]


class LocalProcess:
    """A child process this object started; ``stop()`` ends only that PID."""

    process: subprocess.Popen[bytes] | None = None

    def start(self: T) -> T:
        raise NotImplementedError

    def _launch(self, args: list[str], log_path: str | Path, ready: Callable[[], bool], timeout_s: float) -> None:
        """Start ``args`` (output to ``log_path``) and wait until ``ready()``; raise if it dies or times out."""
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603 - an argv list, no shell: our binaries and flags
        name = Path(args[0]).name
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited ({self.process.returncode}); see {log_path}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{name} was not ready within {timeout_s}s; see {log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self: T) -> T:
        return self.start() if self.process is None else self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def rss_mb(pid: int | str = "self", peak: bool = False) -> float:
    """Resident memory of a process (default: this one) in MB, from /proc: now (VmRSS) or
    the most it has had (VmHWM)."""
    field = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def spawn_run(bootstrap: str, output_dir: str | Path, *extra: str, **popen: Any) -> subprocess.Popen[Any]:
    """Start ``newsflow run`` against ``bootstrap`` as a child process (any free metrics port
    unless ``--metrics-port`` is in ``extra``; no progress line unless ``--progress`` is)."""
    args = [sys.executable, "-m", "pipelines", "run", "--bootstrap-servers", bootstrap, "--output-dir", str(output_dir)]
    if "--metrics-port" not in extra:
        args += ["--metrics-port", "0"]
    if "--progress" not in extra:
        args += ["--progress", "off"]
    return subprocess.Popen([*args, *extra], cwd=ROOT, **popen)  # noqa: S603 - an argv list, no shell: our binaries and flags
