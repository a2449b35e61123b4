"""Kafka trouble: retry with capped exponential backoff, or fail fast.

A broker that is paused, restarting or not there yet, and a topic not created yet, are
waited out: each failure is counted in ``newsflow_kafka_errors_total{client,op}``, sets
``newsflow_kafka_up{client}`` to 0 and is logged (the first, then about once a minute),
and the run goes on when Kafka answers again. ``--fail-fast`` turns the first failure
into an exit instead. A stop (Ctrl-C) during a wait raises ``StopRequested``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from kafka.errors import KafkaError

from pipelines.metrics import METRICS
from pipelines.run_control import CONTROL

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0
_LOG_EVERY_S = 60.0


class KafkaUnavailable(RuntimeError):
    """A Kafka problem newsflow does not wait out: a failure with ``--fail-fast``, a stop
    while waiting, or nothing for this process to read. The CLI prints it on one line."""


class StopRequested(KafkaUnavailable):
    """A stop was asked for while waiting for Kafka."""


class MissingTopic(KafkaError):  # type: ignore[misc]
    """The broker answers but has no such topic (yet)."""


class Backoff:
    """Failure bookkeeping for one Kafka client and operation: metrics, logs, delays."""

    def __init__(self, client: str, what: str, fail_fast: bool) -> None:
        self.client = client
        self.what = what
        self.fail_fast = fail_fast
        self.failures = 0
        self._delay = FIRST_DELAY_S
        self._down_since: float | None = None
        self._last_log = 0.0

    def failed(self, op: str, exc: BaseException) -> float:
        """Count and log a failure; raise if failing fast; return the delay to wait."""
        self.failures += 1
        METRICS.kafka_errors.labels(self.client, op).inc()
        METRICS.kafka_up.labels(self.client).set(0)
        if self.fail_fast:
            raise KafkaUnavailable(f"{self.what}: {_describe(exc)} (--fail-fast)") from exc
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        delay = self._delay
        self._delay = min(self._delay * 2, MAX_DELAY_S)
        if self.failures == 1 or now - self._last_log >= _LOG_EVERY_S:
            self._last_log = now
            log.warning(
                "%s failed (%s); retrying in %.1f s (failure %d, down for %.0f s)",
                self.what, _describe(exc), delay, self.failures, now - self._down_since,
            )  # fmt: skip
        return delay

    def wait(self, op: str, exc: BaseException) -> None:
        """``failed`` and then sleep the delay; a stop meanwhile raises StopRequested."""
        if CONTROL.sleep(self.failed(op, exc)):
            raise StopRequested(f"stopped while waiting: {self.what}") from exc

    def ok(self) -> None:
        """The operation succeeded: report recovery once, reset the delay."""
        METRICS.kafka_up.labels(self.client).set(1)
        if self._down_since is not None:
            log.info("%s: Kafka answers again after %.0f s", self.what, time.monotonic() - self._down_since)
        self.failures = 0
        self._delay = FIRST_DELAY_S
        self._down_since = None


def retrying(client: str, op: str, what: str, fail_fast: bool, fn: Callable[[], T]) -> T:
    """``fn()`` until it succeeds, waiting out KafkaErrors with backoff (see module doc)."""
    backoff = Backoff(client, what, fail_fast)
    while True:
        try:
            result = fn()
        except KafkaError as exc:
            backoff.wait(op, exc)
            continue
        backoff.ok()
        return result


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name
