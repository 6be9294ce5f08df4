"""The lake health dashboard's source: Airflow's own record of the daily DAGs' runs, read live.

Why this source (and not the other two that hold some of the figures):

* **the CloudWatch metrics** (namespace ``Lake``, :mod:`lake.metrics`) are timestamped at the
  run's end, not at its day, and carry no run id or state: a backfill of seven days lands as seven
  datums at one minute, so "per day" cannot be read back from them;
* **the asset events' extras** (:mod:`lake.events`) exist only for tasks that succeeded: a failed
  day (what a health page is for) has none, and they hold neither the DQ verdict nor the bytes
  Athena scanned;
* **Airflow's metadata database** has every run of every day, its state while it runs, and the
  XCom values the run's tasks returned: ``publish_metrics`` returns exactly the figures it sent to
  CloudWatch (and runs after a failure too, ``TriggerRule.ALL_DONE``), ``check_extract`` the
  extractor's counts (there before the run ends), ``data_quality.evaluate`` the violating rows per
  check. The Lake pages run inside Airflow's API server, which holds a connection to that
  database, so reading it costs two indexed queries (dag_run, xcom) per page view at most every
  few seconds (:class:`lake.dashboards.web.Reader`): read live rather than cached, so the run
  state is never stale by a refresh cycle.

:data:`COLUMNS` is the dataset's shape (one row per DAG run); :func:`row` makes one row from a run
and its XCom values (pure); :func:`read` queries the database (Airflow's ORM, ``DagRun`` and
``XComModel``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pyarrow as pa

#: The tasks whose return values (XCom ``return_value``) hold the run's figures (dags/lake_daily.py).
PUBLISH, EXTRACT, EVALUATE = "publish_metrics", "check_extract", "data_quality.evaluate"

#: The dataset's columns and their types; timestamps are UTC, durations seconds.
COLUMNS: dict[str, pa.DataType] = {
    "dataset": pa.string(),                # the lake dataset (its contract's name)
    "dt": pa.string(),                     # the run's day, YYYY-MM-DD ({{ ds }}: the logical date's)
    "dag_id": pa.string(),
    "run_id": pa.string(),
    "run_type": pa.string(),               # scheduled, backfill, manual
    "state": pa.string(),                  # queued, running, success, failed
    "is_latest": pa.bool_(),               # the day's most recent run (by logical date, then id)
    "start_date": pa.timestamp("s"),       # UTC
    "end_date": pa.timestamp("s"),         # UTC; null while running
    "run_seconds": pa.float64(),           # RunSeconds (first task's start -> publish_metrics), else end - start
    "rows_read": pa.int64(),               # the extractor's counts (RowsRead, RowsWritten, RowsRejected)
    "rows_written": pa.int64(),
    "rows_rejected": pa.int64(),
    "dq": pa.string(),                     # pass, fail, or null (the checks did not run)
    "dq_failed_checks": pa.int64(),        # DQFailedChecks: checks with violating rows
    "athena_bytes_scanned": pa.int64(),    # AthenaBytesScanned: DataScannedInBytes of the day's queries
    "cost_usd": pa.float64(),              # EstimatedCostUSD (lake/cost.py)
    "run_url": pa.string(),                # the run in the Airflow UI
}


def run_url(dag_id: str, run_id: str, base_path: str = "") -> str:
    """The run's page in Airflow 3's UI: ``<base path>/dags/<dag_id>/runs/<run_id>`` (quoted)."""
    return f"{base_path.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def base_path() -> str:
    """The path of Airflow's ``[api] base_url`` (``""`` when it is served at the root)."""
    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _naive(t: datetime | None) -> datetime | None:
    return None if t is None else t.astimezone(UTC).replace(tzinfo=None)


def row(dataset: str, run: Any, xcoms: Mapping[str, Any], base: str = "") -> dict[str, Any]:
    """One run as a row of :data:`COLUMNS` (``is_latest`` left False: :func:`table` sets it).

    :param run: a ``DagRun`` (or anything with ``dag_id``, ``run_id``, ``run_type``, ``state``,
        ``logical_date``, ``start_date``, ``end_date``).
    :param xcoms: task id -> its return value, for :data:`PUBLISH`, :data:`EXTRACT`, :data:`EVALUATE`
        (those that returned one). ``publish_metrics``' figures come first (what CloudWatch got);
        while it has not run, the rows are ``check_extract``'s and the verdict ``evaluate``'s.
    """
    published = xcoms.get(PUBLISH) or {}
    extract = xcoms.get(EXTRACT) or {}
    evaluated = xcoms.get(EVALUATE)
    counts = {k: _int(published.get(m, extract.get(k)))
              for k, m in (("rows_read", "RowsRead"), ("rows_written", "RowsWritten"), ("rows_rejected", "RowsRejected"))}
    failed = published.get("DQFailedChecks")
    if failed is None and isinstance(evaluated, dict):
        failed = sum(1 for n in evaluated.values() if n)
    start, end = _naive(run.start_date), _naive(run.end_date)
    seconds = published.get("RunSeconds")
    if seconds is None and start and end:
        seconds = (end - start).total_seconds()
    state = getattr(run.state, "value", run.state)
    logical = run.logical_date or run.start_date
    return {
        "dataset": dataset, "dt": logical.astimezone(UTC).date().isoformat() if logical else None,
        "dag_id": run.dag_id, "run_id": run.run_id, "run_type": str(getattr(run.run_type, "value", run.run_type)),
        "state": None if state is None else str(state), "is_latest": False, "start_date": start, "end_date": end,
        "run_seconds": None if seconds is None else float(seconds), **counts,
        "dq": None if failed is None else "pass" if failed == 0 else "fail",
        "dq_failed_checks": _int(failed), "athena_bytes_scanned": _int(published.get("AthenaBytesScanned")),
        "cost_usd": None if published.get("EstimatedCostUSD") is None else float(published["EstimatedCostUSD"]),
        "run_url": run_url(run.dag_id, run.run_id, base),
    }


def table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """Rows of :data:`COLUMNS` as an Arrow table, ``is_latest`` set on each (dataset, day)'s last run
    (the rows come newest first per DAG, as :func:`read` orders them)."""
    out, seen = [], set()
    for r in rows:
        key = (r["dataset"], r["dt"])
        out.append({**r, "is_latest": key not in seen})
        seen.add(key)
    return pa.Table.from_pylist(out, schema=pa.schema(list(COLUMNS.items())))


def read(dags: Mapping[str, str], limit: int = 400, base: str | None = None) -> pa.Table:
    """The newest ``limit`` runs of each DAG from Airflow's metadata database (``DagRun``, then the
    XCom return values of their :data:`PUBLISH`, :data:`EXTRACT`, :data:`EVALUATE` tasks).

    :param dags: DAG id -> its lake dataset (e.g. ``{"flights_lake_daily": "flights"}``).
    :param base: the UI's base path (default :func:`base_path`).
    :returns: a table of :data:`COLUMNS`, newest run first per DAG.
    :raises sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    base = base_path() if base is None else base
    rows = []
    with create_session() as session:
        for dag_id, dataset in dags.items():
            runs = (session.query(DagRun).filter(DagRun.dag_id == dag_id)
                    .order_by(DagRun.logical_date.desc(), DagRun.id.desc()).limit(limit).all())
            values: dict[int, dict[str, Any]] = {}
            ids = [r.id for r in runs]
            for i in range(0, len(ids), 500):
                for x in session.query(XComModel).filter(
                        XComModel.dag_run_id.in_(ids[i:i + 500]), XComModel.key == "return_value",
                        XComModel.map_index == -1, XComModel.task_id.in_((PUBLISH, EXTRACT, EVALUATE))):
                    values.setdefault(x.dag_run_id, {})[x.task_id] = XComModel.deserialize_value(x)
            rows += [row(dataset, r, values.get(r.id, {}), base) for r in runs]
    return table(rows)
