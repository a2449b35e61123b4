"""Input limits as pure functions and in the Beam stage: JSON nesting, HTML bombs, bad
dates, the time per record, and dead letters that keep at most the first MB of an input."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from typing import Any

import apache_beam as beam
import fastavro
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.io.avro import DEAD_LETTER, SCHEMA_DIR, schema
from pipelines.io.decode import decode_record
from pipelines.limits import ArticleTimeout, time_limit
from pipelines.nlp.normalize import MAX_HTML_TAGS, clean_text, normalize
from pipelines.records import DEAD_LETTER_KEEP_BYTES, DeadLetter, DecodeError, KafkaRecord, NormalizeError
from pipelines.transforms.stages import DEAD, StageFn

TS_MS = 1_747_735_200_000  # 2025-05-20T10:00:00Z


def record(value: bytes) -> KafkaRecord:
    return KafkaRecord("news.raw", 0, 5, TS_MS, None, value)


def nested(depth: int) -> bytes:
    return b'{"source_id": "s", "text": "t", "x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_json_nesting_up_to_the_limit_is_fine_and_deeper_is_too_deep() -> None:
    assert decode_record(record(nested(8)), max_depth=8).text == "t"
    with pytest.raises(DecodeError) as info:
        decode_record(record(nested(9)), max_depth=8)
    assert info.value.reason == "too_deep" and "8 levels" in str(info.value)


def test_json_deeper_than_the_parser_can_go_is_too_deep_not_a_crash() -> None:
    with pytest.raises(DecodeError) as info:
        decode_record(record(b"[" * 100_000 + b"]" * 100_000))
    assert info.value.reason == "too_deep"


def raw(published_at: str | None = None, text: str = "Two people were injured.") -> Any:
    fields = {"source_id": "s", "text": text} | ({"published_at": published_at} if published_at else {})
    return decode_record(record(json.dumps(fields).encode()))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("3026-01-01T00:00:00Z", "implausible_date"),
        ("1899-12-31T23:00:00Z", "implausible_date"),
        ("0001-01-01T00:00:00+01:00", "implausible_date"),
        ("99/99/9999 25:61 ZZZ", "invalid_date"),
        ("yesterday-ish, maybe", "invalid_date"),
    ],
)
def test_a_bad_published_at_is_a_dead_letter_unless_told_to_fall_back(value: str, reason: str) -> None:
    with pytest.raises(NormalizeError) as info:
        normalize(raw(value))
    assert info.value.reason == reason and value[:20] in str(info.value)
    article = normalize(raw(value), bad_dates="fallback")
    assert article.published_at_source == "KAFKA_TIMESTAMP" and int(article.published_at.timestamp() * 1000) == TS_MS


def test_a_missing_published_at_is_not_an_error() -> None:
    assert normalize(raw(None)).published_at_source == "KAFKA_TIMESTAMP"
    assert normalize(raw("2025-05-19T08:00:00Z")).published_at_source == "PAYLOAD"


def test_html_bombs_are_refused_before_parsing_and_real_pages_are_not() -> None:
    for bomb in ("<div>" * (MAX_HTML_TAGS + 1) + "x", "<p>" + "<b>x</b>" * MAX_HTML_TAGS):
        start = time.perf_counter()
        with pytest.raises(NormalizeError) as info:
            clean_text(bomb)
        assert info.value.reason == "html_bomb" and time.perf_counter() - start < 1.0
    page = "<html><body>" + "<p>A paragraph of the story, with <b>bold</b> words.</p>" * 2000 + "</body></html>"
    assert clean_text(page).count("A paragraph") >= 1000


def test_time_limit_interrupts_a_slow_call_and_is_cancelled_after_a_fast_one() -> None:
    start = time.perf_counter()
    with pytest.raises(ArticleTimeout) as info, time_limit(0.2):
        while True:
            pass
    assert info.value.reason == "timeout" and 0.15 < time.perf_counter() - start < 2.0
    with time_limit(0.2):
        pass
    time.sleep(0.4)  # a cancelled limit never fires later


def test_time_limit_is_a_no_op_off_the_main_thread() -> None:
    done: list[bool] = []

    def slow() -> None:
        with time_limit(0.05):
            time.sleep(0.2)
        done.append(True)

    thread = threading.Thread(target=slow)
    thread.start()
    thread.join()
    assert done == [True]


def _slow_on_b(value: str) -> str:
    if value == "b":
        time.sleep(10)
    return value.upper()


def test_a_stage_dead_letters_a_record_that_takes_too_long() -> None:
    with BeamTestPipeline(runner=FnApiRunner()) as p:
        out = (
            p
            | beam.Create(["a", "b", "c"])
            | beam.ParDo(StageFn("facts", _slow_on_b, seconds=0.5)).with_outputs(DEAD, main="ok")
        )
        assert_that(out.ok, equal_to(["A", "C"]), label="ok")
        reasons = out[DEAD] | beam.Map(lambda d: (d.stage, d.reason))
        assert_that(reasons, equal_to([("facts", "timeout")]), label="dead")


def test_a_dead_letter_keeps_the_first_megabyte_with_size_and_digest() -> None:
    huge = b"x" * (DEAD_LETTER_KEEP_BYTES + 10)
    small = b"\xff not json"
    for value in (huge, small):
        datum = DeadLetter("decode", "too_large", "too big", record(value)).to_avro()
        assert datum["original"] == value[:DEAD_LETTER_KEEP_BYTES]
        assert datum["original_size"] == len(value)
        assert datum["original_sha256"] == hashlib.sha256(value).hexdigest()
        assert datum["original_truncated"] is (value is huge)
        assert len(schema(DEAD_LETTER).encode(datum)) < 1_048_576, "fits Kafka's default message size"


def test_dead_letter_schema_evolves_both_ways() -> None:
    v1 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "newsflow.DeadLetter.v1.avsc").read_text()))
    new = schema(DEAD_LETTER).parsed
    datum = DeadLetter("decode", "invalid_json", "not JSON", record(b"{")).to_avro()

    def roundtrip(d: dict[str, Any], writer: Any, reader: Any) -> dict[str, Any]:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer, d)
        buf.seek(0)
        return fastavro.schemaless_reader(buf, writer, reader)  # type: ignore[return-value]

    old = roundtrip(datum, new, v1)
    assert old["original"] == b"{" and "original_size" not in old
    back = roundtrip(old, v1, new)
    assert back["original_size"] is None and back["original_truncated"] is False
