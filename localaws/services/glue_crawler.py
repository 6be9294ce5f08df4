"""Glue crawlers that really crawl: S3 targets -> tables and partitions in moto's Glue catalog.

StartCrawler runs the crawl on a background thread. It lists each ``S3Targets`` path in moto's
in-memory S3 (never over HTTP), groups the objects into tables, infers each table's schema and
writes tables and partitions into the Glue catalog that ``GetTable`` and Athena read.

Grouping (the common AWS layouts):

* files directly under the target path (or under ``k=v/`` folders there) -> one table named
  after the target's last folder;
* each plain first-level folder of the target -> one table named after that folder, unless the
  target holds only folders and all have the same format, columns and layout: then, as AWS
  does, they are partitions of one table named after the target (key ``partition_0`` = folder);
* folders below a table's folder -> partitions: Hive-style ``k=v/`` gives key ``k``, a plain
  folder gives ``partition_<i>`` (type ``string``, as AWS), one partition per distinct folder;
* objects whose file or folder name starts with ``_`` or ``.`` (``_SUCCESS``, ``.crc``) and
  objects matching an ``Exclusions`` glob (relative to the target path) are ignored.

Table names are ``TablePrefix`` + the folder name, lower-cased, other characters than ``a-z0-9_``
replaced by ``_``. Column names are lower-cased.

Formats: Parquet (exact schema from the footer), CSV/TSV/pipe-delimited (AWS's header rule:
a header is only recognised when every header cell is a string and some data column is not),
JSON lines, and gzip'ed CSV/JSON. States: RUNNING -> STOPPING -> READY, ``LastCrawl.Status``
SUCCEEDED / FAILED / CANCELLED.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from moto.core.responses import ActionResult
from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from moto.glue.exceptions import CrawlerNotRunningException, CrawlerRunningException
from moto.logs.models import logs_backends
from moto.moto_api._internal import mock_random

from localaws.runtime import RUNTIME, log
from localaws.services import s3memory

#: Bytes read from each CSV/JSON object for schema inference (AWS samples the start of a file).
SAMPLE_BYTES = 1 << 20
#: CSV/JSON objects sampled per table (Parquet footers are read for every object).
SAMPLE_FILES = 5
#: A crawl lasts at least this many seconds (tests raise it to exercise StopCrawler).
MIN_CRAWL_SECONDS = 0.0
LOG_GROUP = "/aws-glue/crawlers"

PARQUET_FORMATS = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
}
TEXT_FORMATS = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
}
_catalog_lock = threading.Lock()


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- schema inference --------------------------------------------------------------------------


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


# --- grouping ----------------------------------------------------------------------------------


def glob_to_regex(pattern: str) -> re.Pattern:
    """Glue exclusion glob -> regex: ``*`` within a folder, ``**`` across folders, ``?``,
    ``[abc]``, ``{a,b}``."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            j = pattern.find("]", i)
            if j < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:j]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = j
        elif ch == "{":
            j = pattern.find("}", i)
            if j < 0:
                out.append(re.escape(ch))
            else:
                out.append("(" + "|".join(re.escape(p) for p in pattern[i + 1:j].split(",")) + ")")
                i = j
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def table_name(raw: str, prefix: str | None) -> str:
    """Glue's table name for folder ``raw``: lower-cased, non ``[a-z0-9_]`` -> ``_``, prefixed."""
    return (prefix or "") + re.sub(r"[^a-z0-9_]", "_", raw.lower())


@dataclass
class TablePlan:
    """A table the crawl found: ``location`` (s3 URL ending in ``/``), ``partition_keys``,
    ``partitions`` (values tuple -> location), the objects and the merged schema."""

    name: str
    location: str
    partition_keys: list[str]
    partitions: dict[tuple[str, ...], str]
    objects: list[s3memory.S3Object]
    schema: FileSchema | None = None


def _is_hidden(segment: str) -> bool:
    return segment.startswith(("_", "."))


def _key_names(dirs: list[str]) -> tuple[str, ...]:
    return tuple(d.split("=", 1)[0].lower() if "=" in d else f"partition_{i}" for i, d in enumerate(dirs))


def _key_value(segment: str) -> str:
    return unquote(segment.split("=", 1)[1]) if "=" in segment else unquote(segment)


def plan_target(account_id: str, path: str, exclusions: list[str], prefix: str | None) -> list[TablePlan]:
    """Group the objects under one S3 target into tables, before schemas are known.

    Files directly under the target, or under ``k=v`` folders there, form the target's table;
    every plain first-level folder forms a table of its own (see :func:`merge_similar` for
    AWS's rule that folds them into one). Folders below a table's folder are partitions:
    ``k=v`` -> key ``k``, plain -> ``partition_<i>``. Objects that do not follow a table's most
    common folder layout are logged and ignored.

    :raises s3memory.S3PathError: when the bucket does not exist.
    """
    bucket, key_prefix = s3memory.split_url(path)
    if key_prefix and not key_prefix.endswith("/"):
        key_prefix += "/"
    base_name = key_prefix.rstrip("/").rsplit("/", 1)[-1] if key_prefix else bucket
    excluded = [glob_to_regex(p) for p in exclusions or []]
    groups: dict[str | None, list[tuple[list[str], s3memory.S3Object]]] = {}
    for obj in s3memory.list_objects(account_id, f"s3://{bucket}/{key_prefix}"):
        rel = obj.key[len(key_prefix):]
        parts = rel.split("/")
        if any(_is_hidden(p) for p in parts) or any(rx.match(rel) for rx in excluded) or obj.size == 0:
            continue
        dirs = parts[:-1]
        if not dirs or "=" in dirs[0]:
            groups.setdefault(None, []).append((dirs, obj))
        else:
            groups.setdefault(dirs[0], []).append((dirs[1:], obj))
    plans = []
    for first, items in groups.items():
        keys = Counter(_key_names(d) for d, _ in items).most_common(1)[0][0]
        location = f"s3://{bucket}/{key_prefix}" + (f"{first}/" if first else "")
        plan = TablePlan(table_name(first or base_name, prefix), location, list(keys), {}, [])
        for dirs, obj in items:
            if _key_names(dirs) != keys:
                log.warning("crawler: %s does not follow the folder layout %s of %s; ignored", obj.url, keys, location)
                continue
            if keys:
                plan.partitions[tuple(_key_value(d) for d in dirs)] = location + "".join(d + "/" for d in dirs)
            plan.objects.append(obj)
        plans.append(plan)
    return plans


def merge_similar(plans: list[TablePlan], target_location: str, name: str) -> list[TablePlan]:
    """AWS's rule: when a target holds only folders and all of them have the same format, columns
    and layout, they are partitions (``partition_0`` = folder name) of one table named ``name``."""
    if not plans or any(p.location == target_location for p in plans):
        return plans
    sigs = {(p.schema.classification, tuple(p.schema.columns), tuple(p.partition_keys)) if p.schema else None
            for p in plans}
    if len(sigs) != 1 or None in sigs:
        return plans
    keys = ["partition_0"] + [f"partition_{int(k[10:]) + 1}" if re.fullmatch(r"partition_\d+", k) else k
                              for k in plans[0].partition_keys]
    merged = TablePlan(name, target_location, keys, {}, [])
    for plan in plans:
        folder = plan.location[len(target_location):].rstrip("/")
        if plan.partition_keys:
            for values, loc in plan.partitions.items():
                merged.partitions[(folder, *values)] = loc
        else:
            merged.partitions[(folder,)] = plan.location
        merged.objects += plan.objects
    merged.schema = merge_schemas([p.schema for p in plans])  # type: ignore[misc]
    return [merged]


# --- the crawl ---------------------------------------------------------------------------------


class LocalCrawl:
    """One crawl, shaped for ListCrawls (``CrawlerHistory``) and ``LastCrawl``.

    ``status``: RUNNING, STOPPING, COMPLETED, STOPPED or FAILED (moto's crawl states).
    """

    def __init__(self, crawler_name: str) -> None:
        self.crawl_id = str(mock_random.uuid4())
        self.crawler_name = crawler_name
        self.status = "RUNNING"
        self.start_time = _now()
        self.end_time: datetime | None = None
        self.error_message: str | None = None
        self.stop_requested = False
        self.log_group = LOG_GROUP
        self.log_stream = crawler_name
        self.message_prefix = self.crawl_id
        self.dpu_hour = 0.0
        self.summary: dict[str, int] = {}

    def advance(self) -> None:
        """State is driven by the crawl thread."""

    @property
    def finished(self) -> bool:
        return self.status in ("COMPLETED", "STOPPED", "FAILED")

    @property
    def last_crawl_status(self) -> str:
        return {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED", "FAILED": "FAILED"}.get(self.status, self.status)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "CrawlId": self.crawl_id,
            "State": "RUNNING" if self.status == "STOPPING" else self.status,
            "StartTime": self.start_time,
            "DPUHour": self.dpu_hour,
            "LogGroup": self.log_group,
            "LogStream": self.log_stream,
            "MessagePrefix": self.message_prefix,
            "Summary": json.dumps(self.summary),
        }
        if self.end_time:
            out["EndTime"] = self.end_time
        if self.error_message:
            out["ErrorMessage"] = self.error_message
        return out


def _cloudwatch(crawler: glue_models.FakeCrawler, crawl: LocalCrawl, message: str) -> None:
    try:
        logs = logs_backends[crawler.backend.account_id][crawler.backend.region_name]
        logs.ensure_log_group(LOG_GROUP)
        if crawler.name not in logs.groups[LOG_GROUP].streams:
            logs.create_log_stream(LOG_GROUP, crawler.name)
        logs.put_log_events(LOG_GROUP, crawler.name,
                            [{"timestamp": int(time.time() * 1000), "message": f"[{crawl.crawl_id}] {message}"}])
    except Exception:  # noqa: BLE001 - logging must never fail a crawl
        log.debug("crawler %s: CloudWatch log write failed", crawler.name, exc_info=True)


def _storage_descriptor(schema: FileSchema, location: str, crawler_name: str, objects: list[s3memory.S3Object],
                        columns: list[tuple[str, str]]) -> dict[str, Any]:
    size = sum(o.size for o in objects)
    params = {
        "classification": schema.classification,
        "compressionType": schema.compression,
        "typeOfData": "file",
        "objectCount": str(len(objects)),
        "sizeKey": str(size),
        "recordCount": str(schema.records),
        "averageRecordSize": str(size // schema.records if schema.records else 0),
        "CrawlerSchemaDeserializerVersion": "1.0",
        "CrawlerSchemaSerializerVersion": "1.0",
        "UPDATED_BY_CRAWLER": crawler_name,
    }
    if schema.classification == "parquet":
        formats, serde = PARQUET_FORMATS, {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            "Parameters": {"serialization.format": "1"},
        }
    elif schema.classification == "csv":
        delim = schema.options.get("delimiter", ",")
        params.update({"delimiter": delim, "columnsOrdered": "true",
                       "areColumnsQuoted": str(bool(schema.options.get("quoted"))).lower()})
        if schema.options.get("header"):
            params["skip.header.line.count"] = "1"
        formats = TEXT_FORMATS
        if schema.options.get("quoted"):
            serde = {"SerializationLibrary": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
                     "Parameters": {"separatorChar": delim, "quoteChar": '"'}}
        else:
            serde = {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                     "Parameters": {"field.delim": delim}}
    else:
        formats = TEXT_FORMATS
        serde = {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                 "Parameters": {"paths": ",".join(n for n, _ in columns)}}
    return {
        "Columns": [{"Name": n, "Type": t} for n, t in columns],
        "Location": location,
        **formats,
        "Compressed": schema.compression != "none",
        "NumberOfBuckets": -1,
        "SerdeInfo": serde,
        "BucketColumns": [],
        "SortColumns": [],
        "Parameters": params,
        "StoredAsSubDirectories": False,
    }


def _infer_plan(account_id: str, plan: TablePlan) -> None:
    schemas: list[FileSchema] = []
    parquet = [o for o in plan.objects if o.key.endswith(".parquet")]
    sampled = 0
    for obj in plan.objects:
        is_parquet_name = obj in parquet
        if not is_parquet_name and sampled >= SAMPLE_FILES and schemas and schemas[0].classification != "parquet":
            continue
        data = s3memory.read_object(account_id, obj.bucket, obj.key)
        truncated = False
        if data[:4] != b"PAR1" and len(data) > SAMPLE_BYTES and data[:2] != b"\x1f\x8b":
            data, truncated = data[:SAMPLE_BYTES], True
        try:
            schemas.append(infer_schema(obj.key, data, truncated=truncated))
        except UnknownFormat as exc:
            log.warning("crawler: %s is not a recognised format (%s); ignored", obj.url, exc)
        sampled += 1
    if not schemas:
        plan.schema = None
        return
    majority = Counter(s.classification for s in schemas).most_common(1)[0][0]
    plan.schema = merge_schemas([s for s in schemas if s.classification == majority])


def _crawl(crawler: glue_models.FakeCrawler, crawl: LocalCrawl) -> None:
    backend = crawler.backend
    account_id = backend.account_id
    started = time.monotonic()
    created = updated = deleted = parts_added = 0
    _cloudwatch(crawler, crawl, f"BENCHMARK : Running Start Crawl for Crawler {crawler.name}")
    try:
        plans: list[TablePlan] = []
        for target in (crawler.targets or {}).get("S3Targets", []) or []:
            path = target.get("Path", "")
            bucket, key_prefix = s3memory.split_url(path)
            if key_prefix and not key_prefix.endswith("/"):
                key_prefix += "/"
            target_plans = plan_target(account_id, path, target.get("Exclusions") or [], crawler.table_prefix)
            for plan in target_plans:
                if crawl.stop_requested:
                    break
                _infer_plan(account_id, plan)
            target_plans = [p for p in target_plans if p.schema is not None]
            base = key_prefix.rstrip("/").rsplit("/", 1)[-1] if key_prefix else bucket
            plans += merge_similar(target_plans, f"s3://{bucket}/{key_prefix}", table_name(base, crawler.table_prefix))
        deadline = crawl.start_time.timestamp() + MIN_CRAWL_SECONDS
        while time.time() < deadline and not crawl.stop_requested:
            time.sleep(0.05)
        if crawl.stop_requested:
            crawl.status = "STOPPED"
            return
        policy = crawler.schema_change_policy or {}
        update_behavior = policy.get("UpdateBehavior", "UPDATE_IN_DATABASE")
        delete_behavior = policy.get("DeleteBehavior", "DEPRECATE_IN_DATABASE")
        with _catalog_lock:
            if crawler.database_name not in backend.databases:
                backend.create_database(crawler.database_name, {"Name": crawler.database_name})
            database = backend.databases[crawler.database_name]
            for plan in plans:
                c, u, p = _write_table(backend, crawler, plan, update_behavior)
                created, updated, parts_added = created + c, updated + u, parts_added + p
            deleted = _handle_deleted(backend, database, crawler, plans, delete_behavior)
        crawl.status = "STOPPING"
        crawl.summary = {"TablesCreated": created, "TablesUpdated": updated, "TablesDeleted": deleted,
                         "PartitionsAdded": parts_added}
        crawl.status = "COMPLETED"
    except Exception as exc:  # noqa: BLE001 - any failure is the crawl's failure
        log.exception("crawler %s failed", crawler.name)
        crawl.error_message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, s3memory.S3PathError) else str(exc)
        crawl.status = "FAILED"
    finally:
        elapsed = time.monotonic() - started
        crawl.end_time = _now()
        crawl.dpu_hour = round(elapsed / 3600, 6)
        metrics = _metrics(crawler)
        metrics["runtimes"] = (metrics["runtimes"] + [elapsed])[-20:]
        metrics.update(TablesCreated=created, TablesUpdated=updated, TablesDeleted=deleted)
        _cloudwatch(crawler, crawl, f"BENCHMARK : Crawler has finished running and is in state READY "
                                    f"({crawl.last_crawl_status})")
        log.info("crawler %s: %s, %d tables created, %d updated, %d partitions added in %.1f s%s", crawler.name,
                 crawl.last_crawl_status, created, updated, parts_added, elapsed,
                 f" - {crawl.error_message}" if crawl.error_message else "")


def _columns_signature(table_input: dict[str, Any]) -> tuple:
    sd = table_input.get("StorageDescriptor") or {}
    return (
        tuple((c["Name"], c["Type"]) for c in sd.get("Columns", [])),
        tuple((c["Name"], c["Type"]) for c in table_input.get("PartitionKeys", [])),
        sd.get("InputFormat"),
        (sd.get("SerdeInfo") or {}).get("SerializationLibrary"),
        sd.get("Location"),
    )


def _write_table(backend: glue_models.GlueBackend, crawler: glue_models.FakeCrawler, plan: TablePlan,
                 update_behavior: str) -> tuple[int, int, int]:
    """Create or update one table and add its new partitions; returns (created, updated, partitions added)."""
    assert plan.schema is not None
    keys = set(plan.partition_keys)
    columns = [(n, t) for n, t in plan.schema.columns if n not in keys]
    sd = _storage_descriptor(plan.schema, plan.location, crawler.name, plan.objects, columns)
    table_input = {
        "Name": plan.name,
        "Owner": "owner",
        "Retention": 0,
        "StorageDescriptor": sd,
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in plan.partition_keys],
        "TableType": "EXTERNAL_TABLE",
        "Parameters": dict(sd["Parameters"]),
    }
    database = backend.databases[crawler.database_name]
    existing = database.tables.get(plan.name)
    created = updated = 0
    if existing is None:
        backend.create_table(crawler.database_name, plan.name, table_input)
        table = database.tables[plan.name]
        created = 1
    else:
        table = existing
        current = existing.get_version(str(existing._current_version))
        if _columns_signature(current) != _columns_signature(table_input):
            if update_behavior == "UPDATE_IN_DATABASE":
                existing.update(table_input)
                updated = 1
            else:
                log.info("crawler %s: schema of %s.%s changed; not updated (UpdateBehavior=%s)", crawler.name,
                         crawler.database_name, plan.name, update_behavior)
    added = 0
    if plan.partition_keys:
        by_location: dict[str, list[s3memory.S3Object]] = {}
        for obj in plan.objects:
            for loc in plan.partitions.values():
                if obj.url.startswith(loc):
                    by_location.setdefault(loc, []).append(obj)
                    break
        for values, loc in sorted(plan.partitions.items()):
            if str(list(values)) in table.partitions:
                continue
            part_sd = _storage_descriptor(plan.schema, loc, crawler.name, by_location.get(loc, []), columns)
            table.create_partition({"Values": list(values), "StorageDescriptor": part_sd,
                                    "Parameters": dict(part_sd["Parameters"])})
            added += 1
    return created, updated, added


def _handle_deleted(backend: glue_models.GlueBackend, database, crawler: glue_models.FakeCrawler,
                    plans: list[TablePlan], behavior: str) -> int:
    """Tables this crawler made whose data is gone: DeleteBehavior LOG / DELETE_FROM_DATABASE /
    DEPRECATE_IN_DATABASE. Returns how many were deleted or deprecated."""
    found = {p.name for p in plans}
    targets = [t.get("Path", "") for t in (crawler.targets or {}).get("S3Targets", []) or []]
    gone = []
    for name, table in list(database.tables.items()):
        current = table.get_version(str(table._current_version))
        params = current.get("Parameters") or {}
        location = (current.get("StorageDescriptor") or {}).get("Location", "")
        if name in found or params.get("UPDATED_BY_CRAWLER") != crawler.name:
            continue
        if any(location.startswith(t.rstrip("/")) for t in targets):
            gone.append((name, table, current))
    if behavior == "LOG":
        for name, _, _ in gone:
            log.info("crawler %s: table %s has no data any more (DeleteBehavior=LOG)", crawler.name, name)
        return 0
    for name, table, current in gone:
        if behavior == "DELETE_FROM_DATABASE":
            del database.tables[name]
        else:
            new = json.loads(json.dumps(current, default=str))
            for drop in ("DatabaseName", "CreateTime", "UpdateTime", "VersionId", "CatalogId"):
                new.pop(drop, None)
            new.setdefault("Parameters", {})["DEPRECATED_BY_CRAWLER"] = "1"
            table.update(new)
    return len(gone)


def _metrics(crawler: glue_models.FakeCrawler) -> dict[str, Any]:
    metrics = crawler.__dict__.get("localaws_metrics")
    if metrics is None:
        metrics = {"runtimes": [], "TablesCreated": 0, "TablesUpdated": 0, "TablesDeleted": 0}
        crawler.localaws_metrics = metrics  # type: ignore[attr-defined]
    return metrics


# --- moto patches ------------------------------------------------------------------------------


def _start_crawler(self: glue_models.FakeCrawler) -> None:
    if self.crawls and self.crawls[-1].status in ("RUNNING", "STOPPING"):
        raise CrawlerRunningException(f"Crawler with name {self.name} has already started")
    crawl = LocalCrawl(self.name)
    self.crawls.append(crawl)
    RUNTIME.spawn(f"glue-crawler-{self.name}", _crawl, self, crawl)


def _stop_crawler(self: glue_models.FakeCrawler) -> None:
    if not self.crawls or self.crawls[-1].status != "RUNNING":
        raise CrawlerNotRunningException(f"Crawler with name {self.name} isn't running")
    crawl = self.crawls[-1]
    crawl.stop_requested = True
    crawl.status = "STOPPING"


def _status(self: glue_models.FakeCrawler) -> str:
    if not self.crawls:
        return "READY"
    status = self.crawls[-1].status
    return status if status in ("RUNNING", "STOPPING") else "READY"


_original_as_dict = glue_models.FakeCrawler.as_dict


def _as_dict(self: glue_models.FakeCrawler) -> dict[str, Any]:
    data = _original_as_dict(self)
    data.pop("LastCrawl", None)
    finished = [c for c in self.crawls if getattr(c, "finished", False)]
    if finished:
        last = finished[-1]
        data["LastCrawl"] = {
            "Status": last.last_crawl_status,
            "LogGroup": last.log_group,
            "LogStream": last.log_stream,
            "MessagePrefix": last.message_prefix,
            "StartTime": last.start_time,
        }
        if last.error_message:
            data["LastCrawl"]["ErrorMessage"] = last.error_message
    if self.crawls and not getattr(self.crawls[-1], "finished", True):
        data["CrawlElapsedTime"] = int((_now() - self.crawls[-1].start_time).total_seconds() * 1000)
    data = {k: v for k, v in data.items() if v is not None}
    return data


_UPDATABLE = {
    "Role": "role", "DatabaseName": "database_name", "Description": "description", "Targets": "targets",
    "Schedule": "schedule", "Classifiers": "classifiers", "TablePrefix": "table_prefix",
    "SchemaChangePolicy": "schema_change_policy", "RecrawlPolicy": "recrawl_policy",
    "LineageConfiguration": "lineage_configuration", "Configuration": "configuration",
    "CrawlerSecurityConfiguration": "crawler_security_configuration",
}


def _update_crawler(self: glue_models.GlueBackend, name: str, changes: dict[str, Any]) -> None:
    """UpdateCrawler: fields present in the request replace the crawler's; others stay.

    :raises CrawlerNotFoundException / EntityNotFoundException: unknown crawler.
    :raises CrawlerRunningException: the crawler is running.
    """
    crawler = self.get_crawler(name)
    if crawler.status != "READY":
        raise CrawlerRunningException("Cannot update Crawler while running. Please stop crawl or wait until "
                                      "it completes to update.")
    for key, attr in _UPDATABLE.items():
        if key in changes:
            setattr(crawler, attr, changes[key])
    crawler.version += 1
    crawler.last_updated = _now()


def _get_crawler_metrics(self: glue_models.GlueBackend, names: list[str] | None) -> list[dict[str, Any]]:
    """GetCrawlerMetrics for ``names`` (all crawlers when empty); unknown names are skipped."""
    out = []
    for crawler in self.crawlers.values():
        if names and crawler.name not in names:
            continue
        metrics = _metrics(crawler)
        runtimes = metrics["runtimes"]
        running = crawler.status != "READY"
        out.append({
            "CrawlerName": crawler.name,
            "TimeLeftSeconds": 0.0,
            "StillEstimating": running,
            "LastRuntimeSeconds": round(runtimes[-1], 3) if runtimes else 0.0,
            "MedianRuntimeSeconds": round(statistics.median(runtimes), 3) if runtimes else 0.0,
            "TablesCreated": metrics["TablesCreated"],
            "TablesUpdated": metrics["TablesUpdated"],
            "TablesDeleted": metrics["TablesDeleted"],
        })
    return out


def _resp_update_crawler(self: glue_responses.GlueResponse) -> ActionResult:
    params = dict(self.parameters)
    self.glue_backend.update_crawler(params.pop("Name"), params)
    return ActionResult({})


def _resp_get_crawler_metrics(self: glue_responses.GlueResponse) -> ActionResult:
    metrics = self.glue_backend.get_crawler_metrics(self._get_param("CrawlerNameList") or [])
    max_results = self._get_int_param("MaxResults") or len(metrics) or 1
    start = int(self._get_param("NextToken") or 0)
    page = metrics[start:start + max_results]
    out: dict[str, Any] = {"CrawlerMetricsList": page}
    if start + max_results < len(metrics):
        out["NextToken"] = str(start + max_results)
    return ActionResult(out)


def install() -> None:
    """Patch moto's Glue crawler model and add UpdateCrawler / GetCrawlerMetrics (idempotent)."""
    glue_models.FakeCrawler.start_crawler = _start_crawler  # type: ignore[method-assign]
    glue_models.FakeCrawler.stop_crawler = _stop_crawler  # type: ignore[method-assign]
    glue_models.FakeCrawler.status = property(_status)  # type: ignore[assignment,method-assign]
    glue_models.FakeCrawler.as_dict = _as_dict  # type: ignore[method-assign]
    glue_models.GlueBackend.update_crawler = _update_crawler  # type: ignore[attr-defined]
    glue_models.GlueBackend.get_crawler_metrics = _get_crawler_metrics  # type: ignore[attr-defined]
    glue_responses.GlueResponse.update_crawler = _resp_update_crawler  # type: ignore[attr-defined]
    glue_responses.GlueResponse.get_crawler_metrics = _resp_get_crawler_metrics  # type: ignore[attr-defined]


def recover_after_restart() -> int:
    """Mark crawls that were RUNNING or STOPPING at the last snapshot as FAILED; returns how many.

    Their threads died with the previous server; the crawler is READY again and can be started.
    """
    count = 0
    for account in glue_models.glue_backends.values():
        for backend in account.values():
            for crawler in backend.crawlers.values():
                for crawl in getattr(crawler, "crawls", []):
                    if isinstance(crawl, LocalCrawl) and not crawl.finished:
                        crawl.error_message = "localaws restarted while this crawl was running"
                        crawl.status = "FAILED"
                        crawl.end_time = _now()
                        count += 1
    return count
