"""The dashboards' SPICE-like cache: each dataset's Athena query, one Parquet object per day, in S3.

Writing side (the ``lake_dashboards_refresh`` DAG): for each changed day of a lake dataset,
:func:`athena_sql` is the dashboard dataset's query for that partition only; Athena runs it
(``AthenaOperator``); :func:`store` reads its result (``GetQueryResults``, every page) and writes
the rows as Parquet to :meth:`lake.layout.Layout.dashboard_key` (``s3://<artifacts>/dashboards/
<dashboard>/<dataset>/dt=<day>/data.parquet``), overwriting that day only. Column types come from
Athena's ``ResultSetMetadata`` (:data:`ARROW_TYPES`); a day without rows is an empty file with the
columns, so the cache knows the day.

Reading side (the Lake pages): :class:`Mirror` copies a dataset's prefix to a local folder (only
objects whose ETag changed) and DuckDB reads the local files (DuckDB's PyPI wheel has no S3
reader, ``httpfs``). A page view starts no Athena query.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from lake.dashboards import expr
from lake.dashboards.spec import GOLD_SCHEMA, Dashboard, Dataset
from lake.layout import Layout

log = logging.getLogger(__name__)

#: Athena's result column types (ColumnInfo.Type) -> Arrow types; others are kept as strings.
#: https://docs.aws.amazon.com/athena/latest/ug/data-types.html
ARROW_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(), "tinyint": pa.int8(), "smallint": pa.int16(), "integer": pa.int32(),
    "bigint": pa.int64(), "float": pa.float32(), "real": pa.float32(), "double": pa.float64(),
    "date": pa.date32(), "timestamp": pa.timestamp("ms"), "varchar": pa.string(), "char": pa.string(),
    "string": pa.string(),
}


def athena_sql(dash: Dashboard, dataset: str, layout: Layout, day: date | str) -> str:
    """The dataset's query for one partition, in Athena's SQL: ``gold.<t>`` -> ``<gold database>.<t>``,
    and ``WHERE <partition> = '<day>'`` around it (Trino pushes it down to the tables' partitions).

    :param day: a date (``YYYY-MM-DD``); it is parsed, so only a date reaches the SQL.
    :raises ValueError: ``day`` is not a date.
    """
    d = day if isinstance(day, date) else date.fromisoformat(str(day))
    tree = dash.datasets[dataset].tree.copy()
    for table in tree.find_all(exp.Table):
        if table.db == GOLD_SCHEMA:
            table.set("db", exp.to_identifier(layout.settings.gold_database))
    outer = (exp.select("*").from_(tree.subquery("q"))
             .where(exp.column(layout.partition_name).eq(exp.Literal.string(d.isoformat()))))
    return outer.sql(dialect=expr.DIALECT)


@dataclass(frozen=True)
class Job:
    """One refresh: a dashboard dataset's day. ``query`` is its Athena SQL, ``key`` its Parquet key."""

    dashboard: str
    dataset: str
    day: str
    query: str
    bucket: str
    key: str

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("dashboard", "dataset", "day", "query", "bucket", "key")}


def jobs(dashboards: Iterable[Dashboard], layouts: dict[str, Layout], days: dict[str, Iterable[str]]) -> list[Job]:
    """The refreshes for changed days: every Athena dataset of every dashboard whose lake dataset has
    days (a dataset read live, ``source: airflow_runs``, has none).

    :param layouts: lake dataset -> its layout; :param days: lake dataset -> changed days (YYYY-MM-DD).
    :returns: jobs ordered by dashboard, dataset, day (each day once).
    """
    out = []
    for dash in dashboards:
        for name, ds in dash.datasets.items():
            if not isinstance(ds, Dataset):
                continue  # read live, not cached (lake.dashboards.runs)
            lay = layouts[ds.lake_dataset]
            for day in sorted(set(days.get(ds.lake_dataset, ()))):
                out.append(Job(dash.name, name, day, athena_sql(dash, name, lay, day), lay.settings.artifacts_bucket,
                               lay.dashboard_key(dash.name, name, day)))
    return out


def changed_days(events: Iterable[tuple[str, str | None]], asset_datasets: dict[str, str]) -> dict[str, list[str]]:
    """Lake dataset -> the days its gold changed, from asset events.

    :param events: ``(asset URI, day YYYY-MM-DD of the run that emitted it)`` (None: unknown, skipped
        with a warning).
    :param asset_datasets: asset URI -> lake dataset (the gold catalog tables of each contract).
    """
    out: dict[str, set[str]] = {}
    for uri, day in events:
        if uri not in asset_datasets:
            continue
        if day is None:
            log.warning("asset event of %s without a source run: no day to refresh", uri)
            continue
        out.setdefault(asset_datasets[uri], set()).add(date.fromisoformat(day).isoformat())
    return {k: sorted(v) for k, v in out.items()}


def result_table(pages: Iterable[dict[str, Any]]) -> pa.Table:
    """An Athena SELECT result (all ``GetQueryResults`` pages) as an Arrow table typed by
    :data:`ARROW_TYPES` (the header row, Athena's first row of a SELECT, is skipped).

    :raises ValueError: a value that does not convert to its column's type (names column and value).
    """
    info: list[dict[str, Any]] | None = None
    values: list[list[str | None]] = []
    first = True
    for page in pages:
        if info is None:
            info = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        for raw in page["ResultSet"]["Rows"]:
            row = [d.get("VarCharValue") for d in raw["Data"]]
            if first:
                first = False
                if row == [c["Name"] for c in info]:
                    continue
            values.append(row)
    info = info or []
    arrays = []
    for i, col in enumerate(info):
        text = pa.array([r[i] if i < len(r) else None for r in values], pa.string())
        typ = ARROW_TYPES.get(col["Type"].lower(), pa.string())
        try:
            arrays.append(text.cast(typ))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"column {col['Name']} ({col['Type']}): {exc}") from exc
    return pa.table(arrays, names=[c["Name"] for c in info])


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as one Parquet file (zstd)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def store(job: Job, pages: Iterable[dict[str, Any]], s3: Any) -> dict[str, Any]:
    """Write a finished query's rows to the job's key (overwrite). ``s3``: a boto3 S3 client.

    :returns: ``{"dashboard", "dataset", "day", "key", "rows", "bytes"}`` (for the task log).
    """
    table = result_table(pages)
    body = parquet_bytes(table)
    s3.put_object(Bucket=job.bucket, Key=job.key, Body=body)
    return {"dashboard": job.dashboard, "dataset": job.dataset, "day": job.day, "key": job.key,
            "rows": table.num_rows, "bytes": len(body)}


class Mirror:
    """A local copy of one dashboard dataset's cache prefix, for DuckDB.

    :meth:`sync` lists the prefix (one ``ListObjectsV2`` per 1,000 days), downloads the objects new
    or changed since the last sync (by ETag) and deletes local files whose object is gone; it does
    so at most once per ``min_interval`` seconds (page views in between use the local files).
    Thread-safe (the API server serves requests on threads).
    """

    def __init__(self, s3: Any, bucket: str, prefix: str, directory: Path, min_interval: float = 5.0):
        self.s3, self.bucket, self.prefix, self.directory = s3, bucket, prefix, Path(directory)
        self.min_interval = min_interval
        self._etags: dict[str, str] = {}
        self._synced = float("-inf")
        self.updated: datetime | None = None
        self._lock = threading.Lock()

    @property
    def etags(self) -> dict[str, str]:
        """Key -> ETag of the objects mirrored at the last sync."""
        return dict(self._etags)

    def _local(self, key: str) -> Path:
        return self.directory / key[len(self.prefix):]

    def sync(self, force: bool = False) -> list[str]:
        """The local files (sorted paths) after syncing if due. :raises botocore errors: S3 failed."""
        with self._lock:
            if force or time.monotonic() - self._synced >= self.min_interval:
                seen: dict[str, str] = {}
                newest = None
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                    for obj in page.get("Contents", []):
                        if not obj["Key"].endswith(".parquet"):
                            continue
                        seen[obj["Key"]] = obj["ETag"]
                        newest = max(newest or obj["LastModified"], obj["LastModified"])
                        if self._etags.get(obj["Key"]) != obj["ETag"] or not self._local(obj["Key"]).exists():
                            path = self._local(obj["Key"])
                            path.parent.mkdir(parents=True, exist_ok=True)
                            tmp = path.with_suffix(".part")
                            tmp.write_bytes(self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read())
                            tmp.replace(path)
                for key in set(self._etags) - set(seen):
                    self._local(key).unlink(missing_ok=True)
                self._etags, self.updated, self._synced = seen, newest, time.monotonic()
            return sorted(str(self._local(k)) for k in self._etags)
