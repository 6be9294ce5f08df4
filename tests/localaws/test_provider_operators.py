"""The amazon provider's operators and sensors inside real Airflow task runs (``dag.test()``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pendulum
import pyarrow.parquet as pq
import pytest

from tests.localaws.helpers import lambda_role, zip_bytes

DAGS = Path(__file__).parent / "dags"

ETL = '''
import sys
from awsglue.context import GlueContext
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
args = getResolvedOptions(sys.argv, ["JOB_NAME", "source", "target"])
spark = GlueContext(SparkContext.getOrCreate()).spark_session
df = spark.read.option("header", "true").option("inferSchema", "true").csv(args["source"])
print(f"{args['JOB_NAME']}: {df.count()} rows from {args['source']}")
spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
df.write.mode("overwrite").partitionBy("day").parquet(args["target"])
'''

CSV = "day,carrier,arr_delay\n2013-01-05,UA,12\n2013-01-05,AA,-3\n2013-01-05,DL,40\n"


@pytest.fixture(scope="module")
def provisioned(localaws):
    import boto3

    kw = {"endpoint_url": localaws.endpoint_url, "region_name": "us-east-1"}
    s3, lam, sns, sqs = (boto3.client(s, **kw) for s in ("s3", "lambda", "sns", "sqs"))
    s3.create_bucket(Bucket="localaws-ops")
    s3.put_object(Bucket="localaws-ops", Key="scripts/etl.py", Body=ETL.encode())
    s3.put_object(Bucket="localaws-ops", Key="scripts/shell.py", Body=b"print('shell job ran')\n")
    s3.put_object(Bucket="localaws-ops", Key="scripts/failing.py",
                  Body=b"print('about to fail')\nraise ValueError('manifest row count 10 != 12 rows read')\n")
    lam.create_function(FunctionName="localaws-ops-fn", Runtime="python3.12", Role=lambda_role(boto3.client("iam", **kw)),
                        Handler="app.handler", Code={"ZipFile": zip_bytes(
                            {"app.py": "def handler(event, context):\n    print('extracting', event['ds'])\n"
                                       "    return {'rows_read': 3, 'ds': event['ds']}\n"})})
    topic = sns.create_topic(Name="localaws-ops")["TopicArn"]
    queue = sqs.create_queue(QueueName="localaws-ops-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return {"topic": topic, "queue": queue, "s3": s3, "sqs": sqs}


@pytest.mark.spark
def test_provider_operators_run_against_localaws(run_dag, provisioned, capfd):
    s3 = provisioned["s3"]
    s3.put_object(Bucket="localaws-ops", Key="landing/2013-01-05/ready.csv", Body=CSV.encode())
    dr = run_dag(DAGS / "localaws_provider_ops.py", "localaws_provider_ops", pendulum.datetime(2013, 1, 5, tz="UTC"))
    out = capfd.readouterr().out
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success", states
    assert set(states.values()) == {"success"}

    # Lambda: the log tail is in the task log.
    assert "extracting 2013-01-05" in out
    assert "REPORT RequestId:" in out
    # Glue (both modes): the driver output reached the task log through verbose=True.
    assert "localaws-ops-etl: 3 rows from s3://localaws-ops/landing/2013-01-05/" in out
    assert "localaws-ops-etl-deferred: 3 rows from s3://localaws-ops/landing/2013-01-05/" in out
    assert "shell job ran" in out
    for prefix in ("out/", "out_deferred/"):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="localaws-ops", Prefix=prefix)["Contents"]]
        rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket="localaws-ops", Key=k)["Body"].read())).num_rows
                   for k in keys)
        assert rows == 3 and all("/day=2013-01-05/" in k for k in keys)
    # SNS: the message reached the SQS subscription, with subject and attributes.
    msgs = provisioned["sqs"].receive_message(QueueUrl=provisioned["queue"], MaxNumberOfMessages=10)["Messages"]
    body = json.loads(msgs[0]["Body"])
    assert body["Subject"] == "lake run 2013-01-05"
    assert body["Message"] == "day 2013-01-05 done"
    assert body["MessageAttributes"]["ds"]["Value"] == "2013-01-05"


def test_failing_glue_script_fails_the_task_with_its_error(run_dag, provisioned, capfd):
    dr = run_dag(DAGS / "localaws_failing_glue.py", "localaws_failing_glue", pendulum.datetime(2013, 1, 6, tz="UTC"))
    out = capfd.readouterr().out
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "failed"
    assert states == {"failing_waiting": "failed", "failing_deferrable": "failed"}
    # The script's own output and its exception are in the task log.
    assert out.count("about to fail") >= 2
    assert out.count("ValueError: manifest row count 10 != 12 rows read") >= 2
