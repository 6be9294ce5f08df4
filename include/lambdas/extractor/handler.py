"""Lambda "extractor": one day's bronze zip -> validated silver Parquet + quarantined rejects.

Handler ``handler.handler`` (python3.12). On AWS, pyarrow and boto3 come from the AWS-managed
"AWS SDK for pandas" layer; the function zip (built by ``lake build lambda``) holds only the
modules of this folder, ``contracts.py`` (``lake/contracts.py`` unchanged) and the contracts
under ``datasets/``. This file is the entry point: it reads the event, gets and checks the
objects on S3 and puts the day's files in place (:func:`extract`), and runs the pieces on the
local zip (:func:`extract_file`): ``chunks.py`` reads the CSV in chunks of whole lines,
``validate.py`` parses and checks them against the contract, ``parquet_out.py`` writes silver
and quarantine. They import each other by their plain names, as at the root of the zip.

Event (every field required; built by ``lake.layout.Layout.lambda_payload``, so the names come
from one place and the extractor derives none; a missing field is a ``ValueError`` naming it)::

    {"ds": "2013-01-05",                                          # the day (logical date), YYYY-MM-DD
     "dataset": "flights",                                        # the contract
     "bucket": "lake-bronze",                                     # bronze bucket
     "key": "flights/ingest_date=2013-01-05/flights_20130105.csv.zip",
     "manifest_key": "flights/ingest_date=2013-01-05/flights_20130105.manifest.json",
     "silver_bucket": "lake-silver",
     "silver_prefix": "flights/dt=2013-01-05/",                   # the day's silver partition
     "quarantine_bucket": "lake-silver",
     "quarantine_prefix": "quarantine/flights/dt=2013-01-05/",    # the day's rejected rows
     "partition": {"name": "dt", "value": "2013-01-05"}}          # both prefixes end with name=value/

What happens (the rules come from the dataset contract, ``include/datasets/<dataset>.json``):

1. The manifest (JSON: ``rows``, ``sha256``, ``bytes``) and the zip are read from bronze. The
   zip is downloaded to a temporary file and its sha256 must equal the manifest's.
2. The zip must hold the contract's member (``flights_YYYYMMDD.csv``) and nothing else (folder
   entries aside): a second file is an error, not ignored. The CSV is decompressed as a stream by
   a background thread and cut into chunks of whole lines of about ``chunks.CHUNK_BYTES`` (at most
   ``chunks.READ_AHEAD`` chunks wait), so the whole file is never in memory. The CSV is RFC 4180
   with pyarrow's quoting rules: a field that starts with ``"`` is quoted, ``""`` inside it is a
   quote, and it may hold delimiters and line breaks. A record is therefore one line or, when a
   quoted field holds line breaks, several; a chunk that ends inside a quoted field hands the
   unfinished record on to the next chunk (a record longer than ``validate.MAX_RECORD_BYTES``, e.g. a
   quote that is never closed, makes the file unreadable). Every row carries the physical line
   number on which its record starts (the header is line 1; every ``\\n`` starts a new line,
   also inside a quoted field; blank lines between records are skipped and not counted as
   rows). A chunk is parsed by ``pyarrow.csv`` (all columns as text) and validated with
   vectorised kernels. The rows' line numbers are the chunk's first line + row index (+ the
   line breaks inside the earlier rows' values) when that is provably exact (no ``\\r`` that is
   not part of ``\\r\\n``, as many lines as rows plus line breaks in values: no blank line, no
   malformed row, and the chunk does not end inside a quoted field; see ``validate.ChunkParser._fast``);
   otherwise the chunk takes the exact path: every record is prefixed with its line number
   (``chunks.NumberedLines``) before it is parsed. Both paths give the same rows, rejects,
   reasons and line numbers.
3. The header must hold the contract's column names, each once, in any order: columns are
   matched by name (silver always has the contract's order). A missing, unexpected or repeated
   column is an error: a new column is a conscious change of the contract, never dropped.
4. A row is rejected, with the first reason found, when its bytes are not valid UTF-8 (for a
   UTF-8 contract: ``invalid_utf8:<col>``, naming the first such column; checked before every
   other rule), when it has the wrong number of fields (``wrong_field_count``), or else, in
   column order, for a null in a required column (``missing_required:<col>``), a value that
   does not parse as the column's type (``unparseable:<col>``), a value outside the column's
   ``min``/``max`` (``out_of_range:<col>``), or a date (``source.day_columns``) other than
   ``ds`` (``wrong_day``). Nulls are the contract's ``null_values`` (``NA`` and empty for flights;
   a quoted value is never null).
5. Rows read must equal the manifest's ``rows``, and rows read = rows written + rows rejected.
   A file with a header and no data rows is an error unless the contract has ``allow_empty``.
6. Only then is the day overwritten: the day's existing silver and quarantine objects are
   deleted and the new ones uploaded, so a rerun leaves exactly one copy and a bad file never
   destroys a good partition. Silver: ``s3://<silver_bucket>/<silver_prefix>part-00000.parquet``
   (snappy), typed as the contract says. Quarantine: ``s3://<quarantine_bucket>/<quarantine_prefix>part-00000.parquet``
   with ``line_number`` (int64), ``reason`` (string), ``raw_line`` (string, the record's text
   for rows that could not be split into fields) and every contract column as the original
   text. Text that is not valid UTF-8 is kept with every invalid byte written as the four
   characters ``\\xNN`` (Python's ``backslashreplace``), so the original bytes can be told.

A corrupt zip, a zip without the member or with another file, a wrong header, an empty file
(0 bytes, or a header and no data rows), an unreadable CSV, a missing object or a manifest
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
import json
import logging
import os
import sys
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

# The extractor's modules import each other by their plain names: in the Lambda zip this folder
# is the zip's root, which Lambda puts first on sys.path. Imported by path from the repository
# (tests, bench/extractor.py), the folder is put there too, so both see the same modules.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import chunks
import parquet_out
import validate
from chunks import BronzeFileError

try:  # the Lambda zip: contracts.py sits next to this file
    import contracts  # type: ignore[import-not-found]
except ImportError:  # the repository: lake/contracts.py
    from lake import contracts  # type: ignore[no-redef]

__all__ = ["BronzeFileError", "ExtractResult", "extract", "extract_file", "handler"]

log = logging.getLogger("extractor")
log.setLevel(logging.INFO)

SILVER_OBJECT = "part-00000.parquet"


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


def extract_file(zip_path: str | Path, contract: contracts.Contract, day: date | str, silver_file: str | Path,
                 quarantine_file: str | Path, *, uri: str | None = None) -> ExtractResult:
    """Validate one local bronze zip and write the silver and quarantine Parquet files.

    Three threads share the work: one decompresses (``chunks.Chunks``), the caller's parses and
    validates chunk by chunk (pyarrow parses a chunk's blocks on its CPU pool), one writes the
    silver row groups. Memory is bounded by a few chunks and row groups (and the longest record,
    at most ``validate.MAX_RECORD_BYTES``), whatever the file size.

    :param zip_path: the bronze zip (local file).
    :param day: the partition day; rows of another day are rejected when the contract has
        ``source.day_columns``.
    :param silver_file: local path for good rows (snappy Parquet, ``validate.silver_schema``, row
        groups of the contract's ``silver.row_group_rows``); always written.
    :param quarantine_file: local path for rejected rows (``validate.quarantine_schema``, in line
        order); written only when there are rejects.
    :param uri: name of the file in error messages (default: ``zip_path``).
    :returns: an :class:`ExtractResult` (rows, rejects by reason, bytes).
    :raises BronzeFileError: corrupt zip, missing member, unexpected member (a second file),
        empty file (0 bytes), no data rows (a header only, when the contract does not
        ``allow_empty``), wrong header (a column missing, unexpected or repeated), unreadable CSV.
    """
    day = day if isinstance(day, date) else date.fromisoformat(str(day))
    uri = uri or str(zip_path)
    zf, info = chunks.open_member(Path(zip_path), contract.member_name(day), uri, contract.name)
    parser = validate.ChunkParser(contract, day, uri, info.filename)
    result = ExtractResult()
    with parquet_out.ParquetOut(contract, silver_file, quarantine_file) as out:
        with zf, zf.open(info) as member:
            result.rows_read, result.bytes_uncompressed = _load_rows(member, parser, out)
        if parser.header is None:
            raise BronzeFileError(uri, "empty file", f"{info.filename} has no header")
        out.finish()
    result.rows_written, result.rows_rejected = out.rows_written, out.rows_rejected
    result.rejected_by_reason = out.rejected_by_reason
    _check_counts(result, contract, uri, info.filename)
    result.bytes_silver = Path(silver_file).stat().st_size
    if result.rows_rejected:
        result.bytes_quarantine = Path(quarantine_file).stat().st_size
    return result


def _load_rows(member: BinaryIO, parser: validate.ChunkParser, out: parquet_out.ParquetOut) -> tuple[int, int]:
    """Stream the open zip ``member`` chunk by chunk through ``parser`` (the header first) into
    ``out`` -> (rows read, CSV bytes decompressed). The silver file is opened once the header is
    accepted.

    :raises BronzeFileError: ``corrupt zip`` (the member cannot be decompressed: bad data or
        CRC), and what :class:`validate.ChunkParser` raises (``wrong header``, ``unreadable csv``).
    """
    rows = 0
    reader = chunks.Chunks(member)
    try:
        for chunk, newlines in reader:
            if parser.header is None:  # the first non-blank line is the header
                chunk = parser.take_header(chunk)
                if chunk is None:
                    continue
                out.open_silver()
                if not chunk:
                    continue
                newlines = chunk.count(b"\n")
            parsed = parser.rows(chunk, newlines)
            rows += _rows(*parsed)
            out.take(*parsed)
        parsed = parser.last_rows()
        if parsed is not None:
            rows += _rows(*parsed)
            out.take(*parsed)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise BronzeFileError(parser.uri, "corrupt zip", f"{parser.member}: {exc}") from exc
    finally:
        reader.close()
    return rows, reader.bytes_read


def _rows(good, rejected, malformed: list) -> int:
    """Rows in one chunk's result (good + rejected + malformed)."""
    return len(malformed) + (good.num_rows if good is not None else 0) + (
        rejected.num_rows if rejected is not None else 0)


def _check_counts(result: ExtractResult, contract: contracts.Contract, uri: str, member: str) -> None:
    """Rows read must be rows written + rows rejected, and a day without data rows is an error
    unless the contract has ``source.allow_empty``.

    :raises RuntimeError: the counts do not add up (a bug in the extractor).
    :raises BronzeFileError: ``no data rows``.
    """
    if result.rows_read != result.rows_written + result.rows_rejected:
        raise RuntimeError(f"{uri}: rows read {result.rows_read} != written {result.rows_written} "
                           f"+ rejected {result.rows_rejected} (a bug in the extractor)")
    if result.rows_read == 0 and not contract.source.allow_empty:
        raise BronzeFileError(uri, "no data rows", f"{member} has a header and no data rows; the "
                              f"contract {contract.name} does not allow an empty day (source.allow_empty)")


# --- S3 ----------------------------------------------------------------------------------------


#: Event fields, every one required: the caller (the DAG, through ``lake.layout.Layout.lambda_payload``)
#: names every object, so the extractor derives no name itself.
EVENT_FIELDS = ("ds", "dataset", "bucket", "key", "manifest_key", "silver_bucket", "silver_prefix",
                "quarantine_bucket", "quarantine_prefix", "partition")


def _config(event: dict[str, Any], contract_loader: Callable[[str], Any]) -> tuple[Any, date, dict[str, Any]]:
    """The event's fields (see the module docstring), checked -> (contract, day, fields).

    :raises ValueError: naming every missing or empty field, or when ``partition`` is not
        ``{"name", "value"}`` with ``value`` = ``ds`` and the silver and quarantine prefixes do not
        end with ``<name>=<value>/``.
    :raises contracts.ContractError: the dataset has no valid contract.
    """
    missing = [f for f in EVENT_FIELDS if not event.get(f)]
    if missing:
        raise ValueError(f"the event lacks {', '.join(repr(f) for f in missing)}: the caller sends every key "
                         f"(lake.layout.Layout.lambda_payload); got {sorted(event)}")
    cfg = {f: event[f] for f in EVENT_FIELDS}
    part = cfg["partition"]
    if not isinstance(part, dict) or not part.get("name") or str(part.get("value")) != str(cfg["ds"]):
        raise ValueError(f"the event's 'partition' must be {{\"name\", \"value\": ds}}; got {part!r}")
    folder = f"{part['name']}={part['value']}/"
    for f in ("silver_prefix", "quarantine_prefix"):
        if not str(cfg[f]).endswith(folder):
            raise ValueError(f"the event's {f!r} {cfg[f]!r} is not the folder of partition {folder!r}")
    return contract_loader(cfg["dataset"]), date.fromisoformat(str(cfg["ds"])), cfg


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
        for chunk in iter(lambda: fh.read(chunks.BLOCK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract(event: dict[str, Any], s3=None, contract_loader: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Extract one day from bronze to silver on S3 (the handler without the Lambda context).

    :param event: see the module docstring.
    :returns: the result documented in the module docstring.
    :raises BronzeFileError: the file is missing, corrupt, holds no or another member, has a
        wrong header, is empty or has no data rows, is unreadable, or does not match its manifest
        (rows or sha256). Silver and quarantine are then left untouched.
    :raises contracts.ContractError: the dataset has no valid contract.
    """
    started = time.monotonic()
    contract, day, cfg = _config(event, contract_loader or contracts.load)
    s3 = s3 or _s3()
    bucket, key, manifest_key = cfg["bucket"], cfg["key"], cfg["manifest_key"]
    silver_prefix, quarantine_prefix = cfg["silver_prefix"], cfg["quarantine_prefix"]
    uri = f"s3://{bucket}/{key}"
    manifest = _read_manifest(s3, bucket, manifest_key)
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
