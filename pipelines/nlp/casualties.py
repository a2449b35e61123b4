"""Casualty facts from a parsed article: who was killed, injured, missing, arrested,
kidnapped or displaced, how many, by whom, how, where and when.

Works on spaCy's dependency parse, sentence by sentence. A trigger ("kill", "wounded",
"casualties", "death toll", "missing", "arrest", ...) is linked to its victims (object of an
active verb, subject of a passive or intransitive one, the number a noun carries), whose
numeral, quantity word or determiner gives the count. Counting follows ACLED's rules
(``pipelines.nlp.numbers``). Hypotheticals, threats and historical totals are skipped.
No Beam here.

Work is bounded per article (``context.bounded_sentences``) and constant per trigger.
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
    "murder": "killed", "drown": "killed", "perish": "killed",
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
    "arrest": "arrested", "dead": "killed", "body": "killed",
    "abduction": "kidnapped", "kidnapping": "kidnapped", "assassination": "killed", "murder": "killed",
    "corpse": "killed", "loss": "killed_or_injured",
}  # fmt: skip
_HURT_WORDS = frozenset({"injury", "fracture", "burn", "wound", "hospital", "shock", "cut", "bruise"})
_INTRANSITIVE = frozenset({"die", "drown", "disappear", "perish"})
_VICTIM_DEPS = frozenset({"dobj", "nsubjpass"})
_QUANTITY_NOUNS = frozenset({"dozen", "dozens", "score", "scores", "hundreds", "thousands", "several", "few"})
# Heads that are not people: "hit 12 ships", "killed 200 head of cattle" are not casualties.
_NOT_VICTIMS = frozenset(
    {"ship", "tanker", "vessel", "boat", "aircraft", "plane", "jet", "helicopter", "tank", "vehicle", "building",
     "house", "home", "barrel", "ton", "tonne", "dollar", "dlrs", "mln", "billion", "pct", "percent", "cattle",
     "head", "sheep", "bird", "animal", "year", "month", "day", "week", "hour", "minute", "share", "job",
     "bid", "plan", "proposal", "bill", "deal", "project", "measure", "idea", "talk", "shipment", "cargo",
     "goods", "car", "truck", "container", "case", "claim", "dose", "fund", "company", "bank", "loan", "acre",
     "warrant", "charge", "document", "file", "crop", "tree", "well", "mine", "reserve", "account",
     "stronghold", "town", "city", "area", "village", "base", "embassy", "position", "camp", "region", "zone",
     "island", "port", "airport", "office", "plant", "factory", "platform", "rig", "field", "site", "hectare",
     "kilometre", "kilometer", "mile", "metre", "meter", "foot", "feet", "kilo", "pound"}
)  # fmt: skip


def extract_casualties(doc: Doc, published_at: datetime) -> tuple[CasualtyFact, ...]:
    """Casualty facts in ``doc`` in text order, one per (kind, victims, incident).

    The same (kind, count, place) twice is one fact; a later toll update for the same
    kind and place ("the death toll rose to 40") supersedes the earlier number.
    """
    facts: list[CasualtyFact] = []
    for sent in context.bounded_sentences(doc):
        ents: list[Span] | None = None
        illness = any(t.lemma_.lower() in _ILLNESS_CONTEXT for t in sent)
        for token in sent:
            kind = _trigger_kind(token)
            if kind is None or context.hypothetical(token) or context.cumulative(token):
                continue
            if illness and kind == "killed" and token.lemma_.lower() in _BARE_DEATH_TRIGGERS:
                continue  # deaths from disease are not casualties of violence or disaster
            ents = context.sentence_entities(sent) if ents is None else ents
            for fact in _facts_for_trigger(token, _combined_kind(token, kind), sent, ents, published_at):
                if fact.count == 1 and _bare_death(token, sent):
                    continue  # "succeeding Henry Heinz II, who died on February 23": an obituary
                if fact.kind == "injured" and _sports_injury(sent):
                    continue  # "withdrew from the match with a recurring arm injury"
                _merge(facts, fact, updated=_is_toll_update(token))
    return tuple(facts)


# Words that place a death or disappearance in an incident: violence, accident or disaster.
_INCIDENT = frozenset(
    {"attack", "blast", "explosion", "explode", "bomb", "bombing", "crash", "fire", "blaze", "fighting", "clash",
     "accident", "shoot", "shot", "gunfire", "gunman", "shell", "shelling", "artillery", "missile", "rocket",
     "grenade", "bullet", "knife", "stab", "beat", "violence", "riot", "war", "battle", "raid", "ambush",
     "assassinate", "assassination", "murder", "execute", "execution", "kill", "wound", "injure", "injury",
     "earthquake", "quake", "storm", "flood", "avalanche", "landslide", "hurricane", "cyclone", "typhoon",
     "tornado", "sink", "sinking", "capsize", "ferry", "collision", "collide", "derail", "disaster", "plunge",
     "drown", "suicide", "poison", "gas", "leak", "hijack", "kidnap", "kidnapper", "torture", "police", "troop",
     "soldier", "army", "rescue", "survivor", "wreck", "wreckage", "debris", "toll", "victim", "casualty",
     "electrocute", "smoke", "burn", "search", "sea", "custody", "guerrilla", "rebel", "hostage", "abduct"}
)  # fmt: skip
_BARE_DEATH_TRIGGERS = frozenset({"die", "death", "dead", "perish", "missing", "miss"})


_SPORT = frozenset(
    {"match", "innings", "wicket", "tournament", "season", "game", "court", "cricket", "tennis", "football", "rugby",
     "yorker", "bowler", "batsman", "championship", "cup", "olympics", "squad", "coach", "semi-final", "final",
     "golf", "soccer", "league", "goalkeeper", "midfielder", "hamstring", "groin"}
)  # fmt: skip


def _sports_injury(sent: Span) -> bool:
    """A player's injury in a sports story: not a casualty of violence, accident or disaster."""
    lemmas = {t.lemma_.lower() for t in sent}
    return bool(lemmas & _SPORT) and not lemmas & (_INCIDENT - {"injury", "wound", "injure"})


def _bare_death(trigger: Token, sent: Span) -> bool:
    """One person died or is missing, and nothing in the sentence says how: an obituary,
    a figure of speech ("the Louvre accord is dead") or a thing missing, not a casualty."""
    return trigger.lemma_.lower() in _BARE_DEATH_TRIGGERS and not any(
        t.lemma_.lower() in _INCIDENT for t in sent if t is not trigger
    )


def _merge(facts: list[CasualtyFact], fact: CasualtyFact, updated: bool) -> None:
    for i, old in enumerate(facts):
        same_place = old.place == fact.place or None in (old.place, fact.place)
        same_incident = old.kind == fact.kind and same_place
        if same_incident and old.count == fact.count:
            return
        if same_incident and updated and old.evidence != fact.evidence:
            facts[i] = fact
            return
    facts.append(fact)


def _trigger_kind(token: Token) -> str | None:
    lemma = token.lemma_.lower()
    lower = token.lower_
    if lemma in ("hurt", "injure") and not _physical(token):
        return None  # "the strong yen hurt exporters", "imports injured domestic producers"
    if lemma == "hurt" and _active_transitive(token) and not _violent(token):
        return None  # "cut costs and not hurt the farmer": harm to interests, not bodies
    if lemma == "hostage" and any(c.lower_ == "to" for c in token.children):
        return None  # "a hostage to fortune"
    if lemma == "execute" and not any(
        c.dep_ in ("dobj", "nsubjpass") and c.lemma_.lower() in PEOPLE | {"prisoner", "convict"} for c in token.children
    ):
        return None  # "executed a merger agreement", "executed orders"
    if token.pos_ == "VERB" and lemma in VERB_TRIGGERS:
        if lemma == "die" and any(o.lemma_.lower() in _ILLNESS for p in token.children if p.lower_ == "of"
                                  for o in p.subtree):  # fmt: skip
            return None  # "died of a heart attack": not a casualty of violence or disaster
        return VERB_TRIGGERS[lemma]
    if token.pos_ in ("ADJ", "VERB") and lower in ADJ_TRIGGERS:
        nxt = token.doc[token.i + 1].lower_ if token.i + 1 < len(token.doc) else ""
        if lower == "dead" and nxt in ("weight", "heat", "end", "letter", "loss", "stock", "calm", "zone", "line"):
            return None  # "dead weight tons", "a dead heat"
        if lower == "homeless" and token.dep_ == "amod":
            return None  # "homeless people" in general, not people made homeless by an incident
        return ADJ_TRIGGERS[lower]
    if token.pos_ == "NOUN" and lemma in NOUN_TRIGGERS:
        if token.dep_ == "compound":  # "refugee camp", "death penalty"
            return None
        if lemma == "body" and token.tag_ != "NNS":
            return None  # "the human body", "the G-7 body": only "80 bodies" are dead people
        if lemma == "loss" and not any(
            o.lemma_.lower() in PEOPLE and o.lemma_.lower() not in ("life", "lives") for c in token.children
            if c.lower_ == "of" for o in c.children
        ):  # fmt: skip
            return None  # only "the loss of 700 troops", not the loss of jobs or money
        if token.head.lemma_ in ("order", "warrant", "seek", "demand", "call", "threaten", "risk", "face"):
            return None  # "ordered the arrest of", "face death": not done
        if lemma in ("injury", "death", "murder") and not _physical(token):
            return None  # "the injury to domestic producers" in a trade case
        if lemma == "toll" and not any(c.lower_ in ("death", "casualty") for c in token.children):
            return None
        if lemma == "death" and token.head.lemma_ == "toll":
            return None
        return NOUN_TRIGGERS[lemma]
    if lower in ("corpse", "corpses"):  # the lemmatizer reads "corpses" as "corps"
        return "killed"
    if lower == "lives" and token.head.lemma_ in ("lose", "claim", "take", "cost"):
        return "killed"  # "lost their lives", "claimed at least 300 lives"
    if lemma == "disappear" and token.pos_ == "VERB":
        return "missing"
    if lemma == "take" and token.pos_ == "VERB":
        taken = {c.lower_ for c in token.children} | {o.lower_ for c in token.children for o in c.children}
        if taken & {"hostage", "hostages", "captive", "captives"}:
            return "kidnapped"
        if taken & {"prisoner", "prisoners", "custody"}:
            return "arrested"
    if (
        token.pos_ == "VERB"
        and lemma not in ("sentence", "condemn", "put")
        and any(
            c.dep_ == "prep" and c.lower_ == "to" and any(o.lemma_ == "death" for o in c.children)
            for c in token.children
        )
    ):
        return "killed"  # "stabbed to death", "beaten to death"
    if (
        token.pos_ == "VERB"
        and lemma in ("send", "rush", "take", "fly")
        and any(o.lemma_ == "hospital" for c in token.children if c.lower_ == "to" for o in c.children)
    ):
        return "injured"  # "sent 17 to hospital"
    if lemma == "hold" and any(
        o.lemma_ in ("custody", "detention", "prison", "jail") for c in token.children if c.lower_ == "in"
        for o in c.children
    ):  # fmt: skip
        return "arrested"  # "three bank officials are still being held in custody"
    if lemma == "sentence" and token.pos_ == "VERB" and any(
        o.lemma_.lower() in ("jail", "prison", "life", "year", "month", "imprisonment")
        for c in token.children if c.lower_ in ("to", "in") for o in c.subtree
    ):  # fmt: skip
        return "arrested"  # "was sentenced to two months in jail"
    if lemma == "victim" and _no_reports_of(token):
        return "killed_or_injured"  # "no immediate reports of victims"
    if lemma in ("hospitalize", "hospitalise") or (
        lemma in ("treat", "admit") and any(t.lemma_ in _HURT_WORDS for t in token.subtree)
    ):
        return "injured"  # "25 people were treated for bone fractures", "admitted to hospital"
    if lemma == "flee" and any(c.lower_ in ("homes", "home") for c in token.subtree):
        return "displaced"
    return None


_PHYSICAL = frozenset(
    {"seriously", "slightly", "critically", "severely", "lightly", "gravely", "fatally", "hospital", "attack",
     "blast", "explosion", "explode", "bomb", "crash", "fire", "fighting", "clash", "accident", "shoot", "shot",
     "kill", "wound", "dead", "die", "injury", "collapse", "earthquake", "storm", "riot", "gunman", "shell",
     "artillery", "missile", "rocket", "grenade", "bullet", "gunfire", "knife", "stab", "beat", "violence"}
)  # fmt: skip


def _active_transitive(token: Token) -> bool:
    deps = {c.dep_ for c in token.children}
    return token.pos_ == "VERB" and "dobj" in deps and "auxpass" not in deps


def _violent(token: Token) -> bool:
    return any(t.lemma_.lower() in _PHYSICAL for t in token.sent if t is not token)


def _physical(token: Token) -> bool:
    """Bodily harm is meant: violent or accident words, or people (not exporters) nearby."""
    return _violent(token) or any(
        t.lemma_.lower() in PEOPLE and t.lemma_.lower() not in ("company", "force")
        for t in token.sent
        if t is not token
    )


def _combined_kind(trigger: Token, kind: str) -> str:
    """ "killed or wounded 1,500": a combined toll, which is neither kind alone.

    Only triggers joined directly by "or" combine; "killed or injured ... and three died"
    keeps "died" apart.
    """
    if kind not in ("killed", "injured", "missing"):
        return kind
    partners = [c for c in trigger.children if c.dep_ == "conj"]
    if trigger.dep_ == "conj":
        partners.append(trigger.head)
    for other in partners:
        if _trigger_kind(other) not in ("killed", "injured", "missing") or _trigger_kind(other) == kind:
            continue
        lo, hi = sorted((trigger.i, other.i))
        between = trigger.doc[lo + 1 : hi]
        if len(between) <= 3 and any(t.lower_ == "or" for t in between):
            return "killed_or_injured"
    return kind


def _is_toll_update(trigger: Token) -> bool:
    return trigger.lemma_ == "toll" and trigger.head.lemma_ in ("rise", "climb", "increase", "reach", "jump", "mount")


def _facts_for_trigger(
    trigger: Token, kind: str, sent: Span, ents: list[Span], published_at: datetime
) -> Iterable[CasualtyFact]:
    counts = [group for v in _victims(trigger) if _is_people(v, trigger) for group in _group_counts(v)]
    if not counts and kind in ("arrested", "kidnapped"):
        # only people are arrested: a name the NER took for a place is a person here
        named: tuple[int, str | None, float] = (1, None, 0.6)
        counts = [(v, named) for v in _victims(trigger) if v.tag_ == "NNP"][:1]
    if not counts:
        fallback = _window_count(trigger)
        counts = [(trigger, fallback)] if fallback is not None else []
    for victim, counted in counts:
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
            victims=_victim_phrase(victim) if victim is not trigger else None,
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
    """Tokens whose count is the number of victims of this trigger, most direct first."""
    lemma = trigger.lemma_.lower()
    if trigger.pos_ == "NOUN":
        if lemma == "toll":
            # "the death toll rose to 40", "a death toll of 40", "the toll stood at 40"
            preps = [p for p in (*trigger.children, *trigger.head.children) if p.dep_ == "prep"]
            objs = [o for p in preps if p.lower_ in ("to", "of", "at") for o in p.children if o.like_num]
            objs += [c for c in trigger.head.children if c.dep_ in ("attr", "dobj") and c.pos_ == "NUM"]
            return objs
        if lemma in ("injury", "death") and not _has_number(trigger) and trigger.head.lemma_ in _SUFFER:
            # "60 suffered slight injuries": the sufferers are the victims
            return [c for c in trigger.head.children if c.dep_ == "nsubj"]
        of = context.prep_objects(trigger, ("of",))
        if not of and trigger.dep_ == "conj" and trigger.head.pos_ == "NOUN":
            of = context.prep_objects(trigger.head, ("of",))  # "the abduction and murder of Sarah Payne"
        if lemma in ("abduction", "kidnapping", "assassination", "murder", "arrest", "death", "loss") and of:
            return of  # "the abduction of two Germans", "the deaths of the seven astronauts"
        if lemma in ("arrest", "loss") and not any(
            c.dep_ == "nummod"
            or (c.dep_ == "poss" and c.tag_ == "PRP$")
            or (c.dep_ in ("det", "amod") and c.lower_ in ("no", "several", "some", "few"))
            for c in trigger.children
        ):
            return []  # "today's arrest" without who or how many; "his arrest" is one
        return [trigger]  # "3,000 casualties", "no casualties", "12 deaths", "his abduction"
    if lemma in ("hold", "sentence"):  # "are still being held in custody", "was sentenced to life in prison"
        return [c for c in trigger.children if c.dep_ in ("nsubjpass", "dobj")]
    if lemma == "take":  # "took 12 hostages", "were taken prisoner"
        return [c for c in trigger.children if c.dep_ in ("dobj", "nsubjpass")]
    victims: list[Token] = []
    adjectival = trigger.pos_ == "ADJ" or (trigger.lower_ in ADJ_TRIGGERS and trigger.pos_ != "VERB")
    if adjectival or lemma in _INTRANSITIVE:
        victims += [c for c in trigger.children if c.dep_ in ("nummod", "nsubj", "nsubjpass")]
    else:
        victims += [c for c in trigger.children if c.dep_ in _VICTIM_DEPS]
        # "three people are missing", "30 wounded": a participle with an ordinary subject
        victims += [c for c in trigger.children if c.dep_ == "nsubj" and (c.pos_ == "NUM" or trigger.lower_ in
                                                                          _STATE_WORDS)]  # fmt: skip
    if not victims:
        # "killed or wounded 2,600 Iraqis": coordinated triggers share their object
        victims += [o for c in trigger.children if c.dep_ == "conj" and _trigger_kind(c)
                    for o in c.children if o.dep_ == "dobj"]  # fmt: skip
    if not victims and trigger.dep_ == "conj" and not _numbers_between(trigger.head, trigger):
        # "knifed and shot to death": the coordinated verb shares its victims, unless a number of
        # its own stands between ("three were killed and two others injured")
        victims += [c for c in trigger.head.children if c.dep_ in ("nsubjpass", "dobj")]
    if not victims and trigger.dep_ in ("oprd", "xcomp") and trigger.head.dep_ in ("acl", "relcl"):
        victims.append(trigger.head.head)  # "the estimated 25,000 made homeless"
    if not victims and trigger.dep_ in ("acomp", "attr", "oprd", "xcomp"):
        # "200 people are feared dead", "51 were reported killed"; "left 3,000 people homeless"
        around = [c for c in trigger.head.children if c is not trigger]
        victims += [c for c in around if c.dep_ == "dobj"] or [c for c in around if c.dep_ in ("nsubj", "nsubjpass")]
    if not victims and trigger.dep_ in ("amod", "acl") and trigger.head.pos_ in ("NOUN", "PROPN", "NUM"):
        victims.append(trigger.head)  # "a kidnapped diplomat", "3,000 men killed or wounded"
    return [_antecedent(v) for v in victims]


_SUFFER = frozenset({"suffer", "sustain", "receive", "have"})


def _numbers_between(a: Token, b: Token) -> bool:
    lo, hi = sorted((a.i, b.i))
    return any(t.like_num or t.lower_ in _QUANTITY_NOUNS for t in a.doc[lo + 1 : hi])


# Participles that describe a state, whose grammatical subject is the victim ("22 are missing").
_STATE_WORDS = frozenset({"missing", "unaccounted", "dead", "homeless", "displaced"})
_ILLNESS_CONTEXT = frozenset(
    {"aids", "cancer", "illness", "disease", "patient", "epidemic", "virus", "infection", "salmonella", "cholera",
     "malaria", "flu", "influenza", "overdose", "suicide"}
)  # fmt: skip
_ILLNESS = frozenset({"attack", "cancer", "aids", "illness", "disease", "cause", "stroke", "age", "complication"})


def _has_number(token: Token) -> bool:
    return any(c.dep_ == "nummod" or (c.dep_ == "det" and c.lower_ == "no") for c in token.children)


def _antecedent(victim: Token) -> Token:
    """ "six people ... who were dead": a relative pronoun stands for the noun it modifies."""
    if victim.lower_ in ("who", "that", "which") and victim.head.dep_ == "relcl":
        return victim.head.head
    return victim


_WINDOW_SKIP_POS = frozenset({"AUX", "ADV", "PART", "ADJ"})


def _window_count(trigger: Token) -> tuple[int, str | None, float] | None:
    """Fallback when the parse links no victims: a number just before the trigger
    ("and 22 are missing", "some 30 injured"), or just after a toll's verb ("risen to 70")."""
    doc = trigger.doc
    sent = trigger.sent
    if trigger.lemma_ == "toll":
        verb = trigger.head
        for t in doc[verb.i + 1 : min(sent.end, verb.i + 6)]:
            if t.like_num and t.pos_ == "NUM":
                return _count(t)
            if t.pos_ in ("VERB", "PUNCT", "CCONJ"):
                return None
        return None
    if trigger.pos_ == "NOUN":
        return None
    nouns = 0
    for t in reversed(doc[max(sent.start, trigger.i - 6) : trigger.i]):
        if t.pos_ == "NUM" or t.lower_ in _QUANTITY_NOUNS:
            return _count(t)
        if t.pos_ == "NOUN" and nouns == 0 and _is_people(t, trigger):
            nouns += 1
            counted = _count(t)
            if counted is not None:
                return counted
            continue
        if t.pos_ not in _WINDOW_SKIP_POS:
            return None
    return None


PEOPLE = frozenset(
    {"people", "person", "man", "men", "woman", "women", "child", "children", "boy", "girl", "baby", "civilian",
     "soldier", "troop", "police", "policeman", "policemen", "officer", "guard", "worker", "miner", "passenger",
     "crew", "crewman", "crewmen", "sailor", "seaman", "seamen", "student", "youth", "pilgrim", "villager",
     "resident", "tourist", "fisherman", "fishermen", "farmer", "peasant", "marine", "militiaman", "rebel",
     "guerrilla", "guerilla", "militant", "insurgent", "protester", "demonstrator", "striker", "victim",
     "casualty", "hostage", "prisoner", "captive", "detainee", "refugee", "inmate", "suspect", "member",
     "supporter", "official", "diplomat", "journalist", "reporter", "priest", "nun", "doctor", "nurse", "pilot",
     "driver", "employee", "staff", "manager", "executive", "leader", "minister", "president", "chairman",
     "businessman", "businessmen", "trader", "dealer", "broker", "citizen", "national", "foreigner", "family",
     "relative", "infant", "teenager", "adult", "elderly", "other", "others", "one", "another", "individual",
     "survivor", "fighter", "gunman", "gunmen", "attacker", "bystander", "shopper", "motorist", "commuter",
     "pedestrian", "spectator", "fan", "mourner", "settler", "immigrant", "migrant", "worshipper", "crewmember",
     "paratrooper", "commando", "sergeant", "captain", "lieutenant", "colonel", "general", "major", "agent",
     "spy", "mayor", "governor", "judge", "lawyer", "teacher", "professor", "scientist", "engineer",
     "technician", "operator", "guest", "visitor", "patient", "body", "dead", "life", "lives", "personnel",
     "force", "army", "unit", "brigade", "division", "battalion", "company", "platoon", "squad", "colleague",
     "secretary", "wife", "husband", "son", "daughter", "mother", "father", "brother", "sister", "friend",
     "schoolgirl", "schoolboy", "schoolchild", "schoolchildren", "guide", "climber", "swimmer", "surfer", "skier",
     "holidaymaker", "backpacker", "firefighter", "fireman", "firemen", "rescuer", "occupant", "toddler",
     "astronaut", "chief", "head", "spokesman", "partner", "couple", "player", "athlete", "hijacker", "kidnapper",
     "robber", "thief", "criminal", "activist", "dissident", "opponent", "politician", "lawmaker", "deputy", "senator",
     "ambassador", "envoy", "consul", "attache", "missionary", "volunteer", "aide", "bodyguard", "hiker"}
)  # fmt: skip
# Nouns ending like person nouns that are not people, common in business news.
_NOT_PEOPLE = frozenset({"exporter", "producer", "importer", "consumer", "investor", "shareholder", "creditor",
                         "holder", "lender", "borrower", "competitor", "sector", "order", "computer", "center",
                         "number", "quarter", "dollar", "market", "letter", "paper", "water", "rubber",
                         "meter", "barrel", "tanker", "container", "carrier", "power", "factor"})  # fmt: skip


def _is_people(victim: Token, trigger: Token) -> bool:
    """Victims are people (or a bare number of them): not exports, bills, ships or decline."""
    group = context.prep_objects(victim, ("of",))
    if group and victim.lower_ in ("one", "some", "all", "many"):
        return _is_people(group[0], trigger)  # "one of its sacred cows" is a cow
    if victim is trigger or victim.pos_ in ("NUM", "PRON") or victim.lower_ in ZERO_WORDS | _QUANTITY_NOUNS:
        return True
    if victim.lower_ == "old" and victim.i >= 2 and victim.doc[victim.i - 2].lower_ == "year":
        return True  # "the 26-year-old"
    lemma = victim.lemma_.lower()
    if lemma in _NOT_PEOPLE or lemma in _NOT_VICTIMS:
        return False
    if victim.ent_type_ in ("PERSON", "NORP") or victim.tag_ in ("NNP", "NNPS"):
        return True
    if lemma in PEOPLE or victim.lower_ in PEOPLE:
        return True
    return lemma.endswith(("er", "or", "ist", "ian", "man", "men", "ee", "ier"))


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
            of = context.prep_objects(victim, ("of",))
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
            if any(c.dep_ == "amod" and c.lower_ in ("serious", "major", "severe") for c in victim.children):
                return None  # "no serious injuries" leaves minor ones uncounted
            return 0, None, 0.85
        if child.dep_ in ("amod", "det") and child.lower_ in ("several", "few", "some") and victim.tag_ == "NNS":
            return 3, "about", 0.6
    if victim.lower_ in ("he", "she", "him", "her"):
        return 1, None, 0.7  # "He was seriously injured"
    if victim.lower_ == "old" and victim.i >= 2 and victim.doc[victim.i - 2].lower_ == "year":
        return 1, None, 0.7  # "the 26-year-old who has been arrested"
    if victim.lower_ in ("some", "several") and any(o.tag_ == "NNS" for o in context.prep_objects(victim, ("of",))):
        return 3, "about", 0.6  # "some of the gunmen have been arrested"
    if victim.lower_ in ("another", "one") and victim.dep_ in ("nsubj", "nsubjpass", "dobj"):
        return 1, None, 0.7  # "another was seriously hurt"
    if victim.lemma_.lower() in ("total", "number"):  # "a total of 19 people"
        for obj in context.prep_objects(victim, ("of",))[:1]:
            return _count(obj)
    if _no_reports_of(victim):
        return 0, None, 0.8  # "no (immediate) reports of casualties"
    if victim.head.lower_ == "of" and victim.head.head.lower_ in _QUANTITY_NOUNS:
        return _count(victim.head.head)  # "thousands of casualties"
    if (victim.tag_ == "NNP" and victim.ent_type_ not in _NOT_PEOPLE_ENTS) or (
        victim.tag_ == "NNPS" and victim.ent_type_ == "PERSON"
    ):
        return 1, None, 0.7  # "Montoya has been arrested", "Francis Minah has been detained"
    if victim.lower_ in ("one", "nobody", "none", "noone") and (
        victim.lower_ != "one" or any(c.lower_ == "no" for c in victim.children)
    ):
        return 0, None, 0.85
    if victim.tag_ == "NN" and any(
        (c.dep_ == "det" and c.lower_ in SINGULAR_DETERMINERS | {"the"})
        or (c.dep_ == "poss" and (c.tag_ == "PRP$" or c.ent_type_ in ("PERSON", "ORG", "NORP", "GPE")))
        for c in victim.children
    ):
        return 1, None, 0.75  # "a 75-year-old woman", "a police officer's driver"
    if victim.tag_ == "NN" and any(c.dep_ == "appos" and c.ent_type_ == "PERSON" for c in victim.children):
        return 1, None, 0.7  # "recently elected secretary, John Manningham,"
    return None


_NOT_PEOPLE_ENTS = frozenset({"GPE", "LOC", "FAC", "DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "PRODUCT", "LAW"})


def _no_reports_of(token: Token) -> bool:
    """ "no (immediate) reports of damage or injuries": the report says nobody was hurt."""
    node = token
    for _ in range(3):
        if node.dep_ != "conj":
            break
        node = node.head
    if node.head.lower_ != "of":
        return False
    return any(c.dep_ == "det" and c.lower_ == "no" for c in node.head.head.children)


Counted = tuple[int, str | None, float]  # count, qualifier, confidence


def _group_counts(victim: Token) -> list[tuple[Token, Counted]]:
    """A victim and the groups coordinated with it, as the groups to report.

    Groups counted separately are separate facts (ANNOTATION.md): "three US troops and five
    members of the opposition" = 3 and 5. A person joined to a counted group is one group:
    "Sapio and five managers" = 6. A list with one number in front ("52 policemen, soldiers
    and guards") is that number; "18 tourists, 14 of them Australians" is 18.
    """
    conjs = _conjuncts(victim)
    first = _count(victim)
    if first is not None and _has_number(victim) and any(_has_number(c) for c in conjs):
        return [(victim, first), *_counted_conjuncts(conjs)]
    total = _summed(victim, conjs, first)
    return [] if total is None else [(victim, total)]


def _subset(conj: Token) -> bool:
    """ "14 of them Australians": a part of the group before it, not another group."""
    return any(
        o.lower_ == "them" for n in conj.children if n.dep_ == "nummod" for o in context.prep_objects(n, ("of",))
    )


def _own_count(conj: Token) -> bool:
    """ "and five managers", "and Smith", "and a guard", "and his wife" count on their own."""
    return (
        any(c.dep_ == "nummod" for c in conj.children)
        or conj.tag_ == "NNP"
        or any(c.dep_ == "det" or (c.dep_ == "poss" and c.tag_ == "PRP$") for c in conj.children)
    )


def _conjuncts(victim: Token) -> list[Token]:
    """The members of a coordinated list after ``victim``; the parse chains them (A -> B -> C)."""
    # "secretary, John Manningham, and his wife": the parse may hang the list on the apposition
    frontier = [victim, *(c for c in victim.children if c.dep_ == "appos" and c.tag_ == "NNP")]
    found: list[Token] = []
    while frontier and len(found) < 8:
        node = frontier.pop(0)
        for c in node.children:
            if c.dep_ == "conj" and not any(g.dep_ in ("acl", "relcl") for g in c.children):
                found.append(c)
                frontier.append(c)
    return found


def _counted_conjuncts(conjs: list[Token]) -> list[tuple[Token, Counted]]:
    """The coordinated groups that count on their own, without parts of an earlier group."""
    counted = ((conj, _count(conj)) for conj in conjs if not _subset(conj) and _own_count(conj))
    return [(conj, c) for conj, c in counted if c is not None]


def _summed(victim: Token, conjs: list[Token], first: Counted | None) -> Counted | None:
    """A victim and the groups coordinated with it as one: "Sapio and five managers" = 6."""
    if (
        victim.tag_ == "NNP"
        and victim.ent_type_ != "PERSON"
        and any(g.dep_ == "nummod" for c in conjs for g in c.children)
    ):
        # "... Rio Grande do Sul and three people died": the parse joined a place to the victims
        return _summed(conjs[0], _conjuncts(conjs[0]), _count(conjs[0])) if conjs else None
    if first is None:
        return None
    total, qualifier, confidence = first
    return total + sum(c[0] for _, c in _counted_conjuncts(conjs)), qualifier, confidence


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
