"""Fault injection through boto3: throttling, 500s, latency, failed/timed-out runs, determinism."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localaws import faults as fault_lib
from localaws.faults import FaultConfigError, FaultInjector
from tests.localaws.helpers import lambda_role, zip_bytes

#: No retries at all: the first injected error reaches the caller.
NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture
def client(localaws):
    def make(service: str, config: Config | None = NO_RETRIES):
        return boto3.client(service, endpoint_url=localaws.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="k", aws_secret_access_key="s", config=config)

    return make


def error_of(call, *args, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def op_counters(injector: FaultInjector, operation: str) -> dict:
    return injector.state()["counters"]["operations"].get(operation, {})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- configuration ------------------------------------------------------------------------------


def test_config_from_yaml_file_and_validation(tmp_path):
    path = tmp_path / "faults.yaml"
    path.write_text(
        "seed: 42\n"
        "rules:\n"
        "  - operation: s3:PutObject\n"
        "    throttle_rate: 0.1\n"
        "  - {operation: 'athena:*', error_rate: 0.05, latency_ms: [50, 250], max_faults: 3, after_calls: 2}\n"
        "runs:\n"
        "  lambda: {fail_rate: 0.1, timeout_rate: 0.05, functions: ['lake-*']}\n"
        "  glue: {fail_rate: 0.2, jobs: [silver_daily]}\n"
    )
    config, source = fault_lib.load(path)
    assert source == str(path)
    assert config.seed == 42
    assert config.rules[1].latency_bounds() == (50.0, 250.0)
    assert config.rules[0].latency_bounds() is None
    assert config.runs.lambda_.functions == ["lake-*"]
    assert config.dump()["runs"]["lambda"]["fail_rate"] == 0.1
    # JSON and inline JSON give the same model.
    (tmp_path / "faults.json").write_text(json.dumps(config.dump()))
    assert fault_lib.load(tmp_path / "faults.json")[0] == config
    assert fault_lib.load(json.dumps(config.dump()))[0] == config

    bad = [
        ({"rules": [{"operation": "s3:PutObject", "throttle_rate": 1.5}]}, "rules.0.throttle_rate"),
        ({"rules": [{"operation": "s3:PutObject", "throttle_rate": 0.6, "error_rate": 0.6}]}, "must not exceed 1"),
        ({"rules": [{"operation": "PutObject"}]}, "is not 'service:Operation'"),
        ({"rules": [{"operation": "s3:*", "throtle_rate": 0.1}]}, "throtle_rate: Extra inputs are not permitted"),
        ({"rules": [{"operation": "s3:*", "latency_ms": [300, 100]}]}, "min > max"),
        ({"runs": {"glue": {"fail_rate": 0.7, "timeout_rate": 0.7}}}, "fail_rate + timeout_rate"),
        ([1, 2], "expected a mapping"),
    ]
    for data, message in bad:
        with pytest.raises(FaultConfigError, match=re.escape(message)):
            fault_lib.validate(data)
    with pytest.raises(FaultConfigError, match="cannot read fault config"):
        fault_lib.load(tmp_path / "missing.yaml")


def test_local_aws_takes_faults_from_argument_or_environment(tmp_path, monkeypatch):
    from localaws.server import LocalAWS

    # Constructing (not starting) a server is allowed while the session server runs.
    monkeypatch.delenv(fault_lib.ENV_VAR, raising=False)
    assert not LocalAWS(port=0).faults.active
    server = LocalAWS(port=0, faults={"seed": 3, "rules": [{"operation": "*", "latency_ms": 5}]})
    assert server.faults.active and server.faults.config.seed == 3 and server.faults.source == "inline"
    path = tmp_path / "f.yaml"
    path.write_text("seed: 9\nrules: [{operation: 'glue:*', throttle_rate: 0.5}]\n")
    monkeypatch.setenv(fault_lib.ENV_VAR, str(path))
    from_env = LocalAWS(port=0)
    assert from_env.faults.config.seed == 9
    assert from_env.faults.source == f"LOCALAWS_FAULTS={path}"
    monkeypatch.setenv(fault_lib.ENV_VAR, str(tmp_path / "nope.yaml"))
    with pytest.raises(FaultConfigError, match="nope.yaml"):
        LocalAWS(port=0)


# --- errors per protocol ------------------------------------------------------------------------


def _calls(client):
    """(operation, call) for one operation of each protocol; faults hit before moto validates."""
    return [
        ("s3:PutObject", lambda: client("s3").put_object(Bucket="any-bucket", Key="k", Body=b"x")),
        ("glue:StartJobRun", lambda: client("glue").start_job_run(JobName="any")),
        ("athena:GetQueryExecution", lambda: client("athena").get_query_execution(QueryExecutionId="any")),
        ("logs:GetLogEvents", lambda: client("logs").get_log_events(logGroupName="g", logStreamName="s")),
        ("sqs:SendMessage", lambda: client("sqs").send_message(QueueUrl="http://x/123456789012/q", MessageBody="m")),
        ("sns:Publish", lambda: client("sns").publish(TopicArn="arn:aws:sns:us-east-1:123456789012:t", Message="m")),
        ("iam:ListRoles", lambda: client("iam").list_roles()),
        ("ec2:DescribeInstances", lambda: client("ec2").describe_instances()),
        ("lambda:Invoke", lambda: client("lambda").invoke(FunctionName="any", Payload=b"{}")),
        ("cloudwatch:PutMetricData", lambda: client("cloudwatch").put_metric_data(
            Namespace="lake", MetricData=[{"MetricName": "rows", "Value": 1.0}])),
    ]


EXPECTED = {
    "s3:PutObject": (("SlowDown", 503), ("InternalError", 500)),
    "glue:StartJobRun": (("ThrottlingException", 400), ("InternalFailure", 500)),
    "athena:GetQueryExecution": (("ThrottlingException", 400), ("InternalFailure", 500)),
    "logs:GetLogEvents": (("ThrottlingException", 400), ("InternalFailure", 500)),
    "sqs:SendMessage": (("ThrottlingException", 400), ("InternalFailure", 500)),
    "sns:Publish": (("Throttling", 400), ("InternalFailure", 500)),
    "iam:ListRoles": (("Throttling", 400), ("InternalFailure", 500)),
    "ec2:DescribeInstances": (("RequestLimitExceeded", 503), ("InternalError", 500)),
    "lambda:Invoke": (("TooManyRequestsException", 429), ("ServiceException", 500)),
    "cloudwatch:PutMetricData": (("ThrottlingException", 400), ("InternalFailure", 500)),
}


def test_each_protocol_gets_the_aws_error_botocore_expects(client, localaws_faults):
    for operation, call in _calls(client):
        throttle, error = EXPECTED[operation]
        injector = localaws_faults({"rules": [{"operation": operation, "throttle_rate": 1.0}]})
        assert error_of(call) == throttle, operation
        assert op_counters(injector, operation)["throttled"] == 1
        injector = localaws_faults({"rules": [{"operation": operation, "error_rate": 1.0}]})
        assert error_of(call) == error, operation
        assert op_counters(injector, operation)["errors"] == 1


def test_injected_message_says_it_is_injected(client, localaws_faults):
    localaws_faults({"rules": [{"operation": "glue:GetJobs", "throttle_rate": 1.0}]})
    with pytest.raises(ClientError) as info:
        client("glue").get_jobs()
    assert info.value.response["Error"]["Message"] == "Rate exceeded (localaws injected fault)"


def test_throttled_s3_put_stores_nothing(client, localaws_faults):
    s3 = client("s3")
    bucket = unique("faults")
    s3.create_bucket(Bucket=bucket)
    injector = localaws_faults({"rules": [{"operation": "s3:PutObject", "throttle_rate": 1.0}]})
    # A body large enough to still be in flight when the error is sent.
    assert error_of(s3.put_object, Bucket=bucket, Key="big.bin", Body=b"x" * (3 * 1024 * 1024)) == ("SlowDown", 503)
    assert error_of(s3.put_object, Bucket=bucket, Key="small.txt", Body=b"x") == ("SlowDown", 503)
    # A file-like body makes botocore send "Expect: 100-continue".
    assert error_of(s3.put_object, Bucket=bucket, Key="file.bin", Body=io.BytesIO(b"y" * (2 * 1024 * 1024))) == (
        "SlowDown", 503)
    # Other operations pass; nothing was stored.
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert error_of(s3.head_object, Bucket=bucket, Key="small.txt")[1] == 404
    counters = injector.state()["counters"]["operations"]
    assert counters["s3:PutObject"] == {"calls": 3, "throttled": 3, "errors": 0, "delayed": 0, "latency_ms": 0.0}
    assert counters["s3:ListObjectsV2"]["calls"] == 1 and counters["s3:ListObjectsV2"]["throttled"] == 0
    # HEAD answers carry no body: botocore sees the status code.
    localaws_faults({"rules": [{"operation": "s3:HeadBucket", "throttle_rate": 1.0}]})
    assert error_of(s3.head_bucket, Bucket=bucket)[1] == 503


def test_throttled_start_job_run_starts_nothing(client, localaws_faults):
    glue, s3 = client("glue"), client("s3")
    bucket = unique("faults")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="job.py", Body=b"print('ran')\n")
    job = unique("job")
    glue.create_job(Name=job, Role="arn:aws:iam::123456789012:role/glue",
                    Command={"Name": "pythonshell", "ScriptLocation": f"s3://{bucket}/job.py"})
    injector = localaws_faults({"rules": [{"operation": "glue:StartJobRun", "throttle_rate": 1.0}]})
    assert error_of(glue.start_job_run, JobName=job) == ("ThrottlingException", 400)
    injector = localaws_faults({"rules": [{"operation": "glue:StartJobRun", "error_rate": 1.0}]})
    assert error_of(glue.start_job_run, JobName=job) == ("InternalFailure", 500)
    assert glue.get_job_runs(JobName=job)["JobRuns"] == []
    assert injector.state()["counters"]["totals"]["faults"] == 1


def test_throttled_sns_publish_delivers_nothing(client, localaws_faults):
    from localaws.services import sns as sns_service

    sns = client("sns")
    name = unique("topic")
    topic = sns.create_topic(Name=name)["TopicArn"]
    localaws_faults({"rules": [{"operation": "sns:Publish", "throttle_rate": 1.0}]})
    assert error_of(sns.publish, TopicArn=topic, Message="dropped") == ("Throttling", 400)
    assert sns_service.published_messages(name) == []


def test_athena_get_query_execution_throttled_other_calls_pass(client, localaws_faults):
    athena = client("athena")
    injector = localaws_faults({"rules": [{"operation": "athena:GetQueryExecution", "throttle_rate": 1.0}]})
    assert error_of(athena.get_query_execution, QueryExecutionId=str(uuid.uuid4())) == ("ThrottlingException", 400)
    athena.list_work_groups()
    counters = injector.state()["counters"]["operations"]
    assert counters["athena:GetQueryExecution"]["throttled"] == 1
    assert counters["athena:ListWorkGroups"]["throttled"] == 0


def _wait_final(athena, qid: str, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_athena_queries_held_running_per_work_group(client, localaws_faults):
    """``runs.athena.latency_ms`` keeps a query RUNNING that long, only in the work groups named;
    StopQueryExecution ends the hold at once."""
    athena = client("athena", None)
    s3 = client("s3", None)
    bucket = unique("athena-hold")
    s3.create_bucket(Bucket=bucket)
    held, free = unique("held"), unique("free")
    for wg in (held, free):
        athena.create_work_group(Name=wg, Configuration={"ResultConfiguration": {"OutputLocation": f"s3://{bucket}/{wg}/"}})
    injector = localaws_faults({"runs": {"athena": {"latency_ms": 1500, "workgroups": [held]}}})

    started = time.monotonic()
    qid = athena.start_query_execution(QueryString="SELECT 1", WorkGroup=held)["QueryExecutionId"]
    time.sleep(0.5)
    assert athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] == "RUNNING"
    assert _wait_final(athena, qid)["State"] == "SUCCEEDED"
    assert time.monotonic() - started >= 1.5
    assert athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1]["Data"][0]["VarCharValue"] == "1"

    started = time.monotonic()
    qid = athena.start_query_execution(QueryString="SELECT 1", WorkGroup=free)["QueryExecutionId"]
    assert _wait_final(athena, qid)["State"] == "SUCCEEDED"
    assert time.monotonic() - started < 1.5

    qid = athena.start_query_execution(QueryString="SELECT 1", WorkGroup=held)["QueryExecutionId"]
    time.sleep(0.3)
    started = time.monotonic()
    athena.stop_query_execution(QueryExecutionId=qid)
    assert _wait_final(athena, qid)["State"] == "CANCELLED"
    assert time.monotonic() - started < 1.0
    runs = injector.state()["counters"]["runs"]
    assert runs[f"athena:{held}"]["runs"] == 2 and runs[f"athena:{free}"]["runs"] == 1


def test_athena_hold_config_is_validated():
    with pytest.raises(FaultConfigError, match="runs.athena.latency_ms"):
        fault_lib.validate({"runs": {"athena": {"latency_ms": -1}}})
    with pytest.raises(FaultConfigError, match="min > max"):
        fault_lib.validate({"runs": {"athena": {"latency_ms": [500, 100]}}})


# --- Lambda -------------------------------------------------------------------------------------

HANDLER = "def handler(event, context):\n    print('handler ran')\n    return {'ok': True}\n"


@pytest.fixture
def make_function(client):
    lam = client("lambda")
    role = lambda_role(client("iam"))

    def make(prefix: str = "fn", **kwargs) -> str:
        name = unique(prefix)
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": zip_bytes({"app.py": HANDLER})}, **kwargs)
        return name

    return make


def lambda_log(client, name: str) -> str:
    logs = client("logs")
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    return "\n".join(e["message"] for e in events)


def test_throttled_invoke_runs_no_handler(client, localaws_faults, make_function):
    name = make_function()
    localaws_faults({"rules": [{"operation": "lambda:Invoke", "throttle_rate": 1.0}]})
    lam = client("lambda")
    assert error_of(lam.invoke, FunctionName=name, Payload=b"{}") == ("TooManyRequestsException", 429)
    with pytest.raises(ClientError):  # no invocation, so no log group
        client("logs").describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    # GetFunction is another operation: not throttled.
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name


def test_lambda_run_faults_fail_or_time_out_without_running(client, localaws_faults, make_function):
    faulty, healthy = make_function("faulty", Timeout=7), make_function("healthy")
    lam = client("lambda")
    injector = localaws_faults({"runs": {"lambda": {"fail_rate": 1.0, "functions": ["faulty-*"]}}})
    resp = lam.invoke(FunctionName=faulty, Payload=b"{}", LogType="Tail")
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    error = json.loads(resp["Payload"].read())
    assert error["errorType"] == "Runtime.InjectedFault"
    assert "localaws injected fault" in error["errorMessage"]
    resp = lam.invoke(FunctionName=healthy, Payload=b"{}")
    assert "FunctionError" not in resp and json.loads(resp["Payload"].read()) == {"ok": True}
    log_text = lambda_log(client, faulty)
    assert "Runtime.InjectedFault" in log_text and "REPORT RequestId" in log_text
    assert "handler ran" not in log_text
    assert injector.state()["counters"]["runs"] == {
        f"lambda:{faulty}": {"runs": 1, "failed": 1, "timed_out": 0},
        f"lambda:{healthy}": {"runs": 1, "failed": 0, "timed_out": 0},
    }

    localaws_faults({"runs": {"lambda": {"timeout_rate": 1.0, "functions": [faulty]}}})
    started = time.monotonic()
    resp = lam.invoke(FunctionName=faulty, Payload=b"{}")
    assert time.monotonic() - started < 5  # reported at once, not after Timeout=7 s
    error = json.loads(resp["Payload"].read())
    assert resp["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(r"RequestId: \S+ Error: Task timed out after 7\.00 seconds", error["errorMessage"])


# --- Glue runs ----------------------------------------------------------------------------------

FINAL = ("SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR")


def wait_runs(glue, job: str, count: int, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = glue.get_job_runs(JobName=job)["JobRuns"]
        if len(runs) >= count and all(r["JobRunState"] in FINAL for r in runs):
            return sorted(runs, key=lambda r: r["Attempt"])
        time.sleep(0.3)
    raise AssertionError(f"runs of {job} did not finish: {glue.get_job_runs(JobName=job)['JobRuns']}")


def test_glue_run_faults(client, localaws_faults):
    glue, s3 = client("glue"), client("s3")
    bucket = unique("faults")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="job.py", Body=b"print('script ran')\n")

    def create(prefix: str, **kwargs) -> str:
        name = unique(prefix)
        glue.create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue", **kwargs,
                        Command={"Name": "pythonshell", "ScriptLocation": f"s3://{bucket}/job.py"})
        return name

    # The first attempt fails (max_faults: 1), MaxRetries starts a second one, which really runs.
    faulty, healthy = create("faulty", MaxRetries=1), create("healthy")
    injector = localaws_faults({"runs": {"glue": {"fail_rate": 1.0, "max_faults": 1, "jobs": ["faulty-*"]}}})
    glue.start_job_run(JobName=faulty)
    glue.start_job_run(JobName=healthy)
    first, retry = wait_runs(glue, faulty, 2)
    assert first["JobRunState"] == "FAILED"
    assert first["ErrorMessage"] == "localaws injected fault: the job run failed (runs.glue.fail_rate)"
    assert retry["JobRunState"] == "SUCCEEDED" and retry["PreviousRunId"] == first["Id"]
    assert wait_runs(glue, healthy, 1)[0]["JobRunState"] == "SUCCEEDED"
    runs = injector.state()["counters"]["runs"]
    assert runs[f"glue:{faulty}"] == {"runs": 2, "failed": 1, "timed_out": 0}
    assert runs[f"glue:{healthy}"] == {"runs": 1, "failed": 0, "timed_out": 0}
    errors = client("logs").get_log_events(logGroupName="/aws-glue/jobs/error", logStreamName=first["Id"])
    assert "localaws injected fault" in errors["events"][0]["message"]

    localaws_faults({"runs": {"glue": {"timeout_rate": 1.0}}})
    slow = create("slow", Timeout=30)
    glue.start_job_run(JobName=slow)
    run = wait_runs(glue, slow, 1)[0]
    assert run["JobRunState"] == "TIMEOUT"
    assert run["ErrorMessage"].startswith("Job run timed out: it ran longer than its Timeout of 30 minutes")


# --- latency, wildcards, determinism, admin -----------------------------------------------------


def test_latency_fixed_and_range(client, localaws_faults):
    s3 = client("s3")
    injector = localaws_faults({"rules": [{"operation": "s3:ListBuckets", "latency_ms": 300}]})
    started = time.monotonic()
    s3.list_buckets()
    assert time.monotonic() - started >= 0.3
    assert op_counters(injector, "s3:ListBuckets") == {"calls": 1, "throttled": 0, "errors": 0, "delayed": 1,
                                                       "latency_ms": 300.0}
    injector = localaws_faults({"rules": [{"operation": "sts:*", "latency_ms": [100, 200]}]})
    sts = client("sts")
    for _ in range(3):
        started = time.monotonic()
        sts.get_caller_identity()
        assert time.monotonic() - started >= 0.1
    counters = op_counters(injector, "sts:GetCallerIdentity")
    assert counters["delayed"] == 3 and 300 <= counters["latency_ms"] <= 600


def test_clearing_the_faults_ends_a_latency_being_slept(client, localaws_faults):
    """A call held by a long latency goes on as soon as the config is cleared (a test holds a call
    until it has seen what it waits for, e.g. tests/e2e/stack/test_concurrent_day.py)."""
    s3 = client("s3")
    injector = localaws_faults({"rules": [{"operation": "s3:ListBuckets", "latency_ms": 60_000}]})
    done: list[float] = []
    started = time.monotonic()
    call = threading.Thread(target=lambda: (s3.list_buckets(), done.append(time.monotonic() - started)))
    call.start()
    time.sleep(1.0)
    assert not done, "the held call returned before its latency or the clear"
    injector.configure(None)
    call.join(timeout=10)
    assert done and 1.0 <= done[0] < 5.0, done


def test_wildcards_first_matching_rule_wins(client, localaws_faults):
    glue, s3 = client("glue"), client("s3")
    injector = localaws_faults({"rules": [
        {"operation": "glue:GetJob", "throttle_rate": 0.0},   # exempt: the first match applies
        {"operation": "GLUE:*", "throttle_rate": 1.0},        # case-insensitive
        {"operation": "s3:Get*", "error_rate": 1.0},
    ]})
    assert error_of(glue.get_job, JobName="missing") == ("EntityNotFoundException", 400)  # reached moto
    assert error_of(glue.get_jobs) == ("ThrottlingException", 400)
    assert error_of(glue.get_databases) == ("ThrottlingException", 400)
    assert error_of(s3.get_object, Bucket="b-any", Key="k") == ("InternalError", 500)
    s3.list_buckets()
    totals = injector.state()["counters"]["totals"]
    assert (totals["calls"], totals["throttled"], totals["errors"]) == (5, 2, 1)

    injector = localaws_faults({"rules": [{"operation": "*", "throttle_rate": 1.0, "after_calls": 2,
                                           "max_faults": 2}]})
    outcomes = []
    for _ in range(5):
        try:
            s3.list_buckets()
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    assert outcomes == ["ok", "ok", "SlowDown", "SlowDown", "ok"]


def _outcomes(call, n: int) -> list[str]:
    out = []
    for _ in range(n):
        try:
            call()
            out.append("ok")
        except ClientError as exc:
            out.append(exc.response["Error"]["Code"])
    return out


def test_same_seed_same_sequence_regardless_of_interleaving(client, localaws_faults):
    sts, iam = client("sts"), client("iam")
    config = {"seed": 7, "rules": [{"operation": "*", "throttle_rate": 0.3, "error_rate": 0.2}]}
    localaws_faults(config)
    first = _outcomes(sts.get_caller_identity, 50)
    assert {"ok", "Throttling", "InternalFailure"} == set(first)
    injector = localaws_faults(config)  # replacing the config starts the streams over
    second = []
    for i in range(50):
        second += _outcomes(sts.get_caller_identity, 1)
        _outcomes(iam.list_roles, i % 3)  # other operations in between change nothing
    assert second == first
    counters = op_counters(injector, "sts:GetCallerIdentity")
    assert counters["throttled"] == first.count("Throttling") and counters["errors"] == first.count("InternalFailure")
    localaws_faults({**config, "seed": 8})
    assert _outcomes(sts.get_caller_identity, 50) != first


def test_injector_is_deterministic_per_operation():
    def run(seed: int, interleave: bool) -> list[str | None]:
        injector = FaultInjector(fault_lib.validate(
            {"seed": seed, "rules": [{"operation": "*", "throttle_rate": 0.25, "error_rate": 0.25}]}))
        out = []
        for i in range(1000):
            out.append(injector.decide("glue:GetJobRun").fault)
            if interleave and i % 2:
                injector.decide("s3:GetObject")
        return out

    base = run(1, False)
    assert run(1, True) == base
    assert run(2, False) != base
    assert 400 < base.count(None) < 600


def test_admin_endpoint_replaces_config_and_reports_counters(client, localaws, localaws_faults):
    localaws_faults(None)  # start from "off"; the fixture restores whatever was there
    url = f"{localaws.endpoint_url}/_localaws/faults"

    def request(method: str, body: object | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    status, state = request("GET")
    assert status == 200 and state["active"] is False and state["config"] is None
    config = {"seed": 5, "rules": [{"operation": "glue:GetJobs", "throttle_rate": 1.0}],
              "runs": {"lambda": {"fail_rate": 0.5}}}
    status, state = request("POST", config)
    assert status == 200 and state["active"] is True and state["source"] == "POST /_localaws/faults"
    assert state["config"]["rules"][0]["operation"] == "glue:GetJobs"
    assert state["config"]["runs"]["lambda"]["fail_rate"] == 0.5
    with urllib.request.urlopen(f"{localaws.endpoint_url}/_localaws/health") as resp:
        assert json.load(resp)["faults"] == "POST /_localaws/faults"
    for _ in range(3):
        assert error_of(client("glue").get_jobs)[0] == "ThrottlingException"
    status, state = request("GET")
    assert state["counters"]["operations"]["glue:GetJobs"] == {"calls": 3, "throttled": 3, "errors": 0,
                                                               "delayed": 0, "latency_ms": 0.0}
    assert state["counters"]["totals"]["faults"] == 3
    status, state = request("POST", {"rules": [{"operation": "glue:GetJobs", "throttle_rate": 2}]})
    assert status == 400 and "rules.0.throttle_rate" in state["error"]
    assert request("GET")[1]["counters"]["totals"]["faults"] == 3  # the bad config changed nothing
    status, state = request("DELETE")
    assert status == 200 and state["active"] is False
    client("glue").get_jobs()


def test_standard_retries_recover_from_throttling(client, localaws_faults):
    s3 = client("s3", Config(retries={"mode": "standard", "max_attempts": 10}))
    bucket = unique("retries")
    s3.create_bucket(Bucket=bucket)
    injector = localaws_faults({"seed": 1, "rules": [{"operation": "s3:PutObject", "throttle_rate": 0.2}]})
    for i in range(30):
        s3.put_object(Bucket=bucket, Key=f"k{i:02d}", Body=b"x")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 30
    counters = op_counters(injector, "s3:PutObject")
    assert counters["throttled"] > 0
    assert counters["calls"] == 30 + counters["throttled"]

    # The legacy mode (boto3's default) retries JSON-protocol throttling and 500s too.
    glue = client("glue", Config(retries={"mode": "legacy", "max_attempts": 10}))
    injector = localaws_faults({"seed": 1, "rules": [{"operation": "glue:GetDatabases", "throttle_rate": 0.2,
                                                      "error_rate": 0.1}]})
    for _ in range(15):
        glue.get_databases()
    counters = op_counters(injector, "glue:GetDatabases")
    assert counters["throttled"] + counters["errors"] > 0
    assert counters["calls"] == 15 + counters["throttled"] + counters["errors"]


# --- localaws serve --faults / LOCALAWS_FAULTS --------------------------------------------------


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, Path]:
    log_path = tmp_path / f"serve-{time.monotonic_ns()}.log"
    out = open(log_path, "w")  # noqa: SIM115 - the child writes to it until it exits
    proc = subprocess.Popen([sys.executable, "-m", "localaws.cli", "serve", "--port", "0", *args], stdout=out,
                            stderr=subprocess.STDOUT, env={**os.environ, "AWS_ENDPOINT_URL": "", **(env or {})})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        match = re.search(r"localaws ready at (http://\S+)", log_path.read_text())
        if match:
            return proc, match.group(1), log_path
        if proc.poll() is not None:
            raise AssertionError(f"localaws serve exited {proc.returncode}:\n{log_path.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"localaws serve did not get ready:\n{log_path.read_text()}")


def test_serve_with_faults_file_and_environment(tmp_path):
    config = tmp_path / "faults.yaml"
    config.write_text("seed: 11\nrules:\n  - operation: glue:GetJobs\n    throttle_rate: 1.0\n")
    proc, endpoint, log_path = _serve(tmp_path, "--faults", str(config), env={fault_lib.ENV_VAR: ""})
    try:
        glue = boto3.client("glue", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
                            aws_secret_access_key="s", config=NO_RETRIES)
        assert error_of(glue.get_jobs) == ("ThrottlingException", 400)
        with urllib.request.urlopen(f"{endpoint}/_localaws/faults", timeout=10) as resp:
            state = json.load(resp)
        assert state["source"] == str(config) and state["config"]["seed"] == 11
        assert state["counters"]["operations"]["glue:GetJobs"]["throttled"] == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    log = log_path.read_text()
    assert f"faults: {config})" in log
    assert f"localaws fault injection active ({config}): seed 11, 1 rule" in log
    assert "localaws fault: glue:GetJobs throttled (1st fault in 1 call)" in log

    proc, endpoint, log_path = _serve(tmp_path, env={fault_lib.ENV_VAR: str(config)})
    try:
        with urllib.request.urlopen(f"{endpoint}/_localaws/faults", timeout=10) as resp:
            assert json.load(resp)["source"] == f"LOCALAWS_FAULTS={config}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    (tmp_path / "bad.yaml").write_text("rules: [{operation: 'glue:*', throttle_rate: 3}]\n")
    result = subprocess.run([sys.executable, "-m", "localaws.cli", "serve", "--port", "0", "--faults",
                             str(tmp_path / "bad.yaml")], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "invalid fault config" in result.stderr and "rules.0.throttle_rate" in result.stderr
