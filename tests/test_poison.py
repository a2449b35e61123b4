"""Poison input through a real broker and the running pipeline: every malformed record is a
dead letter with its stage, reason, original bytes (or, when huge, the first MB with its
size and SHA-256) and Kafka coordinates; it is counted; nothing stops the stream and the
good records around the bad ones come out."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipelines.io.avro import DEAD_LETTER, ENRICHED, RAW, read_container, schema
from pipelines.local.broker import EmbeddedBroker, free_port
from pipelines.local.process import spawn_run
from pipelines.records import DEAD_LETTER_KEEP_BYTES
from tests.kafka_util import decode_all, produce, read_topic
from tests.test_cli_streaming import interrupt, wait_for
from tests.test_faults import metric

pytestmark = pytest.mark.integration


def article(i: int, **fields: Any) -> bytes:
    body = {"source_id": f"poison-{i}", "text": "Officials said two people were injured in Kherson.", **fields}
    return json.dumps(body).encode()


def poison() -> list[tuple[str, bytes, str, set[str]]]:
    """(name, bytes, stage, accepted reasons) for every kind of bad input."""
    junk = random.Random(7).randbytes(4096)
    laughs = "<!DOCTYPE l [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>" + (
        "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]><html><body><p>&c;&c;&c;&c;</p></body></html>"
    )
    other_avro = schema(DEAD_LETTER).header + b"\x00\x01garbage"
    bad_avro = schema(RAW).header + b"\xff\xff\xff\xff\xff"
    return [
        ("invalid utf-8", b'{"source_id": "p1", "text": "caf\xe9 \xff"}', "decode", {"invalid_utf8"}),
        ("invalid json", b'{"source_id": "p2", "text": "cut off', "decode", {"invalid_json"}),
        ("json array", b"[1, 2, 3]", "decode", {"wrong_shape"}),
        ("number as text", b'{"source_id": "p4", "text": 42}', "decode", {"wrong_shape"}),
        ("no text", b'{"source_id": "p5", "title": "Headline only"}', "decode", {"missing_text"}),
        ("empty text", article(6, text=""), "decode", {"empty_text"}),
        ("whitespace text", article(7, text=" \n\t\u00a0 "), "decode", {"empty_text"}),
        ("empty message", b"", "decode", {"empty_message"}),
        ("binary junk", junk, "decode", {"invalid_utf8", "invalid_json"}),
        ("avro of another schema", other_avro, "decode", {"invalid_avro"}),
        ("corrupt avro", bad_avro, "decode", {"invalid_avro"}),
        ("20 MB article", article(12, text="word " * 4_000_000), "decode", {"too_large"}),
        ("nested json", b'{"source_id": "p13", "text": "t", "x": ' + b"[" * 100 + b"]" * 100 + b"}", "decode",
         {"too_deep"}),
        ("very nested json", b"[" * 200_000 + b"]" * 200_000, "decode", {"too_deep"}),
        ("date far ahead", article(15, published_at="3026-01-01T00:00:00Z"), "normalize", {"implausible_date"}),
        ("ancient date", article(16, published_at="0001-01-01T00:00:00Z"), "normalize", {"implausible_date"}),
        ("not a date", article(17, published_at="99/99/9999 25:61 ZZZ"), "normalize", {"invalid_date"}),
        ("html nesting bomb", article(18, text="<div>" * 100_000 + "x" + "</div>" * 100_000), "normalize",
         {"html_bomb"}),
        ("html tag flood", article(19, text="<p>" + "<b>x</b>" * 200_000 + "</p>"), "normalize", {"html_bomb"}),
        ("markup only", article(20, text="<p><br/><img src=x></p>"), "normalize", {"empty_text"}),
        ("entity expansion", article(21, text=laughs), "", set()),  # must come out, unexpanded
    ]  # fmt: skip


def test_every_kind_of_poison_is_a_dead_letter_and_the_stream_goes_on(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cases = poison()
    good = [article(100 + i) for i in range(3)]
    values = [good[0]] + [v for _, v, _, _ in cases] + good[1:]
    produce(broker.bootstrap, "news.raw", values)
    bad = sum(1 for _, _, stage, _ in cases if stage)
    port = free_port()
    out = tmp_path / "out"
    proc = spawn_run(broker.bootstrap, out, "--metrics-port", str(port), "--progress", "off",
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for(lambda: read_topic(broker.bootstrap, "news.deadletter", bad, 2)[bad - 1 :], 180, "dead letters")
        wait_for(lambda: read_topic(broker.bootstrap, "news.enriched", 4, 2)[3:], 180, "enriched")
        counted = metric(port, "newsflow_dead_letters_total")
        failed = {
            (stage, reason): metric(port, "newsflow_stage_records_failed_total", stage=stage, reason=reason)
            for _, _, stage, reasons in cases
            for reason in reasons
            if stage
        }
        assert proc.poll() is None, "the pipeline is still running"
        interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    letters = decode_all(read_topic(broker.bootstrap, "news.deadletter"), DEAD_LETTER)
    assert len(letters) == bad, [d["reason"] for d in letters]
    by_offset = {d["offset"]: d for d in letters}
    for offset, (name, value, stage, reasons) in enumerate(cases, start=1):
        if not stage:
            continue
        d = by_offset.get(offset)
        assert d is not None, f"{name}: no dead letter at offset {offset}"
        assert (d["stage"], d["topic"], d["partition"]) == (stage, "news.raw", 0), name
        assert d["reason"] in reasons, f"{name}: {d['reason']} ({d['error']})"
        assert d["error"], name
        assert d["original_size"] == len(value) and d["original_sha256"] == hashlib.sha256(value).hexdigest(), name
        if len(value) > DEAD_LETTER_KEEP_BYTES:
            assert d["original_truncated"] and d["original"] == value[:DEAD_LETTER_KEEP_BYTES], name
        else:
            assert not d["original_truncated"] and d["original"] == value, name
    assert counted == bad
    assert sum(failed.values()) == bad, failed

    files = [r for f in (out / "deadletter").rglob("*.avro") for r in read_container(f)]
    assert Counter(r["offset"] for r in files) == Counter(d["offset"] for d in letters)

    enriched = decode_all(read_topic(broker.bootstrap, "news.enriched"), ENRICHED)
    texts = {r["source_id"]: r["text"] for r in enriched}
    assert {"poison-100", "poison-101", "poison-102", "poison-21"} <= set(texts), "good records around the bad"
    assert len(texts["poison-21"]) < 500, "entities were not expanded"


def test_a_record_kafka_refuses_is_a_dead_letter_and_the_stream_goes_on(broker: EmbeddedBroker, tmp_path: Path) -> None:
    big = article(200, text="The council met on Monday in Leeds and agreed the budget. " * 2500)  # ~150 KB
    good = article(201)
    produce(broker.bootstrap, "news.raw", [big, good])
    out = tmp_path / "out"
    proc = spawn_run(broker.bootstrap, out, "--kafka-max-request-bytes", "200000", "--progress", "off",
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for(lambda: read_topic(broker.bootstrap, "news.deadletter", 1, 2), 180, "the dead letter")
        wait_for(lambda: read_topic(broker.bootstrap, "news.enriched", 1, 2), 180, "the good article")
        output = interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    [dead] = decode_all(read_topic(broker.bootstrap, "news.deadletter"), DEAD_LETTER)
    assert (dead["stage"], dead["reason"], dead["offset"]) == ("write", "refused_by_kafka", 0)
    assert dead["original"] == big and "news.enriched" in dead["error"] and "MessageSizeTooLarge" in dead["error"]
    enriched = decode_all(read_topic(broker.bootstrap, "news.enriched"), ENRICHED)
    assert [r["source_id"] for r in enriched] == ["poison-201"]
    in_files = {r["source_id"] for f in (out / "enriched").rglob("*.avro") for r in read_container(f)}
    assert in_files == {"poison-200", "poison-201"}, "files have no size limit"
    assert "Kafka refused a record for news.enriched" in output
