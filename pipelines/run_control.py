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

    def stop(self) -> None:
        self._stop.set()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def take(self) -> bool:
        """Claim one record from the budget; False once stopped or the budget is spent."""
        with self._lock:
            if self._stop.is_set():
                return False
            if self._remaining is None:
                return True
            self._remaining -= 1
            if self._remaining <= 0:
                self._stop.set()
            return True


CONTROL = RunControl()
