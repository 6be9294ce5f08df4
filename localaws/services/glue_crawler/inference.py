"""Schema inference for the crawler: what one S3 object holds, and one schema for many objects.

:func:`infer_schema` classifies an object by its content (the key's extension is only a hint)
and infers ``(name, glue type)`` columns: Parquet (exact schema from the footer), CSV/TSV/
pipe-delimited (AWS's header rule: a header is only recognised when every header cell is a
string and some data column is not), JSON lines, and gzip'ed CSV/JSON. :func:`merge_schemas`
widens the types of a table's files into one schema. Pure functions over bytes: no S3, no catalog.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

#: Bytes read from each CSV/JSON object for schema inference (AWS samples the start of a file).
SAMPLE_BYTES = 1 << 20


class UnknownFormat(ValueError):
    """An object's content is not one of the formats the crawler classifies."""


@dataclass
class FileSchema:
    """What one object looks like: ``columns`` are ``(name, glue type)``; ``options`` hold the
    format's details (CSV ``delimiter``/``header``/``quoted``); ``records`` counts rows read."""

    classification: str
    compression: str
    columns: list[tuple[str, str]]
    options: dict[str, Any] = field(default_factory=dict)
    records: int = 0


_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?$")
_COLUMN_NAME_RE = re.compile(r"^[^\x00-\x1f]{1,150}$")


def _token_type(value: str) -> str | None:
    """Glue type of one CSV cell; None for an empty cell."""
    if value == "":
        return None
    if value.lower() in ("true", "false"):
        return "boolean"
    if _INT_RE.match(value):
        return "bigint" if -(2**63) <= int(value) < 2**63 else "string"
    if _FLOAT_RE.match(value):
        return "double"
    if _TS_RE.match(value):
        return "timestamp"
    if _DATE_RE.match(value):
        return "date"
    return "string"


def merge_types(a: str | None, b: str | None) -> str | None:
    """The Glue type that holds values of both ``a`` and ``b`` (None = only nulls seen)."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    numeric = ("int", "bigint", "double")
    if a in numeric and b in numeric:
        return numeric[max(numeric.index(a), numeric.index(b))]
    if a.startswith("struct<") and b.startswith("struct<"):
        fields = dict(_split_struct(a))
        for name, typ in _split_struct(b):
            fields[name] = merge_types(fields.get(name), typ) or "string"
        return "struct<" + ",".join(f"{k}:{v}" for k, v in fields.items()) + ">"
    if a.startswith("array<") and b.startswith("array<"):
        return f"array<{merge_types(a[6:-1], b[6:-1])}>"
    return "string"


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p]


def _split_struct(typ: str) -> list[tuple[str, str]]:
    return [tuple(p.split(":", 1)) for p in _split_top(typ[len("struct<"):-1])]  # type: ignore[misc]


def arrow_to_glue(t) -> str:
    """Glue (Hive) type string of a pyarrow type, e.g. ``int64`` -> ``bigint``,
    ``list<struct<a: int32>>`` -> ``array<struct<a:int>>``."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return arrow_to_glue(t.value_type)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t):
        return "tinyint"
    if pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "smallint"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "int"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "float"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return f"array<{arrow_to_glue(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{arrow_to_glue(t.key_type)},{arrow_to_glue(t.item_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{t.field(i).name}:{arrow_to_glue(t.field(i).type)}"
                                    for i in range(t.num_fields)) + ">"
    return "string"


def _json_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int" if -(2**31) <= value < 2**31 else "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, list):
        elem = None
        for item in value:
            elem = merge_types(elem, _json_type(item))
        return f"array<{elem or 'string'}>"
    if isinstance(value, dict):
        return "struct<" + ",".join(f"{k.lower()}:{_json_type(v) or 'string'}" for k, v in value.items()) + ">"
    return "string"


def _infer_parquet(data: bytes) -> FileSchema:
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    schema = meta.schema.to_arrow_schema()
    columns = [(f.name.lower(), arrow_to_glue(f.type)) for f in schema]
    codecs = {meta.row_group(i).column(0).compression for i in range(meta.num_row_groups) if meta.num_columns}
    compression = next(iter(codecs)).lower() if len(codecs) == 1 else "none"
    return FileSchema("parquet", "none" if compression == "uncompressed" else compression, columns,
                      records=meta.num_rows)


def _infer_csv(text: str, compression: str, truncated: bool) -> FileSchema:
    lines = text.splitlines()
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the sample ends mid-line
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise UnknownFormat("empty file")
    sample = "\n".join(lines[:200])
    delimiter = None
    for cand in (",", "\t", "|", ";"):
        counts = {ln.count(cand) for ln in lines[:50]}
        if len(counts) == 1 and next(iter(counts)) > 0:
            delimiter = cand
            break
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",\t|;").delimiter
        except csv.Error as exc:
            raise UnknownFormat("not delimited text") from exc
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    width = max(len(r) for r in rows)
    if width < 2 or len(rows) < 2:
        # AWS: a CSV needs at least two columns and two rows.
        raise UnknownFormat("fewer than two columns or rows")
    quoted = any(ln.lstrip().startswith('"') or f'{delimiter}"' in ln for ln in lines[:50])
    first, data = rows[0], rows[1:]
    types: list[str | None] = [None] * width
    for row in data:
        for i, cell in enumerate(row[:width]):
            types[i] = merge_types(types[i], _token_type(cell))
    header_types = [_token_type(c) for c in first]
    header = (
        all(t == "string" for t in header_types[:-1])
        and header_types[-1] in ("string", None)
        and all(_COLUMN_NAME_RE.match(c) for c in first[:-1])
        and any(t not in ("string", None) for t in types)
    )
    if not header:
        for i, cell in enumerate(first[:width]):
            types[i] = merge_types(types[i], _token_type(cell))
    names = []
    for i in range(width):
        name = first[i].strip().lower() if header and i < len(first) and first[i].strip() else f"col{i}"
        names.append(name)
    columns = [(n, t or "string") for n, t in zip(names, types)]
    return FileSchema("csv", compression, columns,
                      options={"delimiter": delimiter, "header": header, "quoted": quoted},
                      records=len(data) + (0 if header else 1))


def _infer_json(text: str, compression: str, truncated: bool) -> FileSchema:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if truncated and len(lines) > 1:
        lines = lines[:-1]
    records = []
    try:
        records = [json.loads(ln) for ln in lines]
    except ValueError:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise UnknownFormat("not JSON") from exc
        records = doc if isinstance(doc, list) else [doc]
    if not records or not all(isinstance(r, dict) for r in records):
        raise UnknownFormat("JSON records are not objects")
    fields: dict[str, str | None] = {}
    for rec in records:
        for key, value in rec.items():
            fields[key.lower()] = merge_types(fields.get(key.lower()), _json_type(value))
    return FileSchema("json", compression, [(k, v or "string") for k, v in fields.items()],
                      records=len(records))


def infer_schema(name: str, data: bytes, *, truncated: bool = False) -> FileSchema:
    """Classify one object and infer its columns.

    :param name: the object's key (its extension is a hint; content decides).
    :param data: the object's bytes (or the first :data:`SAMPLE_BYTES`, with ``truncated``).
    :raises UnknownFormat: when the content is none of Parquet, CSV, JSON (optionally gzip'ed).
    """
    if data[:4] == b"PAR1":
        if truncated:
            raise UnknownFormat("truncated Parquet")
        return _infer_parquet(data)
    compression = "none"
    if data[:2] == b"\x1f\x8b":
        compression = "gzip"
        try:
            data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(SAMPLE_BYTES)
        except (OSError, EOFError):
            data = gzip.GzipFile(fileobj=io.BytesIO(data)).read1(SAMPLE_BYTES)  # truncated sample
        truncated = True
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        raise UnknownFormat("empty file")
    if text.lstrip()[:1] in ("{", "["):
        return _infer_json(text, compression, truncated)
    return _infer_csv(text, compression, truncated)


def merge_schemas(schemas: list[FileSchema]) -> FileSchema:
    """One table's schema from its files' schemas: columns in first-seen order, types widened."""
    first = schemas[0]
    cols: dict[str, str | None] = {}
    for schema in schemas:
        for name, typ in schema.columns:
            cols[name] = merge_types(cols.get(name), typ) if name in cols else typ
    return FileSchema(first.classification, first.compression, [(n, t or "string") for n, t in cols.items()],
                      options=dict(first.options), records=sum(s.records for s in schemas))
