"""``localaws serve`` as a process: health, logging, signals, persistence, ``localaws sns messages``."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from tests.localaws.helpers import zip_bytes

LOCALAWS = [sys.executable, "-m", "localaws.cli"]


class Served:
    def __init__(self, proc: subprocess.Popen, endpoint: str, log_path: Path) -> None:
        self.proc, self.endpoint, self.log_path = proc, endpoint, log_path

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="k", aws_secret_access_key="s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    @property
    def log(self) -> str:
        return self.log_path.read_text()


def serve(tmp_path: Path, *args: str) -> Served:
    log_path = tmp_path / f"serve-{time.monotonic_ns()}.log"
    out = open(log_path, "w")
    proc = subprocess.Popen([*LOCALAWS, "serve", "--port", "0", *args], stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, "AWS_ENDPOINT_URL": ""})
    deadline = time.monotonic() + 120  # ~4 s on an idle machine; 30 was too short at load 20
    while time.monotonic() < deadline:
        match = re.search(r"localaws ready at (http://\S+)", log_path.read_text())
        if match:
            return Served(proc, match.group(1), log_path)
        if proc.poll() is not None:
            raise AssertionError(f"localaws serve exited {proc.returncode}:\n{log_path.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"localaws serve did not get ready:\n{log_path.read_text()}")


def health(endpoint: str) -> dict:
    with urllib.request.urlopen(f"{endpoint}/_localaws/health", timeout=5) as resp:
        return json.load(resp)


def test_serve_health_loopback_logging_and_sigint(tmp_path):
    server = serve(tmp_path)
    try:
        assert server.endpoint.startswith("http://127.0.0.1:")
        status = health(server.endpoint)
        assert status["status"] == "ok"
        assert status["endpoint"] == server.endpoint
        assert status["state_dir"] is None
        # A request that runs nothing logs nothing; an executed Lambda logs one line.
        lam = server.client("lambda")
        role = server.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam.create_function(FunctionName="noop", Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": zip_bytes({"app.py": "def handler(e, c):\n    return 1\n"})})
        for _ in range(3):
            server.client("s3").list_buckets()
        lam.invoke(FunctionName="noop", Payload=b"{}")
        assert "listening on " + server.endpoint + " (loopback only: True" in server.log
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0
    lines = server.log.splitlines()
    assert sum("lambda noop request" in line and "succeeded" in line for line in lines) == 1
    assert not any("GET /" in line or "POST /" in line for line in lines), "per-request lines were logged"
    assert "localaws stopped" in server.log


@pytest.mark.slow  # kills and restarts localaws server processes (the tier: tests/conftest.py)
def test_state_survives_restart(tmp_path):
    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state))
    try:
        s3 = first.client("s3")
        s3.create_bucket(Bucket="bronze-bucket")
        s3.put_bucket_versioning(Bucket="bronze-bucket", VersioningConfiguration={"Status": "Enabled"})
        v1 = s3.put_object(Bucket="bronze-bucket", Key="flights/day.csv", Body=b"v1")["VersionId"]
        v2 = s3.put_object(Bucket="bronze-bucket", Key="flights/day.csv", Body=b"v2")["VersionId"]
        glue = first.client("glue")
        glue.create_database(DatabaseInput={"Name": "lake"})
        glue.create_table(DatabaseName="lake", TableInput={"Name": "flights", "StorageDescriptor": {
            "Columns": [{"Name": "carrier", "Type": "string"}], "Location": "s3://bronze-bucket/flights/"}})
        glue.create_job(Name="gold", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://bronze-bucket/x.py"})
        role = first.client("iam").create_role(RoleName="lambda-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        first.client("lambda").create_function(
            FunctionName="extractor", Runtime="python3.12", Role=role, Handler="app.handler",
            Code={"ZipFile": zip_bytes({"app.py": "def handler(e, c):\n    return {'restored': True}\n"})})
        topic = first.client("sns").create_topic(Name="lake-alerts")["TopicArn"]
        queue = first.client("sqs").create_queue(QueueName="lake-inbox")["QueueUrl"]
        first.client("sqs").send_message(QueueUrl=queue, MessageBody="kept")
        logs = first.client("logs")
        logs.create_log_group(logGroupName="/lake/test")
        ddb = first.client("dynamodb")
        ddb.create_table(TableName="deliveries", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        ddb.update_time_to_live(TableName="deliveries", TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
        ddb.put_item(TableName="deliveries", Item={"pk": {"S": "s3://bronze-bucket/flights/day.csv"}, "size": {"N": "2"}})
    finally:
        assert first.stop() == 0
    assert (state / "state.pickle").exists()

    second = serve(tmp_path, "--state-dir", str(state))
    try:
        s3 = second.client("s3")
        assert s3.get_object(Bucket="bronze-bucket", Key="flights/day.csv")["Body"].read() == b"v2"
        versions = s3.list_object_versions(Bucket="bronze-bucket")["Versions"]
        assert {v["VersionId"] for v in versions} == {v1, v2}
        assert s3.get_object(Bucket="bronze-bucket", Key="flights/day.csv", VersionId=v1)["Body"].read() == b"v1"
        glue = second.client("glue")
        assert glue.get_table(DatabaseName="lake", Name="flights")["Table"]["StorageDescriptor"]["Columns"][0]["Name"] == "carrier"
        assert glue.get_job(JobName="gold")["Job"]["Command"]["ScriptLocation"] == "s3://bronze-bucket/x.py"
        resp = second.client("lambda").invoke(FunctionName="extractor", Payload=b"{}")
        assert json.loads(resp["Payload"].read()) == {"restored": True}
        assert topic in [t["TopicArn"] for t in second.client("sns").list_topics()["Topics"]]
        msgs = second.client("sqs").receive_message(QueueUrl=queue)["Messages"]
        assert [m["Body"] for m in msgs] == ["kept"]
        assert "/lake/test" in [g["logGroupName"] for g in second.client("logs").describe_log_groups()["logGroups"]]
        assert second.client("iam").get_role(RoleName="lambda-role")["Role"]["Arn"] == role
        ddb = second.client("dynamodb")
        assert ddb.scan(TableName="deliveries")["Items"] == [{"pk": {"S": "s3://bronze-bucket/flights/day.csv"},
                                                             "size": {"N": "2"}}]
        assert ddb.describe_time_to_live(TableName="deliveries")["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
        assert health(second.endpoint)["state_dir"] == str(state)
    finally:
        assert second.stop() == 0


@pytest.mark.slow  # restarts localaws server processes (README: test tiers)
def test_a_failed_query_survives_restarts(tmp_path):
    """A FAILED Athena query keeps its error in the snapshot; the next start reads it back (it used
    to stop startup: the error class could not be unpickled)."""
    state = tmp_path / "state"
    for round_no in range(2):
        served = serve(tmp_path, "--state-dir", str(state))
        try:
            athena = served.client("athena")
            if round_no == 0:
                served.client("s3").create_bucket(Bucket="results")
                qid = athena.start_query_execution(QueryString="SELECT * FROM no_such_table",
                                                   ResultConfiguration={"OutputLocation": "s3://results/"})["QueryExecutionId"]
                deadline = time.monotonic() + 30
                while (status := athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"])["State"] \
                        in ("QUEUED", "RUNNING") and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert status["State"] == "FAILED", status
                reason = status["StateChangeReason"]
            else:
                status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
                assert status["State"] == "FAILED" and status["StateChangeReason"] == reason
        finally:
            assert served.stop() == 0


def test_periodic_snapshot_is_written_atomically(tmp_path):
    state = tmp_path / "state"
    server = serve(tmp_path, "--state-dir", str(state), "--snapshot-interval", "0.5")
    try:
        server.client("s3").create_bucket(Bucket="periodic")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (state / "state.pickle").exists():
            time.sleep(0.2)
        # Readable while the server still runs, and no temporary files left behind.
        with open(state / "state.pickle", "rb") as fh:
            data = pickle.load(fh)
        assert "periodic" in data["state"]["s3"]["123456789012"]["aws"].buckets
        assert sorted(p.name for p in state.iterdir()) == ["cloudtrail", "state.pickle"]  # + CloudTrail's events
    finally:
        assert server.stop() == 0


@pytest.mark.slow  # kills and restarts localaws server processes (the tier: tests/conftest.py)
def test_restart_removes_snapshots_a_kill_left_unfinished(tmp_path):
    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state))
    try:
        first.client("s3").create_bucket(Bucket="kept")
    finally:
        assert first.stop() == 0
    # What a SIGKILL in the middle of save() leaves: a half-written temporary file.
    half = b"\x80\x05 half a pickle" * 1000
    (state / ".state-k1ll3d.tmp").write_bytes(half)
    second = serve(tmp_path, "--state-dir", str(state))
    try:
        assert [b["Name"] for b in second.client("s3").list_buckets()["Buckets"]] == ["kept"]
        assert sorted(p.name for p in state.iterdir()) == ["cloudtrail", "state.pickle"]
        assert f"removed 1 unfinished snapshot file(s) in {state} ({len(half)} bytes)" in second.log_path.read_text()
    finally:
        assert second.stop() == 0


def test_unreadable_snapshot_stops_startup(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.pickle").write_bytes(b"\x80\x05 this is not a pickle")
    result = subprocess.run([*LOCALAWS, "serve", "--port", "0", "--state-dir", str(state)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert f"cannot read localaws state snapshot {state / 'state.pickle'}" in result.stderr
    assert (state / "state.pickle").read_bytes().startswith(b"\x80\x05 this is not")  # left untouched


def test_sns_messages_command(tmp_path):
    server = serve(tmp_path)
    try:
        sns = server.client("sns")
        topic = sns.create_topic(Name="lake-runs")["TopicArn"]
        sns.create_topic(Name="other")
        sns.publish(TopicArn=topic, Subject="flights 2013-01-05", Message="rows written: 842",
                    MessageAttributes={"ds": {"DataType": "String", "StringValue": "2013-01-05"}})
        # Airflow's SnsHook publishes with MessageStructure=json: the delivered text is "default".
        sns.publish(TopicArn=topic, Subject="as json", Message=json.dumps({"default": "rows rejected: 0"}),
                    MessageStructure="json")
        result = subprocess.run([*LOCALAWS, "sns", "messages", "--topic", "lake-runs", "--endpoint", server.endpoint],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "topic=lake-runs  subject=flights 2013-01-05" in result.stdout
        assert "attributes: ds=2013-01-05" in result.stdout
        assert "  rows written: 842" in result.stdout
        assert "  rows rejected: 0" in result.stdout and '"default"' not in result.stdout
        as_json = subprocess.run([*LOCALAWS, "sns", "messages", "--topic", "other", "--json", "--endpoint",
                                  server.endpoint], capture_output=True, text=True, timeout=60)
        assert json.loads(as_json.stdout) == []
    finally:
        server.stop()
    unreachable = subprocess.run([*LOCALAWS, "sns", "messages", "--endpoint", server.endpoint], capture_output=True,
                                 text=True, timeout=60)
    assert unreachable.returncode == 2
    assert "Is `localaws serve` running?" in unreachable.stderr


def test_in_process_server_refuses_a_second_instance(localaws):
    from localaws.server import LocalAWS

    with pytest.raises(RuntimeError, match="already runs in this process"):
        LocalAWS(port=0).start()


def _parallel(fn, items, workers: int = 8) -> list:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


@pytest.mark.slow  # kills and restarts localaws server processes (the tier: tests/conftest.py)
def test_sigkill_loses_nothing_acknowledged(tmp_path):
    """Durable writes (the default with --state-dir): every change a client got an answer for is in
    the snapshot before the answer, so a SIGKILL right after the last answer loses none of it."""
    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state), "--snapshot-interval", "3600")
    try:
        s3, sqs, glue = first.client("s3"), first.client("sqs"), first.client("glue")
        s3.create_bucket(Bucket="acked")
        queue = sqs.create_queue(QueueName="acked")["QueueUrl"]
        glue.create_database(DatabaseInput={"Name": "acked"})
        bodies = {f"day/{i:03d}.bin": os.urandom(1000 + i) for i in range(120)}
        etags = dict(zip(bodies, _parallel(lambda k: s3.put_object(Bucket="acked", Key=k, Body=bodies[k])["ETag"],
                                           list(bodies)), strict=True))
        sent = _parallel(lambda i: sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")["MessageId"], range(40))
        _parallel(lambda i: glue.create_table(DatabaseName="acked", TableInput={"Name": f"t{i}"}), range(20))
        s3.delete_object(Bucket="acked", Key="day/000.bin")
    finally:
        first.proc.kill()  # SIGKILL right after the last acknowledgement: no final snapshot
        first.proc.wait(timeout=30)
    assert "durable writes" in first.log

    second = serve(tmp_path, "--state-dir", str(state))
    try:
        s3 = second.client("s3")
        listed = {o["Key"]: o["ETag"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="acked")
                  for o in page.get("Contents", [])}
        expected = {k: v for k, v in etags.items() if k != "day/000.bin"}
        assert listed == expected
        for key in ("day/001.bin", "day/119.bin"):
            assert s3.get_object(Bucket="acked", Key=key)["Body"].read() == bodies[key]
        attrs = second.client("sqs").get_queue_attributes(QueueUrl=queue,
                                                           AttributeNames=["ApproximateNumberOfMessages"])
        assert int(attrs["Attributes"]["ApproximateNumberOfMessages"]) == len(sent)
        tables = second.client("glue").get_tables(DatabaseName="acked")["TableList"]
        assert sorted(t["Name"] for t in tables) == sorted(f"t{i}" for i in range(20))
    finally:
        assert second.stop() == 0


@pytest.mark.slow  # kills and restarts localaws server processes (the tier: tests/conftest.py)
def test_sigkill_without_durable_writes_loses_changes_since_the_last_snapshot(tmp_path):
    """The documented trade-off of --no-durable-writes: only periodic snapshots."""
    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state), "--no-durable-writes", "--snapshot-interval", "3600")
    try:
        first.client("s3").create_bucket(Bucket="kept-at-stop")
    finally:
        assert first.stop() == 0  # a clean stop writes a final snapshot
    second = serve(tmp_path, "--state-dir", str(state), "--no-durable-writes", "--snapshot-interval", "3600")
    try:
        assert "snapshot every 3600 s" in second.log
        second.client("s3").create_bucket(Bucket="lost-in-the-crash")
    finally:
        second.proc.kill()
        second.proc.wait(timeout=30)
    third = serve(tmp_path, "--state-dir", str(state))
    try:
        names = [b["Name"] for b in third.client("s3").list_buckets()["Buckets"]]
        assert names == ["kept-at-stop"]
    finally:
        assert third.stop() == 0


SLOW_HANDLER = """
import os, time, pathlib
def handler(event, context):
    pathlib.Path(event["pid_file"]).write_text(str(os.getpid()))
    time.sleep(60)
    pathlib.Path(event["done_file"]).write_text("finished")
    return "late"
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (it is reaped by whoever adopted it).
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


@pytest.mark.slow  # kills and restarts localaws server processes (the tier: tests/conftest.py)
def test_sigkill_mid_run_stops_children_and_fails_runs_in_flight(tmp_path):
    """A Lambda handler or Glue job running when localaws is killed dies with it (no orphan writing
    to the restarted server); a query or job run in flight is FAILED after the restart, with a reason."""
    import threading

    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state))
    pid_file, done_file = tmp_path / "handler.pid", tmp_path / "handler.done"
    try:
        lam = first.client("lambda")
        role = first.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam.create_function(FunctionName="slow", Runtime="python3.12", Role=role, Handler="app.handler", Timeout=300,
                            Code={"ZipFile": zip_bytes({"app.py": SLOW_HANDLER})})
        first.client("s3").create_bucket(Bucket="results")
        athena = first.client("athena")
        # A query still RUNNING when localaws is killed (10^10 pairs: minutes of DuckDB work).
        qid = athena.start_query_execution(
            QueryString="SELECT count(*) FROM UNNEST(sequence(1, 100000)) a(x) CROSS JOIN UNNEST(sequence(1, 100000)) "
                        "b(y) WHERE (x * y) % 7 = 3",
            ResultConfiguration={"OutputLocation": "s3://results/q/"})["QueryExecutionId"]
        script = ("import os, sys, time, pathlib\n"
                  f"pathlib.Path({str(tmp_path / 'glue.pid')!r}).write_text(str(os.getpid()))\n"
                  "time.sleep(60)\n")
        first.client("s3").put_object(Bucket="results", Key="slow_job.py", Body=script.encode())
        glue = first.client("glue")
        glue.create_job(Name="slow", Role=role,
                        Command={"Name": "pythonshell", "ScriptLocation": "s3://results/slow_job.py"})
        run_id = glue.start_job_run(JobName="slow")["JobRunId"]
        payload = {"pid_file": str(pid_file), "done_file": str(done_file)}
        threading.Thread(target=_invoke_quietly, args=(lam, payload), daemon=True).start()
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and (tmp_path / "glue.pid").exists()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pid_file.exists() and (tmp_path / "glue.pid").exists(), first.log
        handler_pid = int(pid_file.read_text())
        glue_pid = int((tmp_path / "glue.pid").read_text())
        assert athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
            "QUEUED", "RUNNING")
    finally:
        first.proc.kill()
        first.proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while (_alive(handler_pid) or _alive(glue_pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(handler_pid), "the Lambda handler outlived the killed localaws"
    assert not _alive(glue_pid), "the Glue job run outlived the killed localaws"
    assert not done_file.exists()

    second = serve(tmp_path, "--state-dir", str(state))
    try:
        status = second.client("athena").get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        assert status["State"] == "FAILED"
        assert "localaws restarted" in status["StateChangeReason"]
        assert "1 Athena queries were in progress at the last snapshot; marked FAILED" in second.log
        run = second.client("glue").get_job_run(JobName="slow", RunId=run_id)["JobRun"]
        assert run["JobRunState"] == "FAILED"
        assert "localaws restarted" in run["ErrorMessage"]
    finally:
        assert second.stop() == 0


def _invoke_quietly(lam, payload: dict) -> None:
    try:
        lam.invoke(FunctionName="slow", Payload=json.dumps(payload).encode())
    except Exception:  # noqa: BLE001 - the server is killed under this call
        pass
