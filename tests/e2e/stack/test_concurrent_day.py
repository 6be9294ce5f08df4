"""Concurrency: two runs of the same day at once - a manual run of 2013-09-03 triggered while a
backfill of 2013-09-03..04 runs it too (real scheduler, both start together) - leave exactly one
correct copy of every partition of the day.

The same backfill covers the deferred sensor's timeout, which only the triggerer enforces (``dag.test()``
runs triggers inline without it): 2013-09-04's file never arrives, the sensor waits deferred in the
triggerer for ``LAKE_SENSOR_TIMEOUT`` seconds, the run fails without retrying the sensor and one SNS
alert names the task.

The extractor writes one deterministic silver object per day, so concurrent extracts converge.
The Glue job would not (each run deletes the partition's old files and adds its own): it holds a
per-day lease (include/glue_scripts/flights_gold.py ``acquire_lease``), so the second Glue run of
the day fails at once with ``PartitionBusyError`` and the task's retry rewrites the day after the
first run released it. To make the overlap certain rather than likely, localaws's fault injection
holds every lease release (its DeleteObject) until the test has seen a run of the day refused, then
clears the faults, which lets the held release go on (see :func:`_hold_leases_until_refused`).
Gold rows are compared with DuckDB straight over the source CSV.

The dashboards' cache refresh (``lake_dashboards_refresh``) is unpaused too: the scheduler runs it on the
day's gold asset events, and it caches that day only (the late day wrote no gold), with the flights DuckDB
counts.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import urllib.request
from datetime import date

import boto3
import pyarrow.parquet as pq
import pytest

from lake import layout, settings
from lake.dashboards import cache, query, spec
from lake.dev import demo
from tests.e2e.helpers import stack_faults
from tests.helpers import REQUIRED, list_keys

pytestmark = pytest.mark.timeout(1800)

START, END = date(2013, 9, 3), date(2013, 9, 4)
DAY = "2013-09-03"
LATE_DAY = "2013-09-04"
SENSOR_TIMEOUT_S = 40
MANUAL_RUN = "manual__same_day_as_the_backfill"


def _client(stack, service: str):
    return boto3.client(service, endpoint_url=stack.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")


def _manual_state(stack) -> str | None:
    rows = demo._query(stack, "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", (demo.DAG_ID, MANUAL_RUN))
    return rows[0][0] if rows else None


#: The longest a lease release is held: the first Glue run of DAY keeps its lease until the test has
#: seen the other run of DAY refused (then the faults are cleared and the release goes on at once).
#: Both runs start together, but one may wait a minute or more for a Glue driver's JVM on a loaded
#: machine while a day's Glue run lasts ~10 s on an idle one: a fixed hold would make the race
#: likely, not certain (issue 17; CI failed so once).
LEASE_HOLD_MAX_S = 900


def _refused_runs(stack) -> list[dict]:
    glue = _client(stack, "glue")
    runs = glue.get_job_runs(JobName=settings.get().glue_job)["JobRuns"]
    return [r for r in runs if r.get("Arguments", {}).get("--ds") == DAY
            and "PartitionBusyError" in (r.get("ErrorMessage") or "")]


def _hold_leases_until_refused(stack) -> threading.Thread:
    """Hold every lease release (the pipeline's only s3:DeleteObject) until a Glue run of DAY has been
    refused with PartitionBusyError, or LEASE_HOLD_MAX_S; then clear the faults (the held calls go on)."""
    rule = {"operation": "s3:DeleteObject", "latency_ms": LEASE_HOLD_MAX_S * 1000}
    assert stack_faults(stack, "POST", {"rules": [rule]})["active"]

    def watch() -> None:
        deadline = time.monotonic() + LEASE_HOLD_MAX_S
        try:
            while time.monotonic() < deadline and not _refused_runs(stack):
                time.sleep(1)
        finally:
            stack_faults(stack, "DELETE")

    watcher = threading.Thread(target=watch, name="lease-hold", daemon=True)
    watcher.start()
    return watcher


def _wait_refresh(stack, timeout_s: float = 300) -> dict[str, tuple[str, str]]:
    """Wait until lake_dashboards_refresh has no asset event left to run for (Airflow's
    ``asset_dag_run_queue``) and none of its runs is going; returns run id -> (run type, state)."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = {r: (t, st) for r, t, st in demo._query(
            stack, "SELECT run_id, run_type, state FROM dag_run WHERE dag_id = ?", (demo.REFRESH_DAG_ID,))}
        queued = demo._query(stack, "SELECT count(*) FROM asset_dag_run_queue WHERE target_dag_id = ?",
                             (demo.REFRESH_DAG_ID,))
        if runs and not queued[0][0] and all(st in demo.FINAL_STATES for _, st in runs.values()):
            return runs
        assert time.monotonic() < deadline, f"{demo.REFRESH_DAG_ID} runs {runs}, queued asset events {queued}"
        time.sleep(3)


def test_a_manual_run_during_a_backfill_of_the_same_day(stack, duck, tmp_path):
    os.environ["LAKE_RETRY_DELAY"] = "5"  # seconds, doubling per retry (the stack fixture restores the env)
    os.environ["LAKE_RETRIES"] = "4"
    os.environ["LAKE_SENSOR_TIMEOUT"] = str(SENSOR_TIMEOUT_S)
    os.environ["LAKE_SENSOR_POKE_INTERVAL"] = "5"
    os.environ["LAKE_SENSOR_DEFERRABLE"] = "true"
    started = time.monotonic()

    def withdraw_late_day() -> None:
        """The source never delivered LATE_DAY: delete what the replay put in bronze (delete markers)."""
        s = settings.get()
        s3 = _client(stack, "s3")
        for key in list_keys(s3, s.bronze_bucket, f"flights/ingest_date={LATE_DAY}/"):
            s3.delete_object(Bucket=s.bronze_bucket, Key=key)

    watcher: list[threading.Thread] = []

    def trigger_manual_run() -> None:
        watcher.append(_hold_leases_until_refused(stack))
        # 06:00 on the same day: logical dates are unique per DAG, {{ ds }} is the same day.
        demo.airflow_cli(stack, "dags", "trigger", demo.DAG_ID, "--logical-date", f"{DAY}T06:00:00+00:00",
                         "--run-id", MANUAL_RUN)

    states = demo.run_pipeline(stack, START, END, before_airflow=withdraw_late_day,
                               before_scheduler=trigger_manual_run, backfill_timeout_s=1500, dashboards=True)
    assert states == {DAY: "success", LATE_DAY: "failed"}, \
        f"logs under {stack.airflow_home / 'logs'}"
    deadline = time.monotonic() + 900
    while _manual_state(stack) not in demo.FINAL_STATES and time.monotonic() < deadline:
        time.sleep(5)
    assert _manual_state(stack) == "success", f"manual run {_manual_state(stack)}; logs under {stack.airflow_home}"
    wall = time.monotonic() - started
    watcher[0].join(timeout=30)
    assert not watcher[0].is_alive()

    s = settings.get()
    s3, glue = _client(stack, "s3"), _client(stack, "glue")
    runs = [r for r in glue.get_job_runs(JobName=s.glue_job)["JobRuns"] if r.get("Arguments", {}).get("--ds") == DAY]
    busy = [r for r in runs if "PartitionBusyError" in (r.get("ErrorMessage") or "")]
    succeeded = [r for r in runs if r["JobRunState"] == "SUCCEEDED"]
    assert len(succeeded) == 2, [(r["Id"], r["JobRunState"], r.get("ErrorMessage")) for r in runs]
    assert busy, ("the two runs' Glue jobs did not overlap, so the race was not exercised: "
                  f"{[(r['Id'], r['JobRunState'], str(r['StartedOn']), str(r.get('CompletedOn'))) for r in runs]}")
    assert f"partition dt={DAY} is being written by Glue run" in busy[0]["ErrorMessage"]

    # The dashboards' cache: lake_dashboards_refresh, scheduled on the gold assets, was run by the scheduler
    # after the day's runs (run_type asset_triggered) and refreshed that day only: the late day wrote no gold.
    refresh = _wait_refresh(stack)
    assert refresh and set(refresh.values()) == {("asset_triggered", "success")}, refresh
    dashboards = [d for d in map(spec.load, spec.names()) if any(ds.source == "athena" for ds in d.datasets.values())]
    lay = layout.for_dataset(s, "flights")
    layouts = {ds.lake_dataset: layout.for_dataset(s, ds.lake_dataset)
               for d in dashboards for ds in d.datasets.values() if ds.source == "athena"}
    jobs = cache.jobs(dashboards, layouts, {"flights": [DAY]})
    assert jobs and list_keys(s3, s.artifacts_bucket, "dashboards/") == sorted(
        lay.dashboard_key(j.dashboard, j.dataset, j.day) for j in jobs)
    flights_dash = spec.load("flights")
    mirror = cache.Mirror(s3, s.artifacts_bucket, lay.dashboard_prefix("flights", "flights"), tmp_path / "cache")
    cached = query.dataset_sql(flights_dash.datasets["flights"], mirror.sync())
    kpi_sql, args = query.visual_sql(flights_dash, "flights", f"({cached})", {})
    cached_flights = duck.execute(kpi_sql, args).fetchone()[0]

    null_required = " OR ".join(f"{c} IS NULL" for c in REQUIRED)
    expected = duck.execute(f"SELECT count(*) FILTER (WHERE NOT ({null_required})) FROM src_flights "
                            f"WHERE dt = '{DAY}'").fetchone()[0]
    carriers = duck.execute(f"SELECT count(DISTINCT carrier) FROM src_flights WHERE dt = '{DAY}'").fetchone()[0]
    silver = [k for k in list_keys(s3, s.silver_bucket, f"flights/dt={DAY}/") if k.endswith(".parquet")]
    assert len(silver) == 1, silver

    def read(table: str):
        return [pq.read_table(io.BytesIO(s3.get_object(Bucket=s.gold_bucket, Key=k)["Body"].read()))
                for k in list_keys(s3, s.gold_bucket, f"{table}/dt={DAY}/") if k.endswith(".parquet")]

    key_columns = ["carrier", "flight", "origin", "sched_dep_local"]
    flights = [r for t in read("flights") for r in t.select(key_columns).to_pylist()]
    assert len(flights) == expected, f"gold flights has {len(flights)} rows for {DAY}, the source {expected}"
    assert len({tuple(r.values()) for r in flights}) == expected, "duplicated gold rows"
    assert cached_flights == expected, f"the dashboards' cache counts {cached_flights} flights on {DAY}, DuckDB {expected}"
    daily = [r["carrier"] for t in read("carrier_daily") for r in t.select(["carrier"]).to_pylist()]
    assert sorted(daily) == sorted(set(daily)) and len(daily) == carriers
    leases = list_keys(s3, s.artifacts_bucket, "leases/")
    assert leases == [], f"leases left behind: {leases}"
    # The late day: the deferred sensor timed out in the triggerer, once, and one alert says so.
    with urllib.request.urlopen(f"{stack.endpoint_url}/_localaws/sns/messages?topic={s.sns_topic}",
                                timeout=10) as resp:
        subjects = [m["subject"] for m in json.load(resp)["messages"]
                    if (m["subject"] or "").startswith(f"lake {LATE_DAY}")]
    assert subjects == [f"lake {LATE_DAY}: wait_for_bronze FAILED"], subjects
    # Backfill run ids carry the end of the data interval, so find the late day's run by logical date.
    (late_run_id,) = [r for (r,) in demo._query(stack, "SELECT run_id FROM dag_run WHERE dag_id = ? AND "
                                                       "run_type = 'backfill' AND logical_date LIKE ?",
                                                (demo.DAG_ID, f"{LATE_DAY}%"))]
    run_logs = stack.airflow_home / "logs" / f"dag_id={demo.DAG_ID}" / f"run_id={late_run_id}"
    run_logs = run_logs / "task_id=wait_for_bronze"
    attempts = sorted(int(m.group(1)) for p in run_logs.iterdir() if (m := re.fullmatch(r"attempt=(\d+)\.log", p.name)))
    # An attempt timed out while deferred when it resumed only to fail with AirflowSensorTimeout("Trigger
    # timeout"): the scheduler's check of deferred tasks' trigger_timeout sends them back with that error
    # (airflow/jobs/scheduler_job_runner.py, TriggerFailureReason.TRIGGER_TIMEOUT); a sensor that timed out
    # poking in a worker says "Sensor has timed out" instead. The triggerer's own "Trigger cancelled due to
    # timeout" line in the attempt's trigger log is not required: it is written only when the triggerer
    # cancels the trigger after the deadline, and was missing once in CI (2026-12-02) on a passing run.
    timed_out = [n for n in attempts if re.search(r"AirflowSensorTimeout.{0,40}Trigger timeout",
                                                  (run_logs / f"attempt={n}.log").read_text())]
    # Exactly one attempt timed out deferred, and it was the last: a sensor timeout is not retried.
    # (An earlier attempt may have failed before running under heavy load - Airflow retries those.)
    assert timed_out == attempts[-1:], (attempts, timed_out)
    print(f"\nlate file {LATE_DAY}: deferred sensor timed out after {SENSOR_TIMEOUT_S} s (Trigger timeout), "
          f"run failed, not retried after the timeout (attempts {attempts}), alert {subjects[0]!r}")
    print(f"\nconcurrent runs of {DAY}: backfill + manual run both succeeded in {wall:.0f} s; Glue runs of the day "
          f"{len(runs)} ({len(busy)} refused with PartitionBusyError, {len(succeeded)} succeeded); gold flights "
          f"{len(flights)} rows = source {expected}, carrier_daily {len(daily)} rows = {carriers} carriers; "
          f"1 silver object; duplicates 0; dashboards' cache refreshed by {len(refresh)} asset-triggered run(s), "
          f"{len(jobs)} object(s) for {DAY} only, {cached_flights} flights = DuckDB")
