"""What surrounds a fact's trigger word in the parse: actor, target, place, date, modality.

Shared by the casualty and event extractors; pure functions over spaCy tokens. Every walk
up the tree is bounded (``MAX_HOPS``), so work per trigger is constant.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

MAX_HOPS = 6
# Work per article is bounded: extractors look at most at this many sentences of this size.
MAX_SENTENCES = 400
MAX_SENTENCE_TOKENS = 150
ACTOR_LABELS = frozenset({"GPE", "NORP", "ORG", "PERSON"})
PLACE_LABELS = frozenset({"GPE", "LOC", "FAC"})
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_PLACE_PREPS = frozenset({"in", "near", "at", "outside", "off", "inside", "around"})

# Words that make what they govern a threat, a proposal or a refusal rather than a fact.
THREAT_LEMMAS = frozenset({"threaten", "warn", "vow"})
PROPOSAL_LEMMAS = frozenset(
    {"call", "urge", "propose", "demand", "ask", "plan", "expect", "seek", "want", "offer", "suggest",
     "consider", "intend", "hope", "prepare", "push", "press", "request", "appeal", "schedule", "aim",
     "possible", "future", "proposed", "planned", "prospective", "potential", "likely", "willing", "ready",
     "prepared", "intention", "bid", "readiness"}
)  # fmt: skip
REFUSAL_LEMMAS = frozenset({"refuse", "reject", "fail", "deny", "rule", "decline", "oppose", "veto", "postpone"})
HYPOTHETICAL_MODALS = frozenset({"could", "would", "might", "may", "will", "shall", "should", "must", "can"})


# Verbs whose infinitive complement did happen: "began to fight", "managed to meet".
_IMPLICATIVE = frozenset({"begin", "start", "continue", "manage", "go", "come", "keep", "resume", "agree"})


def bounded_sentences(doc: Doc) -> Iterator[Span]:
    """The sentences an extractor examines: the first ``MAX_SENTENCES``, skipping any longer
    than ``MAX_SENTENCE_TOKENS`` (run-on text that the parser does not split well)."""
    for n, sent in enumerate(doc.sents):
        if n >= MAX_SENTENCES:
            return
        if len(sent) <= MAX_SENTENCE_TOKENS:
            yield sent


def ancestors(token: Token, hops: int = MAX_HOPS) -> list[Token]:
    """The token's heads, nearest first, at most ``hops`` of them."""
    out: list[Token] = []
    node = token
    while node.head is not node and len(out) < hops:
        node = node.head
        out.append(node)
    return out


def sentence_entities(sent: Span) -> list[Span]:
    """The sentence's named entities, read off its tokens.

    ``Span.ents`` scans every entity of the whole document on each call, which makes
    per-sentence work grow with the article; this stays linear in the sentence.
    """
    from spacy.tokens import Span

    doc = sent.doc
    ents: list[Span] = []
    start = None
    for t in sent:
        if start is not None and t.ent_iob_ != "I":
            ents.append(Span(doc, start, t.i, label=doc[start].ent_type_))
            start = None
        if t.ent_iob_ == "B":
            start = t.i
    if start is not None:
        ents.append(Span(doc, start, sent.end, label=doc[start].ent_type_))
    return ents


def named(token: Token, labels: frozenset[str] = ACTOR_LABELS) -> str | None:
    """The named entity inside ``token``'s subtree, preferring the one at its head."""
    if token.ent_type_ in labels:
        return _entity_text(token)
    for t in token.subtree:
        if t.ent_type_ in labels:
            return _entity_text(t)
    return None


def _entity_text(token: Token) -> str:
    doc = token.doc
    start = token.i
    while start > 0 and doc[start].ent_iob_ == "I":
        start -= 1
    end = token.i + 1
    while end < len(doc) and doc[end].ent_iob_ == "I":
        end += 1
    return str(doc[start:end].text)


def prep_objects(token: Token, preps: Collection[str]) -> list[Token]:
    """Objects of the token's prepositions in ``preps``: "the abduction of [two Germans]"."""
    return [o for p in token.children if p.lower_ in preps for o in p.children if o.dep_ == "pobj"]


def first_named(tokens: Iterable[Token]) -> str | None:
    """The first named actor found among ``tokens`` (see :func:`named`)."""
    return next((actor for t in tokens if (actor := named(t))), None)


def subject_actor(trigger: Token, skip_lemmas: frozenset[str] = frozenset()) -> str | None:
    """The named subject (or passive agent) of the trigger or of a verb governing it."""
    for node in [trigger, *ancestors(trigger)]:
        for child in node.children:
            if child.dep_ in ("nsubj", "nsubjpass") and node.lemma_ in skip_lemmas:
                continue
            if child.dep_ == "nsubj" and child.pos_ != "NUM":
                actor = named(child)
                if actor:
                    return actor
            if child.dep_ == "agent" and (actor := first_named(child.children)):
                return actor
    return None


def modifier_actor(trigger: Token) -> str | None:
    """ "Iranian attack", "Iraq's offensive", "attack by Iran": the actor a noun carries."""
    modifiers = [c for c in trigger.children if c.dep_ in ("amod", "compound", "poss", "nmod") and c.i < trigger.i]
    return first_named(modifiers) or first_named(prep_objects(trigger, ("by",)))


def object_target(trigger: Token) -> str | None:
    """The named object of the trigger: its direct object, or "on/against/with X"."""
    objects = [c for c in trigger.children if c.dep_ in ("dobj", "nsubjpass")]
    return first_named(objects) or first_named(prep_objects(trigger, ("on", "against", "with", "to", "at")))


def place_near(ents: list[Span], trigger: Token, exclude: set[str] | None = None) -> str | None:
    """The place a preposition introduces nearest the trigger ("in Kherson"), else a bare one."""
    skip = exclude or set()
    places = [e for e in ents if e.label_ in PLACE_LABELS and e.text not in skip]
    located = [e for e in places if e.root.dep_ == "pobj" and e.root.head.lower_ in _PLACE_PREPS]
    pool = located or [e for e in places if e.root.dep_ not in ("nsubj", "nsubjpass", "poss")]
    if not pool:
        return None
    return str(min(pool, key=lambda e: abs(e.start - trigger.i)).text)


def event_date(ents: list[Span], published: date) -> str | None:
    """Relative day words in the sentence resolved against the publication date."""
    for ent in ents:
        if ent.label_ != "DATE":
            continue
        words = ent.text.lower().replace(",", " ").split()
        if "yesterday" in words:
            return (published - timedelta(days=1)).isoformat()
        if "today" in words or "tonight" in words:
            return published.isoformat()
        for word in words:
            if word in _WEEKDAYS:
                back = (published.weekday() - _WEEKDAYS.index(word)) % 7
                return (published - timedelta(days=back)).isoformat()
    return None


def is_negated(token: Token) -> bool:
    return any(c.dep_ == "neg" or (c.dep_ == "det" and c.lower_ == "no") for c in token.children)


def modality(trigger: Token) -> str:
    """occurred, proposed, threatened or refused, from the trigger and the words governing it."""
    chain = [trigger, *ancestors(trigger, 3)]
    for i, node in enumerate(chain):
        lemma = node.lemma_.lower()
        if is_negated(node) or (i > 0 and (lemma in REFUSAL_LEMMAS or _turned_down(node))):
            return "refused"
        if i > 0 and lemma in THREAT_LEMMAS:
            return "threatened"
        if i > 0 and lemma in PROPOSAL_LEMMAS:
            return "proposed"
        for child in node.children:
            if child.dep_ == "amod" and child.lower_ == "threatened":
                return "threatened"  # "the threatened tariffs"
            if child.dep_ == "amod" and child.lemma_.lower() in PROPOSAL_LEMMAS:
                return "proposed"
            if (
                i == 0
                and child.dep_ == "aux"
                and child.lower_ == "to"
                and node.dep_ in ("acl", "relcl")
                and node.head.lemma_.lower() not in _IMPLICATIVE
            ):
                return "proposed"  # "a truce to negotiate with the government": not yet done
            if child.dep_ == "aux" and child.lower_ in ("will", "'ll", "shall", "would") and node.pos_ == "VERB":
                return "proposed"
            if child.dep_ == "aux" and child.lower_ == "to" and i == 0 and node.head.lemma_ in ("be", "to"):
                return "proposed"
        if node.pos_ == "VERB" and node.dep_ not in ("xcomp", "ccomp", "advcl", "conj", "pcomp", "acl", "relcl"):
            break
    return "occurred"


_HISTORY_MARKERS = ("since", "so far", "throughout", "during the war", "in the war", "-year war")


MONTHS = frozenset(
    {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
     "december"}
)  # fmt: skip
_MONTHS_AND_DAYS = MONTHS | {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}


def cumulative(trigger: Token) -> bool:
    """A total over a period, not an incident: "since the war began", "in the six-year war",
    "died in land disputes last year", "killed this year"."""
    sent = trigger.sent
    if not any(m in sent.text.lower() for m in _HISTORY_MARKERS) and not any(t.ent_type_ == "DATE" for t in sent):
        return False
    for t in trigger.subtree:
        if t.lower_ in ("since", "throughout"):
            return True
        if t.lemma_ == "war" and t.head.lower_ in ("in", "during", "throughout"):
            return True
        # "this year", "last year" as a time adjunct of the trigger (not "last year's disaster")
        if t.ent_type_ == "DATE" and t.lower_ == "year" and t.dep_ in ("npadvmod", "pobj"):
            if t.i + 1 < len(t.doc) and t.doc[t.i + 1].lower_ in ("-", "old"):
                continue  # "a 75-year-old woman" is an age
            if any(w.lower_ in _MONTHS_AND_DAYS for w in t.doc[max(sent.start, t.i - 4) : t.i]):
                continue  # "in May last year": one dated incident
            return True
    return False


def _turned_down(node: Token) -> bool:
    return node.lemma_ == "turn" and any(c.dep_ == "prt" and c.lower_ == "down" for c in node.children)


_ATTEMPTS = frozenset({"fail", "try", "attempt", "seek", "want", "plan", "intend", "aim", "hope", "refuse", "vow"})


def hypothetical(trigger: Token) -> bool:
    """Under a modal or an "if" clause, or a threat: not something that happened.

    A relative or "when" clause is its own assertion: "will face charges following the
    disaster when 177 miners died" reports the deaths as fact.
    """
    for node in [trigger, *ancestors(trigger, 4)]:
        for child in node.children:
            if child.dep_ == "aux" and child.tag_ == "MD" and child.lower_ in HYPOTHETICAL_MODALS:
                return True
            if child.dep_ == "mark" and child.lower_ in ("if", "unless"):
                return True
        if node is not trigger and node.lemma_.lower() in THREAT_LEMMAS | {"risk"}:
            return True
        if node.dep_ == "xcomp" and node.head.lemma_.lower() in _ATTEMPTS:
            return True  # "has failed to arrest", "trying to arrest": not done
        if node.dep_ in ("relcl", "acl") or any(c.dep_ == "advmod" and c.lower_ == "when" for c in node.children):
            return False
    return False
