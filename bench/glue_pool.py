"""Benchmark: a tiny Glue script, StartJobRun to SUCCEEDED, cold (pool off) vs pre-started driver.

Prints, for each mode, the median, min and max over ``--runs`` runs (default 5) of the wall time
from ``start_job_run`` until ``get_job_run`` (polled every 50 ms) says SUCCEEDED, seconds.
The script is a tiny glueetl job: ``getResolvedOptions``, ``GlueContext(SparkContext())``, a
three-row DataFrame written to S3 as Parquet through the S3 bridge. In pooled mode each run
first waits until the pool is full and ready (the pool refills in the background between runs,
as it does between the Glue tasks of a DAG run); cold mode uses ``glue_pool_size=0``.
Issue 12's target: pooled <= 3 s.

Run: ``.venv/bin/python bench/glue_pool.py [--runs 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import boto3

from localaws.server import LocalAWS
from localaws.services.glue_jobs import POOL

SCRIPT = '''
import sys
from awsglue.context import GlueContext
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "target"])
glue_context = GlueContext(SparkContext())
df = glue_context.spark_session.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "id int, v string")
df.write.mode("overwrite").parquet(args["target"])
print("wrote", df.count(), "rows")
'''


def _measure(pool_size: int, runs: int) -> list[float]:
    with LocalAWS(port=0, glue_pool_size=pool_size) as aws:
        kw = {"endpoint_url": aws.endpoint_url, "region_name": "us-east-1", "aws_access_key_id": "k",
              "aws_secret_access_key": "s"}
        s3, glue = boto3.client("s3", **kw), boto3.client("glue", **kw)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="tiny.py", Body=SCRIPT.encode())
        glue.create_job(Name="tiny", Role="r", GlueVersion="5.0", ExecutionProperty={"MaxConcurrentRuns": 1},
                        Command={"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/tiny.py"},
                        DefaultArguments={"--target": f"s3://{bucket}/out/"})
        out = []
        for _ in range(runs):
            if pool_size and not POOL.wait_ready(timeout=300):
                raise RuntimeError("the Glue driver pool did not get ready in 300 s")
            started = time.monotonic()
            run_id = glue.start_job_run(JobName="tiny")["JobRunId"]
            while True:
                run = glue.get_job_run(JobName="tiny", RunId=run_id)["JobRun"]
                if run["JobRunState"] not in ("STARTING", "RUNNING"):
                    break
                time.sleep(0.05)
            if run["JobRunState"] != "SUCCEEDED":
                raise RuntimeError(f"run {run_id}: {run['JobRunState']} {run.get('ErrorMessage')}")
            out.append(time.monotonic() - started)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for label, size in (("cold (pool 0)", 0), ("pre-started driver (pool 2)", 2)):
        times = _measure(size, args.runs)
        print(f"Glue tiny script submit -> SUCCEEDED, {label}: median {statistics.median(times):.2f} s, "
              f"min {min(times):.2f} s, max {max(times):.2f} s over {len(times)} runs", flush=True)


if __name__ == "__main__":
    main()
