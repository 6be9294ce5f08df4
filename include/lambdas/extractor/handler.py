"""Lambda "extractor": one day's bronze zip -> validated silver Parquet + quarantined rejects.

Handler ``handler.handler`` (python3.12). On AWS, pyarrow and boto3 come from the AWS-managed
"AWS SDK for pandas" layer; the function zip (built by ``lake build lambda``) holds only this
file, ``contracts.py`` (``lake/contracts.py`` unchanged) and the contracts under ``datasets/``.

Event (every key but ``ds`` may instead come from an environment variable; defaults in brackets)::

    {"ds": "2013-01-05",                         # the day (logical date), YYYY-MM-DD
     "dataset": "flights",                       # env LAKE_DATASET [flights]
     "bucket": "lake-bronze",                    # bronze bucket; env LAKE_BRONZE_BUCKET [lake-bronze]
     "key": "flights/ingest_date=.../x.csv.zip", # optional: default from the contract
     "manifest_key": "...manifest.json",         # optional: default from the contract
     "silver_bucket": "lake-silver",             # env LAKE_SILVER_BUCKET [lake-silver]
     "silver_prefix": "",                        # env LAKE_SILVER_PREFIX [""]
     "quarantine_bucket": "lake-silver",         # env LAKE_QUARANTINE_BUCKET [the silver bucket]
     "quarantine_prefix": "quarantine"}          # env LAKE_QUARANTINE_PREFIX [quarantine]

What happens (the rules come from the dataset contract, ``include/datasets/<dataset>.json``):

1. The manifest (JSON: ``rows``, ``sha256``, ``bytes``) and the zip are read from bronze. The
   zip is downloaded to a temporary file and its sha256 must equal the manifest's.
2. The zip must hold the contract's member (``flights_YYYYMMDD.csv``). The CSV is decompressed
   and parsed as a stream, in blocks of :data:`BLOCK_BYTES`, with ``pyarrow.csv.open_csv``: the
   whole file is never in memory. Every line is numbered as it streams by (physical line
   number; the header is line 1; blank lines are skipped and not counted as rows).
3. The header must equal the contract's column names in order.
4. A row is rejected, with the first reason found in column order, when it has the wrong
   number of fields (``wrong_field_count``), a null in a required column
   (``missing_required:<col>``), a value that does not parse as the column's type
   (``unparseable:<col>``), a value outside the column's ``min``/``max``
   (``out_of_range:<col>``), or a date (``source.day_columns``) other than ``ds``
   (``wrong_day``). Nulls are the contract's ``null_values`` (``NA`` and empty for flights).
5. Rows read must equal the manifest's ``rows``, and rows read = rows written + rows rejected.
6. Only then is the day overwritten: the day's existing silver and quarantine objects are
   deleted and the new ones uploaded, so a rerun leaves exactly one copy and a bad file never
   destroys a good partition. Silver: ``s3://<silver>/<prefix>/<table>/dt=YYYY-MM-DD/part-00000.parquet``
   (snappy), typed as the contract says. Quarantine: ``.../quarantine/<table>/dt=YYYY-MM-DD/part-00000.parquet``
   with ``line_number`` (int64), ``reason`` (string), ``raw_line`` (string, for rows that could
   not be split into fields) and every contract column as the original text.

A corrupt zip, a missing member, a wrong header, an empty file, a missing object or a manifest
mismatch raises :class:`BronzeFileError` naming the file and the reason (Lambda answers with
``FunctionError``); the bronze object is never modified or deleted.

Result (JSON)::

    {"dataset", "ds", "source": "s3://...zip", "manifest": "s3://...json",
     "silver_path": "s3://.../dt=YYYY-MM-DD/", "silver_objects": [...],
     "quarantine_path": "s3://.../dt=YYYY-MM-DD/", "quarantine_objects": [...],
     "rows_read", "rows_written", "rows_rejected", "rejected_by_reason": {reason: rows},
     "bytes_in" (zip bytes), "bytes_uncompressed" (CSV bytes), "bytes_out" (Parquet bytes written),
     "seconds"}
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

try:  # the Lambda zip: contracts.py sits next to this file
    import contracts  # type: ignore[import-not-found]
except ImportError:  # the repository: lake/contracts.py
    from lake import contracts  # type: ignore[no-redef]

log = logging.getLogger("extractor")
log.setLevel(logging.INFO)

#: Bytes of CSV parsed per block (the unit of memory use): 1 MiB.
BLOCK_BYTES = 1 << 20
#: Name of the line-number column added while streaming.
LINE_COLUMN = "__line_number"
SILVER_OBJECT = "part-00000.parquet"

_INT_RE = r"^[+-]?[0-9]{1,18}$"
_FLOAT_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NUMERIC = ("int8", "int16", "int32", "int64", "float64")
_BOOL_TRUE = ("true", "TRUE", "True", "1")
_BOOL_FALSE = ("false", "FALSE", "False", "0")

ARROW_TYPES: dict[str, pa.DataType] = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


class BronzeFileError(Exception):
    """A bronze file cannot be loaded at all: the message names the file and the reason.

    :param uri: ``s3://bucket/key`` (or a local path) of the file.
    :param reason: short reason (``corrupt zip``, ``wrong header``, ``empty file``,
        ``manifest mismatch``, ``missing file``, ``missing member``, ``bad manifest``).
    :param detail: what exactly was found.
    """

    def __init__(self, uri: str, reason: str, detail: str = "") -> None:
        self.uri = uri
        self.reason = reason
        self.detail = detail
        super().__init__(f"{uri}: {reason}" + (f": {detail}" if detail else ""))


# --- schemas -----------------------------------------------------------------------------------


def silver_schema(contract: "contracts.Contract") -> pa.Schema:
    """Arrow schema of the silver table: the contract's columns and types; required columns
    are marked non-nullable."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=not c.required) for c in contract.columns])


def quarantine_schema(contract: "contracts.Contract") -> pa.Schema:
    """Arrow schema of quarantine files: ``line_number`` int64, ``reason`` string, ``raw_line``
    string, then every contract column as string (the original text; null where it was a null
    value or the line could not be split)."""
    return pa.schema(
        [pa.field("line_number", pa.int64()), pa.field("reason", pa.string()), pa.field("raw_line", pa.string())]
        + [pa.field(c.name, pa.string()) for c in contract.columns]
    )


# --- streaming ---------------------------------------------------------------------------------


class NumberedLines(io.RawIOBase):
    """A read-only byte stream that prefixes every line of ``raw`` with its line number.

    The header (line 1) gets the column name :data:`LINE_COLUMN`; line ``n`` becomes
    ``b"n<delimiter>" + line``. Blank lines are dropped (their numbers are still counted).
    Reads ``chunk`` bytes of ``raw`` at a time, so memory stays bounded.
    """

    def __init__(self, raw: BinaryIO, delimiter: str = ",", chunk: int = BLOCK_BYTES) -> None:
        super().__init__()
        self._raw = raw
        self._delim = delimiter.encode()
        self._chunk = chunk
        self._rest = b""
        self._pending = b""
        self._pos = 0
        self._line = 0
        self._eof = False
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        data = self._raw.read(self._chunk)
        if data:
            self.bytes_read += len(data)
            lines = (self._rest + data).split(b"\n")
            self._rest = lines.pop()
        else:
            self._eof = True
            lines = [self._rest] if self._rest else []
            self._rest = b""
        out = []
        for line in lines:
            self._line += 1
            if not line.strip(b"\r \t"):
                continue
            if self._line == 1:
                out.append(LINE_COLUMN.encode() + self._delim + line.removeprefix(b"\xef\xbb\xbf"))
            else:
                out.append(b"%d%b%b" % (self._line, self._delim, line))
        self._pending = b"\n".join(out) + b"\n" if out else b""
        self._pos = 0

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self._pos >= len(self._pending):
            if self._eof:
                return 0
            self._fill()
        n = min(len(buffer), len(self._pending) - self._pos)
        buffer[:n] = self._pending[self._pos : self._pos + n]
        self._pos += n
        return n


def _parse(raw: pa.Array, col: "contracts.Column") -> tuple[pa.Array, pa.Array]:
    """Parse a string array as ``col``'s type -> (typed values with nulls, bad mask).

    ``bad`` is true where a non-null value does not parse or does not fit the type.
    """
    target = ARROW_TYPES[col.type]
    if col.type == "string":
        return raw, pa.repeat(pa.scalar(False), len(raw))
    text = pc.utf8_trim_whitespace(raw)
    if col.type in contracts.INTEGER_TYPES:
        ok = pc.fill_null(pc.match_substring_regex(text, _INT_RE), True)
        values = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.int64())
        lo, hi = contracts.INTEGER_TYPES[col.type]
        fits = pc.fill_null(pc.and_(pc.greater_equal(values, lo), pc.less_equal(values, hi)), True)
        values = pc.if_else(fits, values, pa.scalar(None, pa.int64()))
        bad = pc.or_(pc.invert(ok), pc.invert(fits))
        return pc.cast(values, target, safe=False), bad
    if col.type == "float64":
        ok = pc.fill_null(pc.match_substring_regex(text, _FLOAT_RE), True)
        values = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
        return values, pc.invert(ok)
    if col.type == "boolean":
        is_true = pc.is_in(text, value_set=pa.array(_BOOL_TRUE))
        is_false = pc.is_in(text, value_set=pa.array(_BOOL_FALSE))
        ok = pc.fill_null(pc.or_(is_true, is_false), True)
        values = pc.if_else(ok, is_true, pa.scalar(None, pa.bool_()))
        values = pc.if_else(pc.is_null(text), pa.scalar(None, pa.bool_()), values)
        return values, pc.invert(ok)
    # date / timestamp: strptime with the contract's format; a failure becomes null.
    parsed = pc.strptime(text, format=col.format, unit="us", error_is_null=True)
    bad = pc.and_(pc.is_valid(text), pc.is_null(parsed))
    if col.type == "date":
        return pc.cast(parsed, pa.date32()), bad
    return pc.cast(parsed, target), bad


def _mark(reason: pa.Array, mask: pa.Array, label: str) -> pa.Array:
    """Set ``label`` where ``mask`` holds and no earlier reason was recorded."""
    hit = pc.and_(pc.is_null(reason), pc.fill_null(mask, False))
    return pc.if_else(hit, pa.scalar(label, pa.string()), reason)


def validate_batch(batch: pa.RecordBatch, contract: "contracts.Contract", day: date) -> tuple[pa.Table, pa.Table]:
    """Split one parsed block (all columns as strings plus :data:`LINE_COLUMN`) into
    (good rows typed as :func:`silver_schema`, rejected rows as :func:`quarantine_schema`).

    The rules and reasons are listed in the module docstring (step 4).
    """
    n = batch.num_rows
    reason = pa.nulls(n, pa.string())
    typed: dict[str, pa.Array] = {}
    for col in contract.columns:
        raw = batch.column(col.name)
        values, bad = _parse(raw, col)
        if col.required:
            reason = _mark(reason, pc.is_null(raw), f"missing_required:{col.name}")
        reason = _mark(reason, bad, f"unparseable:{col.name}")
        if (col.min is not None or col.max is not None) and col.type in _NUMERIC:
            as_float = pc.cast(values, pa.float64())
            if col.min is not None:
                reason = _mark(reason, pc.less(as_float, float(col.min)), f"out_of_range:{col.name}")
            if col.max is not None:
                reason = _mark(reason, pc.greater(as_float, float(col.max)), f"out_of_range:{col.name}")
        typed[col.name] = values
    day_cols = contract.source.day_columns
    if day_cols:
        same = None
        for part, value in (("year", day.year), ("month", day.month), ("day", day.day)):
            if part in day_cols:
                eq = pc.equal(pc.cast(typed[day_cols[part]], pa.int64()), value)
                same = eq if same is None else pc.and_(same, eq)
        reason = _mark(reason, pc.invert(same), "wrong_day")
    good_mask = pc.is_null(reason)
    good = pa.Table.from_arrays([pc.filter(typed[c.name], good_mask) for c in contract.columns],
                                schema=silver_schema(contract))
    bad_mask = pc.invert(good_mask)
    qschema = quarantine_schema(contract)
    rejected = pa.table(
        [pc.cast(batch.column(LINE_COLUMN), pa.int64()), reason, pa.nulls(n, pa.string())]
        + [batch.column(c.name) for c in contract.columns],
        schema=qschema,
    ).filter(bad_mask)
    return good, rejected


@dataclass
class ExtractResult:
    """What :func:`extract_file` did: rows (read = written + rejected), rejects by reason, and
    bytes (``bytes_uncompressed``: CSV bytes decompressed; ``bytes_silver``/``bytes_quarantine``:
    Parquet bytes written locally)."""

    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    bytes_uncompressed: int = 0
    bytes_silver: int = 0
    bytes_quarantine: int = 0


def _open_member(zip_path: Path, contract: "contracts.Contract", day: date, uri: str) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BronzeFileError(uri, "corrupt zip", str(exc)) from exc
    member = contract.member_name(day)
    names = zf.namelist()
    if member not in names:
        zf.close()
        raise BronzeFileError(uri, "missing member", f"expected {member}, the zip holds {names}")
    info = zf.getinfo(member)
    if info.file_size == 0:
        zf.close()
        raise BronzeFileError(uri, "empty file", f"{member} is 0 bytes")
    return zf, info


def extract_file(zip_path: str | Path, contract: "contracts.Contract", day: date | str, silver_file: str | Path,
                 quarantine_file: str | Path, *, uri: str | None = None) -> ExtractResult:
    """Validate one local bronze zip and write the silver and quarantine Parquet files.

    :param zip_path: the bronze zip (local file).
    :param day: the partition day; rows of another day are rejected when the contract has
        ``source.day_columns``.
    :param silver_file: local path for good rows (snappy Parquet, :func:`silver_schema`); always written.
    :param quarantine_file: local path for rejected rows (:func:`quarantine_schema`); written
        only when there are rejects.
    :param uri: name of the file in error messages (default: ``zip_path``).
    :returns: an :class:`ExtractResult` (rows, rejects by reason, bytes).
    :raises BronzeFileError: corrupt zip, missing member, empty file (0 bytes, or a header and
        no rows when the contract does not ``allow_empty``), wrong header.
    """
    day = day if isinstance(day, date) else date.fromisoformat(str(day))
    uri = uri or str(zip_path)
    src = contract.source
    result = ExtractResult()
    zf, info = _open_member(Path(zip_path), contract, day, uri)
    malformed: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        number, _, text = row.text.partition(src.delimiter)
        malformed.append((int(number), text))
        return "skip"

    expected = contract.column_names
    row_group_rows = int(contract.silver.get("row_group_rows", 131072))
    with zf, zf.open(info) as member:
        stream = NumberedLines(member, src.delimiter)
        try:
            reader = pacsv.open_csv(
                pa.PythonFile(stream, mode="r"),
                read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, encoding=src.encoding),
                parse_options=pacsv.ParseOptions(delimiter=src.delimiter, invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in [LINE_COLUMN, *expected]},
                    null_values=list(src.null_values),
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise BronzeFileError(uri, "corrupt zip", f"{info.filename}: {exc}") from exc
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                raise BronzeFileError(uri, "empty file", f"{info.filename} has no header") from exc
            if "CRC" in str(exc) or "decompress" in str(exc).lower() or "zip" in str(exc).lower():
                raise BronzeFileError(uri, "corrupt zip", f"{info.filename}: {exc}") from exc
            raise BronzeFileError(uri, "unreadable csv", f"{info.filename}: {exc}") from exc
        header = reader.schema.names[1:]
        if header != expected:
            missing = [c for c in expected if c not in header]
            extra = [c for c in header if c not in expected]
            raise BronzeFileError(
                uri, "wrong header",
                f"{info.filename} has columns {header}; the contract {contract.name} expects {expected}"
                f" (missing {missing}, unexpected {extra})",
            )
        silver_writer = pq.ParquetWriter(str(silver_file), silver_schema(contract), compression="snappy")
        quarantine_writer: pq.ParquetWriter | None = None
        pending: list[pa.Table] = []
        pending_rows = 0

        def reject(rejected: pa.Table) -> None:
            nonlocal quarantine_writer
            result.rows_rejected += rejected.num_rows
            result.rejected_by_reason.update(rejected["reason"].to_pylist())
            if quarantine_writer is None:
                quarantine_writer = pq.ParquetWriter(str(quarantine_file), quarantine_schema(contract),
                                                     compression="snappy")
            quarantine_writer.write_table(rejected.sort_by("line_number"))

        def take_malformed() -> None:
            if malformed:
                rows = [{"line_number": n, "reason": "wrong_field_count", "raw_line": text} for n, text in malformed]
                result.rows_read += len(rows)
                malformed.clear()
                reject(pa.Table.from_pylist(rows, schema=quarantine_schema(contract)))

        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise BronzeFileError(uri, "corrupt zip", f"{info.filename}: {exc}") from exc
                except pa.ArrowInvalid as exc:
                    if "CRC" in str(exc) or "zip" in str(exc).lower() or "decompress" in str(exc).lower():
                        raise BronzeFileError(uri, "corrupt zip", f"{info.filename}: {exc}") from exc
                    raise BronzeFileError(uri, "unreadable csv", f"{info.filename}: {exc}") from exc
                take_malformed()
                result.rows_read += batch.num_rows
                good, rejected = validate_batch(batch, contract, day)
                if rejected.num_rows:
                    reject(rejected)
                result.rows_written += good.num_rows
                pending.append(good)
                pending_rows += good.num_rows
                if pending_rows >= row_group_rows:
                    silver_writer.write_table(pa.concat_tables(pending))
                    pending, pending_rows = [], 0
            take_malformed()  # invalid rows of the last block
            if pending_rows or result.rows_written == 0:
                silver_writer.write_table(pa.concat_tables(pending) if pending else silver_schema(contract).empty_table())
        finally:
            silver_writer.close()
            if quarantine_writer is not None:
                quarantine_writer.close()
        result.bytes_uncompressed = stream.bytes_read
    if result.rows_read != result.rows_written + result.rows_rejected:
        raise RuntimeError(f"{uri}: rows read {result.rows_read} != written {result.rows_written} "
                           f"+ rejected {result.rows_rejected} (a bug in the extractor)")
    if result.rows_read == 0 and not src.allow_empty:
        raise BronzeFileError(uri, "empty file", f"{info.filename} has a header but no data rows")
    result.bytes_silver = Path(silver_file).stat().st_size
    if result.rows_rejected:
        result.bytes_quarantine = Path(quarantine_file).stat().st_size
    return result


# --- S3 ----------------------------------------------------------------------------------------


def _config(event: dict[str, Any]) -> dict[str, str]:
    """Merge the event with the environment's defaults (see the module docstring)."""
    if not event.get("ds"):
        raise ValueError("the event needs 'ds' (YYYY-MM-DD), the day to extract")
    silver_bucket = event.get("silver_bucket") or os.environ.get("LAKE_SILVER_BUCKET", "lake-silver")
    return {
        "ds": str(event["ds"]),
        "dataset": event.get("dataset") or os.environ.get("LAKE_DATASET", "flights"),
        "bucket": event.get("bucket") or os.environ.get("LAKE_BRONZE_BUCKET", "lake-bronze"),
        "key": event.get("key") or "",
        "manifest_key": event.get("manifest_key") or "",
        "silver_bucket": silver_bucket,
        "silver_prefix": event.get("silver_prefix", os.environ.get("LAKE_SILVER_PREFIX", "")),
        "quarantine_bucket": event.get("quarantine_bucket") or os.environ.get("LAKE_QUARANTINE_BUCKET", silver_bucket),
        "quarantine_prefix": event.get("quarantine_prefix", os.environ.get("LAKE_QUARANTINE_PREFIX", "quarantine")),
    }


def _s3():
    import boto3  # imported here so local use of extract_file needs no boto3

    return boto3.client("s3")


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket")


def _read_manifest(s3, bucket: str, key: str) -> dict[str, Any]:
    uri = f"s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:  # botocore ClientError
        if _is_missing(exc):
            raise BronzeFileError(uri, "missing manifest", "the source writes a manifest next to every file") from exc
        raise
    try:
        manifest = json.loads(body)
        int(manifest["rows"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BronzeFileError(uri, "bad manifest", f"not JSON with an integer 'rows': {exc}") from exc
    return manifest


def _delete_prefix(s3, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix``; returns how many."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True})
    return len(keys)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(BLOCK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract(event: dict[str, Any], s3=None, contract_loader: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Extract one day from bronze to silver on S3 (the handler without the Lambda context).

    :param event: see the module docstring.
    :returns: the result documented in the module docstring.
    :raises BronzeFileError: the file is missing, corrupt, has a wrong header, is empty, or does
        not match its manifest (rows or sha256). Silver and quarantine are then left untouched.
    :raises contracts.ContractError: the dataset has no valid contract.
    """
    started = time.monotonic()
    cfg = _config(event)
    contract = (contract_loader or contracts.load)(cfg["dataset"])
    day = date.fromisoformat(cfg["ds"])
    s3 = s3 or _s3()
    bucket = cfg["bucket"]
    key = cfg["key"] or contract.source_key(day)
    manifest_key = cfg["manifest_key"] or contract.manifest_key(day)
    uri = f"s3://{bucket}/{key}"
    manifest = _read_manifest(s3, bucket, manifest_key)
    silver_prefix = contract.partition_prefix(day, cfg["silver_prefix"])
    quarantine_prefix = contract.partition_prefix(day, cfg["quarantine_prefix"])
    with tempfile.TemporaryDirectory(prefix="extractor-") as tmp:
        local_zip = Path(tmp) / "source.zip"
        try:
            s3.download_file(bucket, key, str(local_zip))
        except Exception as exc:  # botocore ClientError
            if _is_missing(exc):
                raise BronzeFileError(uri, "missing file", "no such object") from exc
            raise
        bytes_in = local_zip.stat().st_size
        log.info("%s: read %d bytes (manifest: %s rows)", uri, bytes_in, manifest["rows"])
        sha = _sha256(local_zip)
        if manifest.get("sha256") and manifest["sha256"] != sha:
            raise BronzeFileError(uri, "manifest mismatch", f"sha256 is {sha}, the manifest says {manifest['sha256']}")
        if manifest.get("bytes") is not None and int(manifest["bytes"]) != bytes_in:
            raise BronzeFileError(uri, "manifest mismatch", f"{bytes_in} bytes, the manifest says {manifest['bytes']}")
        silver_file = Path(tmp) / "silver.parquet"
        quarantine_file = Path(tmp) / "quarantine.parquet"
        result = extract_file(local_zip, contract, day, silver_file, quarantine_file, uri=uri)
        if result.rows_read != int(manifest["rows"]):
            raise BronzeFileError(
                uri, "manifest mismatch", f"{result.rows_read} rows read, the manifest says {manifest['rows']}"
            )
        deleted = _delete_prefix(s3, cfg["silver_bucket"], silver_prefix)
        deleted += _delete_prefix(s3, cfg["quarantine_bucket"], quarantine_prefix)
        silver_key = silver_prefix + SILVER_OBJECT
        s3.upload_file(str(silver_file), cfg["silver_bucket"], silver_key)
        quarantine_objects = []
        if result.rows_rejected:
            quarantine_key = quarantine_prefix + SILVER_OBJECT
            s3.upload_file(str(quarantine_file), cfg["quarantine_bucket"], quarantine_key)
            quarantine_objects.append(f"s3://{cfg['quarantine_bucket']}/{quarantine_key}")
    seconds = time.monotonic() - started
    out = {
        "dataset": contract.name,
        "ds": day.isoformat(),
        "source": uri,
        "manifest": f"s3://{bucket}/{manifest_key}",
        "silver_path": f"s3://{cfg['silver_bucket']}/{silver_prefix}",
        "silver_objects": [f"s3://{cfg['silver_bucket']}/{silver_key}"],
        "quarantine_path": f"s3://{cfg['quarantine_bucket']}/{quarantine_prefix}",
        "quarantine_objects": quarantine_objects,
        "rows_read": result.rows_read,
        "rows_written": result.rows_written,
        "rows_rejected": result.rows_rejected,
        "rejected_by_reason": dict(sorted(result.rejected_by_reason.items())),
        "bytes_in": bytes_in,
        "bytes_uncompressed": result.bytes_uncompressed,
        "bytes_out": result.bytes_silver + result.bytes_quarantine,
        "seconds": round(seconds, 3),
    }
    log.info(
        "%s %s: read %d rows (%d bytes zipped, %d bytes CSV), wrote %d rows to %s, rejected %d rows %s to %s; "
        "%d bytes of Parquet; replaced %d old objects; %.2f s",
        contract.name, out["ds"], result.rows_read, bytes_in, result.bytes_uncompressed, result.rows_written,
        out["silver_path"], result.rows_rejected, out["rejected_by_reason"], out["quarantine_path"], out["bytes_out"],
        deleted, seconds,
    )
    return out


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda entry point: :func:`extract` on the event (see the module docstring)."""
    if not logging.getLogger().handlers:  # outside Lambda (local runs): log to stderr
        logging.basicConfig(level=logging.INFO)
    return extract(event)
