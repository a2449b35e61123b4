"""Normalization and duplicate detection time per article, against spaCy's time on the same
articles (target: at most 15 %).

    make bench-normalize                # or: python tools/bench_normalize.py --shared ../shared -n 1000

Normalization here is everything ``normalize()`` does (HTML and mojibake repair, NFC,
dates, language identification, canonical URL, id) plus the duplicate index. Half the
articles are sent as HTML pages (their paragraphs wrapped in a page with navigation and a
footer), so the main-text extractor is part of the measure.
"""

from __future__ import annotations

import argparse
import gzip
import html
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

from pipelines.nlp.dedup import DuplicateIndex
from pipelines.nlp.entities import MAX_CHARS, load_model
from pipelines.nlp.language import warm_up
from pipelines.nlp.normalize import normalize
from pipelines.records import KafkaRecord, RawArticle

ROOT = Path(__file__).resolve().parents[1]


def as_page(story: dict[str, Any]) -> str:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in story["text"].split("\n\n") if p.strip())
    return (
        "<!DOCTYPE html><html><head><title>x</title><script>var a=1;</script></head><body><nav><ul>"
        "<li><a href='/'>Home</a></li><li><a href='/markets'>Markets</a></li></ul></nav><article>"
        f"<h1>{html.escape(story.get('title') or '')}</h1>{paragraphs}</article>"
        "<footer>Copyright. All rights reserved.</footer></body></html>"
    )


def raw_articles(shared: Path, n: int) -> list[RawArticle]:
    with gzip.open(shared / "data" / "reuters21578.jsonl.gz", "rt") as f:
        stories = [s for s in map(json.loads, f) if len(s.get("text") or "") > 200]
    out = []
    for i, story in enumerate(itertools.islice(stories, n)):
        text = as_page(story) if i % 2 else story["text"]
        record = KafkaRecord("news.raw", 0, i, 0, None, b"")
        date = story["date"] + "Z" if i % 3 else story.get("date_raw") or story["date"]
        out.append(RawArticle(record, story["id"], text, story.get("title") or "", None, date))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("-n", type=int, default=1000)
    a = ap.parse_args(argv)
    raws = raw_articles(a.shared, a.n)
    warm_up()
    normalize(raws[1])  # first-use imports (trafilatura, dateparser) are not per-article cost
    index = DuplicateIndex()
    start = time.perf_counter()
    articles = [normalize(r) for r in raws]
    normalized = time.perf_counter() - start
    start = time.perf_counter()
    duplicates = sum(index.check_and_add(x) is not None for x in articles)
    deduped = time.perf_counter() - start
    nlp, model, _ = load_model()
    start = time.perf_counter()
    for _ in nlp.pipe((x.text[:MAX_CHARS] for x in articles), batch_size=16):
        pass
    spacy_s = time.perf_counter() - start
    n = len(articles)
    print(f"{n} Reuters articles (half as HTML pages), model {model}; {duplicates} duplicates found")
    print(f"normalize:        {normalized:6.2f} s  ({normalized / n * 1e3:.2f} ms/article)")
    print(f"dedup:            {deduped:6.2f} s  ({deduped / n * 1e3:.2f} ms/article)")
    print(f"spaCy nlp.pipe:   {spacy_s:6.2f} s  ({spacy_s / n * 1e3:.2f} ms/article)")
    print(f"ratio (normalize + dedup) / spaCy: {(normalized + deduped) / spacy_s:.3f}  (target <= 0.15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
