"""Typed events on a PLOVER-like set from a parsed article.

Each event comes from a trigger word (a verb or noun lemma in ``TRIGGERS``), checked
against the words around it to drop other senses ("strike price", "attack on inflation",
"agreed that ..."), then given a source and target actor, place, date and a modality
(occurred, proposed, threatened, refused) from the clause that governs it. Pure logic over
spaCy tokens, bounded work per sentence; no Beam here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from pipelines.nlp import context
from pipelines.nlp.numbers import parse_number
from pipelines.records import EventFact

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token


VERBS = {
    "attack": "assault", "bomb": "assault", "shell": "assault", "raid": "assault", "strafe": "assault",
    "invade": "assault", "ambush": "assault", "torpedo": "assault", "rocket": "assault", "blast": "assault",
    "bombard": "assault", "hijack": "assault", "mortar": "assault", "shoot-down": "assault",
    "skirmish": "fight", "counterattack": "fight", "counter-attack": "fight",
    "fight": "fight", "clash": "fight", "repel": "fight", "repulse": "fight", "battle": "fight",
    "agree": "agree", "sign": "agree", "conclude": "agree", "settle": "agree", "ratify": "agree",
    "finalise": "agree", "finalize": "agree",
    "meet": "consult", "visit": "consult", "negotiate": "consult", "confer": "consult", "host": "consult",
    "urge": "demand", "demand": "demand", "ask": "demand", "appeal": "demand", "propose": "demand",
    "request": "demand", "press": "demand", "insist": "demand", "plead": "demand", "petition": "demand",
    "sanction": "sanction", "boycott": "sanction", "embargo": "sanction",
    "release": "release", "free": "release", "swap": "release",
    "protest": "protest", "demonstrate": "protest", "riot": "protest", "picket": "protest",
    "deploy": "mobilize", "mobilize": "mobilize", "mobilise": "mobilize", "reinforce": "mobilize",
    "mass": "mobilize",
    "threaten": "threaten", "warn": "threaten",
}  # fmt: skip
NOUNS = {
    "attack": "assault", "bombing": "assault", "shelling": "assault", "airstrike": "assault", "raid": "assault",
    "bombardment": "assault", "invasion": "assault", "assault": "assault", "ambush": "assault",
    "hijacking": "assault", "bomb attack": "assault", "incursion": "assault", "sabotage": "assault",
    "skirmish": "fight", "counterattack": "fight", "counter-attack": "fight", "counter-offensive": "fight",
    "firefight": "fight", "gunbattle": "fight", "fight": "fight", "confrontation": "fight", "defeat": "fight",
    "fighting": "fight", "battle": "fight", "clash": "fight", "offensive": "fight", "combat": "fight",
    "agreement": "agree", "accord": "agree", "deal": "agree", "pact": "agree", "treaty": "agree",
    "truce": "agree", "ceasefire": "agree", "cease-fire": "agree", "armistice": "agree",
    "talk": "consult", "meeting": "consult", "visit": "consult", "negotiation": "consult", "summit": "consult",
    "conference": "consult", "consultation": "consult", "conversation": "consult", "call": "consult",
    "demand": "demand", "appeal": "demand", "proposal": "demand", "request": "demand",
    "sanction": "sanction", "embargo": "sanction", "boycott": "sanction", "tariff": "sanction",
    "release": "release", "exchange": "release", "swap": "release",
    "protest": "protest", "demonstration": "protest", "rally": "protest", "riot": "protest", "strike": "protest",
    "walkout": "protest", "march": "protest", "unrest": "protest", "demonstrator": "protest",
    "protester": "protest", "picket": "protest",
    "deployment": "mobilize", "mobilization": "mobilize", "mobilisation": "mobilize", "reinforcement": "mobilize",
    "threat": "threaten", "ultimatum": "threaten",
}  # fmt: skip

# Objects that turn a military or political word into an economic metaphor.
_ECONOMIC = frozenset(
    {"mark", "yen", "sterling", "franc", "lira", "peso", "stock", "bond", "share", "equity", "economy",
     "inflation", "deficit", "price", "prices", "dollar", "currency", "rate", "rates", "unemployment", "market",
     "budget", "debt", "cost", "costs", "spending", "drug", "drugs", "crime", "poverty", "takeover", "bid"}
)  # fmt: skip
_LABOUR = frozenset(
    {"worker", "union", "seaman", "seamen", "miner", "docker", "employee", "staff", "pilot", "driver", "teacher",
     "labour", "labor", "striker", "nurse", "farmer", "protester", "demonstrator", "student", "crowd", "mourner",
     "picket", "unionist"}
)  # fmt: skip
_CAPTIVES = frozenset({"prisoner", "hostage", "captive", "detainee", "pow", "soldier", "crew", "crewman"})
_DEAL_WORDS = frozenset(
    {"agreement", "accord", "deal", "pact", "treaty", "truce", "ceasefire", "cease-fire", "contract", "protocol",
     "memorandum", "settlement", "understanding", "merger", "letter"}
)  # fmt: skip
_PERSONISH = frozenset({"PERSON", "ORG", "GPE", "NORP"})
_NON_MILITARY_KINDS = frozenset(
    {"pace", "spin", "bowling",
     "heart", "panic", "asthma", "reform", "sales", "charm", "diplomatic", "peace", "marketing", "advertising",
     "takeover", "legal", "political", "export", "price", "media", "public", "relations"}
)  # fmt: skip
_PEOPLE = frozenset(
    {"man", "men", "woman", "people", "diplomat", "official", "journalist", "priest", "worker", "national",
     "citizen", "passenger", "crew", "student", "leader"}
)  # fmt: skip
_CAPTIVITY = frozenset(
    {"jail", "prison", "captivity", "kidnap", "kidnapper", "hostage", "custody", "detention", "captor", "prisoner",
     "abduct"}
)  # fmt: skip
_THREATENED_ACTS = frozenset(
    {"sanction", "action", "retaliation", "response", "strike", "raid", "attack", "resumption", "reprisal", "war",
     "force", "measure", "boycott", "embargo", "tariff"}
)  # fmt: skip
_FORCES = frozenset(
    {"rebel", "guerrilla", "guerilla", "militia", "contra", "insurgent", "militiaman", "battleship",
     "destroyer", "frigate", "carrier", "cruiser", "minesweeper", "submarine", "paratrooper", "marine",
     "warplane", "jet", "helicopter", "tank", "guardsman", "commando", "troop", "force", "soldier", "unit",
     "division", "brigade", "warship", "navy", "army", "reservist", "reserve", "garrison", "fleet", "aircraft",
     "missile"}
)  # fmt: skip


def extract_events(doc: Doc, published_at: datetime) -> tuple[EventFact, ...]:
    """Events in ``doc`` in text order; one per (type, modality, actors, place) per article."""
    events: dict[tuple[str, str, str | None, str | None, str | None], EventFact] = {}
    for sent in context.bounded_sentences(doc):
        ents: list[Span] | None = None
        for token in sent:
            etype = _event_type(token)
            if etype is None:
                continue
            ents = context.sentence_entities(sent) if ents is None else ents
            found = [_event(token, etype, sent, ents, published_at)]
            conditional = etype != "threaten" and (_conditional_future(token) or _threatened_modifier(token))
            retaliation = token.lemma_ in _RETALIATION and (token.pos_ == "NOUN" or found[0].modality != "occurred")
            if conditional or retaliation:
                # "will walk out if the dispute is not settled", "a threatened strike", "we will retaliate":
                # a threat was made, and the act is what is threatened
                found = [replace(found[0], modality="threatened"), replace(found[0], type="threaten",
                                                                            modality="occurred")]  # fmt: skip
            for event in found:
                key = (event.type, event.modality, event.source_actor, event.target_actor, event.place)
                events.setdefault(key, event)
    return tuple(events.values())


def _event_type(token: Token) -> str | None:
    etype = _lexical_type(token)
    if etype is None or _not_reported(token) or _possibility(token):
        return None
    if etype == "fight" and _labour_participants(token):
        return "protest"  # "clashes between strikers and replacement workers"
    if etype == "fight" and not _war_context(token):
        return None  # "a takeover battle", "Britain and Japan clashed over demands"
    if etype == "assault" and token.head.lower_ == "under" and not _military(token):
        return None  # "under attack at home and abroad"
    if etype == "assault" and token.dep_ == "compound":
        return None  # "attack submarines", "attack helicopters"
    if etype == "assault" and token.lemma_ in ("kill", "wound", "injure") and _fight_in(token.sent):
        return None  # "troops killed 384 Libyans in fighting": the battle is the event
    if etype == "assault" and token.lemma_.lower() in _GROUND_ATTACKS and _repelled_in(token.sent):
        return None  # "Iraq said it repelled an attack": a fight (ANNOTATION.md conventions)
    if etype in ("agree", "release") and token.pos_ == "NOUN" and _under_demand(token):
        return None  # "called for a ceasefire": the demand only (see ANNOTATION.md)
    return etype


_ASSEMBLIES = frozenset({"parliament", "meeting", "session", "election", "talk", "conference", "games", "vote",
                         "olympics", "assembly", "debate", "ceremony", "summit"})  # fmt: skip


def _lexical_type(token: Token) -> str | None:
    lemma = token.lemma_.lower()
    if lemma == "boycott" and any(t.lemma_.lower() in _ASSEMBLIES for t in token.subtree if t is not token):
        return "protest"  # "boycotted the annual meeting", "would boycott parliament"
    if lemma in ("retaliation", "vengeance", "reprisal", "countermeasure", "revenge") and token.head.lower_ in (
        "in",
        "as",
    ):
        return None  # "raided a rig in retaliation for ...": the motive of the act the sentence reports
    if lemma in ("retaliation", "vengeance", "reprisal", "countermeasure", "revenge"):
        return "sanction" if _trade(token) else "assault"  # threatened, beside a "threaten" (see below)
    if (
        lemma == "ban"
        and token.pos_ == "NOUN"
        and (
            _has_child_lemma(token, {"trade", "import", "export", "arms", "oil", "investment"})
            or any(c.lower_ == "against" for c in token.children)
        )
    ):
        return "sanction"  # "an extensive trade ban against South Africa"
    if lemma == "dialogue":
        return "consult"  # "called on Greece to engage in dialogue"
    if token.lower_ == "walk" and token.i + 2 < len(token.doc) and token.doc[token.i + 1].text == "-":
        return "protest"  # "their three day walk-out" (tokenized as walk - out)
    if lemma == "strike" and token.pos_ == "VERB" and token.head.lemma_ in ("threaten", "vote", "decide", "plan",
                                                                          "vow") and not _military(token):  # fmt: skip
        return "protest"  # "workers had threatened to strike"
    if token.pos_ == "VERB" and token.dep_ == "amod":
        return None  # "the proposed merger", "the threatened tariffs": a modifier, not an event
    if token.pos_ == "VERB":
        etype = VERBS.get(lemma)
        if etype is None:
            return _verb_phrase_type(token, lemma)
        return etype if _verb_sense_ok(token, lemma, etype) else None
    if token.pos_ in ("NOUN", "PROPN"):
        if token.pos_ == "PROPN" or token.ent_type_ in ("LAW", "ORG", "EVENT", "WORK_OF_ART"):
            return None  # "the U.S.-Japan Semiconductor Trade Agreement" is a name
        if lemma in ("strike", "raid") and (
            _has_child_lemma(token, {"air", "missile", "drone", "military", "naval", "retaliatory", "pre-emptive"})
            or (not _labour_or_crowd(token) and any(c.lower_ in ("on", "against") for c in token.children))
        ):
            return "assault"  # "air strike", "the strike on the platform"
        if lemma in ("bomb", "bombing", "grenade") or (
            lemma in ("explosion", "blast") and any(t.lemma_ in ("bomb", "explosive", "grenade") for t in token.sent)
        ):
            return "assault"
        if lemma == "contract" and token.head.lemma_ in _DEAL_VERBS:
            return "agree"
        if lemma in ("striker", "stoppage", "walkout", "walk-out", "picket", "sit-in"):
            return "protest"
        executed = _has_child_lemma(token, {"mass", "summary", "public"}) or any(
            c.lower_ == "of" for c in token.children
        )
        if lemma in (
            "assassination",
            "massacre",
            "shooting",
            "killing",
            "bloodshed",
            "murder",
            "abduction",
            "kidnapping",
        ) or (lemma == "execution" and executed):
            return "assault"
        if lemma == "call" and any(c.lower_ in ("for", "from") for c in token.children):
            return "demand"  # "the U.S. call for an immediate end to hostilities"
        if (
            lemma == "response"
            and _has_child_lemma(token, _HARSH)
            and (
                token.head.lemma_ in ("bring", "meet", "face", "warn", "threaten", "vow", "promise")
                or (token.head.lower_ == "of" and token.head.head.lemma_ == "warn")
            )
        ):
            return "threaten"  # "will bring a forceful and violent response", "warning of a harsh response"
        if lemma == "rally" and token.dep_ == "compound":
            return None  # "rally world opinion"
        if lemma in ("call", "appeal", "ultimatum") and token.head.lemma_ in ("issue", "make", "launch", "renew"):
            return "demand"  # "issued a broad call to the unions", "issued the appeal"
        if lemma == "settlement" and (
            _has_child_lemma(token, {"out-of-court", "negotiated", "peace", "political"})
            or token.head.lemma_ in ("reach", "negotiate", "offer", "accept", "reject", "after")
        ):
            return "agree"  # "after an out-of-court settlement"
        if lemma == "alert" and (token.head.lower_ == "on" or token.head.lemma_ == "state"):
            return "mobilize"  # "in a state of alert", "put on alert"
        if lemma in ("build-up", "buildup") and _military(token):
            return "mobilize"
        etype = NOUNS.get(lemma)
        if etype is None:
            return None
        return etype if _noun_sense_ok(token, lemma, etype) else None
    return None


_MARKET = frozenset({"stock", "share", "market", "price", "dollar", "bond", "index", "wall", "trading", "investor",
                     "currency", "yen", "gold", "futures", "buyback"})  # fmt: skip
_DEAL_VERBS = frozenset({"sign", "reach", "reject", "accept", "approve", "ratify", "conclude", "agree", "negotiate"})
_NOT_REPORTED_HEADS = frozenset({"plan", "sign", "intention", "mention", "prospect", "indication", "talk", "hope"})
_RISK_HEADS = frozenset({"risk", "danger", "fear", "possibility", "spectre", "prospect"})


def _not_reported(token: Token) -> bool:
    """ "no plans for a meeting", "no signs of sanctions", "never threatened": nothing happened.

    "no truce was reached" stays: that is a refusal, reported as such.
    """
    if (
        any(c.dep_ == "det" and c.lower_ == "no" for c in token.children)
        and token.dep_ != "attr"
        and token.head.lemma_
        not in (
            "reach",
            "sign",
            "agree",
            "achieve",
            "make",
            "conclude",
        )
    ):
        return True
    if token.head.lower_ == "of" and token.head.head.lemma_.lower() in _RISK_HEADS:
        return True  # "little risk of sparking a military clash"
    for node in [token, *context.ancestors(token, 5)]:
        if any(c.lower_ == "never" for c in node.children):
            return True
        if node is not token and node.lemma_.lower() in _RISK_HEADS and node.pos_ == "NOUN":
            return True  # "a danger he would attack another child"
        if (
            node is not token
            and node.lemma_.lower() in _NOT_REPORTED_HEADS
            and any(c.dep_ == "det" and c.lower_ == "no" for c in node.children)
        ):
            return True
    return False


def _possibility(token: Token) -> bool:
    """ "carriers could launch missile strikes": a capability, not an event."""
    for node in [token, *context.ancestors(token, 2)]:
        if any(c.dep_ == "aux" and c.lower_ in ("could", "might", "may", "can") for c in node.children):
            return True
        if node.pos_ == "VERB":
            break
    return False


def _under_demand(token: Token) -> bool:
    for node in context.ancestors(token, 3):
        if node.lemma_.lower() in ("call", "urge", "demand", "ask", "appeal", "press", "request"):
            return True
        if node.pos_ == "VERB" and node.dep_ not in ("xcomp", "ccomp", "pcomp") and node.lemma_ != "accept":
            return False
    return False


_FIGHT_WORDS = frozenset({"fighting", "battle", "clash", "offensive", "combat", "counter-offensive"})
_REPEL = frozenset({"repel", "repulse", "rebuff"})
_GROUND_ATTACKS = frozenset({"attack", "assault", "counterattack", "counter-attack"})


def _fight_in(sent: Span) -> bool:
    return any(t.lemma_.lower() in _FIGHT_WORDS for t in sent) or _repelled_in(sent)


def _repelled_in(sent: Span) -> bool:
    return any(
        t.lemma_.lower() in _REPEL or (t.lemma_ == "beat" and any(c.lower_ == "back" for c in t.children)) for t in sent
    )


_WAR_WORDS = frozenset(
    {"war", "front", "border", "kill", "casualty", "military", "troop", "soldier", "rebel", "guerrilla",
     "guerilla", "army", "artillery", "offensive", "wound", "dead", "battlefield", "frontline", "militia",
     "insurgent", "force", "police", "demonstrator", "protester", "student", "riot", "radical", "faction",
     "township", "mob", "intervention", "government", "regime", "gunman", "militant"}
)  # fmt: skip


def _war_context(token: Token) -> bool:
    """Armed fighting, not a boardroom, market or diplomatic "battle" or "clash"."""
    return _military(token) or any(t.lemma_.lower() in _WAR_WORDS for t in token.sent)


def _military(token: Token) -> bool:
    return any(t.lemma_.lower() in _FORCES | _WEAPONS | {"police", "policeman"} for t in token.sent)


def _verb_phrase_type(token: Token, lemma: str) -> str | None:
    """Multi-word triggers: "call for", "hold talks", "reach an agreement", "hit a tanker"."""
    preps = {c.lower_ for c in token.children if c.dep_ in ("prep", "prt")}
    if lemma == "call" and ("for" in preps or ("on" in preps and any(c.dep_ == "xcomp" for c in token.children))):
        return "demand"  # "called for a ceasefire", "called on Russia to accept"
    if lemma == "call" and any(
        c.dep_ == "advcl" and any(m.dep_ == "mark" and m.lower_ == "for" for m in c.children) for c in token.children
    ):
        return "demand"  # "called for pilots to be better trained"
    if lemma == "hit" and any(c.lemma_ in ("tanker", "ship", "vessel", "target", "base", "platform", "town", "city")
                              for c in token.children if c.dep_ in ("dobj", "nsubjpass")):  # fmt: skip
        return "assault"
    if lemma == "fire" and preps & {"on", "at", "into"}:
        return "assault"  # "fired 1,000 shells at the rig"
    if lemma == "come" and any(o.lower_ == "fire" for p in token.children if p.lower_ == "under" for o in p.children):
        return "assault"  # "came under fire"
    if lemma in ("kill", "wound", "injure", "shoot") and _agentive(token) and not context.cumulative(token):
        return "assault"  # "Soldiers killed one man", "Iranian forces had killed or wounded 2,600 Iraqis"
    if lemma in ("move", "send", "dispatch", "escort", "patrol", "march", "order") and _forces_involved(token):
        return "mobilize"  # "a force of troops was moved into the area", "warships began escorting"
    if lemma == "march":
        return "protest"  # people marching (troops marching are mobilize, above)
    if lemma == "walk" and ("out" in preps or "off" in preps):
        return "protest"  # "walked out", "walked off the job"
    if lemma in ("stab", "knife", "assassinate", "behead", "snipe", "ambush", "machine-gun", "overrun", "storm"):
        return "assault"
    if lemma == "execute":
        objs = [c.lemma_.lower() for c in token.children if c.dep_ in ("dobj", "nsubjpass")]
        if any(o in _DEAL_WORDS | {"letter", "contract"} for o in objs):
            return "agree"  # "executed a letter of intent to acquire"
        return "assault" if any(o in _PEOPLE | _CAPTIVES for o in objs) else None
    preps |= {c.lower_ for c in token.children if c.dep_ == "advmod" and c.lower_ in ("back", "up")}
    if lemma == "beat" and ("up" in preps or "back" in preps):
        return "assault" if "up" in preps else "fight"  # "beat up a driver", "beat back the attacks"
    if lemma == "shoot" and any(c.dep_ in ("dobj", "nsubjpass") and (c.pos_ in ("NOUN", "PROPN", "NUM"))
                                and c.lemma_.lower() not in ("film", "scene", "picture", "video", "photo")
                                for c in token.children):  # fmt: skip
        return "assault"  # "a British soldier was shot"
    if lemma == "blow" and "up" in preps:
        return "assault"  # "guerrillas blew up a railway line"
    if lemma == "sink" and any(c.lemma_ in ("boat", "ship", "vessel", "tanker", "gunboat", "frigate", "freighter")
                               for c in token.children if c.dep_ == "dobj"):  # fmt: skip
        return "assault"
    if lemma in _DESTROY and any(t.lemma_.lower() in _WEAPONS for t in token.subtree):
        return "assault"  # "set the supertanker on fire with a missile", "mines blew up a truck"
    strikers = [c for c in token.children if c.dep_ == "nsubj"]
    if (
        lemma == "strike"
        and any(c.lemma_.lower() in _LABOUR or (c.ent_type_ == "ORG" and _labour_or_crowd(token)) for c in strikers)
        and not _military(token)
    ):
        return "protest"  # "the UAW struck at three GM factories"
    if lemma == "vow" and any(
        _lexical_type(t) in ("assault", "fight", "sanction") or t.lemma_ in ("retaliate", "punish")
        for c in token.children
        if c.dep_ == "xcomp"
        for t in c.subtree
        if t is not token
    ):
        return "threaten"  # "vowed to keep up such raids"
    if (
        lemma == "combat"
        and _military(token) is False
        and not any(c.ent_type_ in ("GPE", "NORP") for c in token.children)
    ):
        return None
    if lemma == "combat":
        return "fight"
    if lemma == "retaliate":
        return "sanction" if _trade(token) else "assault"  # with a "threaten" beside it (see _extra_types)
    if lemma in ("ban", "bar", "halt", "stop", "suspend", "restrict", "block") and any(
        o.lemma_.lower()
        in (
            "import",
            "export",
            "shipment",
            "trade",
            "purchase",
            "sale",
            "institution",
            "bank",
            "firm",
            "company",
            "product",
            "goods",
            "airline",
            "flight",
            "vessel",
        )
        for c in token.children
        if c.dep_ in ("dobj", "nsubjpass")
        for o in c.subtree
    ):
        return "sanction"  # "threatened to stop imports of Danish pigmeat"
    if (
        lemma == "take"
        and any(c.dep_ == "dobj" and c.lemma_.lower() in ("measure", "action", "step") for c in token.children)
        and _conditional_future(token)
    ):
        return "threaten"  # "the government will take emergency measures if the protests continue"
    if lemma == "speak" and context.first_named(context.prep_objects(token, ("with", "to"))):
        return "consult"
    if (
        lemma in ("tell", "order", "instruct")
        and any(c.dep_ == "dobj" for c in token.children)
        and any(c.dep_ == "xcomp" for c in token.children)
    ):
        return "demand"  # "Zinni told Mr Arafat to jail extremists"
    return None


_HARSH = frozenset({"harsh", "forceful", "violent", "strong", "military", "crushing", "tough", "severe", "firm"})
_TRADE = frozenset({"import", "export", "trade", "tariff", "goods", "firm", "market", "duty", "product", "quota"})


def _trade(token: Token) -> bool:
    return any(t.lemma_.lower() in _TRADE for t in token.sent)


_RETALIATION = frozenset({"retaliate", "retaliation", "vengeance", "reprisal", "countermeasure", "revenge"})


def _conditional_future(token: Token) -> bool:
    """ "X will do Y if/unless Z": an action made conditional is a threat."""
    for node in [token, *context.ancestors(token, 2)]:
        future = any(c.dep_ == "aux" and c.lower_ in ("will", "would", "'ll") for c in node.children)
        condition = any(
            c.dep_ == "advcl" and any(m.dep_ == "mark" and m.lower_ in ("if", "unless") for m in c.children)
            for c in node.children
        )
        if future and condition:
            return True
        if node.pos_ == "VERB":
            break
    return False


def _threatened_modifier(token: Token) -> bool:
    return any(c.dep_ == "amod" and c.lower_ == "threatened" for c in token.children)


def _verb_sense_ok(token: Token, lemma: str, etype: str) -> bool:
    objs = [c for c in token.children if c.dep_ in ("dobj", "nsubjpass", "pobj")]
    objs += [o for p in token.children if p.dep_ == "prep" for o in p.children if o.dep_ == "pobj"]
    if etype in ("assault", "fight") and any(o.lemma_.lower() in _ECONOMIC for o in objs):
        return False
    if lemma == "agree":
        # "agreed to buy", "agreed on a truce", "agreed a deal", "was agreed": a deal;
        # "agreed that ..." and "agreed with X" are opinions.
        if any(c.dep_ == "auxpass" for c in token.children) or (token.dep_ == "acl" and token.tag_ == "VBN"):
            return True
        return (
            any(c.dep_ in ("xcomp", "dobj") for c in token.children)
            or any(c.dep_ == "prep" and c.lower_ in ("on", "to", "upon") for c in token.children)
            or any(o.lemma_.lower() in _DEAL_WORDS for o in objs)
        )
    if lemma in ("finalise", "finalize"):
        return bool(objs)  # "the buyout was finalised last month"
    if lemma in ("sign", "conclude", "settle", "ratify"):
        return any(o.lemma_.lower() in _DEAL_WORDS for o in objs)
    if lemma == "free" or lemma == "release":
        people = _CAPTIVES | _PEOPLE | {"he", "she", "they", "him", "her", "them"}
        return any(o.lemma_.lower() in people or o.ent_type_ in ("PERSON", "NORP") for o in objs) or any(
            t.lemma_.lower() in _CAPTIVITY for t in token.sent
        )
    if lemma == "swap":
        return any(o.lemma_.lower() in _CAPTIVES for o in objs)
    if lemma == "ask":
        # "asked France to help", "asked for talks"; "Asked by reporters if ..." is a question
        if any(c.dep_ == "auxpass" for c in token.children) or any(c.dep_ == "agent" for c in token.children):
            return False
        return (
            any(c.dep_ == "xcomp" for c in token.children)
            or "for" in {c.lower_ for c in token.children}
            or any(c.dep_ == "ccomp" and any(m.lower_ == "that" for m in c.children) for c in token.children)
        )  # "asked X to do", "asked for talks", "would ask that Anderson be sent to jail"
    if lemma in ("fight", "battle", "clash"):
        if any(o.lemma_.lower() in ("flame", "fire", "blaze", "disease", "losing", "battle") for o in objs):
            return False  # "firemen fought the flames", "fighting a losing battle"
        if any(o.lemma_.lower() in ("government", "regime", "army", "force", "troop", "rebel") for o in objs):
            return True  # "UNITA has been fighting the Angolan government"
        return _military(token) or any(
            c.dep_ in ("nsubj", "dobj") and c.ent_type_ in ("GPE", "NORP") for c in token.children
        )
    if lemma == "sanction":
        return any(o.ent_type_ in ("GPE", "NORP") for o in objs)
    if (
        lemma == "press"
        and any(c.dep_ == "dobj" for c in token.children)
        and any(c.dep_ in ("xcomp", "ccomp") for c in token.children)
    ):
        return True  # "to press the government to suspend the programme"
    if lemma == "press":
        return "for" in {c.lower_ for c in token.children}
    if lemma == "meet":
        if any(c.dep_ in ("nsubjpass", "auxpass") for c in token.children):
            return False  # "conditions being met"
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
        return _forces_involved(token) or not any(c.dep_ == "dobj" for c in token.children)
    if lemma == "protest":
        # "enacted to protest apartheid" states a purpose, not a protest event
        return not (token.dep_ in ("advcl", "xcomp") and any(c.lower_ == "to" for c in token.children))
    if lemma == "threaten":
        return (
            any(c.dep_ in ("xcomp", "ccomp") for c in token.children)
            or any(o.ent_type_ in _PERSONISH or o.lemma_.lower() in _THREATENED_ACTS for o in objs)
            or "with" in {c.lower_ for c in token.children}
        )
    if lemma == "host":
        return any(o.lemma_.lower() in ("talk", "meeting", "summit", "conference", "visit") for o in objs)
    if lemma == "warn":
        # "warned the U.S. not to intervene", "warned it would retaliate"; not "warned that profits could fall"
        for c in token.children:
            if c.dep_ == "xcomp" and any(g.dep_ == "neg" for g in c.children):
                return True
            if c.dep_ == "ccomp" and any(g.dep_ == "aux" and g.lower_ in ("will", "would", "'ll") for g in c.children):
                return True
            if c.lower_ == "of" and any(o.lemma_.lower() in _THREATENED_ACTS for o in c.children):
                return True
            if c.dep_ == "ccomp" and any(
                t.lemma_.lower() in ("retaliatory", "retaliate", "retaliation", "reprisal") for t in c.subtree
            ):
                return True  # "warned the United States it may take retaliatory measures"
        return False
    if lemma == "protest":
        return True
    return True


def _noun_sense_ok(token: Token, lemma: str, etype: str) -> bool:
    children = {c.lemma_.lower() for c in token.children}
    pobj = {o.lemma_.lower() for p in token.children if p.dep_ == "prep" for o in p.children}
    if etype in ("assault", "fight") and (pobj & _ECONOMIC or children & _ECONOMIC or token.head.lemma_ in _ECONOMIC):
        return False
    if lemma in ("attack", "offensive") and children & _NON_MILITARY_KINDS:
        return False  # "heart attack", "reform offensive", "sales offensive"
    if lemma == "sanction" and token.tag_ == "NN" and not ({p.lower_ for p in token.children} & {"against", "on"}):
        return False  # singular "sanction" is usually approval ("a sanction for lower rates")
    if lemma == "conference" and children & {"news", "press"}:
        return False  # "told a news conference": a statement, not a consultation
    if lemma in ("meeting", "conference") and (
        children & {"annual", "special", "shareholder", "stockholder", "board", "general", "mass", "cabinet"}
        or token.head.lemma_ in ("tell", "address")
    ):
        return False  # a company's annual meeting, "told the meeting": no second party consulted
    if lemma == "demand":
        # "demand for pulp", "domestic demand" are economics; "the strikers' demands", "an IMF demand to
        # lift subsidies", "a demand that Mandela be released" are demands
        return (
            token.tag_ == "NNS"
            or any(c.dep_ == "poss" or (c.dep_ == "compound" and c.ent_type_ in _PERSONISH) for c in token.children)
            or any(c.lower_ in ("by", "from", "that") for c in token.children)
            or any(c.dep_ in ("acl", "ccomp") and c.pos_ == "VERB" for c in token.children)
        )
    if lemma == "appeal" and token.pos_ == "VERB":
        return "for" in {c.lower_ for c in token.children} or any(c.dep_ == "xcomp" for c in token.children)
    if lemma == "appeal":
        # "an appeal for calm", "his appeal for restraint"; not a court appeal
        return any(c.lower_ == "for" for c in token.children) or any(c.tag_ == "PRP$" for c in token.children)
    if lemma == "proposal":
        return False  # a proposal is a document; proposing is the event ("proposed a merger")
    if lemma in ("agreement", "deal") and token.dep_ == "attr" and any(c.lower_ == "no" for c in token.children):
        return True  # "there was no agreement": refused (see _event)
    if lemma in ("agreement", "accord", "deal", "pact", "treaty", "contract") and not _deal_made(token):
        return False  # "under the credit agreement", "the deal was rated AAA": an existing contract
    if lemma == "talk" and token.tag_ == "NN":
        return False  # "talk of a rate cut" is a topic; talks are "talks"
    if lemma in ("request", "demand") and token.head.lower_ == "at":
        return False  # "recalled at Gynex's request"
    if lemma == "rally" and (
        any(c.dep_ == "dobj" for c in token.children) or any(t.lemma_.lower() in _MARKET for t in token.sent)
    ):
        return False  # "rally world opinion", "an explosive rally on Wall Street"
    if lemma == "threat" and any(c.dep_ == "det" and c.lower_ in ("no", "any") for c in token.children):
        return False  # "I know of no threat", "not aware of any specific threat"
    if lemma == "threat" and any(
        o.ent_type_ not in _PERSONISH and o.pos_ != "PROPN" for o in context.prep_objects(token, ("to",))
    ):
        return False  # "a threat to property", "poses a threat to peace": a danger, not a threat made
    if lemma in ("meeting", "conference") and token.head.lower_ == "at" and token.head.head.pos_ == "VERB":
        return not any(t.lemma_ in ("die", "collapse") for t in token.head.head.subtree)
    if lemma == "strike":  # a labour strike; "strike price" and the like are not events
        if children & {"price", "zone", "force", "rate"} or token.head.lemma_ in ("price",):
            return False
        if token.tag_ == "NNS" and not _military(token):
            return True  # "hit by strikes"
        if children & {"general", "national", "one-day", "hunger", "wildcat", "token", "nationwide", "sympathy"}:
            return True  # "a general strike"
        if token.head.lower_ == "on" and token.head.head.lemma_ in ("go", "be", "remain", "stay", "come"):
            return True
        return _labour_or_crowd(token) or token.head.lemma_ in ("call", "end", "stage", "threaten")
    if lemma in ("exchange", "swap", "release"):
        return bool(children & _CAPTIVES or pobj & _CAPTIVES)
    if lemma == "deal":
        return not (children & {"great", "good"}) and token.head.lower_ != "a"
    if lemma == "call":  # a call between leaders, not an option, a port call, unreturned calls or a demand
        preps = {p.lower_ for p in token.children}
        if "for" in preps or token.tag_ == "NNS":
            return False
        return bool(
            preps & {"with", "between"}
            or any(c.dep_ == "poss" for c in token.children)
            or children & {"telephone", "phone"}
            or token.head.lemma_ in ("hold", "make", "describe", "praise", "welcome", "follow")
        )
    if lemma == "march":
        return not _forces_involved(token)
    if lemma == "tariff":
        return bool(children & {"retaliatory", "punitive", "threaten"} or token.head.lemma_ in ("impose", "slap",
                                                                                               "threaten"))  # fmt: skip
    if lemma == "proposal":
        return True
    if lemma == "exchange" and "rate" in children:
        return False
    return True


_NATURAL = frozenset(
    {"earthquake", "quake", "tremor", "storm", "hailstorm", "flood", "flooding", "fire", "blaze", "crash",
     "accident", "avalanche", "landslide", "cyclone", "typhoon", "hurricane", "tornado", "wind", "rain", "heat",
     "disease", "epidemic", "collision", "derailment", "eruption"}
)  # fmt: skip
_WEAPONS = frozenset({"missile", "rocket", "landmine", "bomb", "torpedo", "shell", "grenade", "mortar", "gunfire",
                      "bullet", "artillery"})  # fmt: skip
_DESTROY = frozenset({"hit", "strike", "damage", "destroy", "sink", "blow", "set", "kill", "wound", "explode",
                      "wreck", "tear"})  # fmt: skip
_AGENTS = frozenset(
    {"soldier", "troop", "force", "gunman", "gunmen", "police", "policeman", "rebel", "guerrilla", "militia",
     "army", "jet", "warplane", "aircraft", "plane", "helicopter", "gunboat", "warship", "sniper", "attacker",
     "assassin", "terrorist", "bomber", "militant", "insurgent", "navy", "artillery", "missile"}
)  # fmt: skip


def _agentive(token: Token) -> bool:
    """A person or armed force did the killing (not an explosion, a crash or a flood)."""
    doers = [c for c in token.children if c.dep_ == "nsubj"]
    doers += [o for c in token.children if c.dep_ == "agent" for o in c.children]
    if token.dep_ == "conj" and not doers:
        doers = [c for c in token.head.children if c.dep_ == "nsubj"]
    if any(t.lemma_.lower() in _NATURAL for t in token.sent):
        return False  # "an earthquake killed one person": no attacker
    return any(d.lemma_.lower() in _AGENTS or d.ent_type_ in ("NORP", "GPE", "ORG", "PERSON") for d in doers)


def _forces_involved(token: Token) -> bool:
    around = [c for c in token.children if c.dep_ in ("nsubj", "nsubjpass", "dobj")]
    if token.dep_ in ("xcomp", "conj", "advcl") and not any(c.dep_ in ("nsubj", "nsubjpass") for c in around):
        # "warships began escorting", "offered Navy warships to escort"
        around += [c for c in token.head.children if c.dep_ in ("nsubj", "nsubjpass", "dobj")]
    around += [o for c in token.children if c.dep_ == "agent" for o in c.children]  # "escorted by warships"
    around += [g for c in around for g in c.subtree]
    return any(t.lemma_.lower() in _FORCES for t in around)


_DEAL_EVENT_VERBS = frozenset(
    {"reach", "sign", "conclude", "negotiate", "agree", "announce", "initial", "approve", "ratify", "reject",
     "accept", "strike", "seal", "clinch", "finalize", "finalise", "break", "violate", "cancel", "terminate",
     "propose", "offer", "seek", "want", "hammer", "work", "complete", "enter", "make", "endorse", "welcome",
     "block", "oppose", "scrap", "renew", "extend", "discuss", "achieve", "implement", "honour", "honor",
     "back", "support", "come", "pursue", "push", "press", "pursuit", "way", "hope", "aim", "prospect",
     "reaffirm", "uphold", "execute"}
)  # fmt: skip


def _deal_made(token: Token) -> bool:
    """An agreement word that reports an agreement being made, sought, broken or refused."""
    if token.lemma_.lower() in ("truce", "ceasefire", "cease-fire", "armistice"):
        return True
    head = token.head
    if head.lower_ in ("of", "on", "to", "for", "into") and head.head.pos_ in ("VERB", "NOUN"):
        head = head.head  # "signing of the accord", "talks on an agreement", "entered into a pact"
    if head.lemma_.lower() in _DEAL_EVENT_VERBS | {"talk", "negotiation", "signing", "conclusion"}:
        return True
    return any(c.dep_ == "acl" and c.lemma_.lower() in _DEAL_EVENT_VERBS for c in token.children) or any(
        c.dep_ == "amod" and c.lower_ in ("new", "tentative", "proposed", "draft", "interim", "preliminary")
        for c in token.children
    )


def _labour_or_crowd(token: Token) -> bool:
    return any(t.lemma_.lower() in _LABOUR for t in token.sent)


def _labour_participants(token: Token) -> bool:
    """Who takes part in this clash: its subject, object, or "between/with" phrase."""
    parts = [c for c in token.children if c.dep_ in ("nsubj", "dobj", "poss", "compound")]
    parts += [o for p in token.children if p.lower_ in ("between", "with", "among") for o in p.children]
    if token.dep_ == "pobj":
        parts += [c for c in token.head.head.children if c.dep_ == "nsubj"]
    words = {t.lemma_.lower() for p in parts for t in p.subtree}
    return bool(words & _LABOUR) and not words & {"police", "policeman", "troop", "soldier", "army", "force"}


def _has_child_lemma(token: Token, lemmas: set[str] | frozenset[str]) -> bool:
    return any(c.lemma_.lower() in lemmas for c in token.children)


def _event(trigger: Token, etype: str, sent: Span, ents: list[Span], published_at: datetime) -> EventFact:
    if trigger.pos_ == "VERB":
        source = context.subject_actor(trigger)
        target = context.object_target(trigger)
    else:
        source = context.modifier_actor(trigger) or _between(trigger, 0) or context.subject_actor(trigger.head)
        target = context.object_target(trigger) or _between(trigger, 1)
    modality = context.modality(trigger)
    if trigger.lemma_ in ("striker", "striking") or trigger.lower_ in ("strikers", "striking"):
        modality = "occurred"  # strikers are on strike, whatever is threatened against them
    if etype == "demand" and trigger.pos_ == "NOUN" and modality == "refused" and not context.is_negated(trigger):
        modality = "occurred"  # "turned down union demands": the demands were made
    if etype == "agree" and trigger.dep_ == "attr" and any(c.lower_ == "no" for c in trigger.children):
        modality = "refused"
    if etype == "threaten" and modality != "refused":
        modality = "occurred"  # the threat itself was made (ANNOTATION.md)
    elif trigger.head.lower_ == "of" and trigger.head.head.lemma_.lower() in ("threat", "ultimatum"):
        modality = "threatened"  # "repeated the threat of sanctions"
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
