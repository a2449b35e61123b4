"""Language identification (langid.py, its model ships with the package: nothing is fetched).

    >>> detect_language("Le président a appelé à un cessez-le-feu de trente jours.")
    'fr'

English is the default: an article is marked as another language only when langid is
at least ``MIN_CONFIDENCE`` sure on at least ``MIN_CHARS`` characters, so numeric tables
("Shr 10 cts vs 5 cts") and one-line stubs stay English.
"""

from __future__ import annotations

from functools import cache
from typing import Any

MIN_CHARS = 40
MIN_CONFIDENCE = 0.95
# Enough text to decide; langid's cost grows with the length.
SAMPLE_CHARS = 600
# The languages news arrives in; fewer candidates make langid 3x cheaper than its 97.
LANGUAGES = (
    "en", "fr", "de", "es", "it", "pt", "nl", "ru", "uk", "pl", "cs", "sv", "da", "no", "fi", "el", "tr", "ar",
    "fa", "he", "hi", "ur", "zh", "ja", "ko", "id", "ms", "vi", "th", "ro", "hu", "bg", "sr", "hr", "ca",
)  # fmt: skip


@cache
def _identifier() -> Any:
    from langid.langid import LanguageIdentifier, model

    identifier = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    identifier.set_languages(LANGUAGES)
    return identifier


def warm_up() -> None:
    """Load the model (about 2 s) once per worker, before the first article."""
    _identifier()


def detect_language(text: str) -> str:
    """ISO 639-1 code of ``text``'s language, "en" unless another one is clear."""
    sample = text[:SAMPLE_CHARS]
    if len(sample.strip()) < MIN_CHARS:
        return "en"
    lang, confidence = _identifier().classify(sample)
    return str(lang) if lang != "en" and confidence >= MIN_CONFIDENCE else "en"
