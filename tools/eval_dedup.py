"""Precision and recall of duplicate detection on hand-labelled Reuters pairs, and the memory
the duplicate index holds per 10,000 articles.

    make eval-dedup                     # or: python tools/eval_dedup.py --shared ../shared

Gold: ``tests/data/dedup_pairs.jsonl``, 260 pairs of Reuters-21578 stories whose wording
overlaps (Jaccard of word 5-shingles >= 0.2, sampled across the whole range), each labelled
``duplicate`` (a re-send, correction, or lightly edited, shortened or lengthened version of
the same story) or ``distinct`` (another story, often from the same template) by a reader.
Part A was used to choose the thresholds in ``pipelines/nlp/dedup.py``; part B checks them.
Each pair is scored by feeding the earlier story, then the later one, to a fresh index.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.nlp.dedup import DuplicateIndex
from pipelines.nlp.normalize import normalize
from pipelines.records import Article, KafkaRecord, RawArticle

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "data" / "dedup_pairs.jsonl"


def reuters(shared: Path) -> dict[str, dict[str, Any]]:
    with gzip.open(shared / "data" / "reuters21578.jsonl.gz", "rt") as f:
        return {a["id"]: a for a in map(json.loads, f)}


def to_article(story: dict[str, Any], offset: int) -> Article:
    record = KafkaRecord("news.raw", 0, offset, 0, None, b"")
    raw = RawArticle(
        record, story["id"], story.get("text") or "", story.get("title") or "", None, story.get("date") + "Z"
    )
    return normalize(raw)


def score(pairs: list[dict[str, Any]], stories: dict[str, dict[str, Any]]) -> tuple[float, float, int]:
    tp = fp = fn = 0
    for n, pair in enumerate(pairs):
        first, second = sorted((pair["a"], pair["b"]), key=lambda i: (stories[i]["date"], i))
        index = DuplicateIndex()
        index.check_and_add(to_article(stories[first], 2 * n))
        found = index.check_and_add(to_article(stories[second], 2 * n + 1)) is not None
        gold = pair["label"] == "duplicate"
        tp += found and gold
        fp += found and not gold
        fn += gold and not found
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0), len(pairs)


def _distinct_articles(stories: dict[str, dict[str, Any]]) -> Iterator[Article]:
    for offset, story in enumerate(stories.values()):
        if (story.get("text") or "").strip():
            yield to_article(story, offset)


def memory_per_10k(stories: dict[str, dict[str, Any]]) -> tuple[float, int, float]:
    """(MB held by an index of 10,000 distinct articles, articles held, seconds per article)."""
    articles = []
    for article in _distinct_articles(stories):
        articles.append(article)
        if len(articles) == 12_000:
            break
    index = DuplicateIndex(horizon=10_000)
    tracemalloc.start()
    start = time.perf_counter()
    for article in articles:
        index.check_and_add(article)
    seconds = (time.perf_counter() - start) / len(articles)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held / 1e6, len(index), seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    a = ap.parse_args(argv)
    stories = reuters(a.shared)
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    print(f"gold: {PAIRS.relative_to(ROOT)} ({len(pairs)} pairs, {sum(p['label'] == 'duplicate' for p in pairs)} dup)")
    for name, part in (("A (thresholds chosen on it)", "A"), ("B (held aside)", "B"), ("all", None)):
        p, r, n = score([x for x in pairs if part is None or x["part"] == part], stories)
        print(f"  part {name:<28} {n:4d} pairs  precision {p:.3f}  recall {r:.3f}")
    mb, held, seconds = memory_per_10k(stories)
    print(f"index memory: {mb:.1f} MB for {held:,} articles held ({mb * 1e3 / held:.2f} KB each)")
    print(f"dedup time: {seconds * 1e3:.2f} ms per article")
    return 0


if __name__ == "__main__":
    sys.exit(main())
