"""Casualty facts from a parsed article: who was killed, injured, missing, arrested,
kidnapped or displaced, how many, by whom, how, where and when.

Works on spaCy's dependency parse, sentence by sentence. A trigger ("kill", "wounded",
"casualties", "death toll", "missing", "arrest", ...) is linked to its victims (object of an
active verb, subject of a passive or intransitive one, the number a noun carries), whose
numeral, quantity word or determiner gives the count. Counting follows ACLED's rules
(``pipelines.nlp.numbers``). Hypotheticals, threats and historical totals are skipped.
No Beam here.

Work is bounded per article: at most ``MAX_SENTENCES`` sentences of at most
``MAX_SENTENCE_TOKENS`` tokens, and constant work per trigger.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from pipelines.nlp import context
from pipelines.nlp.numbers import SINGULAR_DETERMINERS, ZERO_WORDS, bounds, parse_number, qualifier_before
from pipelines.records import CasualtyFact

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

MAX_SENTENCES = 400
MAX_SENTENCE_TOKENS = 150

# GDELT GKG count types for each kind (a combined toll is counted as wounded: deaths unproven).
GDELT_TYPE = {
    "killed": "KILL",
    "injured": "WOUND",
    "killed_or_injured": "WOUND",
    "missing": "AFFECT",
    "arrested": "ARREST",
    "kidnapped": "KIDNAP",
    "displaced": "AFFECT",
}

VERB_TRIGGERS = {
    "kill": "killed", "die": "killed", "slay": "killed", "massacre": "killed", "execute": "killed",
    "murder": "killed", "drown": "killed",
    "wound": "injured", "injure": "injured", "hurt": "injured",
    "arrest": "arrested", "detain": "arrested", "jail": "arrested", "imprison": "arrested",
    "kidnap": "kidnapped", "abduct": "kidnapped",
    "evacuate": "displaced", "displace": "displaced",
}  # fmt: skip
# Adjectives and participles used predicatively or after a number: "12 dead", "three are missing".
ADJ_TRIGGERS = {
    "dead": "killed", "killed": "killed", "injured": "injured", "wounded": "injured", "hurt": "injured",
    "missing": "missing", "unaccounted": "missing", "homeless": "displaced", "displaced": "displaced",
}  # fmt: skip
# Nouns that carry the count themselves: "3,000 casualties", "12 deaths", "the death toll rose to 40".
NOUN_TRIGGERS = {
    "casualty": "killed_or_injured", "death": "killed", "fatality": "killed", "toll": "killed",
    "injury": "injured", "hostage": "kidnapped", "refugee": "displaced", "evacuee": "displaced",
    "arrest": "arrested", "detainee": "arrested",
}  # fmt: skip
_INTRANSITIVE = frozenset({"die", "drown"})
_VICTIM_DEPS = frozenset({"dobj", "nsubjpass"})
_QUANTITY_NOUNS = frozenset({"dozen", "dozens", "score", "scores", "hundreds", "thousands", "several", "few"})
# Heads that are not people: "hit 12 ships", "killed 200 head of cattle" are not casualties.
_NOT_VICTIMS = frozenset(
    {"ship", "tanker", "vessel", "boat", "aircraft", "plane", "jet", "helicopter", "tank", "vehicle", "building",
     "house", "home", "barrel", "ton", "tonne", "dollar", "dlrs", "mln", "billion", "pct", "percent", "cattle",
     "head", "sheep", "bird", "animal", "year", "month", "day", "week", "hour", "minute", "share", "job",
     "bid", "plan", "proposal", "bill", "deal", "project", "measure", "idea", "talk"}
)  # fmt: skip
_HISTORY_MARKERS = frozenset({"since", "so far", "throughout", "during the war", "in the war", "-year war"})


def extract_casualties(doc: Doc, published_at: datetime) -> tuple[CasualtyFact, ...]:
    """Casualty facts in ``doc`` in text order, one per (kind, victims, incident).

    The same (kind, count, place) twice is one fact; a later toll update for the same
    kind and place ("the death toll rose to 40") supersedes the earlier number.
    """
    facts: list[CasualtyFact] = []
    for n, sent in enumerate(doc.sents):
        if n >= MAX_SENTENCES:
            break
        if len(sent) > MAX_SENTENCE_TOKENS:
            continue
        ents: list[Span] | None = None
        for token in sent:
            kind = _trigger_kind(token)
            if kind is None or context.hypothetical(token) or _historical(token, sent):
                continue
            ents = context.sentence_entities(sent) if ents is None else ents
            for fact in _facts_for_trigger(token, _combined_kind(token, kind), sent, ents, published_at):
                _merge(facts, fact, updated=_is_toll_update(token))
    return tuple(facts)


def _merge(facts: list[CasualtyFact], fact: CasualtyFact, updated: bool) -> None:
    for i, old in enumerate(facts):
        same_incident = old.kind == fact.kind and old.place == fact.place
        if same_incident and old.count == fact.count:
            return
        if same_incident and updated and old.evidence != fact.evidence:
            facts[i] = fact
            return
    facts.append(fact)


def _trigger_kind(token: Token) -> str | None:
    lemma = token.lemma_.lower()
    lower = token.lower_
    if token.pos_ == "VERB" and lemma in VERB_TRIGGERS:
        # "missing" and "wounded" as verbs in an adjectival role are handled below too.
        return VERB_TRIGGERS[lemma]
    if token.pos_ in ("ADJ", "VERB") and lower in ADJ_TRIGGERS:
        return ADJ_TRIGGERS[lower]
    if token.pos_ == "NOUN" and lemma in NOUN_TRIGGERS:
        if lemma == "toll" and not any(c.lower_ in ("death", "casualty") for c in token.children):
            return None
        if lemma == "death" and token.head.lemma_ == "toll":
            return None
        return NOUN_TRIGGERS[lemma]
    if lower == "lives" and token.head.lemma_ == "lose":
        return "killed"
    if lemma == "take" and any(c.lower_ in ("hostage", "prisoner", "captive") for c in token.children):
        return "kidnapped"
    if lemma == "flee" and any(c.lower_ in ("homes", "home") for c in token.subtree):
        return "displaced"
    return None


def _combined_kind(trigger: Token, kind: str) -> str:
    """ "killed or wounded 1,500": a combined toll, which is neither kind alone."""
    if kind not in ("killed", "injured"):
        return kind
    head = trigger.head if trigger.dep_ == "conj" else trigger
    group = [head, *[c for c in head.children if c.dep_ == "conj"]]
    kinds = {k for k in (_trigger_kind(t) for t in group) if k in ("killed", "injured")}
    has_or = any(c.dep_ == "cc" and c.lower_ == "or" for t in group for c in t.children)
    return "killed_or_injured" if has_or and len(kinds) > 1 else kind


def _historical(trigger: Token, sent: Span) -> bool:
    """Cumulative war totals ("since the war began", "in the six-year war") are not incidents."""
    text = sent.text.lower()
    if not any(m in text for m in _HISTORY_MARKERS):
        return False
    for t in trigger.subtree:
        if t.lower_ in ("since", "throughout"):
            return True
        if t.lemma_ == "war" and t.head.lower_ in ("in", "during", "throughout"):
            return True
    return False


def _is_toll_update(trigger: Token) -> bool:
    return trigger.lemma_ == "toll" and trigger.head.lemma_ in ("rise", "climb", "increase", "reach", "jump", "mount")


def _facts_for_trigger(
    trigger: Token, kind: str, sent: Span, ents: list[Span], published_at: datetime
) -> Iterable[CasualtyFact]:
    for victim in _victims(trigger):
        counted = _count(victim)
        if counted is None:
            continue
        count, qualifier, confidence = counted
        low, high = bounds(count, qualifier)
        evidence = sent.text.rstrip()
        actor = context.subject_actor(trigger, skip_lemmas=_INTRANSITIVE) or _cause_actor(trigger)
        yield CasualtyFact(
            kind=kind,
            count=count,
            qualifier=qualifier,
            count_min=low,
            count_max=high,
            gdelt_type=GDELT_TYPE[kind],
            victims=_victim_phrase(victim),
            actor=actor,
            means=_means(sent, trigger),
            place=context.place_near(ents, trigger, exclude={actor} if actor else None),
            event_date=context.event_date(ents, published_at.date()),
            evidence=evidence,
            start=sent.start_char,
            end=sent.start_char + len(evidence),
            confidence=confidence,
        )


def _victims(trigger: Token) -> list[Token]:
    """Tokens whose count is the number of victims of this trigger."""
    lemma = trigger.lemma_.lower()
    if trigger.pos_ == "NOUN":
        if lemma == "toll":
            # "the death toll rose to 40", "a death toll of 40", "the toll stood at 40"
            objs = [o for p in (*trigger.children, *trigger.head.children) if p.dep_ == "prep"
                    and p.lower_ in ("to", "of", "at") for o in p.children if o.dep_ == "pobj"]  # fmt: skip
            objs += [c for c in trigger.head.children if c.dep_ in ("attr", "dobj") and c.pos_ == "NUM"]
            return objs
        return [trigger]  # "3,000 casualties", "no casualties", "12 deaths"
    if trigger.pos_ == "ADJ" or lemma in _INTRANSITIVE or trigger.lower_ in ADJ_TRIGGERS and trigger.pos_ != "VERB":
        own = [c for c in trigger.children if c.dep_ in ("nummod", "nsubj", "nsubjpass")]
        if own:
            return own
        if trigger.dep_ in ("acomp", "attr", "oprd"):
            return [c for c in trigger.head.children if c.dep_ in ("nsubj", "nsubjpass")]
        return [trigger.head] if trigger.dep_ in ("amod", "acl") and trigger.head.pos_ in ("NOUN", "PROPN") else []
    if lemma == "take":  # "took 12 hostages" / "took two Germans hostage"
        return [c for c in trigger.children if c.dep_ == "dobj"]
    victims = [c for c in trigger.children if c.dep_ in _VICTIM_DEPS]
    if not victims and trigger.lower_ in ADJ_TRIGGERS:
        # "three people are missing": a participle with an ordinary subject
        victims = [c for c in trigger.children if c.dep_ == "nsubj"]
    # "30 wounded" parsed as a clause whose subject is the bare numeral.
    victims += [c for c in trigger.children if c.dep_ == "nsubj" and c.pos_ == "NUM"]
    return victims


def _number_span(num: Token) -> tuple[str, int]:
    """The whole number phrase around a numeral ("two hundred", "Fifty-two"), and where it starts."""
    parts = [num, *[c for c in num.children if c.dep_ in ("compound", "nummod") and c.like_num]]
    parts += [c for c in num.children if c.dep_ == "punct" and c.text == "-"]
    start, end = min(t.i for t in parts), max(t.i for t in parts)
    return num.doc[start : end + 1].text, start


def _count(victim: Token) -> tuple[int, str | None, float] | None:
    """(count, qualifier, confidence) for a victim token, or None when no count is stated."""
    doc = victim.doc
    if victim.lemma_.lower() in _NOT_VICTIMS or victim.lower_ in _NOT_VICTIMS:
        return None
    if victim.pos_ == "NUM" or victim.lower_ in ZERO_WORDS:
        if victim.ent_type_ in ("DATE", "MONEY", "PERCENT", "TIME", "QUANTITY"):
            return None
        text, start = _number_span(victim)
        value = parse_number(text)
        return None if value is None else (value, _qualifier(doc, start), 0.9)
    if victim.lower_ in _QUANTITY_NOUNS:  # "dozens of people", "hundreds were wounded"
        value = parse_number(victim.lower_)
        if value is not None:
            of = [o for p in victim.children if p.lower_ == "of" for o in p.children]
            if of and of[0].lemma_.lower() in _NOT_VICTIMS:
                return None
            return value, "about" if victim.lower_ in ("several", "few") else _qualifier(doc, victim.i), 0.75
    for child in victim.children:
        if child.dep_ == "nummod" and child.ent_type_ not in ("DATE", "MONEY", "PERCENT", "TIME"):
            text, start = _number_span(child)
            value = parse_number(text)
            if value is not None:
                return value, _qualifier(doc, start), 0.9
    for child in victim.children:
        if child.dep_ == "det" and child.lower_ == "no":
            return 0, None, 0.85
        if child.dep_ == "amod" and child.lower_ in ("several", "few"):
            return 3, "about", 0.6
    if victim.lower_ in ("one", "nobody", "none", "noone") and (
        victim.lower_ != "one" or any(c.lower_ == "no" for c in victim.children)
    ):
        return 0, None, 0.85
    if victim.tag_ in ("NN", "NNP") and any(
        c.dep_ == "det" and c.lower_ in SINGULAR_DETERMINERS for c in victim.children
    ):
        return 1, None, 0.8
    return None


def _qualifier(doc: Doc, start: int) -> str | None:
    words = [t.lower_ for t in doc[max(doc[start].sent.start, start - 2) : start]]
    return qualifier_before(words)


def _victim_phrase(victim: Token) -> str | None:
    if victim.pos_ == "NUM":
        return None
    return str(victim.doc[victim.left_edge.i : victim.i + 1].text)


def _cause_actor(trigger: Token) -> str | None:
    """ "killed in an Iraqi missile attack": the actor named on the attack that caused it."""
    for child in trigger.children:
        if child.dep_ == "prep" and child.lower_ in ("in", "by", "during"):
            for obj in child.children:
                actor = context.modifier_actor(obj)
                if actor:
                    return actor
    return None


MEANS = {
    "drone": "drone", "shelling": "shelling", "shell": "shelling", "artillery": "artillery",
    "missile": "missile", "rocket": "rocket", "airstrike": "airstrike", "raid": "airstrike",
    "bomb": "bombing", "bombing": "bombing", "explosion": "explosion", "blast": "explosion",
    "explode": "explosion", "gunfire": "gunfire", "gunman": "gunfire", "shoot": "gunfire",
    "shooting": "gunfire", "stab": "stabbing", "mine": "mine", "grenade": "grenade",
    "crash": "crash", "fire": "fire", "earthquake": "earthquake", "flood": "flood", "storm": "storm",
}  # fmt: skip


def _means(sent: Span, trigger: Token) -> str | None:
    found = [(abs(t.i - trigger.i), MEANS[t.lemma_.lower()]) for t in sent if t.lemma_.lower() in MEANS]
    return min(found)[1] if found else None
