"""Named entities and place resolution against the hand-annotated gold set.

    make eval-entities                 # or: python tools/eval_entities.py

Gold: ``tests/data/ner_gold.jsonl``, 74 passages of real news (the seed, Reuters 1987 and
ABC news 2001-02) with every PERSON, ORG, GPE, LOC, NORP and FAC mention (character offsets)
and, for each place, its ISO country code and kind. Items are split into dev and a held-aside
test part by a hash of the id (as in ``tools/eval_facts.py``).

A predicted mention counts only with the exact span and label; GPE and LOC are scored as one
class (GPE-LOC), as the places they both are. "bare" is ``en_core_web_sm`` as shipped;
"newsflow" adds the gazetteer fixes (``pipelines/nlp/entities.py``). Place resolution
accuracy: the share of gold place mentions whose country the gazetteer gets right (a
multi-country region right when it gets no country), given the article's other places.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pipelines.nlp.entities import EntityFixer, entities_from_doc, group_entities, load_model, place_context
from pipelines.nlp.gazetteer import gazetteer
from tools.eval_facts import split_of

GOLD = Path(__file__).resolve().parents[1] / "tests" / "data" / "ner_gold.jsonl"
SCORED = ("PERSON", "ORG", "GPE-LOC", "NORP", "FAC")
TARGET = ("PERSON", "ORG", "GPE-LOC")


def _label(label: str) -> str:
    return "GPE-LOC" if label in ("GPE", "LOC") else label


def _spans(entities: Any) -> Counter[tuple[int, int, str]]:
    return Counter((e.start, e.end, _label(e.label)) for e in entities if _label(e.label) in SCORED)


def _gold_spans(item: dict[str, Any]) -> Counter[tuple[int, int, str]]:
    return Counter((e["start"], e["end"], _label(e["label"])) for e in item["entities"] if _label(e["label"]) in SCORED)


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def evaluate(items: list[dict[str, Any]], nlp: Any, fixer: EntityFixer) -> dict[str, Any]:
    counts: dict[str, dict[str, Counter[str]]] = {"bare": defaultdict(Counter), "newsflow": defaultdict(Counter)}
    places_right = places_total = 0
    gaz = gazetteer()
    for item in items:
        doc = nlp(item["text"])
        bare = entities_from_doc(doc)
        fixed = entities_from_doc(fixer(doc))
        gold = _gold_spans(item)
        for name, pred in (("bare", _spans(bare)), ("newsflow", _spans(fixed))):
            for key in gold | pred:
                label = key[2]
                both = min(gold[key], pred[key])
                counts[name]["tp"][label] += both
                counts[name]["fp"][label] += pred[key] - both
                counts[name]["fn"][label] += gold[key] - both
        context, main_country = place_context(group_entities(fixed, item["text"]))
        for place in item.get("places", []):
            resolved = gaz.resolve(place["text"], context, main_country)
            places_total += 1
            places_right += (resolved.country if resolved else None) == place.get("country")
    return {"counts": counts, "places": (places_right, places_total), "items": len(items)}


def report(name: str, result: dict[str, Any]) -> None:
    print(f"\n== {name}: {result['items']} passages ==")
    print(f"{'label':<10} {'bare P':>7} {'R':>6} {'F1':>6}   {'newsflow P':>10} {'R':>6} {'F1':>6}  gold")
    for label in (*SCORED, "TARGET"):
        row = []
        for system in ("bare", "newsflow"):
            c = result["counts"][system]
            labels = TARGET if label == "TARGET" else (label,)
            tp, fp, fn = (sum(c[k][lab] for lab in labels) for k in ("tp", "fp", "fn"))
            row.append(_prf(tp, fp, fn))
            gold = tp + fn
        (bp, br, bf), (np_, nr, nf) = row
        shown = "PER+ORG+GPE-LOC" if label == "TARGET" else label
        print(f"{shown:<10} {bp:7.2f} {br:6.2f} {bf:6.2f}   {np_:10.2f} {nr:6.2f} {nf:6.2f}  {gold:4d}")
    right, total = result["places"]
    print(f"place resolution accuracy: {right / total if total else 1.0:.2f} ({right}/{total} gold place mentions)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gold", type=Path, default=GOLD)
    a = ap.parse_args(argv)
    items = [json.loads(line) for line in a.gold.read_text().splitlines() if line.strip()]
    nlp, model, _ = load_model()
    fixer = EntityFixer(nlp)
    print(f"gold: {a.gold.name} ({len(items)} passages); model {model}")
    parts = {part: evaluate([i for i in items if split_of(i) == part], nlp, fixer) for part in ("dev", "test")}
    for part, result in parts.items():
        report(part, result)
    report("all", _combined(list(parts.values())))
    return 0


def _combined(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several parts' (the counts add up), so no passage is parsed twice."""
    counts: dict[str, dict[str, Counter[str]]] = {"bare": defaultdict(Counter), "newsflow": defaultdict(Counter)}
    for result in results:
        for system, tallies in result["counts"].items():
            for key, counter in tallies.items():
                counts[system][key] += counter
    right = sum(r["places"][0] for r in results)
    total = sum(r["places"][1] for r in results)
    return {"counts": counts, "places": (right, total), "items": sum(r["items"] for r in results)}


if __name__ == "__main__":
    sys.exit(main())
