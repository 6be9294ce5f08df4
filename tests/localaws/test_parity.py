"""localaws behaving as AWS where a client written elsewhere would notice (issue 13, items 1-3 and 6).

* S3 locations with empty path segments (``s3://bucket//table/``) read what Athena reads.
* Crawler targets written without ``s3://`` are crawled; a failed crawl says why in ``LastCrawl``.
* Operations localaws does not implement fail at once, in the service's protocol, unretried.
* An Athena work group's ``BytesScannedCutoffPerQuery`` cancels a query that scans more.

Expected values come from DuckDB over the bytes the tests wrote, never from localaws's answers.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import time
from pathlib import Path

import botocore.config
import duckdb
import pytest
from botocore.exceptions import ClientError

from lake.deploy import provision
from lake.settings import Settings
from localaws.services import s3memory
from tests.localaws.test_athena import ok, rows_of, run_query
from tests.localaws.test_crawler import wait_ready

BUCKET = "parity-lake"
RESULTS = f"s3://{BUCKET}/results/"
ROLE = "arn:aws:iam::123456789012:role/crawler"
BRIDGE = Path(s3memory.__file__).parent / "glue_jobs" / "compat" / "localaws_s3_bridge.py"

EVENTS = [(f"2013-01-0{1 + i % 3}", "UA" if i % 2 else "DL", i * 7 % 50) for i in range(40)]


def _csv(rows: list[tuple]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


@pytest.fixture(scope="module")
def data(localaws, tmp_path_factory):
    """``events/`` (two CSV objects) and ``parted/day=.../`` in bucket ``parity-lake``; local copies."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=localaws.endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    local = tmp_path_factory.mktemp("parity")
    for n, chunk in enumerate((EVENTS[:25], EVENTS[25:])):
        body = _csv(chunk)
        s3.put_object(Bucket=BUCKET, Key=f"events/part-{n}.csv", Body=body)
        (local / f"part-{n}.csv").write_bytes(body)
    for day in ("2013-01-01", "2013-01-02"):
        s3.put_object(Bucket=BUCKET, Key=f"parted/day={day}/data.csv",
                      Body=_csv([(d, c, v) for d, c, v in EVENTS if d == day]))
    return local


def _duck(local: Path, sql: str) -> list[tuple]:
    con = duckdb.connect()
    glob = str(local / "*.csv").replace("'", "''")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_csv('{glob}', columns={{'day': 'VARCHAR', "
                "'carrier': 'VARCHAR', 'delay': 'INTEGER'}, header=false)")
    return con.execute(sql).fetchall()


# --- 1. empty path segments -----------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("s3://bucket//table", "s3://bucket/table"),
    ("s3://bucket//table/", "s3://bucket/table/"),
    ("s3://bucket/a//b///c/", "s3://bucket/a/b/c/"),
    ("s3a://bucket//x", "s3a://bucket/x"),
    ("s3://bucket/", "s3://bucket/"),
    ("s3://bucket", "s3://bucket"),
    ("s3://bucket/a/b", "s3://bucket/a/b"),
    ("s3:///nobucket", "s3:///nobucket"),
    ("not-a-url//x", "not-a-url//x"),
])
def test_normalize_location_drops_empty_segments_and_the_bridge_agrees(url, expected):
    spec = importlib.util.spec_from_file_location("localaws_s3_bridge_under_test", BRIDGE)
    bridge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bridge)
    assert s3memory.normalize_location(url) == expected
    assert bridge.normalize_location(url) == expected


def test_athena_table_location_with_an_empty_segment_reads_the_rows(aws_client, data):
    athena = aws_client("athena")
    ok(run_query(athena, "CREATE DATABASE IF NOT EXISTS paritydb", output=RESULTS))
    ok(run_query(athena, "CREATE EXTERNAL TABLE paritydb.events_ds (day string, carrier string, delay int) "
                         "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
                         f"LOCATION 's3://{BUCKET}//events/'", database="paritydb", output=RESULTS))
    sql = "SELECT carrier, count(*), sum(delay) FROM events{} GROUP BY carrier ORDER BY carrier"
    execution = ok(run_query(athena, sql.format("_ds"), database="paritydb", output=RESULTS))
    got = [tuple(r) for r in rows_of(athena, execution["QueryExecutionId"])[1:]]
    want = [(c, str(n), str(s)) for c, n, s in _duck(data, sql.format(""))]
    assert got == want and len(want) == 2
    assert execution["Statistics"]["DataScannedInBytes"] == sum(p.stat().st_size for p in data.glob("*.csv"))


def test_glue_table_and_msck_partitions_with_an_empty_segment(aws_client, data):
    glue, athena = aws_client("glue"), aws_client("athena")
    ok(run_query(athena, "CREATE DATABASE IF NOT EXISTS paritydb", output=RESULTS))
    ok(run_query(athena, "CREATE EXTERNAL TABLE paritydb.parted_ds (carrier string, delay int) "
                         "PARTITIONED BY (day string) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
                         f"LOCATION 's3://{BUCKET}//parted/'", database="paritydb", output=RESULTS))
    ok(run_query(athena, "MSCK REPAIR TABLE parted_ds", database="paritydb", output=RESULTS))
    parts = glue.get_partitions(DatabaseName="paritydb", TableName="parted_ds")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2013-01-01", "2013-01-02"]
    # The table's day column is the partition key; the CSV's first column lands in carrier, so
    # count rows only (the point is that the objects are found).
    execution = ok(run_query(athena, "SELECT day, count(*) FROM parted_ds GROUP BY day ORDER BY day",
                             database="paritydb", output=RESULTS))
    got = [tuple(r) for r in rows_of(athena, execution["QueryExecutionId"])[1:]]
    want = [(d, str(n)) for d, n in _duck(data, "SELECT day, count(*) FROM events WHERE day IN "
                                                "('2013-01-01', '2013-01-02') GROUP BY day ORDER BY day")]
    assert got == want


def test_glue_job_bridge_reads_a_location_with_an_empty_segment(aws_client, data, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("localaws_s3_bridge_read", BRIDGE)
    bridge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bridge)
    monkeypatch.setenv("LOCALAWS_STAGING_DIR", str(tmp_path))
    s3 = aws_client("s3")
    monkeypatch.setattr(bridge, "s3_client", lambda: s3)
    local = Path(bridge.stage_read(f"s3://{BUCKET}//events/"))
    assert sorted(p.read_bytes() for p in local.glob("*.csv")) == sorted(p.read_bytes() for p in data.glob("*.csv"))


# --- 2. crawler targets ---------------------------------------------------------------------------


def test_crawler_target_without_scheme_and_with_empty_segment_is_crawled(aws_client, data):
    glue = aws_client("glue")
    for name, path in (("parity-noscheme", f"{BUCKET}/parted/"), ("parity-doubleslash", f"s3://{BUCKET}//parted")):
        glue.create_crawler(Name=name, Role=ROLE, DatabaseName=name.replace("-", "_"),
                            Targets={"S3Targets": [{"Path": path}]})
        glue.start_crawler(Name=name)
        crawler = wait_ready(glue, name)
        assert crawler["LastCrawl"]["Status"] == "SUCCEEDED", crawler["LastCrawl"]
        table = glue.get_table(DatabaseName=name.replace("-", "_"), Name="parted")["Table"]
        assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/parted/"
        assert [k["Name"] for k in table["PartitionKeys"]] == ["day"]
        parts = glue.get_partitions(DatabaseName=name.replace("-", "_"), TableName="parted")["Partitions"]
        assert sorted(p["Values"][0] for p in parts) == ["2013-01-01", "2013-01-02"]


def test_failed_crawl_reason_reaches_last_crawl(aws_client):
    glue = aws_client("glue")
    glue.create_crawler(Name="parity-missing", Role=ROLE, DatabaseName="parity_missing",
                        Targets={"S3Targets": [{"Path": "parity-no-such-bucket/data/"}]})
    glue.start_crawler(Name="parity-missing")
    last = wait_ready(glue, "parity-missing")["LastCrawl"]
    assert last["Status"] == "FAILED"
    assert last["ErrorMessage"] == "bucket parity-no-such-bucket does not exist"


# --- 3. unimplemented operations ------------------------------------------------------------------

UNIMPLEMENTED = [
    ("glue", "cancel_data_quality_rule_recommendation_run", "CancelDataQualityRuleRecommendationRun",
     {"RunId": "dqrun-0123456789abcdef"}),
    ("glue", "list_blueprints", "ListBlueprints", {}),
    ("sqs", "list_message_move_tasks", "ListMessageMoveTasks", {"SourceArn": "arn:aws:sqs:us-east-1:123456789012:q"}),
    ("sns", "get_data_protection_policy", "GetDataProtectionPolicy",
     {"ResourceArn": "arn:aws:sns:us-east-1:123456789012:t"}),
    ("lambda", "get_function_recursion_config", "GetFunctionRecursionConfig", {"FunctionName": "f"}),
]


@pytest.mark.parametrize("retry_mode", ["legacy", "standard"])
@pytest.mark.parametrize("service, method, operation, kwargs", UNIMPLEMENTED,
                         ids=[f"{s}-{o}" for s, _, o, _ in UNIMPLEMENTED])
def test_unimplemented_operation_fails_at_once_in_the_services_protocol(aws_client, service, method, operation,
                                                                         kwargs, retry_mode):
    client = aws_client(service, config=botocore.config.Config(retries={"mode": retry_mode}))
    with pytest.raises(ClientError):  # once untimed: the first call loads botocore's endpoint rules and moto's backend
        getattr(client, method)(**kwargs)
    started = time.monotonic()
    with pytest.raises(ClientError) as err:
        getattr(client, method)(**kwargs)
    elapsed = time.monotonic() - started
    response = err.value.response
    assert elapsed < 1.0
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert response["Error"]["Code"] == "NotImplemented"
    assert response["Error"]["Message"].startswith(f"localaws does not implement {service} {operation}")


def test_implemented_operations_and_moto_errors_are_unchanged(aws_client):
    glue, lam = aws_client("glue"), aws_client("lambda")
    with pytest.raises(ClientError) as err:
        glue.get_table(DatabaseName="no_such_db", Name="t")
    assert err.value.response["Error"]["Code"] == "EntityNotFoundException"
    with pytest.raises(ClientError) as err:
        lam.get_function(FunctionName="no-such-function")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- 6. BytesScannedCutoffPerQuery ----------------------------------------------------------------

CUTOFF = 10_000_000  # AWS's minimum (botocore: BytesScannedCutoffValue min)


def test_query_over_the_work_groups_cutoff_is_cancelled(aws_client, data):
    s3, athena = aws_client("s3"), aws_client("athena")
    row = b"2013-01-01,UA," + b"7" * 40 + b"\n"
    body = row * (6_000_000 // len(row))
    for n in range(2):  # 2 x 6 MB: the second object would pass the 10 MB cutoff
        s3.put_object(Bucket=BUCKET, Key=f"big/part-{n}.csv", Body=body)
    athena.create_work_group(Name="parity-capped", Configuration={
        "ResultConfiguration": {"OutputLocation": RESULTS}, "BytesScannedCutoffPerQuery": CUTOFF})
    ok(run_query(athena, "CREATE DATABASE IF NOT EXISTS paritydb", output=RESULTS))
    ok(run_query(athena, "CREATE EXTERNAL TABLE IF NOT EXISTS paritydb.big (day string, carrier string, v string) "
                         f"ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{BUCKET}/big/'",
                 database="paritydb", output=RESULTS))
    ok(run_query(athena, "CREATE EXTERNAL TABLE IF NOT EXISTS paritydb.small (day string, carrier string, delay int) "
                         f"ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{BUCKET}/events/'",
                 database="paritydb", output=RESULTS))

    capped = run_query(athena, "SELECT count(*) FROM big", database="paritydb", output=None, workgroup="parity-capped")
    assert capped["Status"]["State"] == "CANCELLED"
    assert capped["Status"]["StateChangeReason"] == "Bytes scanned limit was exceeded"
    assert capped["Statistics"]["DataScannedInBytes"] == CUTOFF
    small = ok(run_query(athena, "SELECT count(*) FROM small", database="paritydb", output=None,
                         workgroup="parity-capped"))
    assert rows_of(athena, small["QueryExecutionId"])[1] == [str(_duck(data, "SELECT count(*) FROM events")[0][0])]
    # The same query in a work group without a cutoff reads everything.
    whole = ok(run_query(athena, "SELECT count(*) FROM big", database="paritydb", output=RESULTS))
    assert rows_of(athena, whole["QueryExecutionId"])[1] == [str(2 * (len(body) // len(row)))]
    assert whole["Statistics"]["DataScannedInBytes"] == 2 * len(body)
    # Removing the cutoff (UpdateWorkGroup) lets the query run.
    athena.update_work_group(WorkGroup="parity-capped", ConfigurationUpdates={"RemoveBytesScannedCutoffPerQuery": True})
    ok(run_query(athena, "SELECT count(*) FROM big", database="paritydb", output=None, workgroup="parity-capped"))


def test_lake_work_group_gets_the_cutoff_setting(localaws):
    aws = provision.Clients("us-east-1", localaws.endpoint_url)
    s = Settings(workgroup="parity-lake-wg", athena_bytes_cutoff=20_000_000)
    assert provision.workgroup(s, aws) == [{"resource": "workgroup:parity-lake-wg", "action": "created"}]
    config = aws("athena").get_work_group(WorkGroup="parity-lake-wg")["WorkGroup"]["Configuration"]
    assert config["BytesScannedCutoffPerQuery"] == 20_000_000
    assert provision.workgroup(s, aws)[0]["action"] == "unchanged"
    changed = Settings(workgroup="parity-lake-wg", athena_bytes_cutoff=30_000_000)
    assert provision.workgroup(changed, aws)[0]["action"] == "updated"
    config = aws("athena").get_work_group(WorkGroup="parity-lake-wg")["WorkGroup"]["Configuration"]
    assert config["BytesScannedCutoffPerQuery"] == 30_000_000
    assert Settings().athena_bytes_cutoff == 10 * 1024**3
