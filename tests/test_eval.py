"""The extractors against the hand-annotated gold set: the held-aside part must stay at or
above the figures last reported (tools/eval_facts.py prints the full tables: `make eval`)."""

from __future__ import annotations

from typing import Any

import pytest

from tools.eval_facts import evaluate, load_gold, split_of

# Floors a few points under the held-aside figures measured on 2026-11-27 (Reuters and ABC
# test items together: casualty F1 0.78, event-type F1 0.75, exact counts 0.97), so a
# regression fails the suite. The targets (0.90 / 0.80) are not met: raise these as
# the extractors improve.
FLOORS = {"casualty_f1": 0.75, "event_f1": 0.72, "exact_count": 0.94, "dev_casualty_f1": 0.88, "dev_event_f1": 0.83}


@pytest.fixture(scope="module")
def reports(nlp: Any) -> dict[str, Any]:
    items = load_gold()
    return {part: evaluate([i for i in items if split_of(i) == part], nlp) for part in ("dev", "test")}


def test_gold_set_is_large_enough_and_well_formed() -> None:
    items = load_gold()
    assert len(items) >= 200
    assert len({i["id"] for i in items}) == len(items), "unique ids"
    test_items = [i for i in items if split_of(i) == "test"]
    assert len(test_items) >= 80, "a real held-aside part"
    assert sum(1 for i in items if not i["casualties"] and not i["events"]) >= 40, "hard negatives"


def test_held_aside_scores_do_not_regress(reports: dict[str, Any]) -> None:
    test = reports["test"]
    assert test.casualty.prf()[2] >= FLOORS["casualty_f1"]
    assert test.events.prf()[2] >= FLOORS["event_f1"]
    assert test.exact_count_accuracy() >= FLOORS["exact_count"]


def test_dev_scores_do_not_regress(reports: dict[str, Any]) -> None:
    dev = reports["dev"]
    assert dev.casualty.prf()[2] >= FLOORS["dev_casualty_f1"]
    assert dev.events.prf()[2] >= FLOORS["dev_event_f1"]
