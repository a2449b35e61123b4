"""Shared fixtures: a real Tansu broker per test, the spaCy model once per session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.local.broker import EmbeddedBroker

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLE = ROOT / "pipelines" / "data" / "sample_articles.jsonl"
TOPICS = ["news.raw", "news.enriched", "news.facts", "news.deadletter"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh in-memory Tansu broker on a free loopback port, ended by PID afterwards."""
    with EmbeddedBroker(log_path=str(tmp_path / "tansu.log")) as b:
        b.create_topics(TOPICS)
        yield b
    assert b.process is not None and b.process.poll() is not None


@pytest.fixture(scope="session")
def nlp() -> Any:
    from pipelines.nlp.entities import load_model

    model, _name, _secs = load_model()
    return model


@pytest.fixture(scope="session")
def sample_articles() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def seed_text() -> str:
    return (SHARED / "seed" / "trump-putin-call.txt").read_text()
