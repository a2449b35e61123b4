"""Score the casualty and event extractors against the hand-annotated gold set.

    make eval                      # both parts, per kind and per event type
    python tools/eval_facts.py --errors dev   # list dev-part mistakes (never tune on test)

Gold: tests/data/facts_gold.jsonl (see tests/data/ANNOTATION.md). Items are split into
``dev`` (tuning) and ``test`` (held aside) by a stable hash of the item id; items added
later for tuning carry ``"split": "dev"``.

Casualties are matched per item as a multiset of (kind, count): a predicted fact is a true
positive only with the right kind and the exact count. "kind only" scores ignore the count;
"exact count accuracy" is the share of kind matches whose count is also right. Events are
matched per item as the set of event types; modality accuracy is over matched types.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.nlp.casualties import extract_casualties
from pipelines.nlp.entities import load_model
from pipelines.nlp.events import extract_events

GOLD = Path(__file__).resolve().parents[1] / "tests" / "data" / "facts_gold.jsonl"
TEST_SHARE = 40  # percent of items held aside


def split_of(item: dict[str, Any]) -> str:
    """Items annotated later for tuning say ``"split": "dev"``; the rest split by id hash."""
    if item.get("split") in ("dev", "test"):
        return str(item["split"])
    return "test" if int(hashlib.sha256(item["id"].encode()).hexdigest(), 16) % 100 < TEST_SHARE else "dev"


def load_gold(path: Path = GOLD) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Tally:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)

    def add(self, gold: Counter[Any], pred: Counter[Any], key: Any = lambda x: x) -> None:
        for item in gold | pred:
            label = key(item)
            both = min(gold[item], pred[item])
            self.tp[label] += both
            self.fp[label] += pred[item] - both
            self.fn[label] += gold[item] - both

    def prf(self, label: str | None = None) -> tuple[float, float, float, int]:
        tp = sum(self.tp.values()) if label is None else self.tp[label]
        fp = sum(self.fp.values()) if label is None else self.fp[label]
        fn = sum(self.fn.values()) if label is None else self.fn[label]
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f, tp + fn

    def labels(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))


@dataclass
class Report:
    items: int = 0
    casualty: Tally = field(default_factory=Tally)
    casualty_kind: Tally = field(default_factory=Tally)
    events: Tally = field(default_factory=Tally)
    modality_right: int = 0
    modality_total: int = 0
    errors: list[str] = field(default_factory=list)

    def exact_count_accuracy(self) -> float:
        kind_tp = sum(self.casualty_kind.tp.values())
        return sum(self.casualty.tp.values()) / kind_tp if kind_tp else 1.0


def evaluate(items: list[dict[str, Any]], nlp: Any, by_corpus: dict[str, Report] | None = None) -> Report:
    """Score ``items``; with ``by_corpus``, also fill one report per corpus in the same pass."""
    total = Report()
    docs = nlp.pipe([it["text"] for it in items], batch_size=32)
    for item, doc in zip(items, docs, strict=True):
        reports = [total]
        if by_corpus is not None:
            reports.append(by_corpus.setdefault(corpus_of(item), Report()))
        _score(reports, item, doc)
    return total


def _score(reports: list[Report], item: dict[str, Any], doc: Any) -> None:
    published = datetime.fromisoformat(item["published_at"].replace("Z", "+00:00")).astimezone(UTC)
    facts = extract_casualties(doc, published)
    events = extract_events(doc, published)
    gold_c = Counter((c["kind"], int(c["count"])) for c in item["casualties"])
    pred_c = Counter((f.kind, f.count) for f in facts)
    gold_e = {e["type"]: e.get("modality", "occurred") for e in item["events"]}
    pred_e: dict[str, str] = {}
    for e in events:
        pred_e.setdefault(e.type, e.modality)
    for report in reports:
        report.casualty.add(gold_c, pred_c, key=lambda x: x[0])
        report.casualty_kind.add(Counter(k for k, _ in gold_c.elements()), Counter(k for k, _ in pred_c.elements()))
        report.events.add(Counter(gold_e.keys()), Counter(pred_e.keys()))
        for etype in set(gold_e) & set(pred_e):
            report.modality_total += 1
            report.modality_right += gold_e[etype] == pred_e[etype]
        report.items += 1
        if gold_c != pred_c or set(gold_e) != set(pred_e):
            report.errors.append(
                f"{item['id']}: {item['text'][:300]}\n"
                f"    casualties gold {sorted(gold_c.elements())} pred {sorted(pred_c.elements())}\n"
                f"    events     gold {sorted(gold_e.items())} pred {sorted(pred_e.items())}"
            )


def _row(label: str, scores: tuple[float, float, float, int]) -> str:
    p, rec, f, n = scores
    return f"{label:<20} {p:6.2f} {rec:6.2f} {f:6.2f} {n:5d}"


def _table(heading: str, tally: Tally, total: str, note: str = "") -> None:
    print(f"{heading:<20} {'P':>6} {'R':>6} {'F1':>6} {'gold':>5}{note}")
    for label in tally.labels():
        print(_row(label, tally.prf(label)))
    print(_row(total, tally.prf()))


def print_report(name: str, r: Report) -> None:
    print(f"\n== {name}: {r.items} items ==")
    _table("casualty kind", r.casualty, "ALL casualties", "   (kind + exact count)")
    print(_row("  kind only", r.casualty_kind.prf()))
    print(f"{'  exact count acc.':<20} {r.exact_count_accuracy():6.2f}")
    _table("event type", r.events, "ALL events")
    acc = r.modality_right / r.modality_total if r.modality_total else 1.0
    print(f"{'  modality acc.':<20} {acc:6.2f}   ({r.modality_right}/{r.modality_total} matched types)")


def corpus_of(item: dict[str, Any]) -> str:
    """The corpus of an item's source: reuters21578, seed, lee (ABC news 2001-02)."""
    return str(item["source"].split("/")[0].removesuffix("50"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gold", type=Path, default=GOLD)
    ap.add_argument("--errors", choices=["dev"], help="print the dev part's mistakes")
    ap.add_argument("--dev-only", action="store_true", help="score only the dev part (while tuning)")
    a = ap.parse_args(argv)
    items = load_gold(a.gold)
    nlp, model, _ = load_model()
    parts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        parts[split_of(item)].append(item)
    print(f"gold: {a.gold} ({len(items)} items: dev {len(parts['dev'])}, test {len(parts['test'])}); model {model}")
    names = ("dev",) if a.dev_only else ("dev", "test")
    corpora: dict[str, dict[str, Report]] = {name: {} for name in names}
    reports = {name: evaluate(parts[name], nlp, corpora[name]) for name in names}
    for name, report in reports.items():
        print_report(name, report)
    for name in names:
        print(f"\n== {name} by corpus ==")
        for corpus, r in sorted(corpora[name].items()):
            (_, _, cf, cn), (_, _, ef, en) = r.casualty.prf(), r.events.prf()
            print(
                f"{corpus:<13} {r.items:4d} items  casualties F1 {cf:.2f} ({cn} gold)  events F1 {ef:.2f} ({en} gold)"
            )
    if a.errors:
        print("\n== dev errors ==")
        print("\n".join(reports["dev"].errors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
