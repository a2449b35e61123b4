"""Merge the annotators' parts (tests/data/gold/part_*.jsonl) into tests/data/facts_gold.jsonl.

    python tools/merge_gold.py

Items whose text appears twice (the same wire sentence in two stories) are kept once, the
first by part order, so one sentence can never sit in both the dev and the test split.

Items that were annotated more than once (tests/data/gold/reannotated/*.jsonl: parts a-c by
two more blind annotators; part k by a second one, and by a third where the two disagreed)
are adjudicated by majority: a casualty (kind, count) or an event type is kept when more
than half of the item's annotators have it, with the majority qualifier or modality (ties go
to the earliest annotator). The script prints how well the annotators agree, pairwise and
with the adjudicated labels.

One guide rule the parts applied differently is made uniform here: `threaten` events
whose threat was made carry modality `occurred`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
Item = dict[str, Any]


def read_jsonl(path: Path) -> list[Item]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def uniform(item: Item) -> Item:
    for event in item["events"]:
        # Guide rule (ANNOTATION.md): a threat that was made is `threaten` + occurred.
        if event["type"] == "threaten" and event.get("modality") == "threatened":
            event["modality"] = "occurred"
    return item


def casualty_keys(item: Item) -> Counter[tuple[str, int]]:
    return Counter((c["kind"], int(c["count"])) for c in item["casualties"])


def event_types(item: Item) -> set[str]:
    return {e["type"] for e in item["events"]}


def _majority(values: list[Any]) -> Any:
    """The most common value; ties go to the earliest annotator's."""
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def adjudicate(versions: list[Item]) -> Item:
    """Majority labels of two or three annotations of one item (the first is the original)."""
    merged = dict(versions[0])
    keys = [casualty_keys(v) for v in versions]
    need = len(versions) // 2 + 1
    casualties = []
    for key in sorted(set().union(*keys)):
        support = sorted((k[key] for k in keys), reverse=True)
        for n in range(support[need - 1]):  # the multiplicity a majority of annotators agree on
            facts = [[c for c in v["casualties"] if (c["kind"], int(c["count"])) == key] for v in versions]
            have = [f[n] for f in facts if len(f) > n]
            fact = dict(have[0])
            fact["qualifier"] = _majority([f.get("qualifier") for f in have])
            casualties.append(fact)
    events = []
    for etype in sorted(set().union(*(event_types(v) for v in versions))):
        have = [next(e for e in v["events"] if e["type"] == etype) for v in versions if etype in event_types(v)]
        if len(have) >= need:
            events.append({**have[0], "modality": _majority([e.get("modality") for e in have])})
    merged["casualties"] = casualties
    merged["events"] = events
    notes = [v.get("note") for v in versions if v.get("note")]
    merged["note"] = " | ".join(notes) if notes else None
    merged["annotators"] = len(versions)
    return merged


def _f1(a: list[Counter[Any]], b: list[Counter[Any]]) -> float:
    tp = sum(sum((x & y).values()) for x, y in zip(a, b, strict=True))
    total = sum(sum(x.values()) for x in a) + sum(sum(y.values()) for y in b)
    return 2 * tp / total if total else 1.0


def agreement(annotations: dict[str, dict[str, Item]], verdicts: dict[str, Item]) -> None:
    """Print annotator agreement: each pair on the items both annotated, and each annotator
    against the adjudicated labels (a ceiling for any extractor)."""

    def f1s(a: dict[str, Item], b: dict[str, Item], ids: list[str]) -> str:
        c = _f1([casualty_keys(a[i]) for i in ids], [casualty_keys(b[i]) for i in ids])
        e = _f1([Counter(event_types(a[i])) for i in ids], [Counter(event_types(b[i])) for i in ids])
        return f"casualties {c:.2f}  events {e:.2f}  ({len(ids)} items)"

    print("\nannotator agreement (F1; casualties = kind + exact count)")
    for (x, a), (y, b) in combinations(sorted(annotations.items()), 2):
        if common := [i for i in a if i in b]:
            print(f"  {x:>10} vs {y:<10} {f1s(a, b, common)}")
    for x, a in sorted(annotations.items()):
        print(f"  {x:>10} vs majority   {f1s(a, verdicts, list(a))}")


def main() -> None:
    reannotated = {
        p.stem: {i["id"]: uniform(i) for i in read_jsonl(p)}
        for p in sorted((DATA / "gold" / "reannotated").glob("*.jsonl"))
    }
    seen: set[str] = set()
    items = []
    annotations: dict[str, dict[str, Item]] = {}  # annotator -> item id -> their labels
    verdicts: dict[str, Item] = {}
    for part in sorted((DATA / "gold").glob("part_*.jsonl")):
        for item in read_jsonl(part):
            key = re.sub(r"\W+", " ", item["text"]).strip().lower()
            if key in seen or item["id"] in seen:
                continue
            seen.update((key, item["id"]))
            item = uniform(item)
            who = [name for name, r in reannotated.items() if item["id"] in r]
            if who:
                annotations.setdefault(part.stem, {})[item["id"]] = item
                for name in who:
                    annotations.setdefault(name, {})[item["id"]] = reannotated[name][item["id"]]
                item = adjudicate([item] + [reannotated[name][item["id"]] for name in who])
                verdicts[item["id"]] = item
            items.append(item)
    out = DATA / "facts_gold.jsonl"
    out.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
    print(f"{len(items)} items -> {out}")
    if verdicts:
        agreement(annotations, verdicts)


if __name__ == "__main__":
    main()
