"""The dashboards' cache: lake_dashboards_refresh runs each dataset's query through Athena on
localaws for the changed days only and stores Parquet; DuckDB over the mirrored files gives the
numbers DuckDB computes straight over the package CSV."""

from __future__ import annotations

import uuid
from datetime import date

import pendulum
import pytest

from lake import layout
from lake.dashboards import cache, query, spec
from lake.settings import Settings
from tests.helpers import REPO
from tests.lake.helpers import GOLD_FLIGHTS_SQL

#: gold holds GOLD_DAYS; the refresh is asked for DAYS (the "changed" ones)
GOLD_DAYS = ["2013-01-01", "2013-01-02", "2013-01-03"]
DAYS = GOLD_DAYS[1:]
GLUE_TYPES = {"VARCHAR": "string", "DOUBLE": "double", "BIGINT": "bigint", "BOOLEAN": "boolean",
              "TIMESTAMP": "timestamp", "INTEGER": "int"}


@pytest.fixture
def gold(aws_client, duck, tmp_path, monkeypatch):
    """A gold ``flights`` table on localaws (two days, partitioned by dt, registered in Glue) and
    the settings naming its fresh buckets and database (also in the environment, for the DAG)."""
    tag = uuid.uuid4().hex[:8]
    env = {"LAKE_GOLD_BUCKET": f"gold-{tag}", "LAKE_ARTIFACTS_BUCKET": f"artifacts-{tag}",
           "LAKE_GOLD_DATABASE": f"gold_{tag}", "LAKE_WORKGROUP": "primary"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s3, glue = aws_client("s3"), aws_client("glue")
    for bucket in (env["LAKE_GOLD_BUCKET"], env["LAKE_ARTIFACTS_BUCKET"]):
        s3.create_bucket(Bucket=bucket)
    glue.create_database(DatabaseInput={"Name": env["LAKE_GOLD_DATABASE"]})
    rows = f"SELECT * EXCLUDE (dt) FROM ({GOLD_FLIGHTS_SQL}) WHERE dt = $day"
    columns = [{"Name": c, "Type": GLUE_TYPES[t]} for c, t, *_ in
               duck.execute(f"DESCRIBE {rows}", {"day": DAYS[0]}).fetchall()]
    location = f"s3://{env['LAKE_GOLD_BUCKET']}/flights/"
    serde = {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}
    glue.create_table(DatabaseName=env["LAKE_GOLD_DATABASE"], TableInput={
        "Name": "flights", "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {"Columns": columns, "Location": location, "SerdeInfo": serde}})
    for day in GOLD_DAYS:
        local = tmp_path / f"{day}.parquet"
        duck.execute(f"COPY ({rows.replace('$day', repr(day))}) TO '{local}' (FORMAT parquet)")
        s3.put_object(Bucket=env["LAKE_GOLD_BUCKET"], Key=f"flights/dt={day}/part-00000.parquet",
                      Body=local.read_bytes())
        glue.create_partition(DatabaseName=env["LAKE_GOLD_DATABASE"], TableName="flights", PartitionInput={
            "Values": [day], "StorageDescriptor": {"Columns": columns, "Location": f"{location}dt={day}/",
                                                   "SerdeInfo": serde}})
    return Settings()


def test_athena_sql_reads_one_partition_of_the_gold_database():
    lay = layout.for_dataset(Settings(gold_database="g1"), "flights")
    sql = cache.athena_sql(spec.load("flights"), "flights", lay, date(2013, 1, 5))
    assert "FROM g1.flights" in sql and sql.endswith("WHERE dt = '2013-01-05'")
    with pytest.raises(ValueError):
        cache.athena_sql(spec.load("flights"), "flights", lay, "2013-01-05' OR '1'='1")
    assert lay.dashboard_key("flights", "flights", "2013-01-05") == \
        "dashboards/flights/flights/dt=2013-01-05/data.parquet"


def test_changed_days_come_from_the_gold_events_only():
    uris = {"glue://lake_gold/flights": "flights", "glue://lake_gold/carrier_daily": "flights",
            "glue://lake_gold/sales": "sales"}
    events = [("glue://lake_gold/flights", "2013-01-05"), ("glue://lake_gold/carrier_daily", "2013-01-05"),
              ("glue://lake_gold/flights", "2013-01-04"), ("s3://lake-silver/flights/", "2013-01-09"),
              ("glue://lake_gold/sales", None)]
    assert cache.changed_days(events, uris) == {"flights": ["2013-01-04", "2013-01-05"]}
    lays = {n: layout.for_dataset(Settings(), n) for n in ("flights", "sales")}
    jobs = cache.jobs([spec.load("flights"), spec.load("sales")], lays, {"flights": ["2013-01-05"]})
    assert [(j.dashboard, j.dataset, j.day) for j in jobs] == [("flights", "flights", "2013-01-05")]


@pytest.mark.slow  # one dag.test() run of the refresh DAG: ~15 s alone, over a minute on a loaded box
def test_refresh_dag_caches_the_changed_days_and_duckdb_reads_them(gold, run_dag, aws_client, duck, tmp_path):
    dag_file = REPO / "dags" / "lake_dashboards_refresh.py"
    dr = run_dag(dag_file, "lake_dashboards_refresh", pendulum.datetime(2013, 1, 4, tz="UTC"),
                 conf={"days": DAYS, "lake_datasets": ["flights"]})
    states = {(ti.task_id, ti.map_index): ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success", states
    assert sorted(k for k in states if k[0] == "query") == [("query", 0), ("query", 1)]
    lay = layout.for_dataset(gold, "flights")
    s3 = aws_client("s3")
    mirror = cache.Mirror(s3, gold.artifacts_bucket, lay.dashboard_prefix("flights", "flights"), tmp_path / "m")
    files = mirror.sync()
    assert [f.rsplit("/", 2)[1] for f in files] == [f"dt={d}" for d in DAYS]
    dash = spec.load("flights")
    rel = f"({query.dataset_sql(dash.datasets['flights'], files)})"
    for visual, oracle in [
        ("flights", "SELECT count(*) FROM src_flights WHERE origin = 'EWR' AND dt IN ('2013-01-02', '2013-01-03')"),
        ("on_time_rate", ("SELECT avg(CASE WHEN arr_delay < 15 THEN 1 ELSE 0 END) FROM src_flights "
                         "WHERE origin = 'EWR' AND dt IN ('2013-01-02', '2013-01-03')")),
    ]:
        sql, args = query.visual_sql(dash, visual, rel, {"origin": ["EWR"]})
        assert duck.execute(sql, args).fetchone()[0] == pytest.approx(duck.execute(oracle).fetchone()[0])
    heat_sql, args = query.visual_sql(dash, "departures_by_hour", rel, {"dates_from": ["2013-01-03"]})
    assert duck.execute(heat_sql, args).fetchall() == duck.execute(
        "SELECT sched_dep_time // 100, isodow(make_date(year, month, day)), count(*) FROM src_flights "
        "WHERE dt = '2013-01-03' GROUP BY ALL ORDER BY ALL").fetchall()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=gold.artifacts_bucket, Prefix="dashboards/")["Contents"]]
    assert keys == [lay.dashboard_key("flights", "flights", d) for d in DAYS]  # not 2013-01-01: unchanged
