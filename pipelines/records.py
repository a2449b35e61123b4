"""Typed messages that flow between the pipeline's stages.

Frozen dataclasses, one per stage boundary, so each stage's input and output are
explicit. ``to_avro()`` methods map them onto the schemas in ``schemas/``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines import __version__


def now_millis() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class KafkaRecord:
    """One input record; ``value`` is the original bytes.

    Read from a Kafka partition, it has a ``topic``. Read from an archive file by a
    backfill, ``topic`` is empty, ``archive`` is the file and ``offset`` the line (JSON
    Lines, from 1) or record (Avro, from 0). ``chunk`` names the backfill unit of work
    it belongs to: backfill files are named after it (see ``pipelines/backfill.py``).
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    archive: str = ""
    chunk: str = ""

    def archive_origin(self) -> dict[str, Any] | None:
        return {"path": self.archive, "record": self.offset} if self.archive else None

    def origin(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp_ms,
        }


@dataclass(frozen=True)
class RawArticle:
    """A decoded producer payload, not yet cleaned."""

    record: KafkaRecord
    source_id: str
    text: str
    title: str = ""
    url: str | None = None
    published_at: str | None = None
    source: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Article:
    """A normalized article: clean text, UTC time, stable id."""

    record: KafkaRecord
    article_id: str
    source_id: str
    title: str
    text: str
    published_at: datetime
    published_at_source: str  # "PAYLOAD" or "KAFKA_TIMESTAMP"
    url: str | None = None
    canonical_url: str | None = None
    source: str | None = None
    language: str | None = None
    original_text: str | None = None  # the producer's text, before normalization
    duplicate_of: str | None = None  # article_id of the earlier article this one repeats
    duplicate_kind: str | None = None  # url | text | near
    duplicate_similarity: float | None = None

    @property
    def english(self) -> bool:
        return self.language in (None, "en")


@dataclass(frozen=True)
class Entity:
    text: str
    label: str
    start: int
    end: int


@dataclass(frozen=True)
class EntityGroup:
    """The mentions of one entity in an article, under one canonical name."""

    name: str
    label: str
    mentions: int
    salience: float
    first_start: int
    country: str | None = None  # places: ISO 3166-1 alpha-2
    latitude: float | None = None
    longitude: float | None = None
    feature: str | None = None  # country | city | admin | region
    geonameid: int | None = None
    place_confidence: float | None = None


@dataclass(frozen=True)
class CasualtyFact:
    kind: str  # killed | injured | killed_or_injured | missing | arrested | kidnapped | displaced
    count: int
    evidence: str
    start: int
    end: int
    confidence: float
    qualifier: str | None = None  # at_least | more_than | up_to | about
    count_min: int | None = None
    count_max: int | None = None
    gdelt_type: str | None = None  # KILL | WOUND | ARREST | KIDNAP | AFFECT
    victims: str | None = None
    actor: str | None = None
    means: str | None = None
    place: str | None = None
    event_date: str | None = None


@dataclass(frozen=True)
class EventFact:
    type: str  # assault | fight | agree | consult | demand | sanction | release | protest | mobilize | threaten
    modality: str  # occurred | proposed | threatened | refused
    trigger: str
    evidence: str
    start: int
    end: int
    confidence: float
    source_actor: str | None = None
    target_actor: str | None = None
    place: str | None = None
    event_date: str | None = None
    count: int | None = None  # e.g. prisoners exchanged


@dataclass(frozen=True)
class ParsedArticle:
    """An article with its spaCy ``Doc``; lives only inside the fused stage."""

    article: Article
    doc: Any  # spacy.tokens.Doc; typed loosely to keep spaCy out of this module
    entities: tuple[Entity, ...]
    model: str
    entity_groups: tuple[EntityGroup, ...] = ()


@dataclass(frozen=True)
class EnrichedArticle:
    article: Article
    entities: tuple[Entity, ...]
    facts: tuple[CasualtyFact, ...]
    model: str
    processed_at_ms: int = field(default_factory=now_millis)
    events: tuple[EventFact, ...] = ()
    entity_groups: tuple[EntityGroup, ...] = ()

    def to_avro(self) -> dict[str, Any]:
        a = self.article
        return {
            "article_id": a.article_id,
            "source_id": a.source_id,
            "url": a.url,
            "canonical_url": a.canonical_url,
            "title": a.title,
            "text": a.text,
            "published_at": int(a.published_at.timestamp() * 1000),
            "published_at_source": a.published_at_source,
            "source": a.source,
            "language": a.language,
            "original_text": a.original_text,
            "duplicate_of": a.duplicate_of,
            "duplicate_kind": a.duplicate_kind,
            "duplicate_similarity": a.duplicate_similarity,
            "entities": [e.__dict__.copy() for e in self.entities],
            "entity_groups": [g.__dict__.copy() for g in self.entity_groups],
            "facts": [f.__dict__.copy() for f in self.facts],
            "events": [e.__dict__.copy() for e in self.events],
            "kafka": a.record.origin() if a.record.topic else None,
            "archive": a.record.archive_origin(),
            "pipeline_version": __version__,
            "model": self.model,
            "processed_at": self.processed_at_ms,
        }


@dataclass(frozen=True)
class FactRecord:
    """One fact of an article on its own, for consumers who want facts only (``news.facts``)."""

    fact_id: str
    enriched: EnrichedArticle
    casualty: CasualtyFact | None = None
    event: EventFact | None = None

    @property
    def article(self) -> Article:
        return self.enriched.article

    def to_avro(self) -> dict[str, Any]:
        a = self.enriched.article
        return {
            "fact_id": self.fact_id,
            "fact_type": "casualty" if self.casualty is not None else "event",
            "article_id": a.article_id,
            "source_id": a.source_id,
            "url": a.url,
            "title": a.title,
            "source": a.source,
            "published_at": int(a.published_at.timestamp() * 1000),
            "casualty": self.casualty.__dict__.copy() if self.casualty is not None else None,
            "event": self.event.__dict__.copy() if self.event is not None else None,
            "pipeline_version": __version__,
            "model": self.enriched.model,
            "processed_at": self.enriched.processed_at_ms,
        }


def split_facts(enriched: EnrichedArticle) -> list[FactRecord]:
    """Every casualty and event fact of ``enriched`` as its own record, ids in article order."""
    article_id = enriched.article.article_id
    return [FactRecord(f"{article_id}/c{i}", enriched, casualty=f) for i, f in enumerate(enriched.facts)] + [
        FactRecord(f"{article_id}/e{i}", enriched, event=e) for i, e in enumerate(enriched.events)
    ]


# The stages that can dead-letter a record (DeadLetter.stage), one dead-letter sink each.
DEAD_LETTER_STAGES = ("decode", "normalize", "dedup", "entities", "facts")
# A dead letter keeps the first MiB of its input: under Kafka's default 1 MB message limit
# with the envelope, and enough to see what it was. The rest stays at the source coordinates.
DEAD_LETTER_KEEP_BYTES = 1_000_000


@dataclass(frozen=True)
class DeadLetter:
    """An input a stage could not process; ``reason`` is a short bounded code."""

    stage: str
    reason: str
    error: str
    record: KafkaRecord
    failed_at_ms: int = field(default_factory=now_millis)

    def to_avro(self) -> dict[str, Any]:
        r = self.record
        has_origin = bool(r.topic)
        value = r.value or b""
        return {
            "stage": self.stage,
            "reason": self.reason,
            "error": self.error[:2000],
            "original": value[:DEAD_LETTER_KEEP_BYTES],
            "original_size": len(value),
            "original_sha256": hashlib.sha256(value).hexdigest(),
            "original_truncated": len(value) > DEAD_LETTER_KEEP_BYTES,
            "topic": r.topic if has_origin else None,
            "partition": r.partition if has_origin else None,
            "offset": r.offset if has_origin else None,
            "timestamp": r.timestamp_ms if has_origin else None,
            "key": r.key,
            "archive": r.archive_origin(),
            "failed_at": self.failed_at_ms,
            "pipeline_version": __version__,
        }


class NewsflowError(Exception):
    """An input problem a stage reports; ``reason`` becomes the dead letter's code."""

    reason = "error"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class DecodeError(NewsflowError):
    reason = "invalid_input"


class NormalizeError(NewsflowError):
    reason = "normalize_failed"


class SchemaError(NewsflowError):
    reason = "schema_error"
