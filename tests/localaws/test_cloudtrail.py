"""CloudTrail in localaws through boto3 (and the AWS CLI): every call recorded, LookupEvents with
AWS's filters and paging, "who deleted this object / who changed this job", secrets redacted.

Expected identities come from IAM and STS (the users' ARNs, the keys they were given); expected
request ids and error codes from what the clients themselves received.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from localaws.services.cloudtrail import records
from localaws.services.cloudtrail.store import EventStore
from tests.localaws.helpers import lambda_role, zip_bytes
from tests.localaws.test_server import serve

AWS = Path(sys.executable).parent / "aws"


def _uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def users(aws_client, localaws):
    """Two IAM users with access keys: ``{"alice": (user, session-kwargs), "bob": ...}``."""
    iam = aws_client("iam")
    out = {}
    for who in ("alice", "bob"):
        name = f"{who}-{_uid()}"
        user = iam.create_user(UserName=name)["User"]
        key = iam.create_access_key(UserName=name)["AccessKey"]
        out[who] = (user, {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"],
                           "aws_session_token": None})
    return out


def _client(localaws, service, creds):
    return boto3.client(service, endpoint_url=localaws.endpoint_url, region_name="us-east-1", **creds)


def _lookup(ct, key, value, **kwargs) -> list[dict]:
    events = []
    for page in ct.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}], **kwargs):
        events += page["Events"]
    return events


def test_who_deleted_this_object(aws_client, localaws, users):
    bucket, kept, gone, batch = f"ct-{_uid()}", f"dt=2013-01-0{1}/{_uid()}.csv", f"raw/{_uid()}.csv", f"b/{_uid()}"
    alice_user, alice = users["alice"]
    bob_user, bob = users["bob"]
    s3a, s3b = _client(localaws, "s3", alice), _client(localaws, "s3", bob)
    s3a.create_bucket(Bucket=bucket)
    for key in (kept, gone, batch):
        s3a.put_object(Bucket=bucket, Key=key, Body=b"x,y\n1,2\n")
    deleted = s3b.delete_object(Bucket=bucket, Key=gone)
    s3a.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": batch}]})

    ct = aws_client("cloudtrail")
    events = _lookup(ct, "ResourceName", gone)
    assert [(e["EventName"], e["Username"]) for e in events] == [("DeleteObject", bob_user["UserName"]),
                                                                  ("PutObject", alice_user["UserName"])]
    delete = events[0]
    assert delete["AccessKeyId"] == bob["aws_access_key_id"]
    assert {"ResourceType": "AWS::S3::Object", "ResourceName": gone} in delete["Resources"]
    record = json.loads(delete["CloudTrailEvent"])
    assert record["userIdentity"]["type"] == "IAMUser"
    assert record["userIdentity"]["arn"] == bob_user["Arn"] and record["userIdentity"]["userName"] == bob_user["UserName"]
    assert record["eventSource"] == "s3.amazonaws.com" and record["awsRegion"] == "us-east-1"
    assert record["requestParameters"]["bucketName"] == bucket and record["requestParameters"]["key"] == gone
    assert record["requestID"] == deleted["ResponseMetadata"]["RequestId"]
    assert record["eventCategory"] == "Data" and record["managementEvent"] is False and record["readOnly"] is False
    assert {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{gone}"} in record["resources"]
    assert record["eventType"] == "AwsApiCall" and uuid.UUID(record["eventID"]) and record["userAgent"].startswith("Boto3")
    # The ARN finds it too; a batch delete names each key; the untouched object has only its PUT.
    assert next(e["EventId"] for e in _lookup(ct, "ResourceName", f"arn:aws:s3:::{bucket}/{gone}")) == delete["EventId"]
    assert next((e["EventName"], e["Username"]) for e in _lookup(ct, "ResourceName", batch)) == (
        "DeleteObjects", alice_user["UserName"])
    assert [e["EventName"] for e in _lookup(ct, "ResourceName", kept)] == ["PutObject"]
    # By user: bob did exactly one thing.
    assert [e["EventName"] for e in _lookup(ct, "Username", bob_user["UserName"])] == ["DeleteObject"]
    assert [e["EventName"] for e in _lookup(ct, "AccessKeyId", bob["aws_access_key_id"])] == ["DeleteObject"]
    # CreateBucket is a management event.
    create = json.loads(_lookup(ct, "ResourceName", bucket)[-1]["CloudTrailEvent"])
    assert (create["eventName"], create["eventCategory"], create["managementEvent"]) == (
        "CreateBucket", "Management", True)


def test_who_changed_this_job(aws_client, localaws, users):
    job = f"gold-{_uid()}"
    alice_user, alice = users["alice"]
    bob_user, bob = users["bob"]
    role = lambda_role(aws_client("iam"))
    _client(localaws, "glue", alice).create_job(
        Name=job, Role=role, Command={"Name": "glueetl", "ScriptLocation": "s3://scripts/gold_v1.py"},
        DefaultArguments={"--db-password": "hunter2", "--dt": "2013-01-01"})
    _client(localaws, "glue", bob).update_job(JobName=job, JobUpdate={
        "Role": role, "Command": {"Name": "glueetl", "ScriptLocation": "s3://scripts/gold_v2.py"}})

    ct = aws_client("cloudtrail")
    updates = [e for e in _lookup(ct, "EventName", "UpdateJob")
               if {"ResourceType": "AWS::Glue::Job", "ResourceName": job} in e["Resources"]]
    assert [e["Username"] for e in updates] == [bob_user["UserName"]]
    record = json.loads(updates[0]["CloudTrailEvent"])
    assert record["eventSource"] == "glue.amazonaws.com" and record["eventCategory"] == "Management"
    assert record["requestParameters"]["jobName"] == job
    assert record["requestParameters"]["jobUpdate"]["command"]["scriptLocation"] == "s3://scripts/gold_v2.py"
    history = _lookup(ct, "ResourceName", job)
    assert [(e["EventName"], e["Username"]) for e in history] == [
        ("UpdateJob", bob_user["UserName"]), ("CreateJob", alice_user["UserName"])]
    created = json.loads(history[1]["CloudTrailEvent"])
    # Argument names are kept as sent (a map), a secret-looking one is hidden.
    assert created["requestParameters"]["defaultArguments"] == {"--db-password": records.HIDDEN, "--dt": "2013-01-01"}
    assert "hunter2" not in history[1]["CloudTrailEvent"]


def test_paging_newest_first_and_time_filters(aws_client):
    s3, ct = aws_client("s3"), aws_client("cloudtrail")
    bucket, key = f"ct-{_uid()}", f"k/{_uid()}"
    s3.create_bucket(Bucket=bucket)
    request_ids, times = [], []
    for i in range(7):
        times.append(time.time())
        request_ids.append(s3.put_object(Bucket=bucket, Key=key, Body=str(i).encode())["ResponseMetadata"]["RequestId"])
    middle = (times[3] + times[4]) / 2 if times[4] > times[3] else times[4]

    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key}],
                                MaxResults=3, **kwargs)
        pages.append(page["Events"])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    got = [json.loads(e["CloudTrailEvent"])["requestID"] for p in pages for e in p]
    assert got == request_ids[::-1]  # newest first, each once
    stamps = [e["EventTime"] for p in pages for e in p]
    assert stamps == sorted(stamps, reverse=True)

    def ids(**kwargs):
        return [json.loads(e["CloudTrailEvent"])["requestID"] for e in _lookup(ct, "ResourceName", key, **kwargs)]

    start = datetime.fromtimestamp(times[4], UTC)
    assert ids(StartTime=start) == request_ids[4:][::-1]
    assert ids(EndTime=datetime.fromtimestamp(times[4], UTC)) == request_ids[:4][::-1]
    assert ids(StartTime=datetime.fromtimestamp(times[2], UTC), EndTime=datetime.fromtimestamp(times[5], UTC)) == \
        request_ids[2:5][::-1]
    assert middle  # the clock moved forward between the calls


def test_failed_calls_carry_the_error_the_client_got(aws_client):
    s3, glue, ct = aws_client("s3"), aws_client("glue"), aws_client("cloudtrail")
    bucket, key, job = f"ct-{_uid()}", f"missing/{_uid()}", f"nojob-{_uid()}"
    s3.create_bucket(Bucket=bucket)
    failures = {}
    for name, call in ((key, lambda: s3.get_object(Bucket=bucket, Key=key)), (job, lambda: glue.get_job(JobName=job))):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            call()
        failures[name] = err.value.response["Error"]
    for name, error in failures.items():
        record = json.loads(_lookup(ct, "ResourceName", name)[0]["CloudTrailEvent"])
        assert record["errorCode"] == error["Code"] and record["errorMessage"] == error["Message"]
        assert record["readOnly"] is True and "responseElements" not in record
    assert failures[key]["Code"] == "NoSuchKey" and failures[job]["Code"] == "EntityNotFoundException"


def test_secrets_are_redacted(aws_client, localaws):
    iam, lam, sts, ct = aws_client("iam"), aws_client("lambda"), aws_client("sts"), aws_client("cloudtrail")
    fn, user, role_name = f"fn-{_uid()}", f"u-{_uid()}", f"r-{_uid()}"
    code = zip_bytes({"app.py": "def handler(e, c):\n    return 1\n"})
    lam.create_function(FunctionName=fn, Runtime="python3.12", Role=lambda_role(iam), Handler="app.handler",
                        Code={"ZipFile": code},
                        Environment={"Variables": {"DB_HOST": "db.internal", "DB_PASSWORD": "hunter2"}})
    record = json.loads(_lookup(ct, "ResourceName", fn)[0]["CloudTrailEvent"])
    assert record["eventName"] == "CreateFunction" and record["eventSource"] == "lambda.amazonaws.com"
    assert record["requestParameters"]["functionName"] == fn and record["requestParameters"]["handler"] == "app.handler"
    assert record["requestParameters"]["environment"]["variables"] == {"DB_HOST": records.HIDDEN,
                                                                       "DB_PASSWORD": records.HIDDEN}
    assert "hunter2" not in json.dumps(record) and "db.internal" not in json.dumps(record)
    assert "omitted" in record["requestParameters"]["code"]["zipFile"]

    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    event = _lookup(ct, "EventName", "CreateAccessKey", StartTime=datetime.now(UTC).replace(microsecond=0))
    event = next(e for e in event if {"ResourceType": "AWS::IAM::User", "ResourceName": user} in e["Resources"])
    elements = json.loads(event["CloudTrailEvent"])["responseElements"]["accessKey"]
    assert elements["accessKeyId"] == key["AccessKeyId"] and elements["secretAccessKey"] == records.HIDDEN
    assert key["SecretAccessKey"] not in event["CloudTrailEvent"]

    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")["Role"]
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="airflow-worker")["Credentials"]
    event = next(e for e in _lookup(ct, "EventName", "AssumeRole") if role["Arn"] in e["CloudTrailEvent"])
    assert creds["SessionToken"] not in event["CloudTrailEvent"]
    assert creds["SecretAccessKey"] not in event["CloudTrailEvent"]
    # The assumed role's calls are recorded as the role's session.
    glue = boto3.client("glue", endpoint_url=localaws.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])
    db = f"db_{_uid()}"
    glue.create_database(DatabaseInput={"Name": db})
    event = _lookup(ct, "AccessKeyId", creds["AccessKeyId"])[0]
    identity = json.loads(event["CloudTrailEvent"])["userIdentity"]
    assert event["Username"] == "airflow-worker" and identity["type"] == "AssumedRole"
    assert identity["arn"] == f"arn:aws:sts::{role['Arn'].split(':')[4]}:assumed-role/{role_name}/airflow-worker"
    assert identity["sessionContext"]["sessionIssuer"]["arn"] == role["Arn"]


def test_data_events_keep_no_payload(aws_client):
    iam, lam, sns, ct = aws_client("iam"), aws_client("lambda"), aws_client("sns"), aws_client("cloudtrail")
    fn, topic = f"fn-{_uid()}", f"t-{_uid()}"
    lam.create_function(FunctionName=fn, Runtime="python3.12", Role=lambda_role(iam), Handler="app.handler",
                        Code={"ZipFile": zip_bytes({"app.py": "def handler(e, c):\n    return {'echo': e}\n"})})
    answer = json.loads(lam.invoke(FunctionName=fn, Payload=json.dumps({"card": "4111-1111"}))["Payload"].read())
    assert answer == {"echo": {"card": "4111-1111"}}
    invoke = _lookup(ct, "ResourceName", fn)[0]
    record = json.loads(invoke["CloudTrailEvent"])
    assert (record["eventName"], record["eventCategory"], record["managementEvent"]) == ("Invoke", "Data", False)
    assert record["requestParameters"]["functionName"] == fn and record.get("responseElements") is None
    assert "4111" not in invoke["CloudTrailEvent"]
    arn = sns.create_topic(Name=topic)["TopicArn"]
    sns.publish(TopicArn=arn, Message="password is hunter4")
    publish = next(e for e in _lookup(ct, "ResourceName", arn) if e["EventName"] == "Publish")
    assert json.loads(publish["CloudTrailEvent"])["requestParameters"]["message"] == records.HIDDEN


def test_redaction_rule():
    assert records.redact({"Password": "p", "SecretString": "s", "nextToken": "n", "SessionToken": "t",
                           "ClientRequestToken": "c", "Name": "x", "Environment": {"Variables": {"A": "1"}}}) == {
        "Password": records.HIDDEN, "SecretString": records.HIDDEN, "nextToken": "n", "SessionToken": records.HIDDEN,
        "ClientRequestToken": "c", "Name": "x", "Environment": {"Variables": {"A": records.HIDDEN}}}


def test_lookup_validation_and_read_only(aws_client):
    ct, s3 = aws_client("cloudtrail"), aws_client("s3")
    cases = [
        ({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "A"},
                               {"AttributeKey": "Username", "AttributeValue": "B"}]}, "InvalidLookupAttributesException"),
        ({"MaxResults": 51}, "InvalidMaxResultsException"),
        ({"StartTime": datetime(2026, 2, 1, tzinfo=UTC), "EndTime": datetime(2026, 1, 1, tzinfo=UTC)},
         "InvalidTimeRangeException"),
        ({"NextToken": "not-a-token"}, "InvalidNextTokenException"),
    ]
    for kwargs, code in cases:
        with pytest.raises(botocore.exceptions.ClientError) as err:
            ct.lookup_events(**kwargs)
        assert err.value.response["Error"]["Code"] == code, kwargs
    since = datetime.now(UTC)
    s3.list_buckets()
    reads = _lookup(ct, "ReadOnly", "true", StartTime=since)
    assert "ListBuckets" in [e["EventName"] for e in reads] and {e["ReadOnly"] for e in reads} == {"true"}
    assert all(e["EventName"] != "ListBuckets" for e in _lookup(ct, "ReadOnly", "false", StartTime=since))
    assert ct.lookup_events(EventCategory="insight")["Events"] == []


def test_store_bounds_and_restore(tmp_path):
    store = EventStore()
    store.configure(max_events=3, retention_days=1, enabled=True)
    store.open(tmp_path)
    now = time.time()
    try:
        store.append({"time": now - 2 * 86400, "record": {"eventID": "old"}})  # beyond the retention
        for i in range(5):
            store.append({"time": now, "record": {"eventID": f"e{i}"}})
        assert [e["record"]["eventID"] for e in store.newest_first()] == ["e4", "e3", "e2"]
    finally:
        store.close()
    (tmp_path / "cloudtrail" / "events.jsonl").open("a").write('{"seq": 99, "cut short')  # a kill mid-write
    again = EventStore()
    again.configure(max_events=3, retention_days=1, enabled=True)
    again.open(tmp_path)
    try:
        assert [e["record"]["eventID"] for e in again.newest_first()] == ["e4", "e3", "e2"]
        assert len((tmp_path / "cloudtrail" / "events.jsonl").read_text().splitlines()) == 3  # rewritten, bounded
    finally:
        again.close()


def test_aws_cli_lookup_events(localaws, aws_client):
    assert AWS.exists(), f"the AWS CLI is not installed in this environment ({AWS}); see requirements.txt"
    s3 = aws_client("s3")
    bucket, key = f"ct-{_uid()}", f"cli/{_uid()}.csv"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    s3.delete_object(Bucket=bucket, Key=key)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("AWS_SESSION_TOKEN", None)
    out = subprocess.run([str(AWS), "--endpoint-url", localaws.endpoint_url, "cloudtrail", "lookup-events",
                          "--lookup-attributes", f"AttributeKey=ResourceName,AttributeValue={key}", "--output", "json"],
                         check=True, env=env, capture_output=True, text=True, timeout=60)
    events = json.loads(out.stdout)["Events"]
    assert [e["EventName"] for e in events] == ["DeleteObject", "PutObject"]
    assert json.loads(events[0]["CloudTrailEvent"])["requestParameters"]["key"] == key


@pytest.mark.slow  # restarts a localaws server process (the tier: tests/conftest.py)
def test_events_survive_restart(tmp_path):
    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state))
    key = f"k/{_uid()}"
    try:
        s3 = first.client("s3")
        s3.create_bucket(Bucket="ct-restart")
        s3.put_object(Bucket="ct-restart", Key=key, Body=b"1")
        s3.delete_object(Bucket="ct-restart", Key=key)
        before = _lookup(first.client("cloudtrail"), "ResourceName", key)
    finally:
        assert first.stop() == 0
    second = serve(tmp_path, "--state-dir", str(state))
    try:
        after = _lookup(second.client("cloudtrail"), "ResourceName", key)
        assert [(e["EventId"], e["EventName"]) for e in after] == [(e["EventId"], e["EventName"]) for e in before]
        assert [e["EventName"] for e in after] == ["DeleteObject", "PutObject"]
    finally:
        assert second.stop() == 0
