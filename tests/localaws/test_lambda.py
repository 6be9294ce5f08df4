"""Lambda through boto3: handlers really run from the deployed zip in a subprocess."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from tests.localaws.helpers import lambda_role, zip_bytes

HANDLERS = '''
import json, os, sys, time
import boto3

def echo(event, context):
    print("event", json.dumps(event))
    print("to stderr", file=sys.stderr)
    return {
        "event": event,
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env_stage": os.environ.get("STAGE"),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "cwd": os.getcwd(),
    }

def write_s3(event, context):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=event["bucket"], Key=event["key"], Body=b"written by lambda")
    return {"ok": True}

def fail(event, context):
    raise ValueError("bronze file flights_20130101.csv.zip is corrupt")

def sleep(event, context):
    time.sleep(event.get("seconds", 10))
    return "slept"

def hog(event, context):
    blocks = []
    for _ in range(64):
        blocks.append(bytearray(32 * 1024 * 1024))
    return len(blocks)

def uses_layer(event, context):
    import layerlib
    return layerlib.VALUE

def chatty(event, context):
    for i in range(2000):
        print(f"line {i:05d} " + "x" * 40)
    return "done"
'''


@pytest.fixture(scope="module")
def make_function(localaws):
    import boto3

    lam = boto3.client("lambda", endpoint_url=localaws.endpoint_url, region_name="us-east-1")
    role = lambda_role(boto3.client("iam", endpoint_url=localaws.endpoint_url, region_name="us-east-1"))
    code = zip_bytes({"app.py": HANDLERS})

    def make(handler: str, **kwargs) -> str:
        name = f"fn-{handler}-{uuid.uuid4().hex[:8]}"
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=f"app.{handler}",
                            Code={"ZipFile": code}, **kwargs)
        return name

    return make


def _log_text(resp) -> str:
    return base64.b64decode(resp["LogResult"]).decode()


def test_request_response_runs_handler_with_env_context_and_tail_log(make_function, aws_client, localaws):
    name = make_function("echo", Environment={"Variables": {"STAGE": "test"}}, Timeout=7, MemorySize=256)
    resp = aws_client("lambda").invoke(FunctionName=name, Payload=json.dumps({"ds": "2013-01-01"}), LogType="Tail")
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    body = json.loads(resp["Payload"].read())
    assert body["event"] == {"ds": "2013-01-01"}
    assert body["function_name"] == name
    assert body["memory"] == "256"
    assert 0 < body["remaining_ms"] <= 7000
    assert body["env_stage"] == "test"
    assert body["endpoint"] == localaws.endpoint_url
    log = _log_text(resp)
    lines = log.splitlines()
    assert lines[0] == f"START RequestId: {body['request_id']} Version: $LATEST"
    assert 'event {"ds": "2013-01-01"}' in lines
    assert "to stderr" in lines
    assert lines[-2] == f"END RequestId: {body['request_id']}"
    assert lines[-1].startswith(f"REPORT RequestId: {body['request_id']}\tDuration: ")
    assert "Memory Size: 256 MB\tMax Memory Used: " in lines[-1]


def test_logs_go_to_cloudwatch_group(make_function, aws_client):
    name = make_function("echo")
    aws_client("lambda").invoke(FunctionName=name, Payload=b'{"n": 1}')
    logs = aws_client("logs")
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert len(streams) == 1
    assert "[$LATEST]" in streams[0]["logStreamName"]
    events = logs.get_log_events(logGroupName=f"/aws/lambda/{name}", logStreamName=streams[0]["logStreamName"])
    messages = [e["message"] for e in events["events"]]
    assert messages[0].startswith("START RequestId:")
    assert 'event {"n": 1}' in messages
    assert messages[-1].startswith("REPORT RequestId:")


def test_handler_reaches_localaws_through_boto3(make_function, aws_client):
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="lambda-writes")
    name = make_function("write_s3")
    resp = aws_client("lambda").invoke(FunctionName=name, Payload=json.dumps({"bucket": "lambda-writes", "key": "a.txt"}))
    assert json.loads(resp["Payload"].read()) == {"ok": True}
    assert s3.get_object(Bucket="lambda-writes", Key="a.txt")["Body"].read() == b"written by lambda"


def test_unhandled_error_has_aws_shape(make_function, aws_client):
    name = make_function("fail")
    resp = aws_client("lambda").invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "ValueError"
    assert err["errorMessage"] == "bronze file flights_20130101.csv.zip is corrupt"
    assert any("in fail" in frame and 'raise ValueError' in frame for frame in err["stackTrace"])
    assert "[ERROR] ValueError: bronze file flights_20130101.csv.zip is corrupt" in _log_text(resp)


def test_missing_module_is_import_error(aws_client, localaws):
    role = lambda_role(aws_client("iam"))
    aws_client("lambda").create_function(FunctionName="fn-nomodule", Runtime="python3.12", Role=role,
                                         Handler="missing.handler", Code={"ZipFile": zip_bytes({"app.py": ""})})
    resp = aws_client("lambda").invoke(FunctionName="fn-nomodule", Payload=b"{}")
    err = json.loads(resp["Payload"].read())
    assert resp["FunctionError"] == "Unhandled"
    assert err["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'missing'" in err["errorMessage"]


def test_timeout_kills_the_handler(make_function, aws_client):
    name = make_function("sleep", Timeout=1)
    started = time.monotonic()
    resp = aws_client("lambda").invoke(FunctionName=name, Payload=json.dumps({"seconds": 30}), LogType="Tail")
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"a 1 s timeout took {elapsed:.1f} s"
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in err["errorMessage"]
    assert "Task timed out after 1.00 seconds" in _log_text(resp)


def test_memory_size_is_enforced(make_function, aws_client):
    # The hog allocates 2 GB in 32 MB blocks; a 256 MB function must fail with a memory error.
    name = make_function("hog", MemorySize=256, Timeout=30)
    resp = aws_client("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "Runtime.OutOfMemory"
    assert "MemorySize 256 MB exceeded" in err["errorMessage"]
    # The same handler succeeds with room for it.
    big = make_function("hog", MemorySize=4096, Timeout=30)
    resp = aws_client("lambda").invoke(FunctionName=big, Payload=b"{}", LogType="Tail")
    assert json.loads(resp["Payload"].read()) == 64
    report = _log_text(resp).splitlines()[-1]
    used = int(report.split("Max Memory Used: ")[1].split()[0])
    assert used >= 2048, report


def test_event_invocation_returns_at_once_and_runs_in_background(make_function, aws_client):
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="lambda-events")
    name = make_function("write_s3")
    started = time.monotonic()
    resp = aws_client("lambda").invoke(FunctionName=name, InvocationType="Event",
                                       Payload=json.dumps({"bucket": "lambda-events", "key": "async.txt"}))
    assert resp["StatusCode"] == 202
    assert time.monotonic() - started < 1.0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lambda-events").get("Contents", [])]
        if keys:
            break
        time.sleep(0.2)
    assert keys == ["async.txt"]


def test_a_failing_event_invocation_is_retried_twice(make_function, aws_client, monkeypatch):
    """InvocationType=Event: a function error is retried twice (AWS waits 60 s, then 120 s; shortened
    here through RUNTIME.lambda_retry_delays), every attempt with the request id of the 202 response."""
    from localaws.runtime import RUNTIME

    monkeypatch.setattr(RUNTIME, "lambda_retry_delays", (0.2, 0.2))
    name = make_function("fail")
    resp = aws_client("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    request_id = resp["ResponseMetadata"]["RequestId"]
    logs = aws_client("logs")
    deadline = time.monotonic() + 30
    starts: list[str] = []
    while time.monotonic() < deadline and len(starts) < 3:
        time.sleep(0.2)
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            continue
        starts = [e["message"] for e in events if e["message"].startswith("START")]
    time.sleep(0.8)  # a 4th attempt would have started by now
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    starts = [e["message"] for e in events if e["message"].startswith("START")]
    assert starts == [f"START RequestId: {request_id} Version: $LATEST"] * 3


def test_layers_are_on_sys_path(aws_client):
    lam = aws_client("lambda")
    layer = lam.publish_layer_version(LayerName="shared-lib", Content={
        "ZipFile": zip_bytes({"python/layerlib.py": "VALUE = 'from the layer'\n"})}, CompatibleRuntimes=["python3.12"])
    lam.create_function(FunctionName="fn-layer", Runtime="python3.12", Role=lambda_role(aws_client("iam")),
                        Handler="app.uses_layer", Code={"ZipFile": zip_bytes({"app.py": HANDLERS})},
                        Layers=[layer["LayerVersionArn"]])
    resp = lam.invoke(FunctionName="fn-layer", Payload=b"{}")
    assert json.loads(resp["Payload"].read()) == "from the layer"


def test_log_tail_is_last_4_kb(make_function, aws_client):
    name = make_function("chatty")
    resp = aws_client("lambda").invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    tail = base64.b64decode(resp["LogResult"])
    assert len(tail) == 4096
    assert tail.decode().rstrip().splitlines()[-1].startswith("REPORT RequestId:")
    assert b"line 01999" in tail and b"line 00000" not in tail


def test_non_python_runtime_is_refused(aws_client):
    aws_client("lambda").create_function(FunctionName="fn-node", Runtime="nodejs20.x", Role=lambda_role(aws_client("iam")),
                                         Handler="index.handler", Code={"ZipFile": zip_bytes({"index.js": ""})})
    resp = aws_client("lambda").invoke(FunctionName="fn-node", Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "Runtime.InvalidRuntime"
    assert "nodejs20.x" in err["errorMessage"]
