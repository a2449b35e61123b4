"""Process-wide stop switch and record budget for a running pipeline.

The CLI sets it (Ctrl-C, ``--duration``, ``--max-articles``); the Kafka source reads it
before claiming each record, so a stop lets the current bundle finish, flush its sinks
and commit, and nothing is claimed after it.
"""

from __future__ import annotations

import threading


class RunControl:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._remaining: int | None = None

    def reset(self, max_records: int | None = None) -> None:
        with self._lock:
            self._stop.clear()
            self._remaining = max_records
            if max_records is not None and max_records <= 0:
                self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep, waking early on a stop; True if stopping."""
        return self._stop.wait(seconds)

    def take(self) -> None:
        """Count one claimed record against the budget; spending the last one stops the run."""
        with self._lock:
            if self._remaining is None:
                return
            self._remaining -= 1
            if self._remaining <= 0:
                self._stop.set()


CONTROL = RunControl()
