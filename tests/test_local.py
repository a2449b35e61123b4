"""The local helper processes: the embedded broker is started and ended by PID, safely."""

from __future__ import annotations

import pytest

from pipelines.local.broker import BrokerError, EmbeddedBroker


def test_embedded_broker_refuses_a_taken_port() -> None:
    with EmbeddedBroker() as first:
        with pytest.raises(BrokerError, match="already in use"):
            EmbeddedBroker(port=first.port).start()
        assert first.process is not None and first.process.poll() is None, "the first broker keeps running"
    assert first.process.poll() is not None, "stopped on exit"
