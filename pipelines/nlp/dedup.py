"""Duplicate detection over a stream of articles, held in one worker's memory.

    index = DuplicateIndex(horizon=20_000, memory_mb=200)
    match = index.check_and_add(article)   # None, or which earlier article it repeats

Three kinds of duplicate, checked in this order:

- ``url``: the same canonical URL as an earlier article (a re-send);
- ``text``: the same text once case, punctuation and whitespace are ignored;
- ``near``: the same story lightly edited, shortened or lengthened. Candidates come from
  MinHash LSH over word 5-shingles (64 permutations); a candidate is a duplicate when
  (1) at least ``containment`` (0.5) of the shorter text's shingles are in the other,
  (2) at least 70 % of the shorter text's numbers are in the other, and (3) the two were
  published within 48 hours. Word overlap alone cannot tell a re-sent story from the next
  day's report built on the same template ("The Fed added reserves ..."); the numbers and
  the time can. The thresholds were chosen on half of the hand-labelled Reuters pairs in
  ``tests/data/dedup_pairs.jsonl`` and checked on the other half (``make eval-dedup``).

The index keeps the last ``horizon`` distinct articles (first in, first out), fewer if a
memory budget says so: ``make eval-dedup`` measured 7.7 KB an article, 77 MB per 10,000.
A duplicate is not added: the earliest article stands for its story. The state is per
worker, which is correct when producers key by canonical URL (the same URL always lands
on the same partition, hence the same worker): URL re-sends are always caught, and text
and near duplicates among articles that share a worker; with one worker, all of them.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from datasketch import MinHash, MinHashLSH

from pipelines.records import Article

NUM_PERM = 64
SHINGLE = 5
# Texts shorter than this many words are only compared exactly.
MIN_WORDS = 30
NUMBER_CONTAINMENT = 0.7
MAX_APART = timedelta(hours=48)
# Memory an index entry takes with its LSH buckets (measured by ``make eval-dedup``: 7.7 KB).
BYTES_PER_ARTICLE = 8_000
# LSH retrieves candidates from this estimated Jaccard on; a story and its lengthened
# version can share half the shorter text but only a third of both.
_CANDIDATE_JACCARD = 0.25
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")


@dataclass(frozen=True)
class Match:
    duplicate_of: str  # article_id of the earlier article
    kind: str  # url | text | near
    similarity: float  # share of the shorter text's shingles found in the other (1.0 for url and text)


@dataclass(frozen=True)
class _Entry:
    article_id: str
    origin: tuple[str, int, int]  # topic, partition, offset: a replay of the same record is no duplicate
    keys: tuple[str, ...]
    published_at: datetime
    shingles: np.ndarray | None  # sorted unique 32-bit hashes of the word 5-shingles
    numbers: frozenset[str]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _text_key(words: list[str]) -> str:
    return "text:" + hashlib.sha1(" ".join(words).encode(), usedforsecurity=False).hexdigest()


def shingle_hashes(text: str) -> np.ndarray | None:
    return _shingles(_words(text))


def _shingles(words: list[str]) -> np.ndarray | None:
    if len(words) < MIN_WORDS:
        return None
    grams = {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}
    # crc32, not hash(): the same text gets the same shingles in every process and run; 32 bits
    # is what MinHash uses anyway, and collisions among a few hundred shingles are negligible
    return np.unique(np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64, count=len(grams)))


def numbers_of(text: str) -> frozenset[str]:
    return frozenset(n.replace(",", "") for n in _NUMBER.findall(text))


def containment(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the smaller set found in the other."""
    return len(np.intersect1d(a, b, assume_unique=True)) / max(1, min(len(a), len(b)))


def number_containment(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / min(len(a), len(b)) if a and b else 1.0


# datasketch's "legacy" scheme: universal hashing (a*x + b) mod a Mersenne prime, computed below
_PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=1, scheme="legacy").permutations
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)


def _minhash(hashes: np.ndarray) -> MinHash:
    """datasketch's MinHash of the shingle hashes, computed in one numpy step (what
    ``update_batch`` does after hashing each shingle with SHA-1: 5x slower)."""
    a, b = _PERMUTATIONS
    with np.errstate(over="ignore"):
        permuted = np.bitwise_and((np.outer(hashes, a) + b) % _MERSENNE_PRIME, _MAX_HASH)
    return MinHash(num_perm=NUM_PERM, hashvalues=permuted.min(axis=0), permutations=_PERMUTATIONS, scheme="legacy")


class DuplicateIndex:
    """Recent distinct articles of one worker, by exact key and by MinHash LSH."""

    def __init__(self, horizon: int = 20_000, containment: float = 0.5, memory_mb: float | None = None) -> None:
        """Keep at most ``horizon`` articles, and fewer if ``memory_mb`` would be exceeded."""
        if horizon < 1 or not 0.0 < containment <= 1.0 or (memory_mb is not None and memory_mb <= 0):
            raise ValueError("horizon must be >= 1, containment in (0, 1] and memory_mb > 0")
        if memory_mb is not None:
            horizon = max(1, min(horizon, int(memory_mb * 1e6 // BYTES_PER_ARTICLE)))
        self.horizon = horizon
        self.containment = containment
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_key: dict[str, str] = {}
        self._lsh = MinHashLSH(threshold=_CANDIDATE_JACCARD, num_perm=NUM_PERM)

    def __len__(self) -> int:
        return len(self._entries)

    def check_and_add(self, article: Article) -> Match | None:
        """The earlier article ``article`` repeats, or None (then it is remembered)."""
        r = article.record
        origin = (r.topic, r.partition, r.offset)
        words = _words(article.text)  # once: for the text key and the shingles
        keys = ((f"url:{article.canonical_url}",) if article.canonical_url else ()) + (_text_key(words),)
        for key in keys:
            earlier = self._by_key.get(key)
            if earlier is not None:
                if self._entries[earlier].origin == origin and r.topic:
                    return None  # the same Kafka record again (a replayed bundle): not a duplicate
                return Match(earlier, key.split(":", 1)[0], 1.0)
        hashes = _shingles(words)
        entry = _Entry(article.article_id, origin, keys, article.published_at, hashes, numbers_of(article.text))
        minhash = _minhash(hashes) if hashes is not None else None
        if minhash is not None:
            match = self._near(entry, minhash)
            if match is not None:
                return match
        self._add(entry, minhash)
        return None

    def _near(self, new: _Entry, minhash: MinHash) -> Match | None:
        assert new.shingles is not None
        best: tuple[float, str] | None = None
        for candidate in self._lsh.query(minhash):
            old = self._entries.get(candidate)
            if old is None or old.shingles is None or abs(old.published_at - new.published_at) > MAX_APART:
                continue
            if number_containment(old.numbers, new.numbers) < NUMBER_CONTAINMENT:
                continue  # the same template, other figures: another day's report
            share = containment(old.shingles, new.shingles)
            if share >= self.containment and (best is None or share > best[0]):
                best = (share, candidate)
        return Match(best[1], "near", best[0]) if best else None

    def _add(self, entry: _Entry, minhash: MinHash | None) -> None:
        if entry.article_id in self._entries:
            return
        self._entries[entry.article_id] = entry
        for key in entry.keys:
            self._by_key.setdefault(key, entry.article_id)
        if minhash is not None:
            self._lsh.insert(entry.article_id, minhash)
        while len(self._entries) > self.horizon:
            _, old = self._entries.popitem(last=False)
            for key in old.keys:
                if self._by_key.get(key) == old.article_id:
                    del self._by_key[key]
            if old.shingles is not None:
                self._lsh.remove(old.article_id)
