"""ReadArchive: the bounded source of a backfill, one chunk per bundle.

A Splittable DoFn over a worker's list of chunks (restriction: chunk indices). Each call
reads one chunk, then defers the rest, so FnApiRunner ends the bundle there: the sinks
flush that chunk's files, and the bundle finalizer marks the chunk done. A crash loses at
most the chunk in flight, and a rerun redoes exactly the chunks not marked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.transforms.core import RestrictionProvider

from pipelines.io.archive import Chunk, ChunkReader, clear_chunk_files, in_time_range, mark_done
from pipelines.io.kafka import KafkaSettings
from pipelines.metrics import METRICS, beam_count
from pipelines.records import KafkaRecord
from pipelines.run_control import CONTROL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiveSettings:
    chunks: tuple[Chunk, ...]
    state_dir: str  # where the done markers go
    version: str  # pipeline + model version the markers record
    output_dir: str | None = None  # to clear the files of a chunk that is redone
    kafka: KafkaSettings | None = None  # for kafka: sources
    since: datetime | None = None  # archive files: publication time range (Kafka: cut when planned)
    until: datetime | None = None


class ReadChunksFn(beam.DoFn, RestrictionProvider):  # type: ignore[misc]
    def __init__(self, settings: ArchiveSettings) -> None:
        self._s = settings

    def setup(self) -> None:
        self._reader = ChunkReader(self._s.kafka)

    def initial_restriction(self, element: int) -> OffsetRange:
        return OffsetRange(0, len(self._s.chunks))

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element: int, restriction: OffsetRange) -> int:
        return sum(c.records for c in self._s.chunks[restriction.start : restriction.stop])

    def process(
        self,
        element: int,
        finalizer: Any = beam.DoFn.BundleFinalizerParam,
        tracker: Any = beam.DoFn.RestrictionParam(),
    ) -> Iterator[KafkaRecord]:
        restriction = tracker.current_restriction()
        index = restriction.start
        if CONTROL.stopping() or not tracker.try_claim(index):
            tracker.try_claim(restriction.stop)  # stopped: claim nothing more this run
            return
        s, chunk = self._s, self._s.chunks[index]
        clear_chunk_files(s.output_dir, chunk.key)
        read = skipped = 0
        read_in, read_out = METRICS.records_in.labels("read"), METRICS.records_out.labels("read")
        latency = METRICS.stage_latency.labels("read")
        records = self._reader.read(chunk)
        # Kafka chunks were cut to the time range by record timestamp when planned.
        since, until = (None, None) if chunk.kind == "kafka" else (s.since, s.until)
        while True:
            start = time.perf_counter()  # the reading alone: downstream stages run between yields
            record = next(records, None)
            if record is None:
                break
            read += 1
            read_in.inc()  # one at a time: the progress bar and rate follow it
            if not in_time_range(record, since, until):
                skipped += 1
                METRICS.archive_skipped.inc()
                continue
            latency.observe(time.perf_counter() - start)
            read_out.inc()
            yield record
        beam_count("records_read", read)
        finalizer.register(lambda: self._done(chunk, read, skipped))
        if index + 1 < restriction.stop:
            tracker.defer_remainder()  # ends the bundle: this chunk is flushed and marked alone

    def _done(self, chunk: Chunk, read: int, skipped: int) -> None:
        mark_done(self._s.state_dir, chunk, self._s.version, read, skipped)
        METRICS.archive_chunks_done.inc()

    def teardown(self) -> None:
        self._reader.teardown()


class ReadArchive(beam.PTransform):  # type: ignore[misc]
    """The records of ``settings.chunks``, in order, as ``KafkaRecord``s."""

    def __init__(self, settings: ArchiveSettings) -> None:
        super().__init__()
        self._settings = settings

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Chunks" >> beam.Create([0])
            | "ReadChunks" >> beam.ParDo(ReadChunksFn(self._settings)).with_output_types(KafkaRecord)
        )
