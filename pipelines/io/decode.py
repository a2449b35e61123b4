"""Decode raw Kafka payloads (JSON or Avro single-object) into ``RawArticle``s.

Pure functions, no Beam: every problem raises ``DecodeError`` with a bounded
``reason`` that the Decode stage turns into a dead letter.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.io.avro import RAW, SINGLE_OBJECT_MARKER, schema
from pipelines.limits import MAX_BYTES, MAX_JSON_DEPTH
from pipelines.records import DecodeError, KafkaRecord, RawArticle, SchemaError

_STRING_FIELDS = ("source_id", "url", "title", "text", "published_at", "source", "language")


def decode_record(record: KafkaRecord, max_bytes: int = MAX_BYTES, max_depth: int = MAX_JSON_DEPTH) -> RawArticle:
    """Parse one Kafka record's value into a RawArticle.

    Raises:
        DecodeError: too large, not UTF-8, not JSON, nested deeper than ``max_depth``,
            wrong shape, missing or empty text.
    """
    data = record.value
    if data is None or len(data) == 0:
        raise DecodeError("empty message", "empty_message")
    if len(data) > max_bytes:
        raise DecodeError(f"message of {len(data)} bytes exceeds the {max_bytes}-byte limit", "too_large")
    if data[:2] == SINGLE_OBJECT_MARKER:
        try:
            fields = schema(RAW).decode(data)
        except SchemaError as exc:
            raise DecodeError(str(exc), "invalid_avro") from exc
    else:
        fields = _parse_json(data, max_depth)
    return _to_raw(record, fields)


def _parse_json(data: bytes, max_depth: int) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8 ({exc.reason} at byte {exc.start})", "invalid_utf8") from exc
    try:
        value = json.loads(text)
    except RecursionError as exc:  # the C parser's own limit, near 1,000 levels
        raise DecodeError(f"JSON nested deeper than {max_depth} levels", "too_deep") from exc
    except ValueError as exc:
        raise DecodeError(f"not JSON: {exc}", "invalid_json") from exc
    if _deeper_than(value, max_depth):
        raise DecodeError(f"JSON nested deeper than {max_depth} levels", "too_deep")
    if not isinstance(value, dict):
        raise DecodeError(f"JSON must be an object, got {type(value).__name__}", "wrong_shape")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _to_raw(record: KafkaRecord, fields: dict[str, Any]) -> RawArticle:
    for name in _STRING_FIELDS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise DecodeError(f"field {name!r} must be a string, got {type(value).__name__}", "wrong_shape")
    text = fields.get("text")
    if text is None:
        raise DecodeError("missing required field 'text'", "missing_text")
    if not text.strip():
        raise DecodeError("field 'text' is empty", "empty_text")
    # "id" and "date" are what many archives (Reuters-21578 among them) call these.
    source_id = fields.get("source_id") or _alias(fields, "id")
    if not source_id:
        raise DecodeError("missing required field 'source_id' (or 'id')", "missing_source_id")
    return RawArticle(
        record=record,
        source_id=source_id,
        text=text,
        title=fields.get("title") or "",
        url=fields.get("url") or None,
        published_at=fields.get("published_at") or _alias(fields, "date") or None,
        source=fields.get("source") or None,
        language=fields.get("language") or None,
    )


def _alias(fields: dict[str, Any], name: str) -> str | None:
    """A fallback field's value: a non-empty string, or an integer id as text."""
    value = fields.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None
