"""Benchmark: fact extraction after NER costs at most 10 % of spaCy's own time.

    make bench-extract            # or: python tools/bench_extract.py --articles 1000

Runs bare ``nlp.pipe`` over Reuters-21578 texts (../shared/data), then the extraction that
follows NER in the pipeline (entity spans, casualty facts, events) over the same docs, and
prints both times and their ratio. Also times the worst case: a long article packed with
trigger words, to show that work per article is bounded.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from pipelines.nlp.casualties import extract_casualties
from pipelines.nlp.entities import MAX_CHARS, entities_from_doc, load_model
from pipelines.nlp.events import extract_events

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "reuters21578.jsonl.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=1000)
    ap.add_argument("--data", type=Path, default=DATA)
    a = ap.parse_args()
    with gzip.open(a.data, "rt") as fo:
        rows = [json.loads(line) for line in fo]
    texts = [r["text"][:MAX_CHARS] for r in rows if r["text"]][: a.articles]
    nlp, model, _ = load_model()
    list(nlp.pipe(texts[:20]))  # warm up

    start = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=16))
    spacy_s = time.perf_counter() - start

    published = datetime(1987, 3, 1, tzinfo=UTC)
    start = time.perf_counter()
    facts = events = 0
    for doc in docs:
        entities_from_doc(doc)
        facts += len(extract_casualties(doc, published))
        events += len(extract_events(doc, published))
    extract_s = time.perf_counter() - start
    chars = sum(len(t) for t in texts)
    print(f"{len(texts)} Reuters articles ({chars / len(texts):.0f} chars avg), model {model}")
    print(f"spaCy nlp.pipe:        {spacy_s:7.2f} s  ({spacy_s / len(texts) * 1000:.1f} ms/article)")
    print(
        f"extraction after NER:  {extract_s:7.2f} s  ({extract_s / len(texts) * 1000:.2f} ms/article; "
        f"{facts} casualty facts, {events} events)"
    )
    print(f"ratio extraction/spaCy: {extract_s / spacy_s:.3f}  (target <= 0.10)")

    worst = " ".join(
        [
            "Iraqi jets attacked the tanker, killing 12 crewmen and wounding dozens of sailors, "
            "and troops clashed near Basra as talks and a ceasefire were proposed."
        ]
        * 800
    )[:MAX_CHARS]
    doc = nlp(worst)
    start = time.perf_counter()
    n = len(extract_casualties(doc, published)) + len(extract_events(doc, published))
    print(f"worst case: {len(worst)} chars of triggers -> {n} facts in {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
