"""Lambda "extractor": one day's bronze zip -> validated silver Parquet + quarantined rejects.

Handler ``handler.handler`` (python3.12). On AWS, pyarrow and boto3 come from the AWS-managed
"AWS SDK for pandas" layer; the function zip (built by ``lake build lambda``) holds only this
file, ``contracts.py`` (``lake/contracts.py`` unchanged) and the contracts under ``datasets/``.

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
   a background thread and cut into chunks of whole lines of about :data:`CHUNK_BYTES` (at most
   :data:`READ_AHEAD` chunks wait), so the whole file is never in memory. The CSV is RFC 4180
   with pyarrow's quoting rules: a field that starts with ``"`` is quoted, ``""`` inside it is a
   quote, and it may hold delimiters and line breaks. A record is therefore one line or, when a
   quoted field holds line breaks, several; a chunk that ends inside a quoted field hands the
   unfinished record on to the next chunk (a record longer than :data:`MAX_RECORD_BYTES`, e.g. a
   quote that is never closed, makes the file unreadable). Every row carries the physical line
   number on which its record starts (the header is line 1; every ``\\n`` starts a new line,
   also inside a quoted field; blank lines between records are skipped and not counted as
   rows). A chunk is parsed by ``pyarrow.csv`` (all columns as text) and validated with
   vectorised kernels. The rows' line numbers are the chunk's first line + row index (+ the
   line breaks inside the earlier rows' values) when that is provably exact (no ``\\r`` that is
   not part of ``\\r\\n``, as many lines as rows plus line breaks in values: no blank line, no
   malformed row, and the chunk does not end inside a quoted field; see ``_ChunkParser._fast``);
   otherwise the chunk takes the exact path: every record is prefixed with its line number
   (:class:`NumberedLines`) before it is parsed. Both paths give the same rows, rejects,
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

import csv
import hashlib
import io
import json
import logging
import queue
import re
import tempfile
import threading
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

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

#: Bytes of CSV per ``pyarrow.csv`` block (the unit of parallel parsing within a chunk): 1 MiB.
BLOCK_BYTES = 1 << 20
#: Decompressed CSV bytes per chunk, the unit of validation and of memory use: 8 MiB. A chunk
#: holds whole lines (it ends at a line break), so a longer line makes a longer chunk. (4 to 16
#: MiB parse equally fast; the peak RSS grows with it: ~260 MiB at 4 MiB, ~300 at 8, ~350 at 16.)
CHUNK_BYTES = 8 << 20
#: Bytes decompressed per read of the zip member (zipfile buffers about this much).
PIECE_BYTES = 1 << 20
#: Chunks the decompressing thread may hold ready (bounded, so memory stays bounded).
READ_AHEAD = 2
#: Row groups the Parquet writing thread may have queued.
WRITE_AHEAD = 2
#: Bytes one record (a line, or the lines of a quoted field holding line breaks) may span before
#: the file is called unreadable: 64 MiB. It bounds the memory a quote that is never closed can
#: take; a real record is many orders of magnitude smaller.
MAX_RECORD_BYTES = 64 << 20
#: When False every chunk takes the exact (record-numbering) path; the tests compare both paths.
FAST_PATH = True
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
    :param reason: short reason (``corrupt zip``, ``wrong header``, ``empty file``, ``no data rows``,
        ``unreadable csv``, ``manifest mismatch``, ``missing file``, ``missing member``,
        ``unexpected member``, ``missing manifest``, ``bad manifest``).
    :param detail: what exactly was found.
    """

    def __init__(self, uri: str, reason: str, detail: str = "") -> None:
        self.uri = uri
        self.reason = reason
        self.detail = detail
        super().__init__(f"{uri}: {reason}" + (f": {detail}" if detail else ""))


# --- schemas -----------------------------------------------------------------------------------


def silver_schema(contract: contracts.Contract) -> pa.Schema:
    """Arrow schema of the silver table: the contract's columns and types; required columns
    are marked non-nullable."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=not c.required) for c in contract.columns])


def quarantine_schema(contract: contracts.Contract) -> pa.Schema:
    """Arrow schema of quarantine files: ``line_number`` int64, ``reason`` string, ``raw_line``
    string, then every contract column as string (the original text; null where it was a null
    value or the line could not be split)."""
    return pa.schema(
        [pa.field("line_number", pa.int64()), pa.field("reason", pa.string()), pa.field("raw_line", pa.string())]
        + [pa.field(c.name, pa.string()) for c in contract.columns]
    )


# --- streaming ---------------------------------------------------------------------------------


_QUOTE = 0x22  # the byte b'"'
_START, _FIELD, _QUOTED = 0, 1, 2  # at the start of a field, in an unquoted field, in a quoted field


def _separators(delimiter: str) -> re.Pattern:
    """The bytes that end an unquoted field: the delimiter and ``\\r``."""
    return re.compile(b"[" + re.escape(delimiter.encode()) + b"\\r]")


def _in_quotes(line: bytes, in_quote: bool, separators: re.Pattern) -> bool:
    """Whether ``line`` (one physical line, without its ``\\n``) ends inside a quoted field, given
    whether it starts inside one.

    pyarrow's rules (``pyarrow.csv`` with ``quote_char='"'``, ``double_quote=True``, no escape
    character): ``"`` opens a quoted field only at the start of a field; inside it ``""`` is a
    quote and a lone ``"`` closes it, after which the field goes on unquoted (``"ab"cd`` is
    ``abcd``); in an unquoted field ``"`` is an ordinary byte (``12"`` is ``12"``); outside
    quotes a delimiter or a ``\\r`` ends the field. The extractor finds records with this, and
    pyarrow parses them with the same rules, so both agree on where a record ends.
    """
    pos, end = 0, len(line)
    state = _QUOTED if in_quote else _START
    while pos < end:
        if state == _QUOTED:
            pos = line.find(b'"', pos)
            if pos < 0:
                return True
            if pos + 1 < end and line[pos + 1] == _QUOTE:
                pos += 2  # "" is a quote inside the field
            else:
                pos, state = pos + 1, _FIELD
        elif state == _START and line[pos] == _QUOTE:
            pos, state = pos + 1, _QUOTED
        else:
            found = separators.search(line, pos)
            if found is None:
                return False
            pos, state = found.end(), _START
    return state == _QUOTED


class NumberedLines(io.RawIOBase):
    """A read-only byte stream that prefixes every record of ``raw`` with the number of the
    physical line it starts on.

    A record is one line, or several when a quoted field holds line breaks (the quoting rules
    are pyarrow's, :func:`_in_quotes`). The header (line 1) gets the column name
    :data:`LINE_COLUMN`; a record starting on line ``n`` becomes ``b"n<delimiter>" + record``,
    its inner line breaks kept. Blank lines between records are dropped (their numbers are still
    counted); inside a quoted field they are data. Reads ``chunk`` bytes of ``raw`` at a time,
    so memory stays bounded (by the longest record). ``first_line`` is the number of the first
    line of ``raw`` (a chunk of a longer file starts further on).

    :param hold_open: when ``raw`` ends inside a quoted field, keep that last record back as
        :attr:`rest` (its bytes, from its first line to the end) and :attr:`rest_line` (the line
        it starts on): a chunk of a longer file, whose record goes on in the next chunk.
        Otherwise the open record is passed on as it is (pyarrow reads the field to the end).
    :param check_utf8: pass on a record that is not valid UTF-8 with each invalid byte written
        as ``\\xNN`` (``backslashreplace``), and keep its original bytes in :attr:`invalid`
        (line number -> bytes), so one bad row does not make the file unreadable.
    """

    def __init__(self, raw: BinaryIO, delimiter: str = ",", chunk: int = BLOCK_BYTES, first_line: int = 1, *,
                 hold_open: bool = False, check_utf8: bool = False) -> None:
        super().__init__()
        self._raw = raw
        self._delim = delimiter.encode()
        self._separators = _separators(delimiter)
        self._chunk = chunk
        self._hold_open = hold_open
        self._check_utf8 = check_utf8
        self._rest = b""  # the part of a line read but not yet ended by a \n
        self._record: list[bytes] | None = None  # lines of a record whose quoted field is open
        self._record_line = 0
        self._pending = b""
        self._pos = 0
        self._line = first_line - 1
        self._eof = False
        self.bytes_read = 0
        self.rest = b""
        self.rest_line: int | None = None
        self.invalid: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def _numbered(self, number: int, record: bytes) -> bytes:
        if self._check_utf8 and not record.isascii():
            try:
                record.decode("utf-8")
            except UnicodeDecodeError:
                self.invalid[number] = record
                record = record.decode("utf-8", "backslashreplace").encode()
        if number == 1:
            return LINE_COLUMN.encode() + self._delim + record.removeprefix(b"\xef\xbb\xbf")
        return b"%d%b%b" % (number, self._delim, record)

    def _fill(self) -> None:
        data = self._raw.read(self._chunk)
        unterminated = False  # the last line has no \n (the end of raw)
        if data:
            self.bytes_read += len(data)
            lines = (self._rest + data).split(b"\n")
            self._rest = lines.pop()
        else:
            self._eof = True
            lines = [self._rest] if self._rest else []
            unterminated = bool(self._rest)
            self._rest = b""
        out = []
        for line in lines:
            self._line += 1
            if self._record is None:
                if not line.strip(b"\r \t"):
                    continue
                if b'"' in line and _in_quotes(line, False, self._separators):
                    self._record, self._record_line = [line], self._line
                else:
                    out.append(self._numbered(self._line, line))
            else:
                self._record.append(line)
                if not _in_quotes(line, True, self._separators):
                    out.append(self._numbered(self._record_line, b"\n".join(self._record)))
                    self._record = None
        if self._eof and self._record is not None:
            if self._hold_open:
                self.rest = b"\n".join(self._record) + (b"" if unterminated else b"\n")
                self.rest_line = self._record_line
            else:
                out.append(self._numbered(self._record_line, b"\n".join(self._record)))
            self._record = None
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


class _Chunks:
    """Decompress a zip member in a background thread and hand out chunks of whole lines.

    Iterating yields ``(chunk, newlines)``: about ``size`` bytes ending at a ``\\n`` (the last
    chunk may not), and how many ``\\n`` it holds (counted here, off the main thread). At most
    ``ahead`` chunks wait in the queue. A read error (corrupt zip, bad CRC) is raised by the
    iteration. ``bytes_read`` counts decompressed bytes. :meth:`close` stops the thread; call it
    before closing the zip.

    zlib releases the GIL while it inflates, so decompression overlaps parsing and writing.
    """

    def __init__(self, member: BinaryIO, size: int | None = None, ahead: int | None = None) -> None:
        self._member = member
        self._size = size or CHUNK_BYTES
        self._queue: queue.Queue = queue.Queue(maxsize=ahead or READ_AHEAD)
        self._stop = threading.Event()
        self.bytes_read = 0
        self._thread = threading.Thread(target=self._run, name="extractor-unzip", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            pieces: list[bytes] = []  # read but not handed out yet (the last one ends mid-line)
            held = 0
            while not self._stop.is_set():
                piece = self._member.read(PIECE_BYTES)  # small reads keep zipfile's buffers small
                if piece:
                    self.bytes_read += len(piece)
                    pieces.append(piece)
                    held += len(piece)
                    if held < self._size:
                        continue
                    # Cut after the last line break: the chunk is pieces[:i] + the head of pieces[i].
                    for i in range(len(pieces) - 1, -1, -1):
                        cut = pieces[i].rfind(b"\n") + 1
                        if cut:
                            break
                    else:
                        continue  # no line break yet: a line longer than a chunk
                    head, tail = pieces[i][:cut], pieces[i][cut:]
                    chunk = b"".join(pieces[:i] + [head])
                    pieces = ([tail] if tail else []) + pieces[i + 1 :]
                    held = sum(len(p) for p in pieces)
                elif pieces:
                    chunk, pieces = b"".join(pieces), []
                else:
                    break
                if not self._put((chunk, chunk.count(b"\n"))):
                    return
            self._put(None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer, which raises it
            self._put(exc)

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


def _parse(raw: pa.Array, col: contracts.Column) -> tuple[pa.Array, pa.Array]:
    """Parse a string array as ``col``'s type -> (typed values with nulls, bad mask).

    ``bad`` is true where a non-null value does not parse or does not fit the type. Text is
    trimmed of white space first; an integer is ``[+-]?[0-9]{1,18}``, a float64 is a decimal
    number with an optional exponent (no ``inf``/``nan``), a date or timestamp must match the
    column's strptime ``format``.
    """
    target = ARROW_TYPES[col.type]
    if col.type == "string":
        return raw, pa.repeat(pa.scalar(False), len(raw))
    text = pc.utf8_trim_whitespace(raw)
    if col.type in contracts.INTEGER_TYPES:
        ok = pc.fill_null(pc.match_substring_regex(text, _INT_RE), True)
        # Arrow's integer parser refuses a leading "+" that the rule allows: strip it.
        values = pc.cast(pc.if_else(ok, pc.utf8_ltrim(text, "+"), pa.scalar(None, pa.string())), pa.int64())
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


def _all(mask) -> bool:
    """True when no non-null value of the boolean ``mask`` is false."""
    return pc.all(mask, min_count=0).as_py() is not False


def _parse_clean(raw: pa.Array | pa.ChunkedArray, col: contracts.Column):
    """``col``'s typed values when every non-null value of ``raw`` parses (the values
    :func:`_parse` would give, and a bad mask that is all false), else None.

    Cheap checks first: plain digits (one optional ``-``) of at most 18 for integers cast
    directly; a float64 or ``%Y-%m-%d`` date column is cast directly and accepted when the cast
    succeeds and (floats) every value is finite -- Arrow's strict parsers accept a subset of what
    the rule accepts and give the same values. Anything else goes through :func:`_parse`.
    """
    try:
        if col.type == "string":
            return raw
        if col.type in contracts.INTEGER_TYPES:
            if _all(pc.ascii_is_decimal(raw)):
                digits = pc.binary_length(raw)
            else:
                body = pc.ascii_ltrim(raw, "-")
                digits = pc.binary_length(body)
                if not (_all(pc.ascii_is_decimal(body))
                        and _all(pc.less_equal(pc.subtract(pc.binary_length(raw), digits), 1))):
                    return _parse_checked(raw, col)
            longest = pc.max(digits).as_py()
            if longest is not None and longest > 18:
                return None
            return pc.cast(raw, ARROW_TYPES[col.type])  # raises when a value does not fit the type
        if col.type == "float64":
            values = pc.cast(raw, pa.float64())
            return values if _all(pc.is_finite(values)) else _parse_checked(raw, col)
        if col.type == "date" and col.format == "%Y-%m-%d":
            return pc.cast(raw, pa.date32())
    except pa.ArrowInvalid:
        return _parse_checked(raw, col)
    return _parse_checked(raw, col)


def _parse_checked(raw, col: contracts.Column):
    """:func:`_parse`'s values when its bad mask is all false, else None."""
    values, bad = _parse(raw, col)
    return None if pc.any(bad).as_py() else values


def _clean_rows(batch: pa.RecordBatch | pa.Table, contract: contracts.Contract, day: date) -> pa.Table | None:
    """The rows of ``batch`` typed as :func:`silver_schema` when no row breaks a rule (so
    :func:`_validate_rows` would reject none and return the same table), else None.

    Column-wide checks only: nulls in required columns, a clean parse, the min/max of the
    typed values against the bounds, the min/max of the day columns against ``day``.
    """
    typed: dict[str, Any] = {}
    for col in contract.columns:
        raw = batch.column(col.name)
        if col.required and raw.null_count:
            return None
        values = _parse_clean(raw, col)
        if values is None:
            return None
        if (col.min is not None or col.max is not None) and col.type in _NUMERIC:
            low_high = pc.min_max(values)
            low, high = low_high["min"], low_high["max"]
            if low.is_valid:
                # As _validate_rows compares: the values cast to float64 (a safe cast, which
                # raises there as here for an integer beyond 2**53; float() is monotonic).
                low, high = pc.cast(low, pa.float64()).as_py(), pc.cast(high, pa.float64()).as_py()
                if (col.min is not None and low < float(col.min)) or (col.max is not None and high > float(col.max)):
                    return None
        typed[col.name] = values
    day_cols = contract.source.day_columns
    for part, value in (("year", day.year), ("month", day.month), ("day", day.day)):
        if part in day_cols:
            low_high = pc.min_max(pc.cast(typed[day_cols[part]], pa.int64()))
            if low_high["min"].is_valid and not (low_high["min"].as_py() == value == low_high["max"].as_py()):
                return None
    return pa.Table.from_arrays([typed[c.name] for c in contract.columns], schema=silver_schema(contract))


def _mark(reason: pa.Array, mask: pa.Array, label: str) -> pa.Array:
    """Set ``label`` where ``mask`` holds and no earlier reason was recorded."""
    hit = pc.and_(pc.is_null(reason), pc.fill_null(mask, False))
    return pc.if_else(hit, pa.scalar(label, pa.string()), reason)


def validate_batch(batch: pa.RecordBatch, contract: contracts.Contract, day: date,
                   reason: pa.Array | None = None) -> tuple[pa.Table, pa.Table]:
    """Split one parsed block (all columns as strings, in any order, plus :data:`LINE_COLUMN`)
    into (good rows typed as :func:`silver_schema`, rejected rows as :func:`quarantine_schema`).

    The rules and reasons are listed in the module docstring (step 4). ``reason`` (string, one
    per row, null = none yet) holds reasons found before parsing (``invalid_utf8:<col>``); they
    come first. A block without a bad row is recognised by column-wide checks
    (:func:`_clean_rows`); otherwise every row gets its reason (:func:`_validate_rows`).
    """
    if reason is None or reason.null_count == len(reason):
        good = _clean_rows(batch, contract, day)
        if good is not None:
            return good, quarantine_schema(contract).empty_table()
    return _validate_rows(batch, contract, day, reason)


def _validate_rows(batch: pa.RecordBatch | pa.Table, contract: contracts.Contract,
                   day: date, reason: pa.Array | None = None) -> tuple[pa.Table, pa.Table]:
    """:func:`validate_batch` row by row: the first reason of every row, in column order, after
    the reasons already in ``reason``."""
    n = batch.num_rows
    reason = pa.nulls(n, pa.string()) if reason is None else reason
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


def _open_member(zip_path: Path, contract: contracts.Contract, day: date, uri: str) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BronzeFileError(uri, "corrupt zip", str(exc)) from exc
    member = contract.member_name(day)
    files = [name for name in zf.namelist() if not name.endswith("/")]  # folder entries hold nothing
    if member not in files:
        zf.close()
        raise BronzeFileError(uri, "missing member",
                              f"expected {member}, the zip holds " + (f"{files}" if files else "no file"))
    if len(files) > 1:
        zf.close()
        raise BronzeFileError(uri, "unexpected member",
                              f"the zip holds {files}; the contract {contract.name} expects {member} alone "
                              f"(a bronze file is loaded whole, nothing in it is ignored)")
    info = zf.getinfo(member)
    if info.file_size == 0:
        zf.close()
        raise BronzeFileError(uri, "empty file", f"{member} is 0 bytes")
    return zf, info


class _ChunkParser:
    """Parse and validate one contract's chunks (see the module docstring, step 2)."""

    def __init__(self, contract: contracts.Contract, day: date, uri: str, member: str) -> None:
        src = contract.source
        self.contract, self.day, self.uri, self.member = contract, day, uri, member
        self.delimiter = src.delimiter
        self.expected = contract.column_names
        self.columns = list(self.expected)  # the file's order, from its header (:meth:`use_header`)
        self.malformed: list[tuple[int, str]] = []
        self._invalid: dict[int, str] = {}  # line -> invalid_utf8 reason, of the current chunk
        self.parse_options = pacsv.ParseOptions(delimiter=src.delimiter, newlines_in_values=True,
                                                invalid_row_handler=self._on_invalid)
        self.convert_options = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in [LINE_COLUMN, *self.expected]},
            null_values=list(src.null_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        )
        # Pure ASCII is valid UTF-8: pyarrow need not check it again (a quarter of its parse time).
        self.convert_ascii = pacsv.ConvertOptions(
            column_types=self.convert_options.column_types, null_values=list(src.null_values),
            strings_can_be_null=True, quoted_strings_can_be_null=False, check_utf8=False,
        )
        self.encoding = src.encoding
        # Bytes that are not UTF-8 reject their row (invalid_utf8:<col>) when the file is meant to
        # be UTF-8; another encoding is transcoded by pyarrow and has no invalid bytes to find.
        self.check_utf8 = src.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        # Row index + first line is the line number only if every row is one line and no line
        # is dropped unseen: a white-space delimiter or a single column would let a blank line
        # (dropped by the numbering) parse as a row, so such contracts always take the exact path.
        self.fast = FAST_PATH and src.delimiter not in " \t" and len(self.expected) > 1

    def use_header(self, header: list[str]) -> None:
        """Read the following chunks with the file's column order (the contract's names)."""
        self.columns = list(header)

    def _on_invalid(self, row) -> str:
        number, _, text = row.text.partition(self.delimiter)
        self.malformed.append((int(number), text))
        return "skip"

    def _unreadable(self, exc: Exception) -> BronzeFileError:
        return BronzeFileError(self.uri, "unreadable csv", f"{self.member}: {exc}")

    def header(self, line: bytes, number: int) -> list[str]:
        """The column names of the header ``line`` (physical line ``number``), parsed as the
        numbered stream presents it. :raises BronzeFileError: unreadable."""
        stream = NumberedLines(io.BytesIO(line), self.delimiter, first_line=number, check_utf8=self.check_utf8)
        try:
            reader = pacsv.open_csv(
                pa.PythonFile(stream, mode="r"),
                read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, encoding=self.encoding),
                parse_options=self.parse_options, convert_options=self.convert_options,
            )
        except pa.ArrowInvalid as exc:
            raise self._unreadable(exc) from exc
        return reader.schema.names[1:]

    def _read(self, chunk: bytes, whole: bool) -> pa.Table | None:
        """``chunk`` parsed (a malformed row or bad UTF-8 raises: None). ``whole``: as one block
        with pyarrow's quoting across line breaks; else in blocks of :data:`BLOCK_BYTES`, parsed
        in parallel, each cut at a line break (a quoted line break at a cut is not understood)."""
        try:
            return pacsv.read_csv(
                pa.py_buffer(chunk),
                read_options=pacsv.ReadOptions(column_names=self.columns, encoding=self.encoding,
                                               block_size=len(chunk) + 1 if whole else BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=whole),
                convert_options=self.convert_ascii if chunk.isascii() else self.convert_options,
            )
        except pa.ArrowInvalid:
            return None

    def _fast(self, chunk: bytes, lines: int, first_line: int):
        """(good, rejected) when the rows' line numbers are provably known, else None.

        First the chunk is parsed in blocks; a row is at most one line, so as many rows as lines
        means every line is one row: no blank line, no quoted line break (a quoted line break
        inside a block joins two lines into a row; at a block's cut pyarrow drops the unfinished
        row or fails). Otherwise, when the chunk holds quotes, it is parsed again as one block
        with pyarrow's quoting across line breaks: every ``\\n`` then ends a row, lies inside a
        value, or ends a blank line, so lines = rows + line breaks inside values means no blank
        line, and a row starts on the first line + its index + the line breaks inside the rows
        before it. Either way the chunk must not end inside a quoted field (pyarrow reads it to
        the end of the chunk): the last value would then end with the chunk's final ``\\n``,
        and such a chunk goes to the exact path, which hands the open record on.
        """
        if b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n"):
            return None  # a lone \\r ends a row for pyarrow but not a line for the numbering
        quoted = b'"' in chunk  # only a quoted field holds a line break
        table = self._read(chunk, whole=False)
        breaks = None  # line breaks inside each row's values
        if table is None or table.num_rows != lines:
            if not quoted:
                return None  # blank lines, a malformed row, bad UTF-8 ...: the exact path reports them
            table = self._read(chunk, whole=True)
            if table is None:
                return None
            breaks = pc.fill_null(pc.count_substring(table.column(0), "\n"), 0)
            for column in table.columns[1:]:
                breaks = pc.add(breaks, pc.fill_null(pc.count_substring(column, "\n"), 0))
            if table.num_rows + pc.sum(breaks).as_py() != lines:
                return None  # blank lines
        rows = table.num_rows
        if not rows:
            return None
        if quoted:
            last = table.column(table.num_columns - 1)[rows - 1].as_py()
            if last is not None and last.endswith("\n"):
                return None  # maybe a quoted field left open by the end of the chunk
        good = _clean_rows(table, self.contract, self.day)
        if good is not None:
            return good, None
        numbers = pa.array(range(first_line, first_line + rows), pa.int64())
        if breaks is not None:  # + the line breaks in the rows before
            before = pc.subtract(pc.cumulative_sum(breaks), breaks)
            numbers = pc.add(numbers, pc.cast(before, pa.int64()))
        batch = table.append_column(LINE_COLUMN, numbers).combine_chunks().to_batches()[0]
        return _validate_rows(batch, self.contract, self.day)

    def _invalid_utf8(self, invalid: dict[int, bytes]) -> dict[int, str]:
        """Reason per line of the records that are not valid UTF-8: ``invalid_utf8:<col>``,
        the first column holding an invalid byte (``invalid_utf8`` when no column does, e.g.
        beyond the last one)."""
        reasons = {}
        for number, record in invalid.items():
            text = record.decode("utf-8", "surrogateescape")  # invalid bytes -> lone surrogates
            fields = next(csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter), [])
            bad = [i for i, f in enumerate(fields) if any("\udc80" <= ch <= "\udcff" for ch in f)]
            column = self.columns[bad[0]] if bad and bad[0] < len(self.columns) else None
            reasons[number] = f"invalid_utf8:{column}" if column else "invalid_utf8"
        return reasons

    def _exact(self, chunk: bytes, first_line: int, final: bool):
        """(good, rejected, rest, rest_line): the chunk's records numbered one by one; a record
        left open by the end of a chunk that is not ``final`` is handed back as ``rest``."""
        stream = NumberedLines(io.BytesIO(chunk), self.delimiter, chunk=len(chunk) + 1, first_line=first_line,
                               hold_open=not final, check_utf8=self.check_utf8)
        numbered = b"".join(iter(lambda: stream.read(2 * len(chunk) + (1 << 20)), b""))
        invalid = self._invalid_utf8(stream.invalid) if stream.invalid else {}
        if not numbered:
            return None, None, stream.rest, stream.rest_line
        try:
            table = pacsv.read_csv(
                pa.py_buffer(numbered),
                read_options=pacsv.ReadOptions(column_names=[LINE_COLUMN, *self.columns],
                                               block_size=len(numbered) + 1, encoding=self.encoding),
                parse_options=self.parse_options, convert_options=self.convert_options,
            )
        except pa.ArrowInvalid as exc:
            raise self._unreadable(exc) from exc
        self._invalid = invalid
        if not table.num_rows:
            return None, None, stream.rest, stream.rest_line
        batch = table.combine_chunks().to_batches()[0]
        reason = None
        if invalid:
            numbers = pc.cast(batch.column(LINE_COLUMN), pa.int64())
            where = pc.index_in(numbers, value_set=pa.array(list(invalid), pa.int64()))
            reason = pc.take(pa.array(list(invalid.values()), pa.string()), where)
        good, rejected = validate_batch(batch, self.contract, self.day, reason)
        return good, rejected, stream.rest, stream.rest_line

    def chunk(self, chunk: bytes, newlines: int, first_line: int, final: bool = False):
        """Validate the records of ``chunk`` (which starts a record, on line ``first_line``)
        -> (good rows, rejected rows or None, malformed rows as (line, text, reason), rest,
        rest_line): ``rest`` is the last record when the chunk ends inside its quoted field
        (never when ``final``), to be read again in front of the next chunk; it starts on line
        ``rest_line``."""
        lines = newlines + (0 if chunk.endswith(b"\n") else 1)
        out = self._fast(chunk, lines, first_line) if self.fast else None
        rest, rest_line = b"", None
        self._invalid = {}
        if out is None:
            good, rejected, rest, rest_line = self._exact(chunk, first_line, final)
        else:
            good, rejected = out
        malformed = [(n, text, self._invalid.get(n, "wrong_field_count")) for n, text in self.malformed]
        self.malformed = []
        return good, rejected, malformed, rest, rest_line


def _header_problem(header: list[str], contract: contracts.Contract) -> str:
    """What is wrong with a file's ``header`` for ``contract`` ("" when nothing): columns missing,
    not in the contract, or repeated. The order does not matter (columns are matched by name)."""
    expected = contract.column_names
    missing = [c for c in expected if c not in header]
    unexpected = [c for c in header if c not in expected]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if not (missing or unexpected or repeated):
        return ""
    parts = [f"{label} {cols}" for label, cols in (("unexpected", unexpected), ("missing", missing),
                                                    ("repeated", repeated)) if cols]
    hint = (f" (a new column is a change of the dataset contract {contract.name}, "
            f"datasets/{contract.name}.json: it is never dropped silently)" if unexpected else "")
    return (f"the header does not match the contract {contract.name}: {', '.join(parts)}{hint}; "
            f"the file's columns are {header}")


def extract_file(zip_path: str | Path, contract: contracts.Contract, day: date | str, silver_file: str | Path,
                 quarantine_file: str | Path, *, uri: str | None = None) -> ExtractResult:
    """Validate one local bronze zip and write the silver and quarantine Parquet files.

    Three threads share the work: one decompresses (:class:`_Chunks`), the caller's parses and
    validates chunk by chunk (pyarrow parses a chunk's blocks on its CPU pool), one writes the
    silver row groups. Memory is bounded by a few chunks and row groups (and the longest record,
    at most :data:`MAX_RECORD_BYTES`), whatever the file size.

    :param zip_path: the bronze zip (local file).
    :param day: the partition day; rows of another day are rejected when the contract has
        ``source.day_columns``.
    :param silver_file: local path for good rows (snappy Parquet, :func:`silver_schema`, row
        groups of the contract's ``silver.row_group_rows``); always written.
    :param quarantine_file: local path for rejected rows (:func:`quarantine_schema`, in line
        order); written only when there are rejects.
    :param uri: name of the file in error messages (default: ``zip_path``).
    :returns: an :class:`ExtractResult` (rows, rejects by reason, bytes).
    :raises BronzeFileError: corrupt zip, missing member, unexpected member (a second file),
        empty file (0 bytes), no data rows (a header only, when the contract does not
        ``allow_empty``), wrong header (a column missing, unexpected or repeated), unreadable CSV.
    """
    day = day if isinstance(day, date) else date.fromisoformat(str(day))
    uri = uri or str(zip_path)
    src = contract.source
    result = ExtractResult()
    zf, info = _open_member(Path(zip_path), contract, day, uri)
    row_group_rows = int(contract.silver.get("row_group_rows", 131072))
    parser = _ChunkParser(contract, day, uri, info.filename)
    qschema = quarantine_schema(contract)
    silver_writer: pq.ParquetWriter | None = None
    quarantine_writer: pq.ParquetWriter | None = None
    writes: list[Future] = []
    pending: list[pa.Table] = []
    pending_rows = 0

    def write_silver(table: pa.Table) -> None:  # hand a table to the writing thread (in order, bounded)
        while len(writes) >= WRITE_AHEAD:
            writes.pop(0).result()
        writes.append(pool.submit(silver_writer.write_table, table, row_group_size=row_group_rows))

    def reject(rejected: pa.Table | None, malformed: list[tuple[int, str, str]]) -> None:
        nonlocal quarantine_writer
        tables = [rejected] if rejected is not None and rejected.num_rows else []
        if malformed:
            tables.append(pa.Table.from_pylist(
                [{"line_number": n, "reason": reason, "raw_line": text} for n, text, reason in malformed],
                schema=qschema))
        if not tables:
            return
        table = pa.concat_tables(tables).sort_by("line_number")
        result.rows_rejected += table.num_rows
        result.rejected_by_reason.update(table["reason"].to_pylist())
        if quarantine_writer is None:
            quarantine_writer = pq.ParquetWriter(str(quarantine_file), qschema, compression="snappy")
        quarantine_writer.write_table(table)

    def take(good: pa.Table | None, rejected: pa.Table | None, malformed: list[tuple[int, str, str]]) -> None:
        nonlocal pending, pending_rows
        result.rows_read += len(malformed) + (good.num_rows if good is not None else 0) + (
            rejected.num_rows if rejected is not None else 0)
        reject(rejected, malformed)
        if good is not None and good.num_rows:
            result.rows_written += good.num_rows
            pending.append(good)
            pending_rows += good.num_rows
            if pending_rows >= row_group_rows:
                table = pa.concat_tables(pending)
                full = pending_rows - pending_rows % row_group_rows
                write_silver(table.slice(0, full))
                pending = [table.slice(full)] if full < pending_rows else []
                pending_rows -= full

    def corrupt(exc: Exception) -> BronzeFileError:
        return BronzeFileError(uri, "corrupt zip", f"{info.filename}: {exc}")

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="extractor-write")
    try:
        with zf, zf.open(info) as member:
            chunks = _Chunks(member)
            try:
                line = 0  # physical lines up to the end of the current chunk
                rest, rest_line = b"", 0  # a record left open by the previous chunk, and its line
                header: list[str] | None = None
                for chunk, newlines in chunks:
                    if header is None:  # the first non-blank line is the header
                        pos = 0
                        while pos < len(chunk) and header is None:
                            end = chunk.find(b"\n", pos)
                            end = len(chunk) if end < 0 else end + 1
                            line += 1
                            if chunk[pos:end].strip(b"\r\n \t"):
                                header = parser.header(chunk[pos:end], line)
                            pos = end
                        if header is None:
                            continue
                        problem = _header_problem(header, contract)
                        if problem:
                            raise BronzeFileError(uri, "wrong header", f"{info.filename}: {problem}")
                        parser.use_header(header)
                        silver_writer = pq.ParquetWriter(str(silver_file), silver_schema(contract),
                                                         compression="snappy")
                        chunk = chunk[pos:]
                        newlines = chunk.count(b"\n")
                        if not chunk:
                            continue
                    if rest:
                        data, first, lines = rest + chunk, rest_line, rest.count(b"\n") + newlines
                    else:
                        data, first, lines = chunk, line + 1, newlines
                    line += newlines
                    good, rejected, malformed, rest, rest_line = parser.chunk(data, lines, first)
                    take(good, rejected, malformed)
                    if len(rest) > MAX_RECORD_BYTES:
                        raise BronzeFileError(uri, "unreadable csv",
                                              f"{info.filename}: the record starting on line {rest_line} is still "
                                              f"open after {len(rest)} bytes (a quoted field that is never closed?)")
                if rest:  # the file ends inside a quoted field: pyarrow reads it to the end
                    good, rejected, malformed, _, _ = parser.chunk(rest, rest.count(b"\n"), rest_line, final=True)
                    take(good, rejected, malformed)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise corrupt(exc) from exc
            finally:
                chunks.close()
            result.bytes_uncompressed = chunks.bytes_read
        if header is None:
            raise BronzeFileError(uri, "empty file", f"{info.filename} has no header")
        if pending_rows or result.rows_written == 0:
            write_silver(pa.concat_tables(pending) if pending else silver_schema(contract).empty_table())
        for future in writes:
            future.result()
    finally:
        for future in writes:
            future.cancel()
        pool.shutdown(wait=True)
        if silver_writer is not None:
            silver_writer.close()
        if quarantine_writer is not None:
            quarantine_writer.close()
    if result.rows_read != result.rows_written + result.rows_rejected:
        raise RuntimeError(f"{uri}: rows read {result.rows_read} != written {result.rows_written} "
                           f"+ rejected {result.rows_rejected} (a bug in the extractor)")
    if result.rows_read == 0 and not src.allow_empty:
        raise BronzeFileError(uri, "no data rows", f"{info.filename} has a header and no data rows; the "
                              f"contract {contract.name} does not allow an empty day (source.allow_empty)")
    result.bytes_silver = Path(silver_file).stat().st_size
    if result.rows_rejected:
        result.bytes_quarantine = Path(quarantine_file).stat().st_size
    return result


# --- S3 ----------------------------------------------------------------------------------------


#: Event fields, every one required: the caller (the DAG, through ``lake.layout.Layout.lambda_payload``)
#: names every object, so the extractor derives no name itself.
EVENT_FIELDS = ("ds", "dataset", "bucket", "key", "manifest_key", "silver_bucket", "silver_prefix",
                "quarantine_bucket", "quarantine_prefix", "partition")


def _config(event: dict[str, Any]) -> dict[str, Any]:
    """The event's fields (see the module docstring), checked.

    :raises ValueError: naming every missing or empty field, or when ``partition`` is not
        ``{"name", "value"}`` with ``value`` = ``ds`` and the silver and quarantine prefixes do not
        end with ``<name>=<value>/``.
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
    return cfg


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
    :raises BronzeFileError: the file is missing, corrupt, holds no or another member, has a
        wrong header, is empty or has no data rows, is unreadable, or does not match its manifest
        (rows or sha256). Silver and quarantine are then left untouched.
    :raises contracts.ContractError: the dataset has no valid contract.
    """
    started = time.monotonic()
    cfg = _config(event)
    contract = (contract_loader or contracts.load)(cfg["dataset"])
    day = date.fromisoformat(cfg["ds"])
    s3 = s3 or _s3()
    bucket, key, manifest_key = cfg["bucket"], cfg["key"], cfg["manifest_key"]
    uri = f"s3://{bucket}/{key}"
    manifest = _read_manifest(s3, bucket, manifest_key)
    silver_prefix, quarantine_prefix = cfg["silver_prefix"], cfg["quarantine_prefix"]
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
