"""Helpers of the lake tests: a real day replayed into bronze, the extractor's event for it."""

from __future__ import annotations

import uuid
from datetime import date

from lake import contracts, source
from lake.layout import Layout
from lake.settings import Settings
from tests.helpers import REQUIRED


def replay_day(s3, bucket: str, day: str) -> dict:
    """Replay the real flights of ``day`` (``YYYY-MM-DD``) into ``bucket``; returns its manifest."""
    flights = contracts.load("flights")
    d = date.fromisoformat(day)
    return source.replay(flights, d, d, bucket=bucket, s3=s3)[0]


def extractor_event(buckets: dict[str, str], ds: str, **extra) -> dict:
    """The extractor's event for day ``ds`` on the ``buckets`` fixture's buckets (silver under
    ``silver/``, quarantine under ``quarantine/``) from the layout, plus ``extra`` keys."""
    s = Settings(bronze_bucket=buckets["bronze"], silver_bucket=buckets["silver"], silver_prefix="silver",
                 quarantine_prefix="quarantine")
    return {**Layout(s, contracts.load("flights")).lambda_event(ds), **extra}


#: Gold ``flights``' columns the flights dashboard reads, made here in DuckDB straight from the
#: package CSV by the rules in include/glue_scripts/flights_gold.py's docstring (the tests' own
#: gold, independent of the Glue script): views ``src_flights``, ``src_airlines``, ``src_airports``
#: of the ``duck`` fixture.
GOLD_FLIGHTS_SQL = """
    SELECT f.carrier, a.name AS carrier_name, f.origin, f.dest, p.name AS dest_name,
           coalesce(f.arr_delay < 15, false) AS is_on_time, f.dep_time IS NULL AS is_cancelled,
           f.arr_delay,
           CASE WHEN f.dep_time IS NULL THEN 'cancelled' WHEN f.arr_delay IS NULL THEN 'diverted'
                WHEN f.arr_delay < 0 THEN 'early' WHEN f.arr_delay < 15 THEN 'on_time'
                WHEN f.arr_delay < 60 THEN 'late_15_59' WHEN f.arr_delay < 180 THEN 'late_60_179'
                ELSE 'late_180_plus' END AS arr_delay_bucket,
           make_timestamp(f.year, f.month, f.day, f.sched_dep_time // 100, f.sched_dep_time % 100, 0)
               AS sched_dep_local,
           f.dt
    FROM src_flights f LEFT JOIN src_airlines a USING (carrier) LEFT JOIN src_airports p ON p.faa = f.dest"""


def day_counts(duck, day: str) -> dict[str, int]:
    """The extractor's counts of a flights day, by DuckDB over the package CSV: rows read, written
    (no null in a required column), rejected."""
    nulls = " OR ".join(f"{c} IS NULL" for c in REQUIRED)
    read, rejected = duck.execute(f"SELECT count(*), count(*) FILTER (WHERE {nulls}) FROM src_flights "
                                  f"WHERE dt = '{day}'").fetchone()
    return {"rows_read": read, "rows_written": read - rejected, "rows_rejected": rejected}


def record_runs(session, duck, dags: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Four runs of the daily DAGs ``dags`` (``{"flights": dag id, "sales": dag id}``) written to an
    Airflow database with its ORM (``DagRun``, a task instance per XCom, ``XComModel.set``), each with
    the return values the DAG's tasks give (lake.dashboards.runs: check_extract, data_quality.evaluate,
    publish_metrics), flights' counts from DuckDB over the CSV:

    * ``ok``: flights 2013-01-02, scheduled, success, every figure;
    * ``failed_then``: flights 2013-01-03, a backfill run that failed after check_extract;
    * ``rerun``: flights 2013-01-03 again, a manual run at 06:00 of the day, still running (DQ passed);
    * ``dq_fail``: sales 1995-03-01, failed with one failing DQ check.

    :returns: key -> (dag id, run id).
    """
    from datetime import UTC, datetime, timedelta

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    from lake.dashboards import runs

    fl, sa = dags["flights"], dags["sales"]
    t0 = datetime(2026, 12, 1, 6, tzinfo=UTC)
    c2, c3 = day_counts(duck, "2013-01-02"), day_counts(duck, "2013-01-03")
    plan = {  # key: (dag, logical date, run type, state, start offset (min), ended, {task: return value})
        "ok": (fl, "2013-01-02", DagRunType.SCHEDULED, DagRunState.SUCCESS, 0, True, {
            runs.EXTRACT: c2, runs.EVALUATE: {"dq_not_null": 0},
            runs.PUBLISH: {"RowsRead": c2["rows_read"], "RowsWritten": c2["rows_written"],
                           "RowsRejected": c2["rows_rejected"], "DQFailedChecks": 0,
                           "AthenaBytesScanned": 123_456, "EstimatedCostUSD": 0.015, "RunSeconds": 95.5}}),
        "failed_then": (fl, "2013-01-03", DagRunType.BACKFILL_JOB, DagRunState.FAILED, 1, True, {runs.EXTRACT: c3}),
        # a manual run of the same day, triggered at 06:00 of it (a DAG has one run per logical date)
        "rerun": (fl, "2013-01-03T06:00", DagRunType.MANUAL, DagRunState.RUNNING, 30, False,
                  {runs.EXTRACT: c3, runs.EVALUATE: {"dq_not_null": 0}}),
        "dq_fail": (sa, "1995-03-01", DagRunType.SCHEDULED, DagRunState.FAILED, 2, True, {
            runs.PUBLISH: {"RowsRead": 2500, "RowsWritten": 2500, "RowsRejected": 0, "DQFailedChecks": 1,
                           "AthenaBytesScanned": 9_000}}),
    }
    made = {}
    for key, (dag_id, day, kind, state, offset, ended, values) in plan.items():
        logical = datetime.fromisoformat(day).replace(tzinfo=UTC)
        run_id = f"{kind.value}__{logical.isoformat()}__{key}"
        start = t0 + timedelta(minutes=offset)
        run = DagRun(dag_id=dag_id, run_id=run_id, logical_date=logical, run_type=kind, state=state,
                     start_date=start, data_interval=(logical, logical + timedelta(days=1)), run_after=logical)
        run.end_date = start + timedelta(minutes=2) if ended else None
        session.add(run)
        session.flush()
        for task_id, value in values.items():  # an XCom belongs to its task instance (a foreign key)
            session.execute(TaskInstance.__table__.insert().values(
                id=uuid.uuid4(), task_id=task_id, dag_id=dag_id, run_id=run_id, map_index=-1,
                pool="default_pool", state="success"))
            XComModel.set("return_value", value, dag_id=dag_id, task_id=task_id, run_id=run_id, session=session)
        made[key] = (dag_id, run_id)
    return made
