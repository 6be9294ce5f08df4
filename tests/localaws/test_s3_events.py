"""S3 event notifications through boto3: the records AWS documents, filters, validation, and delivery
to SQS, SNS and (asynchronously, with retries) Lambda functions whose handlers really run.

The oracle is AWS's documentation (docs/localaws.md, "S3 event notifications", cites the pages):
the field list of "Event message structure", the filter rules of "Configuring event notifications
using object key name filtering", S3's error messages, and Lambda's "Asynchronous invocation".
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from localaws.runtime import RUNTIME
from localaws.services import s3events
from localaws.services import sns as localaws_sns
from tests.localaws.helpers import lambda_role, zip_bytes

HANDLERS = '''
import json, time, urllib.parse
import boto3

def marker(event, context):
    s3 = boto3.client("s3")
    for record in event["Records"]:
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        s3.put_object(Bucket=record["s3"]["bucket"]["name"] + "-markers", Key="seen/" + key,
                      Body=json.dumps(record).encode())
    return "ok"

def fail(event, context):
    raise RuntimeError("cannot process " + event["Records"][0]["s3"]["object"]["key"])

def slow(event, context):
    time.sleep(3)
    return marker(event, context)
'''

#: The keys of a record, as the "Event message structure" page lists them (PUT and DELETE events).
RECORD_KEYS = {"eventVersion", "eventSource", "awsRegion", "eventTime", "eventName", "userIdentity",
               "requestParameters", "responseElements", "s3"}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def s3_may_send(resource_arn: str, action: str) -> str:
    """A resource policy letting S3 buckets of account 123456789012 named ``s3ev-*`` perform ``action``
    (the "Granting permissions to publish event notification messages to a destination" example)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": action, "Resource": resource_arn,
        "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:*:*:s3ev-*"},
                      "StringEquals": {"aws:SourceAccount": "123456789012"}}}]})


@pytest.fixture
def queue(aws_client):
    """A new SQS queue S3 may send to: ``(url, arn)``."""
    sqs = aws_client("sqs")
    url = sqs.create_queue(QueueName=_name("s3ev"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": s3_may_send(arn, "SQS:SendMessage")})
    return url, arn


def _receive(sqs, url: str, count: int, timeout: float = 10.0) -> list[dict]:
    """Message bodies (JSON) of ``url`` in arrival order, once there are at least ``count`` (fails
    after ``timeout`` s); each is deleted."""
    bodies: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < count and time.monotonic() < deadline:
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in resp.get("Messages", []):
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert len(bodies) >= count, f"expected {count} messages, got {len(bodies)}: {bodies}"
    return bodies


def _records(sqs, url: str, count: int) -> list[dict]:
    """Exactly ``count`` event records from ``url`` (``s3:TestEvent`` messages left out), and then
    no other message within half a second."""
    out: list[dict] = []
    while len(out) < count:
        out.extend(r for body in _receive(sqs, url, 1) if body.get("Event") != "s3:TestEvent"
                   for r in body["Records"])
    assert len(out) == count, out
    time.sleep(0.5)
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages") is None
    return out


def _queue_config(arn: str, events: list[str], **rules: str) -> dict:
    config: dict = {"Id": _name("cfg"), "QueueArn": arn, "Events": events}
    if rules:
        config["Filter"] = {"Key": {"FilterRules": [{"Name": k, "Value": v} for k, v in rules.items()]}}
    return config


def test_put_configuration_sends_a_test_event_and_a_put_record_has_the_documented_fields(aws_client, queue):
    s3, sqs = aws_client("s3"), aws_client("sqs")
    url, arn = queue
    bucket = _name("s3ev-put")
    s3.create_bucket(Bucket=bucket)
    config = _queue_config(arn, ["s3:ObjectCreated:*"])
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [config]})
    assert s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"] == [config]
    [test_event] = _receive(sqs, url, 1)  # before any object is written: the only message
    assert test_event["Service"] == "Amazon S3" and test_event["Event"] == "s3:TestEvent"
    assert test_event["Bucket"] == bucket and ISO_MS.match(test_event["Time"])
    assert {"RequestId", "HostId"} <= set(test_event)

    resp = s3.put_object(Bucket=bucket, Key="raw/day one+two~.csv", Body=b"a,b\n1,2\n")
    [record] = _records(sqs, url, 1)
    assert set(record) == RECORD_KEYS
    assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
    assert record["awsRegion"] == "us-east-1" and record["eventName"] == "ObjectCreated:Put"
    assert ISO_MS.match(record["eventTime"])
    assert record["userIdentity"]["principalId"]
    assert record["requestParameters"] == {"sourceIPAddress": "127.0.0.1"}
    assert record["responseElements"]["x-amz-request-id"] == resp["ResponseMetadata"]["RequestId"]
    assert record["responseElements"]["x-amz-id-2"]
    s3_part = record["s3"]
    assert s3_part["s3SchemaVersion"] == "1.0" and s3_part["configurationId"] == config["Id"]
    assert s3_part["bucket"] == {"name": bucket, "ownerIdentity": {"principalId": "123456789012"},
                                 "arn": f"arn:aws:s3:::{bucket}"}
    obj = s3_part["object"]
    # URL-encoded: space -> "+", "+" -> %2B, "~" -> %7E; "/" kept. No versionId: not versioned.
    assert set(obj) == {"key", "size", "eTag", "sequencer"}
    assert obj["key"] == "raw/day+one%2Btwo%7E.csv"
    assert obj["size"] == 8 and obj["eTag"] == resp["ETag"].strip('"')
    assert re.fullmatch(r"[0-9A-F]{16,}", obj["sequencer"])


def test_multipart_copy_and_versioned_deletes(aws_client, queue):
    """CompleteMultipartUpload, Copy, then on a versioned bucket DeleteMarkerCreated (no version
    id given) and Delete (a version id given), each with the versionId S3 answered."""
    s3, sqs = aws_client("s3"), aws_client("sqs")
    url, arn = queue
    bucket = _name("s3ev-ver")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        _queue_config(arn, ["s3:ObjectCreated:*"]),
        _queue_config(arn, ["s3:ObjectRemoved:*"])]})
    _receive(sqs, url, 1)  # one s3:TestEvent per destination

    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload, PartNumber=1, Body=b"x" * 1024)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big.bin", UploadId=upload,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    copied = s3.copy_object(Bucket=bucket, Key="copy.bin", CopySource={"Bucket": bucket, "Key": "big.bin"})
    put = s3.put_object(Bucket=bucket, Key="plain.bin", Body=b"p")
    marker = s3.delete_object(Bucket=bucket, Key="big.bin")
    removed = s3.delete_object(Bucket=bucket, Key="copy.bin", VersionId=copied["VersionId"])

    # One event per operation: moto's multipart completion also sent an ObjectCreated:Put.
    multipart, copy, plain, delete_marker, delete = _records(sqs, url, 5)
    assert plain["eventName"] == "ObjectCreated:Put" and plain["s3"]["object"]["versionId"] == put["VersionId"]
    assert multipart["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert multipart["s3"]["object"] == {"key": "big.bin", "size": 1024, "eTag": done["ETag"].strip('"'),
                                         "versionId": done["VersionId"],
                                         "sequencer": multipart["s3"]["object"]["sequencer"]}
    assert copy["eventName"] == "ObjectCreated:Copy"
    assert copy["s3"]["object"]["key"] == "copy.bin" and copy["s3"]["object"]["versionId"] == copied["VersionId"]
    assert copy["s3"]["object"]["size"] == 1024
    assert delete_marker["eventName"] == "ObjectRemoved:DeleteMarkerCreated"
    assert marker["DeleteMarker"] is True
    assert set(delete_marker["s3"]["object"]) == {"key", "versionId", "sequencer"}
    assert delete_marker["s3"]["object"]["versionId"] == marker["VersionId"]
    assert delete["eventName"] == "ObjectRemoved:Delete"
    assert delete["s3"]["object"]["versionId"] == removed["VersionId"] == copied["VersionId"]
    # One key's events are ordered by sequencer (compared as hexadecimal).
    assert int(multipart["s3"]["object"]["sequencer"], 16) < int(delete_marker["s3"]["object"]["sequencer"], 16)


def test_unversioned_delete_and_delete_objects(aws_client, queue):
    s3, sqs = aws_client("s3"), aws_client("sqs")
    url, arn = queue
    bucket = _name("s3ev-del")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b.txt", Body=b"b")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        _queue_config(arn, ["s3:ObjectRemoved:Delete"])]})
    s3.delete_object(Bucket=bucket, Key="a.txt")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b.txt"}]})
    records = _records(sqs, url, 2)
    assert [r["eventName"] for r in records] == ["ObjectRemoved:Delete"] * 2
    assert [r["s3"]["object"]["key"] for r in records] == ["a.txt", "b.txt"]
    assert all(set(r["s3"]["object"]) == {"key", "sequencer"} for r in records)


def test_tagging_events_come_from_the_tagging_calls_only(aws_client, queue):
    """S3 sends ObjectTagging:Put for PutObjectTagging, not for a PutObject carrying tags (moto did)."""
    s3, sqs = aws_client("s3"), aws_client("sqs")
    url, arn = queue
    bucket = _name("s3ev-tags")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        _queue_config(arn, ["s3:ObjectTagging:*"])]})
    s3.put_object(Bucket=bucket, Key="t.csv", Body=b"1", Tagging="layer=bronze")
    s3.put_object_tagging(Bucket=bucket, Key="t.csv", Tagging={"TagSet": [{"Key": "layer", "Value": "silver"}]})
    s3.delete_object_tagging(Bucket=bucket, Key="t.csv")
    records = _records(sqs, url, 2)
    assert [r["eventName"] for r in records] == ["ObjectTagging:Put", "ObjectTagging:Delete"]
    assert {r["eventVersion"] for r in records} == {"2.3"}


def test_prefix_and_suffix_filters_apply_to_the_url_encoded_key(aws_client, queue):
    s3, sqs = aws_client("s3"), aws_client("sqs")
    url, arn = queue
    bucket = _name("s3ev-filter")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        _queue_config(arn, ["s3:ObjectCreated:Put"], prefix="raw/", suffix=".csv"),
        # Special characters in filter values are URL-encoded, as the key they are matched against.
        _queue_config(arn, ["s3:ObjectCreated:Put"], prefix="my+dir/")]})
    _receive(sqs, url, 1)
    for key in ("raw/a.csv", "raw/a.json", "other/a.csv", "raw/sub/b.csv", "RAW/c.csv", "my dir/x.txt",
                "my+dir/y.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    keys = sorted(r["s3"]["object"]["key"] for r in _records(sqs, url, 3))
    assert keys == ["my+dir/x.txt", "raw/a.csv", "raw/sub/b.csv"]


def test_filter_rule_names_in_any_case_come_back_capitalised(aws_client, queue):
    """S3 takes ``Prefix`` as well as ``prefix`` and answers Get with ``Prefix`` / ``Suffix``
    (https://github.com/aws/aws-sdk/issues/389); another name is refused."""
    s3 = aws_client("s3")
    _, arn = queue
    bucket = _name("s3ev-rulecase")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        _queue_config(arn, ["s3:ObjectCreated:*"], Prefix="raw/", suffix=".csv")]})
    [config] = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "Prefix", "Value": "raw/"},
                                                      {"Name": "Suffix", "Value": ".csv"}]
    with pytest.raises(ClientError) as info:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
            _queue_config(arn, ["s3:ObjectCreated:*"], regex="raw/.*")]})
    error = info.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("InvalidArgument", "filter rule name must be either prefix or suffix")
    assert error["ArgumentName"] == "FilterRule.Name" and error["ArgumentValue"] == "regex"


@pytest.mark.parametrize(("first", "second", "message"), [
    ({}, {}, "Configurations overlap. Configurations on the same bucket cannot share a common event type."),
    ({"prefix": "raw/"}, {"prefix": "raw/flights/"}, "Configuration is ambiguously defined."),
    ({"suffix": ".csv"}, {"prefix": "raw/", "suffix": "s.csv"}, "Configuration is ambiguously defined."),
])
def test_overlapping_configurations_are_refused(aws_client, queue, first, second, message):
    s3 = aws_client("s3")
    _, arn = queue
    bucket = _name("s3ev-overlap")
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as info:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
            _queue_config(arn, ["s3:ObjectCreated:*"], **first),
            _queue_config(arn, ["s3:ObjectCreated:Put"], **second)]})
    error = info.value.response["Error"]
    assert error["Code"] == "InvalidArgument" and error["Message"].startswith(message)
    assert "s3:ObjectCreated:*, s3:ObjectCreated:Put" in error["ArgumentValue"]
    assert bucket in error["ArgumentValue"]
    # Nothing was stored.
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)


def test_configurations_that_do_not_overlap_are_accepted(aws_client, queue):
    s3 = aws_client("s3")
    _, arn = queue
    bucket = _name("s3ev-nooverlap")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        _queue_config(arn, ["s3:ObjectCreated:*"], prefix="images/", suffix=".jpg"),
        _queue_config(arn, ["s3:ObjectCreated:*"], prefix="images/", suffix=".png"),
        _queue_config(arn, ["s3:ObjectCreated:*"], prefix="logs/"),
        _queue_config(arn, ["s3:ObjectRemoved:*"])]})
    assert len(s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]) == 4


def test_a_destination_that_does_not_exist_or_may_not_be_invoked_is_refused(aws_client):
    s3, lam = aws_client("s3"), aws_client("lambda")
    bucket = _name("s3ev-dest")
    s3.create_bucket(Bucket=bucket)
    missing = "arn:aws:sqs:us-east-1:123456789012:no-such-queue"
    with pytest.raises(ClientError) as info:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": missing, "Events": ["s3:ObjectCreated:*"]}]})
    error = info.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("InvalidArgument",
                                                 "Unable to validate the following destination configurations")
    assert error["ArgumentName"] == missing and "does not exist" in error["ArgumentValue"]

    # A queue without a policy (or one for other buckets): S3 may not send to it.
    sqs = aws_client("sqs")
    url = sqs.create_queue(QueueName=_name("s3ev-nopolicy"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_config = {"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]}
    for policy in (None, s3_may_send(arn, "SQS:SendMessage").replace("s3ev-*", "other-*")):
        if policy:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        with pytest.raises(ClientError) as info:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=queue_config)
        assert info.value.response["Error"]["ArgumentName"] == arn
        assert "Permissions on the destination queue do not allow S3" in info.value.response["Error"]["ArgumentValue"]

    name = _name("s3ev-noperm")
    fn_arn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=lambda_role(aws_client("iam")),
                                 Handler="app.marker", Code={"ZipFile": zip_bytes({"app.py": HANDLERS})})["FunctionArn"]
    config = {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn_arn, "Events": ["s3:ObjectCreated:*"]}]}
    with pytest.raises(ClientError) as info:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    error = info.value.response["Error"]
    assert error["Message"] == "Unable to validate the following destination configurations"
    assert error["ArgumentName"] == fn_arn and "Not authorized to invoke function" in error["ArgumentValue"]
    # A permission for another bucket does not do either.
    lam.add_permission(FunctionName=name, StatementId="other", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::another-bucket")
    with pytest.raises(ClientError):
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{bucket}")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


def test_sns_topic_delivery_reaches_a_subscribed_queue_as_a_notification(aws_client, queue):
    s3, sqs, sns = aws_client("s3"), aws_client("sqs"), aws_client("sns")
    url, queue_arn = queue
    topic = sns.create_topic(Name=_name("s3ev-topic"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    bucket = _name("s3ev-sns")
    s3.create_bucket(Bucket=bucket)
    config = {"TopicConfigurations": [{"Id": "to-topic", "TopicArn": topic, "Events": ["s3:ObjectCreated:Put"]}]}
    # SNS's default topic policy lets the owner account's principals publish (condition
    # AWS:SourceOwner), not S3: refused until the topic's policy allows s3.amazonaws.com.
    with pytest.raises(ClientError) as info:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    assert info.value.response["Error"]["ArgumentName"] == topic
    assert "Permissions on the destination topic do not allow S3" in info.value.response["Error"]["ArgumentValue"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=s3_may_send(topic, "SNS:Publish"))
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    s3.put_object(Bucket=bucket, Key="report.json", Body=b"{}")
    test_envelope, envelope = _receive(sqs, url, 2)[:2]
    for e in (test_envelope, envelope):
        assert e["Type"] == "Notification" and e["TopicArn"] == topic
        assert e["Subject"] == "Amazon S3 Notification"
    assert json.loads(test_envelope["Message"])["Event"] == "s3:TestEvent"
    [record] = json.loads(envelope["Message"])["Records"]
    assert record["eventName"] == "ObjectCreated:Put" and record["s3"]["configurationId"] == "to-topic"
    # Published through localaws's SNS: recorded for GET /_localaws/sns/messages.
    recorded = localaws_sns.published_messages(topic)
    assert [json.loads(m["message"]).get("Event") for m in recorded] == ["s3:TestEvent", None]
    assert recorded[1]["subject"] == "Amazon S3 Notification"


# -- Lambda destinations

@pytest.fixture
def s3_lambda(aws_client):
    """``make(handler, bucket)``: a function running ``handler`` that S3 may invoke for ``bucket``
    (AddPermission), and buckets ``bucket`` and ``bucket-markers``; returns the function's ARN."""
    lam, s3 = aws_client("lambda"), aws_client("s3")
    role = lambda_role(aws_client("iam"))

    def make(handler: str, bucket: str, **kwargs) -> str:
        # Timeout 30 s: AWS's default of 3 s is short for a cold start importing boto3 on a busy
        # 2-core machine, and a timed-out attempt would be retried only after 60 s.
        kwargs.setdefault("Timeout", 30)
        name = _name(f"s3ev-{handler}")
        arn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=f"app.{handler}",
                                  Code={"ZipFile": zip_bytes({"app.py": HANDLERS})}, **kwargs)["FunctionArn"]
        lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{bucket}",
                           SourceAccount="123456789012")
        s3.create_bucket(Bucket=bucket)
        s3.create_bucket(Bucket=f"{bucket}-markers")
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"Id": "run", "LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        return arn

    return make


def _wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _markers(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=f"{bucket}-markers").get("Contents", []))


def _log_lines(logs, function_arn: str) -> list[str]:
    group = f"/aws/lambda/{function_arn.split(':')[6]}"
    try:
        return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def test_lambda_destination_runs_the_handler_once_per_event(aws_client, s3_lambda):
    s3 = aws_client("s3")
    bucket = _name("s3ev-fn")
    s3_lambda("marker", bucket)
    s3.put_object(Bucket=bucket, Key="in/a b.csv", Body=b"1")
    s3.put_object(Bucket=bucket, Key="in/b.csv", Body=b"22")
    markers = _wait_for(lambda: len(_markers(s3, bucket)) == 2 and _markers(s3, bucket), what="two markers")
    assert markers == ["seen/in/a b.csv", "seen/in/b.csv"]
    record = json.loads(s3.get_object(Bucket=f"{bucket}-markers", Key="seen/in/b.csv")["Body"].read())
    assert record["eventName"] == "ObjectCreated:Put" and record["s3"]["object"]["size"] == 2
    assert record["s3"]["configurationId"] == "run"


def test_a_failing_lambda_is_run_three_times_with_one_request_id(aws_client, s3_lambda, monkeypatch):
    """AWS retries an asynchronous invocation's function error twice; localaws waits the delays of
    RUNTIME.lambda_retry_delays (AWS: 60 s, then 120 s) - shortened here."""
    monkeypatch.setattr(RUNTIME, "lambda_retry_delays", (0.3, 0.3))
    s3, logs = aws_client("s3"), aws_client("logs")
    bucket = _name("s3ev-fail")
    arn = s3_lambda("fail", bucket)
    s3.put_object(Bucket=bucket, Key="bad.csv", Body=b"x")
    starts = _wait_for(lambda: [ln for ln in _log_lines(logs, arn) if ln.startswith("START")]
                       if sum(ln.startswith("REPORT") for ln in _log_lines(logs, arn)) >= 3 else None,
                       what="three attempts")
    time.sleep(1.0)  # a 4th attempt would have started by now
    lines = _log_lines(logs, arn)
    starts = [ln for ln in lines if ln.startswith("START")]
    assert len(starts) == 3, lines
    assert len({ln.split()[2] for ln in starts}) == 1  # the same request id on every attempt
    assert sum("RuntimeError: cannot process bad.csv" in ln for ln in lines) == 3


def test_maximum_retry_attempts_zero_runs_once(aws_client, s3_lambda, monkeypatch):
    monkeypatch.setattr(RUNTIME, "lambda_retry_delays", (0.3, 0.3))
    s3, logs, lam = aws_client("s3"), aws_client("logs"), aws_client("lambda")
    bucket = _name("s3ev-noretry")
    arn = s3_lambda("fail", bucket)
    lam.put_function_event_invoke_config(FunctionName=arn, MaximumRetryAttempts=1)
    lam.put_function_event_invoke_config(FunctionName=arn, MaximumRetryAttempts=0)  # replaces the first
    assert lam.get_function_event_invoke_config(FunctionName=arn)["MaximumRetryAttempts"] == 0
    s3.put_object(Bucket=bucket, Key="bad.csv", Body=b"x")
    _wait_for(lambda: any(ln.startswith("REPORT") for ln in _log_lines(logs, arn)), what="one attempt")
    time.sleep(1.0)
    assert sum(ln.startswith("START") for ln in _log_lines(logs, arn)) == 1


def test_an_event_older_than_maximum_event_age_is_not_retried(aws_client, s3_lambda, monkeypatch):
    """MaximumEventAgeInSeconds 60 with a first retry due after 61 s: the event would be too old at
    its retry, so Lambda discards it after the first attempt."""
    monkeypatch.setattr(RUNTIME, "lambda_retry_delays", (61.0, 61.0))
    s3, logs, lam = aws_client("s3"), aws_client("logs"), aws_client("lambda")
    bucket = _name("s3ev-old")
    arn = s3_lambda("fail", bucket)
    lam.put_function_event_invoke_config(FunctionName=arn, MaximumEventAgeInSeconds=60)
    s3.put_object(Bucket=bucket, Key="bad.csv", Body=b"x")
    _wait_for(lambda: any(ln.startswith("REPORT") for ln in _log_lines(logs, arn)), what="one attempt")
    # Nothing is left waiting for a retry: the delivery is finished with.
    _wait_for(lambda: not [d for d in s3events.pending() if d["bucket"] == bucket], what="the delivery to end")
    assert sum(ln.startswith("START") for ln in _log_lines(logs, arn)) == 1


def test_the_put_returns_before_a_slow_lambda_finishes(aws_client, s3_lambda):
    s3 = aws_client("s3")
    bucket = _name("s3ev-slow")
    s3_lambda("slow", bucket)
    started = time.monotonic()
    s3.put_object(Bucket=bucket, Key="late.csv", Body=b"1")
    put_seconds = time.monotonic() - started
    assert put_seconds < 1.0, put_seconds  # the handler sleeps 3 s
    assert _markers(s3, bucket) == []
    _wait_for(lambda: _markers(s3, bucket) == ["seen/late.csv"], what="the slow handler's marker")
    assert time.monotonic() - started >= 3.0


@pytest.mark.slow  # restarts localaws server processes (README: test tiers)
def test_a_delivery_pending_at_a_kill_is_sent_after_the_restart(tmp_path):
    """The delivery is in the snapshot that made the PUT durable; SIGKILL while the (slow) handler runs,
    and the restarted server invokes the function again: at least once, as AWS delivers."""
    from tests.localaws.test_server import serve

    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state), "--snapshot-interval", "3600")
    bucket = _name("s3ev-restart")
    try:
        s3, lam = first.client("s3"), first.client("lambda")
        role = lambda_role(first.client("iam"))
        arn = lam.create_function(FunctionName="s3ev-restart", Runtime="python3.12", Role=role, Handler="app.slow",
                                  Timeout=30, Code={"ZipFile": zip_bytes({"app.py": HANDLERS})})["FunctionArn"]
        lam.add_permission(FunctionName="s3ev-restart", StatementId="s3", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{bucket}")
        s3.create_bucket(Bucket=bucket)
        s3.create_bucket(Bucket=f"{bucket}-markers")
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        s3.put_object(Bucket=bucket, Key="day.csv", Body=b"1")
    finally:
        first.proc.kill()  # the handler sleeps 3 s: it has not written its marker
        first.proc.wait(timeout=30)

    second = serve(tmp_path, "--state-dir", str(state))
    try:
        s3 = second.client("s3")
        _wait_for(lambda: _markers(s3, bucket) == ["seen/day.csv"], what="the re-sent delivery's marker")
        assert "1 S3 event notification(s) were not delivered before the last stop" in second.log
    finally:
        assert second.stop() == 0


def test_reserved_concurrency_makes_asynchronous_events_wait(aws_client, s3_lambda):
    """ReservedConcurrentExecutions 1: the second event waits in the queue until the first handler
    (3 s) is done, as AWS queues throttled asynchronous events; both run, one after the other."""
    s3, logs, lam = aws_client("s3"), aws_client("logs"), aws_client("lambda")
    bucket = _name("s3ev-conc")
    arn = s3_lambda("slow", bucket)
    lam.put_function_concurrency(FunctionName=arn, ReservedConcurrentExecutions=1)
    started = time.monotonic()
    s3.put_object(Bucket=bucket, Key="one.csv", Body=b"1")
    s3.put_object(Bucket=bucket, Key="two.csv", Body=b"2")
    assert time.monotonic() - started < 2.0
    _wait_for(lambda: len(_markers(s3, bucket)) == 2, what="both markers")
    assert time.monotonic() - started >= 6.0  # 3 s each, one at a time
    group = f"/aws/lambda/{arn.split(':')[6]}"
    ends = sorted(e["timestamp"] for e in logs.filter_log_events(logGroupName=group)["events"]
                  if e["message"].startswith("REPORT"))
    assert len(ends) == 2 and ends[1] - ends[0] >= 2500, ends
