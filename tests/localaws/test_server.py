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
    deadline = time.monotonic() + 30
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
        assert health(second.endpoint)["state_dir"] == str(state)
    finally:
        assert second.stop() == 0


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
        assert [p.name for p in state.iterdir()] == ["state.pickle"]
    finally:
        assert server.stop() == 0


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
