"""Casualty facts (killed, injured, and combined "killed or wounded" tolls) from a parsed article.

A first version.

Works on spaCy's dependency parse, sentence by sentence: a trigger ("kill", "die",
"wound", "injure", "hurt", "dead") is linked to its victims (object of an active verb,
subject of a passive one), whose numeral or determiner gives the count ("killing a
75-year-old woman" = 1, "injuring two other people" = 2, "no one was hurt" = 0). Actor,
means, place and date come from the same sentence. No Beam here.

Work is bounded per article: at most ``MAX_SENTENCES`` sentences of at most
``MAX_SENTENCE_TOKENS`` tokens are examined.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from pipelines.nlp.numbers import SINGULAR_DETERMINERS, ZERO_WORDS, parse_number, qualifier_before
from pipelines.records import CasualtyFact

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

MAX_SENTENCES = 400
MAX_SENTENCE_TOKENS = 150

TRIGGERS = {
    "kill": "killed",
    "die": "killed",
    "dead": "killed",
    "slay": "killed",
    "wound": "injured",
    "injure": "injured",
    "hurt": "injured",
    "injured": "injured",
    "wounded": "injured",
}
# Subject-is-victim triggers ("two sailors died"); for the rest the subject is the actor.
_INTRANSITIVE = frozenset({"die", "dead"})
_VICTIM_DEPS = frozenset({"dobj", "nsubjpass"})
_ACTOR_LABELS = frozenset({"GPE", "NORP", "ORG", "PERSON"})
_PLACE_LABELS = frozenset({"GPE", "LOC", "FAC"})
_HYPOTHETICAL_MODALS = frozenset({"could", "would", "might", "may"})
_HYPOTHETICAL_WORDS = frozenset({"if", "unless"})
MEANS = {
    "drone": "drone",
    "shelling": "shelling",
    "shell": "shelling",
    "artillery": "artillery",
    "missile": "missile",
    "rocket": "rocket",
    "airstrike": "airstrike",
    "bomb": "bombing",
    "bombing": "bombing",
    "explosion": "explosion",
    "blast": "explosion",
    "explode": "explosion",
    "gunfire": "gunfire",
    "gunman": "gunfire",
    "shoot": "gunfire",
    "shooting": "gunfire",
    "stab": "stabbing",
    "mine": "mine",
}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def extract_casualties(doc: Doc, published_at: datetime) -> tuple[CasualtyFact, ...]:
    """All killed/injured facts in ``doc``, one per (kind, count, place), in text order."""
    facts: dict[tuple[str, int, str | None], CasualtyFact] = {}
    for n, sent in enumerate(doc.sents):
        if n >= MAX_SENTENCES:
            break
        if len(sent) > MAX_SENTENCE_TOKENS or _is_hypothetical(sent):
            continue
        for token in sent:
            kind = _trigger_kind(token)
            if kind is None:
                continue
            kind = _combined_kind(token, kind)
            for fact in _facts_for_trigger(token, kind, sent, published_at.date()):
                facts.setdefault((fact.kind, fact.count, fact.place), fact)
    return tuple(facts.values())


def _trigger_kind(token: Token) -> str | None:
    lemma = token.lemma_.lower()
    if token.pos_ == "VERB" and lemma in TRIGGERS:
        return TRIGGERS[lemma]
    if token.pos_ == "ADJ" and token.lower_ in TRIGGERS:
        return TRIGGERS[token.lower_]
    return None


def _combined_kind(trigger: Token, kind: str) -> str:
    """ "killed or wounded 1,500": a combined toll, which is neither kind alone."""
    head = trigger.head if trigger.dep_ == "conj" else trigger
    group = [
        head,
        *[t for t in head.subtree if t.dep_ == "conj" and t.head.i in {head.i, *(c.i for c in head.children)}],
    ]
    kinds = {k for k in (_trigger_kind(t) for t in group) if k}
    has_or = any(c.dep_ == "cc" and c.lower_ == "or" for t in group for c in t.children)
    return "killed_or_injured" if has_or and len(kinds) > 1 else kind


def _is_hypothetical(sent: Span) -> bool:
    return any((t.tag_ == "MD" and t.lower_ in _HYPOTHETICAL_MODALS) or t.lower_ in _HYPOTHETICAL_WORDS for t in sent)


def _facts_for_trigger(trigger: Token, kind: str, sent: Span, published: date) -> Iterable[CasualtyFact]:
    for victim in _victims(trigger):
        counted = _count(victim)
        if counted is None:
            continue
        count, qualifier, how = counted
        evidence = sent.text.rstrip()
        yield CasualtyFact(
            kind=kind,
            count=count,
            qualifier=qualifier,
            victims=_victim_phrase(victim),
            actor=_actor(trigger),
            means=_means(sent, trigger),
            place=_place(sent, trigger),
            event_date=_event_date(sent, published),
            evidence=evidence,
            start=sent.start_char,
            end=sent.start_char + len(evidence),
            confidence=0.9 if how == "numeral" else 0.8,
        )


def _victims(trigger: Token) -> list[Token]:
    lemma = trigger.lemma_.lower()
    if trigger.pos_ == "ADJ" or lemma in _INTRANSITIVE:
        # "12 dead", "two sailors died": the numeral hangs off the trigger or its subject.
        own = [c for c in trigger.children if c.dep_ in ("nummod", "nsubj", "nsubjpass")]
        if own:
            return own
        return [trigger.head] if trigger.dep_ in ("amod", "acl") and trigger.head.pos_ in ("NOUN", "PROPN") else []
    victims = [c for c in trigger.children if c.dep_ in _VICTIM_DEPS]
    # "30 wounded" parsed as a clause whose subject is the bare numeral.
    victims += [c for c in trigger.children if c.dep_ == "nsubj" and c.pos_ == "NUM"]
    return victims


def _count(victim: Token) -> tuple[int, str | None, str] | None:
    """(count, qualifier, how) for a victim token, or None when no count is stated."""
    if victim.pos_ == "NUM" or victim.lower_ in ZERO_WORDS:
        value = parse_number(victim.text)
        return None if value is None else (value, _qualifier(victim), "numeral")
    for child in victim.children:
        if child.dep_ == "nummod":
            value = parse_number(child.text)
            if value is not None:
                return value, _qualifier(child), "numeral"
    for child in victim.children:
        if child.dep_ == "det" and child.lower_ in ZERO_WORDS:
            return 0, None, "numeral"
    if victim.lower_ in ("one", "nobody", "none") and any(c.lower_ == "no" for c in victim.children):
        return 0, None, "numeral"
    if victim.tag_ in ("NN", "NNP") and any(
        c.dep_ == "det" and c.lower_ in SINGULAR_DETERMINERS for c in victim.children
    ):
        return 1, None, "determiner"
    return None


def _qualifier(number: Token) -> str | None:
    doc = number.doc
    words = [t.lower_ for t in doc[max(number.sent.start, number.i - 2) : number.i]]
    return qualifier_before(words)


def _victim_phrase(victim: Token) -> str | None:
    if victim.pos_ == "NUM":
        return None
    return victim.doc[victim.left_edge.i : victim.i + 1].text


def _actor(trigger: Token) -> str | None:
    """The named subject (or passive agent) of the trigger or of a verb governing it."""
    node: Token | None = trigger
    for _ in range(6):
        if node is None:
            break
        for child in node.children:
            if child.dep_ == "nsubj" and child.pos_ != "NUM" and node.lemma_ not in _INTRANSITIVE:
                named = _named(child)
                if named:
                    return named
            if child.dep_ == "agent":
                for obj in child.children:
                    named = _named(obj)
                    if named:
                        return named
        node = None if node.head is node else node.head
    return None


def _named(token: Token) -> str | None:
    for ent in token.doc.ents:
        if ent.label_ in _ACTOR_LABELS and ent.start >= token.left_edge.i and ent.end <= token.right_edge.i + 1:
            return str(ent.text)
    return None


def _means(sent: Span, trigger: Token) -> str | None:
    found = [(abs(t.i - trigger.i), MEANS[t.lemma_.lower()]) for t in sent if t.lemma_.lower() in MEANS]
    return min(found)[1] if found else None


def _place(sent: Span, trigger: Token) -> str | None:
    places = [e for e in sent.ents if e.label_ in _PLACE_LABELS]
    # A place a preposition introduces ("in Kherson") is where it happened; a bare one is often the actor.
    located = [e for e in places if e.root.dep_ == "pobj" and e.root.head.lower_ in ("in", "near", "at", "outside")]
    pool = located or [e for e in places if e.root.dep_ not in ("nsubj", "nsubjpass")]
    if not pool:
        return None
    return str(min(pool, key=lambda e: abs(e.start - trigger.i)).text)


def _event_date(sent: Span, published: date) -> str | None:
    """Relative day words in the sentence resolved against the publication date."""
    for ent in sent.ents:
        if ent.label_ != "DATE":
            continue
        words = ent.text.lower().split()
        if "yesterday" in words:
            return (published - timedelta(days=1)).isoformat()
        if "today" in words:
            return published.isoformat()
        for word in words:
            if word in _WEEKDAYS:
                back = (published.weekday() - _WEEKDAYS.index(word)) % 7
                return (published - timedelta(days=back)).isoformat()
    return None
