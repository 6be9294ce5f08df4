"""Benchmark: what S3 event notifications cost a PUT, and how soon the event arrives.

For localaws in-process without a state dir and with one (durable writes), it prints the median
wall time of 100 sequential 1 KB ``PutObject`` calls to a bucket without notifications, to one with
an SQS destination, and to one with a Lambda destination (the PUT must not wait for the handler),
plus the median time from the PUT's answer to the event being received from SQS (long poll).

Run: ``.venv/bin/python bench/s3_events.py``
"""

from __future__ import annotations

import io
import json
import statistics
import tempfile
import time
import zipfile

import boto3
from moto.moto_api._internal.models import moto_api_backend

from localaws.server import LocalAWS

N = 100
HANDLER = "def handler(event, context):\n    return len(event['Records'])\n"


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", HANDLER)
    return buf.getvalue()


def _drain(sqs, url: str) -> int:
    """Receive and delete until a 1 s long poll returns nothing; returns how many."""
    count = 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            return count
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        count += len(messages)


def measure(state_dir: str | None) -> dict[str, float]:
    moto_api_backend.reset()  # moto's state is process-wide: start each configuration empty
    with LocalAWS(port=0, state_dir=state_dir) as aws:
        def client(service: str):
            return boto3.client(service, endpoint_url=aws.endpoint_url, region_name="us-east-1",
                                aws_access_key_id="x", aws_secret_access_key="x")

        s3, sqs, lam, iam = client("s3"), client("sqs"), client("lambda"), client("iam")
        url = sqs.create_queue(QueueName="bench-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Statement": [{
            "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": arn}]})})
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        fn = lam.create_function(FunctionName="bench-events", Runtime="python3.12", Role=role, Handler="app.handler",
                                 Code={"ZipFile": _zip()})["FunctionArn"]
        lam.add_permission(FunctionName="bench-events", StatementId="s3", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com")
        for bucket in ("bench-plain", "bench-sqs", "bench-lambda"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_notification_configuration(Bucket="bench-sqs", NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        s3.put_bucket_notification_configuration(Bucket="bench-lambda", NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn, "Events": ["s3:ObjectCreated:*"]}]})
        _drain(sqs, url)  # the s3:TestEvent

        out: dict[str, float] = {}
        for bucket in ("bench-plain", "bench-sqs", "bench-lambda"):
            times = []
            for i in range(N):
                started = time.perf_counter()
                s3.put_object(Bucket=bucket, Key=f"k/{i}", Body=b"x" * 1024)
                times.append((time.perf_counter() - started) * 1000)
            out[f"put {bucket} ms"] = statistics.median(times)
        out["events received"] = _drain(sqs, url)
        lags = []
        for i in range(20):
            s3.put_object(Bucket="bench-sqs", Key=f"lag/{i}", Body=b"x")
            answered = time.perf_counter()
            messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])
            lags.append((time.perf_counter() - answered) * 1000)
            for m in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        out["PUT answer -> SQS receive ms"] = statistics.median(lags)
        return out


def main() -> None:
    for label, state in (("no state dir", None), ("state dir, durable writes", "tmp")):
        if state:
            with tempfile.TemporaryDirectory() as d:
                figures = measure(d)
        else:
            figures = measure(None)
        print(label + ": " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
