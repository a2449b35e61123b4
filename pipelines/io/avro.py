"""Avro schemas from ``schemas/`` and the two encodings newsflow writes.

Kafka values use the Avro spec's *single-object encoding* (``C3 01``, the schema's
CRC-64-AVRO fingerprint little-endian, then the binary datum) so a consumer can tell
which schema version wrote each record. Files are ordinary Avro container files.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, UnknownType, fingerprint, load_schema, to_parsing_canonical_form

from pipelines.records import SchemaError

SCHEMA_DIR = Path(os.environ.get("NEWSFLOW_SCHEMA_DIR", Path(__file__).resolve().parents[2] / "schemas"))
SINGLE_OBJECT_MARKER = b"\xc3\x01"

RAW = "newsflow.RawArticle"
ENRICHED = "newsflow.EnrichedArticle"
DEAD_LETTER = "newsflow.DeadLetter"
FACT = "newsflow.Fact"


class AvroSchema:
    """A parsed schema file with its single-object fingerprint."""

    def __init__(self, name: str, definition: dict[str, Any], parsed: Any = None) -> None:
        self.name = name
        self.definition = definition
        self.parsed = parsed if parsed is not None else fastavro.parse_schema(definition)
        canonical = to_parsing_canonical_form(self.parsed)
        # fastavro's hex is already the fingerprint's little-endian bytes, as the header wants.
        self.fingerprint = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        self.header = SINGLE_OBJECT_MARKER + self.fingerprint

    def encode(self, datum: dict[str, Any]) -> bytes:
        """Single-object encoding of ``datum``."""
        buf = io.BytesIO()
        buf.write(self.header)
        try:
            fastavro.schemaless_writer(buf, self.parsed, datum, strict_allow_default=True)
        except (ValueError, TypeError, KeyError) as exc:
            raise SchemaError(f"record does not fit {self.name}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """Inverse of :meth:`encode`; raises SchemaError on another schema or bad bytes."""
        if data[:2] != SINGLE_OBJECT_MARKER:
            raise SchemaError("not Avro single-object encoded (no C3 01 marker)", "invalid_avro")
        if data[2:10] != self.fingerprint:
            raise SchemaError(
                f"written with an unknown schema (fingerprint {data[2:10].hex()}), expected {self.name}",
                "invalid_avro",
            )
        try:
            return fastavro.schemaless_reader(io.BytesIO(data[10:]), self.parsed, None)  # type: ignore[return-value]
        except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
            raise SchemaError(f"bad {self.name} Avro body: {exc}", "invalid_avro") from exc


@cache
def schema(name: str) -> AvroSchema:
    """The schema ``schemas/<name>.avsc``, parsed once per process.

    A named type defined in its own file (``newsflow.CasualtyFact.avsc``) is inlined where
    first used, so the fingerprint is that of the complete schema, as any reader computes it.
    """
    path = SCHEMA_DIR / f"{name}.avsc"
    try:
        definition = json.loads(path.read_text())
        parsed = load_schema(str(path))
    except (OSError, ValueError, SchemaParseException, UnknownType) as exc:
        raise SchemaError(f"cannot load schema {path}: {exc}") from exc
    return AvroSchema(name, definition, parsed)


def write_container_atomically(path: Path, name: str, records: Iterable[dict[str, Any]]) -> int:
    """Write an Avro container file so that no reader ever sees it half-written.

    The data goes to a hidden temporary file in the same folder, is fsynced, then
    renamed over ``path`` (rename is atomic on POSIX); the folder is fsynced too.
    Returns the number of records written.
    """
    rows = list(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fo:
            fastavro.writer(fo, schema(name).parsed, rows, codec="deflate")
            fo.flush()
            os.fsync(fo.fileno())
    except (ValueError, TypeError, KeyError) as exc:
        tmp.unlink(missing_ok=True)
        raise SchemaError(f"records do not fit {name}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return len(rows)


def read_container(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as fo:
        return list(fastavro.reader(fo))  # type: ignore[arg-type]
