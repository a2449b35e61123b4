"""The processing stages as composite PTransforms with stable labels.

Each is a thin adapter around a pure function (``pipelines/io/decode.py``,
``pipelines/nlp/``): it counts records in/out/failed, times the work, and sends any
record it cannot process to a ``dead_letter`` output instead of dropping it.
Every composite returns ``(ok, dead_letters)``.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.shared import Shared
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.io.decode import decode_record
from pipelines.limits import ARTICLE_SECONDS, Limits, time_limit
from pipelines.metrics import METRICS, beam_count, serve_first_free
from pipelines.nlp.casualties import extract_casualties
from pipelines.nlp.dedup import DuplicateIndex
from pipelines.nlp.entities import MAX_CHARS, EntityFixer, entities_from_doc, group_entities, load_model
from pipelines.nlp.events import extract_events
from pipelines.nlp.language import warm_up
from pipelines.nlp.normalize import normalize
from pipelines.records import (
    Article,
    DeadLetter,
    EnrichedArticle,
    KafkaRecord,
    NewsflowError,
    ParsedArticle,
)

log = logging.getLogger(__name__)
DEAD = "dead_letter"
Stage = tuple[beam.PCollection, beam.PCollection]


def record_of(element: Any) -> KafkaRecord:
    """The original Kafka record behind any stage's element."""
    if isinstance(element, KafkaRecord):
        return element
    if isinstance(element, ParsedArticle):
        return element.article.record
    record = getattr(element, "record", None)
    if isinstance(record, KafkaRecord):
        return record
    return KafkaRecord("", -1, -1, 0, None, repr(element).encode("utf-8", "replace"))


def dead_letter(stage: str, element: Any, exc: BaseException) -> DeadLetter:
    """Count a failure and wrap the element's original bytes in a dead letter."""
    if isinstance(exc, NewsflowError):
        reason = exc.reason
    else:
        # A bug in our own code must not stop the stream: the input goes to the dead
        # letter with the exception, and the log keeps the traceback.
        reason = "internal_error"
        log.error("stage %s failed on %s", stage, record_of(element), exc_info=exc)
    METRICS.records_failed.labels(stage, reason).inc()
    beam_count(f"{stage}_failed")
    return DeadLetter(stage=stage, reason=reason, error=f"{type(exc).__name__}: {exc}", record=record_of(element))


class StageFn(beam.DoFn):  # type: ignore[misc]
    """Applies ``fn`` to each element; failures go to the ``dead_letter`` output.

    ``make_fn``, if given, builds the function once per worker in ``setup()`` (for state or
    models that should not be pickled with the DoFn).
    """

    def __init__(
        self,
        stage: str,
        fn: Callable[[Any], Any] | None = None,
        make_fn: Callable[[], Callable[[Any], Any]] | None = None,
        seconds: float = ARTICLE_SECONDS,
    ) -> None:
        self._stage = stage
        self._fn = fn
        self._make_fn = make_fn
        self._seconds = seconds

    def setup(self) -> None:
        if self._make_fn is not None:
            self._fn = self._make_fn()

    def process(self, element: Any) -> Iterator[Any]:
        METRICS.records_in.labels(self._stage).inc()
        start = time.perf_counter()
        try:
            with time_limit(self._seconds):
                result = self._fn(element)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - routed to the dead letter, never dropped
            yield TaggedOutput(DEAD, dead_letter(self._stage, element, exc))
            return
        finally:
            METRICS.stage_latency.labels(self._stage).observe(time.perf_counter() - start)
        METRICS.records_out.labels(self._stage).inc()
        beam_count(f"{self._stage}_out")
        yield result


def _apply(
    pcoll: beam.PCollection,
    label: str,
    stage: str,
    fn: Callable[[Any], Any] | None = None,
    make_fn: Callable[[], Callable[[Any], Any]] | None = None,
    seconds: float = ARTICLE_SECONDS,
) -> Stage:
    out = pcoll | label >> beam.ParDo(StageFn(stage, fn, make_fn, seconds)).with_outputs(DEAD, main="ok")
    return out.ok, out[DEAD]


class Decode(beam.PTransform):  # type: ignore[misc]
    """KafkaRecord -> RawArticle (JSON or Avro single-object); bad payloads dead-lettered."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self._limits = limits

    def expand(self, records: beam.PCollection) -> Stage:
        lim = self._limits
        decode = partial(decode_record, max_bytes=lim.max_bytes, max_depth=lim.max_json_depth)
        return _apply(records, "DecodePayload", "decode", decode, seconds=lim.article_seconds)


# Module-level functions and classes only: Beam pickles a nested function by value, with a
# copy of the METRICS it refers to, and that copy is not the one /metrics serves.
def _normalized(raw: Any, bad_dates: str) -> Article:
    article = normalize(raw, bad_dates)
    METRICS.languages.labels(article.language or "en").inc()
    return article


def _normalizer(bad_dates: str) -> Callable[[Any], Article]:
    warm_up()  # the language model, once per worker
    return partial(_normalized, bad_dates=bad_dates)


class Normalize(beam.PTransform):  # type: ignore[misc]
    """RawArticle -> Article: clean text, UTC time, language, canonical URL, stable id."""

    def __init__(self, limits: Limits = Limits()) -> None:
        super().__init__()
        self._limits = limits

    def expand(self, raw: beam.PCollection) -> Stage:
        lim = self._limits
        make = partial(_normalizer, lim.bad_dates)
        return _apply(raw, "NormalizeArticle", "normalize", make_fn=make, seconds=lim.article_seconds)


class Deduplicator:
    """Marks duplicates; built in each worker's setup, so the index is never pickled."""

    def __init__(self, horizon: int, threshold: float, memory_mb: float | None) -> None:
        self._index = DuplicateIndex(horizon, threshold, memory_mb)

    def __call__(self, article: Article) -> Article:
        match = self._index.check_and_add(article)
        METRICS.dedup_index.set(len(self._index))
        if match is None:
            return article
        METRICS.duplicates.labels(match.kind).inc()
        beam_count("duplicates")
        return replace(
            article,
            duplicate_of=match.duplicate_of,
            duplicate_kind=match.kind,
            duplicate_similarity=round(match.similarity, 3),
        )


class Dedup(beam.PTransform):  # type: ignore[misc]
    """Article -> Article, marked ``duplicate_of`` an earlier one when it repeats it.

    The index lives in the DoFn (no GroupByKey: the streaming path stays fused); see
    ``pipelines/nlp/dedup.py`` for why that is correct when producers key by URL.
    """

    def __init__(self, horizon: int = 20_000, threshold: float = 0.5, memory_mb: float | None = 200.0) -> None:
        super().__init__()
        self._args = (horizon, threshold, memory_mb)

    def expand(self, articles: beam.PCollection) -> Stage:
        return _apply(articles, "MarkDuplicates", "dedup", make_fn=partial(Deduplicator, *self._args))


class _Model:
    """Holder for the shared spaCy pipeline (Shared needs a weak-referenceable object)."""

    def __init__(self) -> None:
        self.nlp, self.name, seconds = load_model()
        self.fix = EntityFixer(self.nlp)  # builds the gazetteer too (about 1 s)
        METRICS.model_load.set(seconds)
        log.info("loaded spaCy model %s in %.1fs", self.name, seconds)


def _needs_nlp(article: Article) -> bool:
    return article.duplicate_of is None and article.english


class _EntitiesFn(beam.DoFn):  # type: ignore[misc]
    """Runs spaCy over a bundle's articles in batches with ``nlp.pipe``."""

    def __init__(self, shared: Shared, batch_size: int, serve_metrics: tuple[int, str] | None = None) -> None:
        self._shared = shared
        self._batch_size = batch_size
        self._serve = serve_metrics
        self._buffer: list[tuple[Article, Any, Any]] = []

    def setup(self) -> None:
        if self._serve is not None:  # on a cluster: this worker process's own /metrics
            serve_first_free(*self._serve)
        self._model: _Model = self._shared.acquire(_Model)

    def start_bundle(self) -> None:
        self._buffer = []

    def process(
        self, article: Article, timestamp: Any = beam.DoFn.TimestampParam, window: Any = beam.DoFn.WindowParam
    ) -> Iterator[Any]:
        METRICS.records_in.labels("entities").inc()
        self._buffer.append((article, timestamp, window))
        if len(self._buffer) >= self._batch_size:
            yield from self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush()

    def _flush(self) -> Iterator[Any]:
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        start = time.perf_counter()
        # Duplicates carry no entities or facts (the original has them: nothing is counted
        # twice), and the English model is not run on other languages; they stay in the
        # batch so the output keeps the input's order.
        texts = [a.text[:MAX_CHARS] for a, _, _ in batch if _needs_nlp(a)]
        try:
            results: list[Any] = list(self._model.nlp.pipe(texts, batch_size=self._batch_size))
        except Exception:  # noqa: BLE001 - retry one by one to isolate the bad article
            results = [self._one(text) for text in texts]
        per_doc = (time.perf_counter() - start) / len(batch)
        docs = iter(results)
        for article, ts, window in batch:
            METRICS.stage_latency.labels("entities").observe(per_doc)
            if not _needs_nlp(article):
                METRICS.records_out.labels("entities").inc()
                skipped = ParsedArticle(article=article, doc=None, entities=(), model=self._model.name)
                yield WindowedValue(skipped, ts, (window,))
                continue
            doc = next(docs)
            if isinstance(doc, Exception):
                yield TaggedOutput(DEAD, WindowedValue(dead_letter("entities", article, doc), ts, (window,)))
                continue
            try:
                entities = entities_from_doc(self._model.fix(doc))
                groups = group_entities(entities, article.text, article.title)
            except Exception as exc:  # noqa: BLE001 - becomes this article's dead letter
                yield TaggedOutput(DEAD, WindowedValue(dead_letter("entities", article, exc), ts, (window,)))
                continue
            for e in entities:
                METRICS.entities.labels(e.label).inc()
            METRICS.records_out.labels("entities").inc()
            beam_count("entities_out")
            parsed = ParsedArticle(
                article=article, doc=doc, entities=entities, model=self._model.name, entity_groups=groups
            )
            yield WindowedValue(parsed, ts, (window,))

    def _one(self, text: str) -> Any:
        try:
            return self._model.nlp(text)
        except Exception as exc:  # noqa: BLE001 - becomes this article's dead letter
            return exc


class ParsedArticleCoder(beam.coders.Coder):  # type: ignore[misc]
    """Pickle, with a size estimate that does not pickle. Beam samples the size of elements
    by encoding them, and pickling a spaCy Doc (vocabulary and all) takes ~150 ms: 12 % of
    a backfill's time before this coder (measured with cProfile)."""

    def encode(self, value: ParsedArticle) -> bytes:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def decode(self, data: bytes) -> ParsedArticle:
        return pickle.loads(data)  # type: ignore[no-any-return]  # noqa: S301 - our own bytes, within a job

    def estimate_size(self, value: ParsedArticle) -> int:
        return 1024 + 8 * len(value.article.text)  # about what a Doc's arrays weigh

    def is_deterministic(self) -> bool:
        return False


beam.coders.registry.register_coder(ParsedArticle, ParsedArticleCoder)


class ExtractEntities(beam.PTransform):  # type: ignore[misc]
    """Article -> ParsedArticle with spaCy NER; the model loads once per worker."""

    def __init__(self, batch_size: int = 16, serve_metrics: tuple[int, str] | None = None) -> None:
        super().__init__()
        self._shared = Shared()
        self._batch_size = batch_size
        self._serve = serve_metrics

    def expand(self, articles: beam.PCollection) -> Stage:
        fn = _EntitiesFn(self._shared, self._batch_size, self._serve)
        spacy = beam.ParDo(fn).with_output_types(ParsedArticle)
        out = articles | "RunSpacy" >> spacy.with_outputs(DEAD, main="ok")
        return out.ok, out[DEAD]


def to_enriched(parsed: ParsedArticle) -> EnrichedArticle:
    if parsed.doc is None:
        return EnrichedArticle(article=parsed.article, entities=(), facts=(), events=(), model=parsed.model)
    facts = extract_casualties(parsed.doc, parsed.article.published_at)
    events = extract_events(parsed.doc, parsed.article.published_at)
    for f in facts:
        METRICS.facts.labels(f.kind).inc()
        METRICS.casualties.labels(f.kind).inc(f.count)
    for e in events:
        METRICS.events.labels(e.type, e.modality).inc()
    return EnrichedArticle(
        article=parsed.article,
        entities=parsed.entities,
        facts=facts,
        events=events,
        model=parsed.model,
        entity_groups=parsed.entity_groups,
    )


class ExtractFacts(beam.PTransform):  # type: ignore[misc]
    """ParsedArticle -> EnrichedArticle with casualty facts and typed events."""

    def __init__(self, limits: Limits = Limits()) -> None:
        super().__init__()
        self._limits = limits

    def expand(self, parsed: beam.PCollection) -> Stage:
        return _apply(parsed, "ExtractCasualties", "facts", to_enriched, seconds=self._limits.article_seconds)


class Enrich(beam.PTransform):  # type: ignore[misc]
    """Decode -> Normalize -> Dedup -> ExtractEntities -> ExtractFacts.

    Returns ``{"enriched": ..., <Stage>: dead letters}``: one dead-letter PCollection per
    stage, kept apart because a Flatten would break fusion, which an unbounded source
    on FnApiRunner cannot afford.
    """

    def __init__(
        self,
        limits: Limits = Limits(),
        batch_size: int = 16,
        dedup_horizon: int = 20_000,
        dedup_threshold: float = 0.5,
        dedup_memory_mb: float | None = 200.0,
        serve_metrics: tuple[int, str] | None = None,
    ) -> None:
        super().__init__()
        self._limits = limits
        self._batch_size = batch_size
        self._dedup = (dedup_horizon, dedup_threshold, dedup_memory_mb)
        self._serve = serve_metrics

    def expand(self, records: beam.PCollection) -> dict[str, beam.PCollection]:
        raw, dead_decode = records | "Decode" >> Decode(self._limits)
        articles, dead_normalize = raw | "Normalize" >> Normalize(self._limits)
        marked, dead_dedup = articles | "Dedup" >> Dedup(*self._dedup)
        parsed, dead_entities = marked | "ExtractEntities" >> ExtractEntities(self._batch_size, self._serve)
        enriched, dead_facts = parsed | "ExtractFacts" >> ExtractFacts(self._limits)
        return {
            "enriched": enriched,
            "Decode": dead_decode,
            "Normalize": dead_normalize,
            "Dedup": dead_dedup,
            "Entities": dead_entities,
            "Facts": dead_facts,
        }
