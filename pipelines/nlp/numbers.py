"""Read the quantities news uses for victims: "12", "1,000", "two", "seventy-five", "a".

Pure functions over strings. Word numbers go through ``text2num`` (a maintained
parser) rather than a hand-made table.
"""

from __future__ import annotations

import re

from text_to_num import text2num

_DIGITS = re.compile(r"^\d{1,3}(?:,\d{3})+$|^\d{1,9}$")
# ACLED's coding rules for vague quantities.
VAGUE = {
    "dozen": 12, "dozens": 12, "score": 20, "scores": 20, "hundreds": 100, "thousands": 1000,
    "several": 3, "few": 3,
}  # fmt: skip
SINGULAR_DETERMINERS = frozenset({"a", "an", "one", "another"})
ZERO_WORDS = frozenset({"no", "none", "nobody", "noone", "zero"})

# (first word, second word) -> qualifier code; matched before the number.
QUALIFIERS = {
    ("at", "least"): "at_least",
    ("more", "than"): "more_than",
    ("over", None): "more_than",
    ("up", "to"): "up_to",
    ("about", None): "about",
    ("around", None): "about",
    ("nearly", None): "about",
    ("almost", None): "about",
    ("some", None): "about",
    ("approximately", None): "about",
    ("roughly", None): "about",
    ("at", "most"): "up_to",
    ("an", "estimated"): "about",
    ("estimated", None): "about",
    ("as", "many"): "up_to",
}


def parse_number(text: str) -> int | None:
    """An integer from digits or English number words; None when it is not a number."""
    t = text.strip().lower()
    if not t:
        return None
    if _DIGITS.match(t):
        return int(t.replace(",", ""))
    if t in VAGUE:
        return VAGUE[t]
    if t in ZERO_WORDS:
        return 0
    if not re.fullmatch(r"[a-z]+(?:[- ][a-z]+){0,5}", t):
        return None
    try:
        value = text2num(t, "en")
    except ValueError:
        return None
    return value if isinstance(value, int) and value >= 0 else None


def qualifier_before(words: list[str]) -> str | None:
    """The qualifier code for the (lower-case) words just before a number, if any."""
    if len(words) >= 2 and (words[-2], words[-1]) in QUALIFIERS:
        return QUALIFIERS[(words[-2], words[-1])]
    if words and (words[-1], None) in QUALIFIERS:
        return QUALIFIERS[(words[-1], None)]
    return None


def bounds(count: int, qualifier: str | None) -> tuple[int | None, int | None]:
    """(lowest, highest) the stated count allows; None where the text sets no bound."""
    if qualifier is None:
        return count, count
    if qualifier == "at_least":
        return count, None
    if qualifier == "more_than":
        return count + 1, None
    if qualifier == "up_to":
        return 0, count
    return None, None  # "about": an estimate, no hard bound
