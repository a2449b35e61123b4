"""Typed events on a PLOVER-like set from a parsed article.

Each event comes from a trigger word (a verb or noun lemma in ``TRIGGERS``), checked
against the words around it to drop other senses ("strike price", "attack on inflation",
"agreed that ..."), then given a source and target actor, place, date and a modality
(occurred, proposed, threatened, refused) from the clause that governs it. Pure logic over
spaCy tokens, bounded work per sentence; no Beam here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pipelines.nlp import context
from pipelines.nlp.numbers import parse_number
from pipelines.records import EventFact

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

MAX_SENTENCES = 400
MAX_SENTENCE_TOKENS = 150

VERBS = {
    "attack": "assault", "bomb": "assault", "shell": "assault", "raid": "assault", "strafe": "assault",
    "invade": "assault", "ambush": "assault", "torpedo": "assault", "rocket": "assault", "blast": "assault",
    "fight": "fight", "clash": "fight", "repel": "fight", "repulse": "fight", "battle": "fight",
    "agree": "agree", "sign": "agree", "conclude": "agree", "settle": "agree", "ratify": "agree",
    "meet": "consult", "visit": "consult", "negotiate": "consult", "confer": "consult", "host": "consult",
    "urge": "demand", "demand": "demand", "ask": "demand", "appeal": "demand", "propose": "demand",
    "request": "demand", "press": "demand",
    "sanction": "sanction", "boycott": "sanction", "embargo": "sanction",
    "release": "release", "free": "release", "swap": "release",
    "protest": "protest", "demonstrate": "protest", "riot": "protest", "march": "protest",
    "deploy": "mobilize", "mobilize": "mobilize", "mobilise": "mobilize", "reinforce": "mobilize",
    "mass": "mobilize",
    "threaten": "threaten", "warn": "threaten",
}  # fmt: skip
NOUNS = {
    "attack": "assault", "bombing": "assault", "shelling": "assault", "airstrike": "assault", "raid": "assault",
    "bombardment": "assault", "invasion": "assault", "assault": "assault", "ambush": "assault",
    "fighting": "fight", "battle": "fight", "clash": "fight", "offensive": "fight", "combat": "fight",
    "agreement": "agree", "accord": "agree", "deal": "agree", "pact": "agree", "treaty": "agree",
    "truce": "agree", "ceasefire": "agree", "cease-fire": "agree", "armistice": "agree",
    "talk": "consult", "meeting": "consult", "visit": "consult", "negotiation": "consult", "summit": "consult",
    "conference": "consult", "consultation": "consult", "conversation": "consult", "call": "consult",
    "demand": "demand", "appeal": "demand", "proposal": "demand",
    "sanction": "sanction", "embargo": "sanction", "boycott": "sanction", "tariff": "sanction",
    "release": "release", "exchange": "release", "swap": "release",
    "protest": "protest", "demonstration": "protest", "rally": "protest", "riot": "protest", "strike": "protest",
    "walkout": "protest", "march": "protest",
    "deployment": "mobilize", "mobilization": "mobilize", "mobilisation": "mobilize", "reinforcement": "mobilize",
    "threat": "threaten", "ultimatum": "threaten",
}  # fmt: skip

# Objects that turn a military or political word into an economic metaphor.
_ECONOMIC = frozenset(
    {"inflation", "deficit", "price", "prices", "dollar", "currency", "rate", "rates", "unemployment", "market",
     "budget", "debt", "cost", "costs", "spending", "drug", "drugs", "crime", "poverty", "takeover", "bid"}
)  # fmt: skip
_LABOUR = frozenset({"worker", "union", "seaman", "seamen", "miner", "docker", "employee", "staff", "pilot",
                     "driver", "teacher", "labour", "labor", "national", "general", "port", "dock"})  # fmt: skip
_CAPTIVES = frozenset({"prisoner", "hostage", "captive", "detainee", "pow", "soldier", "crew", "crewman"})
_DEAL_WORDS = frozenset(
    {"agreement", "accord", "deal", "pact", "treaty", "truce", "ceasefire", "cease-fire", "contract", "protocol",
     "memorandum", "settlement", "understanding", "merger", "letter"}
)  # fmt: skip
_PERSONISH = frozenset({"PERSON", "ORG", "GPE", "NORP"})
_FORCES = frozenset(
    {"troop", "force", "soldier", "tank", "unit", "division", "brigade", "warship", "ship", "navy", "army",
     "reservist", "reserve", "position", "garrison", "fleet", "aircraft", "missile"}
)  # fmt: skip


def extract_events(doc: Doc, published_at: datetime) -> tuple[EventFact, ...]:
    """Events in ``doc`` in text order; one per (type, modality, actors, place) per article."""
    events: dict[tuple[str, str, str | None, str | None, str | None], EventFact] = {}
    for n, sent in enumerate(doc.sents):
        if n >= MAX_SENTENCES:
            break
        if len(sent) > MAX_SENTENCE_TOKENS:
            continue
        ents: list[Span] | None = None
        for token in sent:
            etype = _event_type(token)
            if etype is None:
                continue
            ents = context.sentence_entities(sent) if ents is None else ents
            event = _event(token, etype, sent, ents, published_at)
            key = (event.type, event.modality, event.source_actor, event.target_actor, event.place)
            events.setdefault(key, event)
    return tuple(events.values())


def _event_type(token: Token) -> str | None:
    lemma = token.lemma_.lower()
    if token.pos_ == "VERB":
        etype = VERBS.get(lemma)
        if etype is None:
            return _verb_phrase_type(token, lemma)
        return etype if _verb_sense_ok(token, lemma, etype) else None
    if token.pos_ in ("NOUN", "PROPN"):
        if lemma in ("strike", "raid") and _has_child_lemma(token, {"air", "missile", "drone", "military"}):
            return "assault"
        etype = NOUNS.get(lemma)
        if etype is None:
            return None
        return etype if _noun_sense_ok(token, lemma, etype) else None
    return None


def _verb_phrase_type(token: Token, lemma: str) -> str | None:
    """Multi-word triggers: "call for", "hold talks", "reach an agreement", "hit a tanker"."""
    preps = {c.lower_ for c in token.children if c.dep_ in ("prep", "prt")}
    if lemma == "call" and ("for" in preps or ("on" in preps and any(c.dep_ == "xcomp" for c in token.children))):
        return "demand"  # "called for a ceasefire", "called on Russia to accept"
    if lemma == "hit" and any(c.lemma_ in ("tanker", "ship", "vessel", "target", "base", "platform", "town", "city")
                              for c in token.children if c.dep_ in ("dobj", "nsubjpass")):  # fmt: skip
        return "assault"
    if lemma == "fire" and "on" in preps:
        return "assault"
    if lemma == "speak" and ("with" in preps or "to" in preps) and _named_prep_object(token, ("with", "to")):
        return "consult"
    if lemma in ("impose", "slap", "lift", "tighten") and any(
        c.lemma_ in ("sanction", "embargo", "tariff", "ban", "duty") for c in token.children
    ):
        return None  # the noun object is the trigger
    return None


def _verb_sense_ok(token: Token, lemma: str, etype: str) -> bool:
    objs = [c for c in token.children if c.dep_ in ("dobj", "nsubjpass", "pobj")]
    objs += [o for p in token.children if p.dep_ == "prep" for o in p.children if o.dep_ == "pobj"]
    if etype in ("assault", "fight") and any(o.lemma_.lower() in _ECONOMIC for o in objs):
        return False
    if lemma == "agree":
        # "agreed to buy", "agreed on a truce", "agreed a deal": a deal; "agreed that ..." is an opinion.
        return (
            any(c.dep_ == "xcomp" for c in token.children)
            or any(c.dep_ == "prep" and c.lower_ in ("on", "to", "upon") for c in token.children)
            or any(o.lemma_.lower() in _DEAL_WORDS for o in objs)
        )
    if lemma in ("sign", "conclude", "settle", "ratify"):
        return any(o.lemma_.lower() in _DEAL_WORDS for o in objs)
    if lemma == "free" or lemma == "release":
        return any(o.lemma_.lower() in _CAPTIVES or o.ent_type_ in ("PERSON", "NORP") for o in objs)
    if lemma == "swap":
        return any(o.lemma_.lower() in _CAPTIVES for o in objs)
    if lemma == "ask":
        return any(c.dep_ in ("xcomp", "ccomp") for c in token.children) or "for" in {c.lower_ for c in token.children}
    if lemma == "press":
        return "for" in {c.lower_ for c in token.children}
    if lemma == "meet":
        return not any(
            o.lemma_.lower()
            in (
                "demand",
                "target",
                "requirement",
                "need",
                "cost",
                "obligation",
                "standard",
                "criterion",
                "condition",
                "expectation",
            )
            for o in objs
        )
    if lemma in ("mass", "reinforce", "deploy"):
        return any(o.lemma_.lower() in _FORCES for o in objs) or not objs
    if lemma == "march":
        return _labour_or_crowd(token)
    if lemma == "host":
        return any(o.lemma_.lower() in ("talk", "meeting", "summit", "conference", "visit") for o in objs)
    if lemma == "warn":
        return any(c.dep_ in ("ccomp", "xcomp") for c in token.children) or "of" in {c.lower_ for c in token.children}
    if lemma == "protest":
        return True
    return True


def _noun_sense_ok(token: Token, lemma: str, etype: str) -> bool:
    children = {c.lemma_.lower() for c in token.children}
    pobj = {o.lemma_.lower() for p in token.children if p.dep_ == "prep" for o in p.children}
    if etype in ("assault", "fight") and (pobj & _ECONOMIC or children & _ECONOMIC or token.head.lemma_ in _ECONOMIC):
        return False
    if lemma == "strike":  # a labour strike; "strike price" and the like are not events
        if children & {"price", "zone", "force", "rate"} or token.head.lemma_ in ("price",):
            return False
        if token.head.lower_ == "on" and token.head.head.lemma_ in ("go", "be", "remain", "stay", "come"):
            return True
        return _labour_or_crowd(token) or token.head.lemma_ in ("call", "end", "stage", "threaten")
    if lemma in ("exchange", "swap", "release"):
        return bool(children & _CAPTIVES or pobj & _CAPTIVES)
    if lemma == "deal":
        return not (children & {"great", "good"}) and token.head.lower_ != "a"
    if lemma == "call":  # a telephone call between leaders, not an option or a demand
        return bool(children & {"telephone", "phone"} or {p.lower_ for p in token.children} & {"with", "between"}
                    or token.head.lemma_ in ("hold", "make", "have") or token.dep_ == "poss")  # fmt: skip
    if lemma == "march":
        return _labour_or_crowd(token)
    if lemma == "tariff":
        return bool(children & {"retaliatory", "punitive"} or token.head.lemma_ in ("impose", "slap", "threaten"))
    if lemma == "proposal":
        return True
    if lemma == "exchange" and "rate" in children:
        return False
    return True


def _labour_or_crowd(token: Token) -> bool:
    return any(t.lemma_.lower() in _LABOUR | {"protester", "demonstrator", "student", "crowd"} for t in token.sent)


def _has_child_lemma(token: Token, lemmas: set[str]) -> bool:
    return any(c.lemma_.lower() in lemmas for c in token.children)


def _named_prep_object(token: Token, preps: tuple[str, ...]) -> str | None:
    for p in token.children:
        if p.dep_ == "prep" and p.lower_ in preps:
            for o in p.children:
                found = context.named(o)
                if found:
                    return found
    return None


def _event(trigger: Token, etype: str, sent: Span, ents: list[Span], published_at: datetime) -> EventFact:
    if trigger.pos_ == "VERB":
        source = context.subject_actor(trigger)
        target = context.object_target(trigger)
    else:
        source = context.modifier_actor(trigger) or _between(trigger, 0) or context.subject_actor(trigger.head)
        target = context.object_target(trigger) or _between(trigger, 1)
    modality = context.modality(trigger)
    if etype == "threaten" and modality == "occurred":
        modality = "threatened"
    evidence = sent.text.rstrip()
    return EventFact(
        type=etype,
        modality=modality,
        trigger=trigger.text,
        evidence=evidence,
        start=sent.start_char,
        end=sent.start_char + len(evidence),
        confidence=0.75 if trigger.pos_ == "VERB" else 0.7,
        source_actor=source,
        target_actor=target if target != source else None,
        place=context.place_near(ents, trigger, exclude={a for a in (source, target) if a}),
        event_date=context.event_date(ents, published_at.date()),
        count=_event_count(trigger),
    )


def _between(trigger: Token, which: int) -> str | None:
    """ "talks between Russian and Ukrainian delegations": the two sides, in order."""
    for p in trigger.children:
        if p.dep_ == "prep" and p.lower_ == "between":
            names = [n for n in (context.named(t, _PERSONISH) for t in p.subtree if t.dep_ in ("pobj", "conj", "amod"))
                     if n]  # fmt: skip
            unique = list(dict.fromkeys(names))
            return unique[which] if len(unique) > which else None
    return None


def _event_count(trigger: Token) -> int | None:
    """A number the event carries: "a prisoner exchange — 1,000 on each side"."""
    for t in trigger.sent:
        if t.pos_ == "NUM" and abs(t.i - trigger.i) <= 6 and t.ent_type_ not in ("DATE", "MONEY", "PERCENT", "TIME"):
            value = parse_number(t.text)
            if value is not None and trigger.lemma_ in ("exchange", "swap", "release", "free"):
                return value
    return None
