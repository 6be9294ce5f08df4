"""The extractor's rules: a chunk of CSV parsed and checked against the dataset contract.

Part of the extractor Lambda (``handler.py`` in this folder, whose docstring lists the rules
and reasons, steps 3 and 4). :class:`ChunkParser` reads the header, then the chunks of
``chunks.py`` one after another: a chunk is parsed by ``pyarrow.csv`` (all columns as text)
and validated with vectorised kernels, on one of two paths that give the same rows, rejects,
reasons and line numbers:

* the fast path (:meth:`ChunkParser._fast`): the rows' line numbers are the chunk's first line
  + row index (+ the line breaks inside the earlier rows' values) when that is provably exact
  (no ``\\r`` that is not part of ``\\r\\n``, as many lines as rows plus line breaks in values:
  no blank line, no malformed row, and the chunk does not end inside a quoted field); a chunk
  without a bad row is then recognised by column-wide checks (:func:`_clean_rows`);
* otherwise the exact path (:meth:`ChunkParser._exact`): every record is prefixed with its line
  number (``chunks.NumberedLines``) before it is parsed, and every row gets its reason
  (:func:`validate_batch`).

A chunk that ends inside a quoted field hands the unfinished record on to the next chunk; a
record longer than :data:`MAX_RECORD_BYTES` makes the file unreadable.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import chunks
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from chunks import BronzeFileError

try:  # the Lambda zip: contracts.py sits next to this file
    import contracts  # type: ignore[import-not-found]
except ImportError:  # the repository: lake/contracts.py
    from lake import contracts  # type: ignore[no-redef]

#: Bytes one record (a line, or the lines of a quoted field holding line breaks) may span before
#: the file is called unreadable: 64 MiB. It bounds the memory a quote that is never closed can
#: take; a real record is many orders of magnitude smaller.
MAX_RECORD_BYTES = 64 << 20
#: When False every chunk takes the exact (record-numbering) path; the tests compare both paths.
FAST_PATH = True

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
    """Split one parsed block (all columns as strings, in any order, plus ``chunks.LINE_COLUMN``)
    into (good rows typed as :func:`silver_schema`, rejected rows as :func:`quarantine_schema`).

    The rules and reasons are listed in the docstring of ``handler.py`` (step 4). ``reason``
    (string, one per row, null = none yet) holds reasons found before parsing
    (``invalid_utf8:<col>``); they come first. A block without a bad row is recognised by
    column-wide checks (:func:`_clean_rows`); otherwise every row gets its reason
    (:func:`_validate_rows`).
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
        [pc.cast(batch.column(chunks.LINE_COLUMN), pa.int64()), reason, pa.nulls(n, pa.string())]
        + [batch.column(c.name) for c in contract.columns],
        schema=qschema,
    ).filter(bad_mask)
    return good, rejected


class ChunkParser:
    """Parse and validate one file's chunks, in order, for one contract and day.

    Call :meth:`take_header` with the first chunks until it finds the header, then :meth:`rows`
    with every further chunk and :meth:`last_rows` at the end of the file. ``line`` counts the
    physical lines seen so far; ``rest`` is a record left open by the previous chunk, starting on
    line ``rest_line`` (see the module docstring).

    :param uri: name of the file in error messages.
    :param member: the zip member, for error messages.
    """

    def __init__(self, contract: contracts.Contract, day: date, uri: str, member: str) -> None:
        src = contract.source
        self.contract, self.day, self.uri, self.member = contract, day, uri, member
        self.delimiter = src.delimiter
        self.expected = contract.column_names
        self.columns = list(self.expected)  # the file's order, from its header (:meth:`take_header`)
        self.header: list[str] | None = None
        self.line = 0  # physical lines up to the end of the last chunk
        self.rest, self.rest_line = b"", 0  # a record left open by the previous chunk, and its line
        self.malformed: list[tuple[int, str]] = []
        self._invalid: dict[int, str] = {}  # line -> invalid_utf8 reason, of the current chunk
        self.parse_options = pacsv.ParseOptions(delimiter=src.delimiter, newlines_in_values=True,
                                                invalid_row_handler=self._on_invalid)
        self.convert_options = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in [chunks.LINE_COLUMN, *self.expected]},
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

    def _on_invalid(self, row) -> str:
        number, _, text = row.text.partition(self.delimiter)
        self.malformed.append((int(number), text))
        return "skip"

    def _unreadable(self, exc: Exception) -> BronzeFileError:
        return BronzeFileError(self.uri, "unreadable csv", f"{self.member}: {exc}")

    def _header_names(self, line: bytes, number: int) -> list[str]:
        """The column names of the header ``line`` (physical line ``number``), parsed as the
        numbered stream presents it. :raises BronzeFileError: unreadable."""
        stream = chunks.NumberedLines(io.BytesIO(line), self.delimiter, first_line=number, check_utf8=self.check_utf8)
        try:
            reader = pacsv.open_csv(
                pa.PythonFile(stream, mode="r"),
                read_options=pacsv.ReadOptions(block_size=chunks.BLOCK_BYTES, encoding=self.encoding),
                parse_options=self.parse_options, convert_options=self.convert_options,
            )
        except pa.ArrowInvalid as exc:
            raise self._unreadable(exc) from exc
        return reader.schema.names[1:]

    def _read(self, chunk: bytes, whole: bool) -> pa.Table | None:
        """``chunk`` parsed (a malformed row or bad UTF-8 raises: None). ``whole``: as one block
        with pyarrow's quoting across line breaks; else in blocks of :data:`chunks.BLOCK_BYTES`, parsed
        in parallel, each cut at a line break (a quoted line break at a cut is not understood)."""
        try:
            return pacsv.read_csv(
                pa.py_buffer(chunk),
                read_options=pacsv.ReadOptions(column_names=self.columns, encoding=self.encoding,
                                               block_size=len(chunk) + 1 if whole else chunks.BLOCK_BYTES),
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
        batch = table.append_column(chunks.LINE_COLUMN, numbers).combine_chunks().to_batches()[0]
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
        stream = chunks.NumberedLines(io.BytesIO(chunk), self.delimiter, chunk=len(chunk) + 1, first_line=first_line,
                               hold_open=not final, check_utf8=self.check_utf8)
        numbered = b"".join(iter(lambda: stream.read(2 * len(chunk) + (1 << 20)), b""))
        invalid = self._invalid_utf8(stream.invalid) if stream.invalid else {}
        if not numbered:
            return None, None, stream.rest, stream.rest_line
        try:
            table = pacsv.read_csv(
                pa.py_buffer(numbered),
                read_options=pacsv.ReadOptions(column_names=[chunks.LINE_COLUMN, *self.columns],
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
            numbers = pc.cast(batch.column(chunks.LINE_COLUMN), pa.int64())
            where = pc.index_in(numbers, value_set=pa.array(list(invalid), pa.int64()))
            reason = pc.take(pa.array(list(invalid.values()), pa.string()), where)
        good, rejected = validate_batch(batch, self.contract, self.day, reason)
        return good, rejected, stream.rest, stream.rest_line

    def take_header(self, chunk: bytes) -> bytes | None:
        """Look for the header (the file's first line that is not blank) in ``chunk``, the next
        chunk of a file whose header was not found yet -> the rest of the chunk after the header
        (maybe empty) once found, None while not.

        :raises BronzeFileError: ``unreadable csv``; ``wrong header`` (:func:`header_problem`).
        """
        pos = 0
        while pos < len(chunk) and self.header is None:
            end = chunk.find(b"\n", pos)
            end = len(chunk) if end < 0 else end + 1
            self.line += 1
            if chunk[pos:end].strip(b"\r\n \t"):
                self.header = self._header_names(chunk[pos:end], self.line)
            pos = end
        if self.header is None:
            return None
        problem = header_problem(self.header, self.contract)
        if problem:
            raise BronzeFileError(self.uri, "wrong header", f"{self.member}: {problem}")
        self.columns = list(self.header)  # the following chunks have the file's column order
        return chunk[pos:]

    def rows(self, chunk: bytes, newlines: int):
        """The records of the next chunk after the header (``newlines``: how many ``\\n`` it
        holds), behind the record the previous chunk left open -> (good rows, rejected rows or
        None, malformed rows as (line, text, reason)), as :meth:`chunk` gives them.

        :raises BronzeFileError: ``unreadable csv``, also when a record is still open after
            :data:`MAX_RECORD_BYTES` (a quoted field that is never closed).
        """
        if self.rest:
            data, first, lines = self.rest + chunk, self.rest_line, self.rest.count(b"\n") + newlines
        else:
            data, first, lines = chunk, self.line + 1, newlines
        self.line += newlines
        good, rejected, malformed, self.rest, self.rest_line = self.chunk(data, lines, first)
        if len(self.rest) > MAX_RECORD_BYTES:
            raise BronzeFileError(self.uri, "unreadable csv",
                                  f"{self.member}: the record starting on line {self.rest_line} is still "
                                  f"open after {len(self.rest)} bytes (a quoted field that is never closed?)")
        return good, rejected, malformed

    def last_rows(self):
        """At the end of the file: the record the last chunk left open (the file ends inside a
        quoted field, which pyarrow reads to the end), as :meth:`rows` gives it; None when
        there is none."""
        if not self.rest:
            return None
        good, rejected, malformed, _, _ = self.chunk(self.rest, self.rest.count(b"\n"), self.rest_line, final=True)
        return good, rejected, malformed

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


def header_problem(header: list[str], contract: contracts.Contract) -> str:
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
