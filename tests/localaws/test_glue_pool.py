"""Pre-started Glue drivers (localaws/services/glue_jobs/pool.py) through boto3: a glueetl run is
handed to a driver whose JVM and SparkContext are up, and behaves as a cold run does."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid

import boto3
import psutil
import pyarrow.parquet as pq
import pytest

from tests.localaws.test_glue_jobs import FAILING_SCRIPT, create_job, log_lines, wait_run

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def bucket(localaws):
    name = f"glue-pool-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=localaws.endpoint_url, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def pool(localaws, monkeypatch):
    """The session server's driver pool at localaws's default size (2; tests/conftest.py sets 1 for
    the other tests), full and ready before the test."""
    from localaws.runtime import RUNTIME
    from localaws.services.glue_jobs import POOL

    monkeypatch.setattr(RUNTIME, "glue_pool_size", 2)
    POOL.ensure_started()
    assert POOL.wait_ready(timeout=300), "the Glue driver pool did not get ready"
    return POOL


ARGS_SCRIPT = '''
import os, sys
from awsglue.context import GlueContext
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql.functions import udf

args = getResolvedOptions(sys.argv, ["JOB_NAME", "JOB_RUN_ID", "day", "target"])
print("pid", os.getpid())
print("argv", sys.argv[1:3], sorted(args.items()))
print("env", os.environ["AWS_ENDPOINT_URL"], os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_REGION"])
gc = GlueContext(SparkContext())
spark = gc.spark_session
worker_env = udf(lambda _: os.environ.get("AWS_ENDPOINT_URL", "unset"))
print("worker env", spark.range(1).select(worker_env("id")).first()[0])
spark.createDataFrame([(1, args["day"])], "id int, day string").write.mode("overwrite").parquet(args["target"])
print("wrote", args["target"])
'''


def _run_args_job(aws_client, bucket: str, day: str) -> tuple[dict, list[str], list[str], str]:
    s3, glue, logs = aws_client("s3"), aws_client("glue"), aws_client("logs")
    target = f"s3://{bucket}/pool/{day}/"
    job = create_job(glue, s3, bucket, ARGS_SCRIPT, DefaultArguments={"--target": target})
    run_id = glue.start_job_run(JobName=job, Arguments={"--day": day})["JobRunId"]
    run = wait_run(glue, job, run_id)
    return run, log_lines(logs, "/aws-glue/jobs/output", run_id), log_lines(logs, "/aws-glue/jobs/error", run_id), job


def test_pooled_run_gets_its_arguments_environment_and_logs(aws_client, bucket, pool, localaws):
    s3 = aws_client("s3")
    pooled = set(pool.pids())
    run, out, errors, job = _run_args_job(aws_client, bucket, "2013-01-05")
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    pid = int(next(line for line in out if line.startswith("pid ")).split()[1])
    assert pid in pooled  # the run was handed to a pre-started driver
    expected = sorted({"JOB_NAME": job, "JOB_RUN_ID": run["Id"], "day": "2013-01-05",
                       "target": f"s3://{bucket}/pool/2013-01-05/"}.items())
    assert f"argv ['--JOB_ID', 'j_{job}'] {expected}" in out
    assert f"env {localaws.endpoint_url} localaws us-east-1" in out
    assert f"worker env {localaws.endpoint_url}" in out  # Python workers get the run's environment too
    assert f"wrote s3://{bucket}/pool/2013-01-05/" in out
    assert any("NativeCodeLoader" in line for line in errors)  # Spark's startup lines, as in a cold run
    assert not any("localaws-run-starts" in line for line in errors)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="pool/2013-01-05/")["Contents"]]
    rows = [row for key in keys
            for row in pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()]
    assert rows == [{"id": 1, "day": "2013-01-05"}]
    # The pool refilled in the background: a new driver replaced the one taken.
    assert pool.wait_ready(timeout=300)
    assert pid not in pool.pids() and len(pool.pids()) == 2


ISOLATION_SCRIPT = '''
import os, sys, builtins
import awsglue
from awsglue.utils import getResolvedOptions
from pyspark import SparkConf
from pyspark.context import SparkContext

step = getResolvedOptions(sys.argv, ["step"])["step"]
print("pid", os.getpid())
if step == "1":
    awsglue.LEFT_BEHIND = True
    builtins.LEFT_BEHIND = True
    os.environ["LEFT_BEHIND"] = "1"
    sc = SparkContext()
    print("count", sc.parallelize(range(10)).count())
    sc.stop()
    sys.exit(0)
print("globals", hasattr(awsglue, "LEFT_BEHIND"), hasattr(builtins, "LEFT_BEHIND"), "LEFT_BEHIND" in os.environ)
# A context asked for with a configuration of its own replaces the pre-started one, as in a cold run.
sc = SparkContext(conf=SparkConf().setAppName("step-two"))
print("app", sc.appName, "count", sc.parallelize(range(5)).count())
'''


def test_two_runs_in_a_row_are_isolated(aws_client, bucket, pool):
    s3, glue, logs = aws_client("s3"), aws_client("glue"), aws_client("logs")
    job = create_job(glue, s3, bucket, ISOLATION_SCRIPT)
    pids, outputs = [], []
    for step in ("1", "2"):
        assert pool.wait_ready(timeout=300)
        pooled = set(pool.pids())
        run_id = glue.start_job_run(JobName=job, Arguments={"--step": step})["JobRunId"]
        run = wait_run(glue, job, run_id)
        assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
        out = log_lines(logs, "/aws-glue/jobs/output", run_id)
        pid = int(next(line for line in out if line.startswith("pid ")).split()[1])
        assert pid in pooled
        pids.append(pid)
        outputs.append(out)
    assert pids[0] != pids[1]
    assert "count 10" in outputs[0]
    assert "globals False False False" in outputs[1]
    assert "app step-two count 5" in outputs[1]


def test_failing_and_crashing_scripts_fail_in_a_pooled_driver(aws_client, bucket, pool):
    s3, glue, logs = aws_client("s3"), aws_client("glue"), aws_client("logs")
    job = create_job(glue, s3, bucket, FAILING_SCRIPT % bucket)
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    run = wait_run(glue, job, run_id)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == f"AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://{bucket}/does/not/exist/."
    errors = "\n".join(log_lines(logs, "/aws-glue/jobs/error", run_id))
    assert "Traceback (most recent call last)" in errors

    assert pool.wait_ready(timeout=300)
    crash = create_job(glue, s3, bucket, "import os\nprint('about to crash', flush=True)\nos._exit(7)\n")
    run = wait_run(glue, crash, glue.start_job_run(JobName=crash)["JobRunId"])
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "the job's process exited with status 7"


SLEEPER = '''
import os, sys, time
print("pid", os.getpid(), flush=True)
time.sleep(float(sys.argv[sys.argv.index("--seconds") + 1]))
'''


def test_timeout_and_stop_kill_a_pooled_run(aws_client, bucket, pool, monkeypatch):
    from localaws.runtime import RUNTIME

    monkeypatch.setattr(RUNTIME, "glue_minute_seconds", 2.0)  # Timeout=2 "minutes" -> 4 s
    s3, glue, logs = aws_client("s3"), aws_client("glue"), aws_client("logs")
    pooled = set(pool.pids())
    job = create_job(glue, s3, bucket, SLEEPER, Timeout=2, ExecutionProperty={"MaxConcurrentRuns": 2},
                     DefaultArguments={"--seconds": "120"})
    first = glue.start_job_run(JobName=job)["JobRunId"]
    second = glue.start_job_run(JobName=job)["JobRunId"]
    with pytest.raises(glue.exceptions.ConcurrentRunsExceededException):
        glue.start_job_run(JobName=job)
    deadline = time.monotonic() + 30  # RUNNING: handed to its driver
    while glue.get_job_run(JobName=job, RunId=second)["JobRun"]["JobRunState"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)  # the script has started
    glue.batch_stop_job_run(JobName=job, JobRunIds=[second])
    assert wait_run(glue, job, second, timeout=30)["JobRunState"] == "STOPPED"
    run = wait_run(glue, job, first, timeout=60)
    assert run["JobRunState"] == "TIMEOUT"
    assert "Timeout of 2 minutes" in run["ErrorMessage"]
    pids = {int(line.split()[1]) for rid in (first, second)
            for line in log_lines(logs, "/aws-glue/jobs/output", rid) if line.startswith("pid ")}
    assert len(pids) == 2 and pids <= pooled
    time.sleep(1)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_pool_size_zero_runs_cold(aws_client, bucket, localaws, monkeypatch):
    from localaws.runtime import RUNTIME
    from localaws.services.glue_jobs import POOL

    monkeypatch.setattr(RUNTIME, "glue_pool_size", 0)
    POOL.stop()
    try:
        run, out, _, _ = _run_args_job(aws_client, bucket, "2013-01-06")
        assert POOL.pids() == []  # CreateJob and StartJobRun started no driver
        assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
        assert f"env {localaws.endpoint_url} localaws us-east-1" in out
        assert f"worker env {localaws.endpoint_url}" in out
    finally:
        monkeypatch.undo()
        POOL.ensure_started()


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_no_driver_processes_left_after_localaws_stops(tmp_path, how):
    size = "2" if how == "SIGTERM" else "1"
    server = subprocess.Popen([sys.executable, "-m", "localaws.cli", "serve", "--port", "0", "--glue-pool-size", size],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        endpoint = ""
        for line in server.stdout:
            if line.startswith("localaws ready at "):
                endpoint = line.split()[-1]
                break
        assert _descendants(server.pid) == []  # nothing starts before the first glueetl job
        kw = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "k",
              "aws_secret_access_key": "s"}
        boto3.client("glue", **kw).create_job(Name="etl", Role="r",
                                              Command={"Name": "glueetl", "ScriptLocation": "s3://b/etl.py"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until every driver has started its JVM
            procs = _descendants(server.pid)
            if sum("java" in " ".join(p.cmdline()) for p in _alive(procs)) >= int(size):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the pool's JVMs did not start: {[p.cmdline() for p in _alive(procs)]}")
        os.kill(server.pid, getattr(signal, how))
        server.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _alive(procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _alive(procs) == []
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
