"""Lambda execution environments through boto3: init once, warm reuse, concurrency, discard, idle
expiry, one request id per invocation, no process left behind.

The lifecycle is AWS's (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html):
the handler module's globals and the environment's /tmp (``TMPDIR``) persist across warm
invocations, ``Init Duration`` is in the REPORT line of a cold start only.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
import uuid

import pytest

from localaws.services import awslambda
from tests.localaws.helpers import lambda_role, zip_bytes
from tests.localaws.test_server import serve

HANDLERS = '''
import json, os, subprocess, sys, tempfile, time

COUNT = 0          # a module global: kept while the environment is warm
IMPORTED_AT = time.time()


def state(event, context):
    global COUNT
    COUNT += 1
    path = os.path.join(tempfile.gettempdir(), "seen.txt")
    with open(path, "a") as fh:
        fh.write(context.aws_request_id + "\\n")
    with open(path) as fh:
        seen = fh.read().split()
    time.sleep(event.get("sleep", 0))
    if event.get("exit"):
        os._exit(3)
    if event.get("hog"):
        blocks = [bytearray(32 * 1024 * 1024) for _ in range(64)]
    print("count", COUNT)
    return {"count": COUNT, "pid": os.getpid(), "seen": seen, "tmp": tempfile.gettempdir(),
            "request_id": context.aws_request_id, "imported_at": IMPORTED_AT}


def spawn(event, context):
    child = subprocess.Popen(["sleep", "300"])
    return {"pid": os.getpid(), "child": child.pid}
'''


@pytest.fixture(scope="module")
def make_function(localaws):
    import boto3

    lam = boto3.client("lambda", endpoint_url=localaws.endpoint_url, region_name="us-east-1")
    role = lambda_role(boto3.client("iam", endpoint_url=localaws.endpoint_url, region_name="us-east-1"))

    def make(handler: str = "state", **kwargs) -> str:
        name = f"env-{handler}-{uuid.uuid4().hex[:8]}"
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=f"app.{handler}",
                            Code={"ZipFile": zip_bytes({"app.py": HANDLERS})}, **kwargs)
        return name

    return make


def invoke(lam, name: str, event: dict | None = None) -> tuple[dict, list[str], dict]:
    """(payload, log lines of the tail, response)."""
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}), LogType="Tail")
    return json.loads(resp["Payload"].read()), base64.b64decode(resp["LogResult"]).decode().splitlines(), resp


def is_cold(lines: list[str]) -> bool:
    report = lines[-1]
    assert report.startswith("REPORT RequestId: "), report
    return "\tInit Duration: " in report


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_warm_invocations_reuse_the_environment(make_function, aws_client):
    lam = aws_client("lambda")
    name = make_function()
    results = [invoke(lam, name) for _ in range(3)]
    payloads = [r[0] for r in results]
    assert [p["count"] for p in payloads] == [1, 2, 3]  # globals persist
    assert len({p["pid"] for p in payloads}) == 1  # no new process
    assert len({p["imported_at"] for p in payloads}) == 1  # no re-import
    assert payloads[2]["seen"] == [p["request_id"] for p in payloads]  # /tmp persists
    assert [is_cold(r[1]) for r in results] == [True, False, False]
    init_ms = float(results[0][1][-1].split("Init Duration: ")[1].split()[0])
    assert init_ms > 0
    # Each environment has a /tmp of its own under localaws's work directory, not the machine's /tmp.
    assert payloads[0]["tmp"] != "/tmp" and "/lambda/env-" in payloads[0]["tmp"]


def test_concurrent_invocations_get_their_own_environments(make_function, aws_client):
    name = make_function(Timeout=30)
    out: list[tuple[dict, list[str], dict]] = []

    def run() -> None:
        out.append(invoke(aws_client("lambda"), name, {"sleep": 1.5}))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 2
    assert len({p["pid"] for p, _, _ in out}) == 2
    assert all(is_cold(lines) for _, lines, _ in out)
    assert [p["count"] for p, _, _ in out] == [1, 1]
    # Both stay warm: the next invocation takes one of them.
    payload, lines, _ = invoke(aws_client("lambda"), name)
    assert payload["pid"] in {p["pid"] for p, _, _ in out} and payload["count"] == 2
    assert not is_cold(lines)


def test_timeout_discards_the_environment(make_function, aws_client):
    lam = aws_client("lambda")
    name = make_function(Timeout=1)
    first, _, _ = invoke(lam, name)
    err, lines, resp = invoke(lam, name, {"sleep": 5})
    assert resp["FunctionError"] == "Unhandled" and err["errorType"] == "Sandbox.Timedout"
    assert not is_cold(lines)  # the timed-out invocation itself was warm
    assert not alive(first["pid"])
    again, lines, _ = invoke(lam, name)
    assert is_cold(lines) and again["count"] == 1 and again["pid"] != first["pid"]
    assert again["seen"] == [again["request_id"]]  # a new /tmp


def test_crash_and_out_of_memory_discard_the_environment(make_function, aws_client):
    lam = aws_client("lambda")
    name = make_function(MemorySize=256, Timeout=30)
    first, _, _ = invoke(lam, name)
    err, _, resp = invoke(lam, name, {"exit": True})
    assert resp["FunctionError"] == "Unhandled" and err["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in err["errorMessage"]
    second, lines, _ = invoke(lam, name)
    assert is_cold(lines) and second["count"] == 1 and second["pid"] != first["pid"]
    err, _, _ = invoke(lam, name, {"hog": True})
    assert err["errorType"] == "Runtime.OutOfMemory"
    third, lines, _ = invoke(lam, name)
    assert is_cold(lines) and third["count"] == 1 and not alive(second["pid"])


def test_a_handled_error_keeps_the_environment(make_function, aws_client):
    lam = aws_client("lambda")
    name = make_function()
    first, _, _ = invoke(lam, name)
    err, _, _ = invoke(lam, name, {"sleep": "not a number"})  # TypeError in the handler
    assert err["errorType"] == "TypeError"
    second, lines, _ = invoke(lam, name)
    assert not is_cold(lines) and second["pid"] == first["pid"] and second["count"] == 3


def test_configuration_and_code_updates_discard_the_environment(make_function, aws_client):
    lam = aws_client("lambda")
    name = make_function()
    invoke(lam, name)
    before, _, _ = invoke(lam, name)
    assert before["count"] == 2
    # Even a change that the handler cannot see (Description) gives new environments, as on AWS.
    lam.update_function_configuration(FunctionName=name, Description="new description")
    after, lines, _ = invoke(lam, name)
    assert is_cold(lines) and after["count"] == 1 and after["pid"] != before["pid"]
    assert not alive(before["pid"])
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"STAGE": "two"}})
    again, lines, _ = invoke(lam, name)
    assert is_cold(lines) and again["count"] == 1
    new_code = HANDLERS.replace('"count": COUNT', '"count": COUNT + 100')
    lam.update_function_code(FunctionName=name, ZipFile=zip_bytes({"app.py": new_code}))
    updated, lines, _ = invoke(lam, name)
    assert is_cold(lines) and updated["count"] == 101


def test_idle_environment_is_stopped(make_function, aws_client):
    lam = aws_client("lambda")
    name = make_function()
    saved = awslambda.POOL.idle_seconds
    awslambda.POOL.idle_seconds = 1.0
    try:
        first, _, _ = invoke(lam, name)
        warm, lines, _ = invoke(lam, name)
        assert not is_cold(lines) and warm["pid"] == first["pid"]
        deadline = time.monotonic() + 10
        while alive(first["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(first["pid"]), "the idle environment was not stopped"
        cold, lines, _ = invoke(lam, name)
        assert is_cold(lines) and cold["count"] == 1
    finally:
        awslambda.POOL.idle_seconds = saved


def test_one_request_id_per_invocation(make_function, aws_client):
    lam = aws_client("lambda")
    name = make_function()
    ids = []
    for _ in range(2):  # cold, then warm
        payload, lines, resp = invoke(lam, name)
        header = resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        assert resp["ResponseMetadata"]["RequestId"] == header
        assert payload["request_id"] == header
        assert lines[0] == f"START RequestId: {header} Version: $LATEST"
        assert lines[-2] == f"END RequestId: {header}"
        assert lines[-1].startswith(f"REPORT RequestId: {header}\t")
        ids.append(header)
    assert ids[0] != ids[1]
    # An Event invocation's id is the one in its log lines.
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    header = resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    logs = aws_client("logs")
    deadline = time.monotonic() + 30
    messages: list[str] = []
    while time.monotonic() < deadline:
        messages = [e["message"] for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
        if any(m.startswith(f"REPORT RequestId: {header}\t") for m in messages):
            break
        time.sleep(0.2)
    assert f"START RequestId: {header} Version: $LATEST" in messages
    assert any(m.startswith(f"REPORT RequestId: {header}\t") for m in messages)
    # One log stream per environment, as on AWS: the three invocations share one.
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert len(streams) == 1


@pytest.mark.slow  # restarts localaws server processes (README: test tiers)
def test_served_localaws_expires_idle_environments_restarts_cold_and_leaves_no_process(tmp_path):
    state = tmp_path / "state"
    server = serve(tmp_path, "--lambda-idle-seconds", "2", "--state-dir", str(state), "--no-durable-writes")
    pids: list[int] = []
    try:
        lam = server.client("lambda")
        role = server.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = {"ZipFile": zip_bytes({"app.py": HANDLERS})}
        lam.create_function(FunctionName="state", Runtime="python3.12", Role=role, Handler="app.state", Code=code)
        lam.create_function(FunctionName="spawn", Runtime="python3.12", Role=role, Handler="app.spawn", Code=code,
                            MemorySize=256)
        first, lines, _ = invoke(lam, "state")
        assert is_cold(lines)
        warm, lines, _ = invoke(lam, "state")
        assert not is_cold(lines) and warm["count"] == 2
        deadline = time.monotonic() + 15
        while alive(first["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(first["pid"]), "--lambda-idle-seconds 2: the idle environment was not stopped"
        again, lines, _ = invoke(lam, "state")
        assert is_cold(lines) and again["count"] == 1
        spawned, _, _ = invoke(lam, "spawn")
        pids = [again["pid"], spawned["pid"], spawned["child"]]
        assert all(alive(p) for p in pids)
    finally:
        code_ = server.stop(signal.SIGTERM)
    assert code_ == 0
    # Every environment, and what a handler started, is gone with the server.
    assert [p for p in pids if alive(p)] == []

    # State restored after a restart starts cold (environments are never in a snapshot).
    restarted = serve(tmp_path, "--state-dir", str(state), "--no-durable-writes")
    try:
        payload, lines, _ = invoke(restarted.client("lambda"), "state")
        assert is_cold(lines) and payload["count"] == 1
        pids = [payload["pid"]]
    finally:
        assert restarted.stop(signal.SIGTERM) == 0
    assert not alive(pids[0])
    assert not os.path.exists(payload["tmp"])


def test_warm_invocations_leak_no_descriptors(make_function, aws_client, localaws):
    lam = aws_client("lambda")
    name = make_function()
    invoke(lam, name)
    invoke(lam, name)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        invoke(lam, name)
    assert len(os.listdir("/proc/self/fd")) - before <= 3
