"""`newsflow produce`: pacing (unit, with a fake clock) and publishing to a real broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.io.produce import key_for, paced, published_at
from pipelines.local.broker import EmbeddedBroker
from tests.kafka_util import read_topic


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def article(n: int, when: str | None) -> bytes:
    return json.dumps({"source_id": f"s{n}", "url": f"https://x.org/{n}?utm_source=a", "text": "t",
                       "published_at": when}).encode()  # fmt: skip


def test_a_fixed_rate_spaces_records_evenly() -> None:
    clock = FakeClock()
    out = list(paced((article(i, None) for i in range(21)), rate=10, clock=(clock.now, clock.sleep)))
    assert len(out) == 21
    assert clock.t - 100.0 == pytest.approx(2.0), "21 records at 10/s: the last one 2 s after the first"


def test_original_pacing_sped_up_follows_publication_times() -> None:
    clock = FakeClock()
    times = ["2025-05-20T08:00:00Z", "2025-05-20T08:01:00Z", "not a date", "2025-05-20T08:03:00Z"]
    out = list(paced((article(i, t) for i, t in enumerate(times)), speedup=60, clock=(clock.now, clock.sleep)))
    assert len(out) == 4
    assert clock.t - 100.0 == pytest.approx(3.0), "3 minutes of news at 60x: 3 s"
    assert clock.slept == pytest.approx([1.0, 2.0]), "the undated record goes right after the one before"


def test_without_pacing_nothing_waits() -> None:
    clock = FakeClock()
    assert len(list(paced((article(i, None) for i in range(5)), clock=(clock.now, clock.sleep)))) == 5
    assert clock.slept == []


def test_keys_are_canonical_urls_and_times_are_read() -> None:
    assert key_for(article(1, None)) == b"https://x.org/1"
    assert published_at(article(1, "2025-05-20T08:00:00Z")) == pytest.approx(1747728000.0)
    assert published_at(b"not json") is None


@pytest.mark.integration
def test_produce_command_publishes_at_a_rate_keyed_by_url(broker: EmbeddedBroker, tmp_path: Path) -> None:
    archive = tmp_path / "archive.jsonl"
    archive.write_bytes(b"\n".join(article(i, None) for i in range(6)) + b"\n")
    assert main(["produce", str(archive), "--topic", "news.raw", "--bootstrap-servers", broker.bootstrap,
                 "--rate", "20"]) == 0  # fmt: skip
    records = read_topic(broker.bootstrap, "news.raw", expect=6)
    assert [r.key for r in records] == [f"https://x.org/{i}".encode() for i in range(6)]
    assert records[-1].timestamp - records[0].timestamp >= 200, "5 gaps of 50 ms at 20/s"
