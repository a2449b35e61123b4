"""Input limits: what one record may cost before it becomes a dead letter.

Size and JSON nesting are checked by Decode; ``article_seconds`` bounds the time a stage
spends on one record. The time limit uses SIGALRM, so it applies where bundles run on the
main thread (the local FnApiRunner of ``newsflow run`` and ``backfill``); elsewhere the
size limits are what bound the work (the NLP stages see at most ``MAX_CHARS`` characters
and the regexes are checked against catastrophic backtracking).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from pipelines.records import NewsflowError

MAX_BYTES = 5 * 1024 * 1024
MAX_JSON_DEPTH = 32
ARTICLE_SECONDS = 30.0


@dataclass(frozen=True)
class Limits:
    max_bytes: int = MAX_BYTES  # a larger message is a dead letter (too_large)
    max_json_depth: int = MAX_JSON_DEPTH  # deeper JSON is a dead letter (too_deep)
    article_seconds: float = ARTICLE_SECONDS  # longer in one stage: a dead letter (timeout); 0 = no limit
    bad_dates: str = "dead-letter"  # or "fallback": an unusable published_at becomes the Kafka timestamp


class ArticleTimeout(NewsflowError):
    reason = "timeout"


class _Alarm:
    armed = False
    seconds = 0.0

    def fire(self, signum: int, frame: FrameType | None) -> None:
        if self.armed:  # not when the limit was cancelled a moment too late
            self.armed = False
            raise ArticleTimeout(f"took more than {self.seconds:g} s (--article-seconds)")


_ALARM = _Alarm()


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ArticleTimeout in the body after ``seconds`` (main thread only; else no limit)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _ALARM.fire)
    _ALARM.seconds, _ALARM.armed = seconds, True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _ALARM.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
