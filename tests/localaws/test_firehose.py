"""Kinesis Data Firehose through boto3 against the in-process localaws: buffering, object keys,
GZIP, dynamic partitioning with jq, the error prefix, limits, per-record failures, CloudWatch metrics
(docs/localaws.md, "Kinesis Data Firehose"; the AWS pages each rule comes from are cited there)."""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/firehose"
#: The default key: <yyyy/MM/dd/HH/><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid> (s3-object-name).
DEFAULT_KEY = re.compile(r"^(?P<prefix>\d{4}/\d{2}/\d{2}/\d{2}/)(?P<stream>[\w.-]+?)-(?P<version>\d+)-"
                         r"(?P<when>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
                         r"[0-9a-f]{4}-[0-9a-f]{12}(?P<ext>\.gz)?$")


@pytest.fixture
def s3(aws_client):
    return aws_client("s3")


@pytest.fixture
def firehose(aws_client):
    return aws_client("firehose")


def _stream(firehose, s3, name: str, *, size_mb: int = 128, interval: int = 0, **config) -> str:
    bucket = f"fh-{name}"
    s3.create_bucket(Bucket=bucket)
    firehose.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                                    ExtendedS3DestinationConfiguration={
                                        "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}",
                                        "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval},
                                        **config})
    return bucket


def _objects(s3, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in sorted(keys)}


def _wait_objects(s3, bucket: str, count: int, timeout: float = 10) -> dict[str, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        objects = _objects(s3, bucket)
        if len(objects) >= count or time.monotonic() > deadline:
            return objects
        time.sleep(0.05)


def test_default_key_names_and_records_concatenated_as_sent(firehose, s3):
    """Zero buffering: one object per call, named <yyyy/MM/dd/HH/><stream>-1-<time>-<uuid> in UTC,
    holding the records back to back, no delimiter added."""
    bucket = _stream(firehose, s3, "keys")
    before = datetime.now(UTC).replace(microsecond=0)
    answer = firehose.put_record_batch(DeliveryStreamName="keys",
                                       Records=[{"Data": b'{"a":1}'}, {"Data": b"plain"}, {"Data": b"\x00\xff"}])
    assert answer["FailedPutCount"] == 0 and all("RecordId" in r for r in answer["RequestResponses"])
    firehose.put_record(DeliveryStreamName="keys", Record={"Data": b"second call"})
    after = datetime.now(UTC)  # after both calls: each key carries its own call's arrival second
    objects = _objects(s3, bucket)
    assert sorted(objects.values()) == sorted([b'{"a":1}plain\x00\xff', b"second call"])
    for key in objects:
        match = DEFAULT_KEY.match(key)
        assert match, key
        assert (match["stream"], match["version"], match["ext"]) == ("keys", "1", None)
        when = datetime.strptime(match["when"], "%Y-%m-%d-%H-%M-%S").replace(tzinfo=UTC)
        assert before <= when <= after
        assert match["prefix"] == when.strftime("%Y/%m/%d/%H/")


def test_an_object_is_written_when_the_buffer_reaches_its_size(firehose, s3):
    """SizeInMBs 1: three 400 KiB records make one object of the first two (the third would pass
    1 MiB) and the third waits in the buffer (IntervalInSeconds 900)."""
    bucket = _stream(firehose, s3, "by-size", size_mb=1, interval=900)
    records = [bytes([65 + i]) * (400 * 1024) for i in range(3)]
    firehose.put_record_batch(DeliveryStreamName="by-size", Records=[{"Data": r} for r in records])
    objects = _objects(s3, bucket)
    assert list(objects.values()) == [records[0] + records[1]]
    # 1 MiB exactly is full: delivered at once.
    firehose.put_record(DeliveryStreamName="by-size", Record={"Data": b"x" * (1024 * 1024 - len(records[2]))})
    objects = _objects(s3, bucket)
    assert sorted(objects.values()) == sorted([records[0] + records[1], records[2] + b"x" * (1024 * 1024 - 400 * 1024)])


def test_an_object_is_written_when_the_interval_has_passed(firehose, s3):
    bucket = _stream(firehose, s3, "by-interval", size_mb=128, interval=1)
    put_at = time.monotonic()
    firehose.put_record_batch(DeliveryStreamName="by-interval", Records=[{"Data": b"a\n"}, {"Data": b"b\n"}])
    firehose.put_record(DeliveryStreamName="by-interval", Record={"Data": b"c\n"})
    assert _objects(s3, bucket) == {}
    objects = _wait_objects(s3, bucket, 1, timeout=5)
    waited = time.monotonic() - put_at
    assert list(objects.values()) == [b"a\nb\nc\n"]
    assert 0.9 <= waited < 3, waited


def test_gzip_objects_round_trip_with_a_gz_key(firehose, s3):
    bucket = _stream(firehose, s3, "gzip", CompressionFormat="GZIP")
    records = [json.dumps({"n": i}).encode() + b"\n" for i in range(50)]
    firehose.put_record_batch(DeliveryStreamName="gzip", Records=[{"Data": r} for r in records])
    ((key, body),) = _objects(s3, bucket).items()
    assert DEFAULT_KEY.match(key)["ext"] == ".gz"
    assert body[:2] == b"\x1f\x8b"
    assert gzip.decompress(body) == b"".join(records)


def test_custom_prefix_expressions(firehose, s3):
    """!{timestamp:...} as Java DateTimeFormatter (quoted literals too), !{firehose:random-string}
    (11 characters), and no default timestamp appended when the Prefix has a timestamp expression."""
    bucket = _stream(firehose, s3, "prefix",
                     Prefix="logs/!{timestamp:'year='yyyy'/month='MM}/day=!{timestamp:dd}/r=!{firehose:random-string}/",
                     ErrorOutputPrefix="errors/!{firehose:error-output-type}/!{timestamp:yyyy}/")
    firehose.put_record(DeliveryStreamName="prefix", Record={"Data": b"x"})
    ((key, body),) = _objects(s3, bucket).items()
    now = datetime.now(UTC)
    match = re.match(r"^logs/year=(\d{4})/month=(\d{2})/day=(\d{2})/r=([a-z0-9]{11})/prefix-1-[\d-]{19}-[0-9a-f-]{36}$",
                     key)
    assert match, key
    assert {(int(match[1]), int(match[2]), int(match[3]))} & {
        (d.year, d.month, d.day) for d in (now, now - timedelta(seconds=5))}
    assert body == b"x"


def test_prefix_without_slash_gets_the_timestamp_appended_literally(firehose, s3):
    bucket = _stream(firehose, s3, "noslash", Prefix="myapp")
    firehose.put_record(DeliveryStreamName="noslash", Record={"Data": b"x"})
    (key,) = _objects(s3, bucket)
    assert re.match(r"^myapp\d{4}/\d{2}/\d{2}/\d{2}/noslash-1-", key), key


@pytest.mark.parametrize(("config", "message"), [
    ({"Prefix": "a/!{timestamp:yyyy}/"},
     "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"),
    ({"Prefix": "a/!{firehose:error-output-type}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}"},
     "Prefix cannot contain !{firehose:error-output-type}"),
    ({"Prefix": "a/!{timestamp:yyyy}/", "ErrorOutputPrefix": "e/!{timestamp:yyyy}/"},
     "ErrorOutputPrefix must contain !{firehose:error-output-type}"),
    ({"Prefix": "a/!{nope:x}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}"}, "Unknown namespace 'nope'"),
    ({"Prefix": "a/!{partitionKeyFromQuery:k}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}"},
     "dynamic partitioning is not enabled"),
    ({"Prefix": "a/!{timestamp:yyyy", "ErrorOutputPrefix": "e/!{firehose:error-output-type}"},
     "The sequence '!{' can only appear"),
])
def test_prefix_rules_are_refused_with_aws_message(firehose, s3, config, message):
    with pytest.raises(ClientError) as info:
        firehose.create_delivery_stream(DeliveryStreamName="bad-prefix", ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-none", **config})
    error = info.value.response["Error"]
    assert error["Code"] == "InvalidArgumentException"
    assert error["Message"].startswith("Ths supplied prefix(es) do not satisfy the following constraint: ")
    assert message in error["Message"]


def test_buffering_hints_out_of_range_are_validation_errors(firehose):
    with pytest.raises(ClientError) as info:
        firehose.create_delivery_stream(DeliveryStreamName="bad-hints", ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-none",
            "BufferingHints": {"SizeInMBs": 129, "IntervalInSeconds": 901}})
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        "2 validation errors detected: Value '129' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' "
        "failed to satisfy constraint: Member must have value less than or equal to 128; Value '901' at "
        "'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' failed to satisfy constraint: "
        "Member must have value less than or equal to 900")


DYNAMIC = {
    "Prefix": "events/event_date=!{partitionKeyFromQuery:event_date}/",
    "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
    "DynamicPartitioningConfiguration": {"Enabled": True},
    "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "MetadataExtraction", "Parameters": [
        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{event_date: .event_time[0:10]}"},
        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]},
}


def test_dynamic_partitioning_with_jq_and_the_error_prefix(firehose, s3):
    """One object per partition (the jq query's key), records in arrival order; records the query
    cannot partition (not JSON, key null) go to errors/partitioning-failed/ as error records."""
    bucket = _stream(firehose, s3, "dynamic", size_mb=64, interval=1, **DYNAMIC)
    good = [{"event_time": f"2024-01-0{1 + i % 2}T10:00:0{i}Z", "n": i} for i in range(5)]
    bad = [b"not json", json.dumps({"n": 99}).encode()]
    records = [json.dumps(g).encode() + b"\n" for g in good]
    sent_at = time.time()
    answer = firehose.put_record_batch(DeliveryStreamName="dynamic",
                                       Records=[{"Data": r} for r in records[:3] + bad + records[3:]])
    assert answer["FailedPutCount"] == 0  # a partitioning failure is delivered to the error prefix, not refused
    objects = _wait_objects(s3, bucket, 3)
    by_prefix = {k.rsplit("/", 1)[0]: v for k, v in objects.items()}
    assert set(by_prefix) == {"events/event_date=2024-01-01", "events/event_date=2024-01-02",
                              "errors/partitioning-failed"}
    assert by_prefix["events/event_date=2024-01-01"] == records[0] + records[2] + records[4]
    assert by_prefix["events/event_date=2024-01-02"] == records[1] + records[3]
    for key in objects:
        assert re.search(r"/dynamic-1-[\d-]{19}-[0-9a-f-]{36}$", key), key
    lines = by_prefix["errors/partitioning-failed"].decode().splitlines()
    errors = [json.loads(line) for line in lines]
    assert [base64.b64decode(e["rawData"]) for e in errors] == bad
    assert {e["errorCode"] for e in errors} == {"DynamicPartitioning.MetadataExtractionFailed"}
    assert errors[0]["errorMessage"] == "Non JSON record provided"
    assert "event_date" in errors[1]["errorMessage"]
    for e in errors:
        assert e["attemptsMade"] == 1
        assert abs(e["arrivalTimestamp"] / 1000 - sent_at) < 5
        assert e["attemptEndingTimestamp"] >= e["arrivalTimestamp"]


@pytest.mark.parametrize(("change", "code", "message"), [
    ({"ProcessingConfiguration": {"Enabled": True, "Processors": []}}, "InvalidArgumentException",
     "no enabled MetadataExtraction processor"),
    ({"ErrorOutputPrefix": None}, "InvalidArgumentException", "ErrorOutputPrefix cannot be null or empty"),
    ({"BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0}}, "InvalidArgumentException", "zero buffering"),
    ({"ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "MetadataExtraction", "Parameters": [
        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{a: .b"},
        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}},
     "InvalidArgumentException", "is not valid jq"),
])
def test_dynamic_partitioning_config_is_checked(firehose, change, code, message):
    config = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-none",
              "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60}, **DYNAMIC, **change}
    config = {k: v for k, v in config.items() if v is not None}
    with pytest.raises(ClientError) as info:
        firehose.create_delivery_stream(DeliveryStreamName="bad-dynamic", ExtendedS3DestinationConfiguration=config)
    assert info.value.response["Error"]["Code"] == code
    assert message in info.value.response["Error"]["Message"]


def test_unemulated_features_answer_501(firehose):
    with pytest.raises(ClientError) as info:
        firehose.create_delivery_stream(DeliveryStreamName="lambda-proc", ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-none", "ProcessingConfiguration": {
                "Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
                    {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:123456789012:function:f"}]}]}})
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert "Lambda processor is not emulated" in info.value.response["Error"]["Message"]
    for extra, message in (({"CustomTimeZone": "Asia/Tokyo"}, "CustomTimeZone Asia/Tokyo is not emulated"),
                           ({"CompressionFormat": "Snappy"}, "CompressionFormat Snappy is not emulated")):
        with pytest.raises(ClientError) as info:
            firehose.create_delivery_stream(DeliveryStreamName="unemulated", ExtendedS3DestinationConfiguration={
                "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-none", **extra})
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
        assert message in info.value.response["Error"]["Message"]


def test_put_limits(firehose, s3):
    _stream(firehose, s3, "limits")
    with pytest.raises(ClientError) as info:
        firehose.put_record_batch(DeliveryStreamName="limits", Records=[{"Data": b"x"}] * 501)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "at 'records' failed to satisfy constraint: Member must have length less than or equal to 500" in \
        info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        firehose.put_record_batch(DeliveryStreamName="limits", Records=[{"Data": b"x"}, {"Data": b"y" * 1_024_001}])
    assert info.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at "
                   "'records.2.member.data' failed to satisfy constraint: Member must have length less than or equal "
                   "to 1024000"}
    with pytest.raises(ClientError) as info:
        firehose.put_record(DeliveryStreamName="limits", Record={"Data": b"y" * 1_024_001})
    assert "at 'record.data' failed to satisfy constraint" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        firehose.put_record_batch(DeliveryStreamName="limits", Records=[{"Data": b"z" * 1_000_000}] * 5)
    assert info.value.response["Error"] == {"Code": "InvalidArgumentException",
                                            "Message": "Records size exceeds 4 MB limit"}
    # At the limits exactly: accepted.
    answer = firehose.put_record_batch(DeliveryStreamName="limits", Records=[{"Data": b"x"}] * 500)
    assert answer["FailedPutCount"] == 0 and len(answer["RequestResponses"]) == 500
    with pytest.raises(ClientError) as info:
        firehose.put_record(DeliveryStreamName="missing", Record={"Data": b"x"})
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_failed_records_by_fault_injection(firehose, s3, localaws_faults):
    """runs.firehose.fail_rate: PutRecordBatch answers per-record ServiceUnavailableException and
    FailedPutCount; the failed records are not delivered, the others are, in order."""
    bucket = _stream(firehose, s3, "faults")
    injector = localaws_faults({"seed": 7, "runs": {"firehose": {"fail_rate": 0.5, "streams": ["faults"]}}})
    records = [f"r{i:03d}\n".encode() for i in range(40)]
    answer = firehose.put_record_batch(DeliveryStreamName="faults", Records=[{"Data": r} for r in records])
    failed = [i for i, r in enumerate(answer["RequestResponses"]) if "ErrorCode" in r]
    assert answer["FailedPutCount"] == len(failed) and 5 < len(failed) < 35
    for i in failed:
        response = answer["RequestResponses"][i]
        assert response["ErrorCode"] == "ServiceUnavailableException"
        assert response["ErrorMessage"].startswith("Slow down.") and "RecordId" not in response
    delivered = b"".join(_objects(s3, bucket).values())
    assert delivered == b"".join(r for i, r in enumerate(records) if i not in failed)
    assert injector.state()["counters"]["runs"]["firehose:faults"] == {"runs": 40, "failed": len(failed),
                                                                       "timed_out": 0}


def test_cloudwatch_metrics(firehose, s3, aws_client):
    _stream(firehose, s3, "metrics")
    start = datetime.now(UTC) - timedelta(minutes=1)
    firehose.put_record_batch(DeliveryStreamName="metrics", Records=[{"Data": b"abc"}, {"Data": b"de"}])
    firehose.put_record(DeliveryStreamName="metrics", Record={"Data": b"f"})
    cloudwatch = aws_client("cloudwatch")
    end = datetime.now(UTC) + timedelta(minutes=1)
    dims = [{"Name": "DeliveryStreamName", "Value": "metrics"}]

    def stat(metric: str, statistic: str = "Sum") -> float:
        points = cloudwatch.get_metric_statistics(Namespace="AWS/Firehose", MetricName=metric, Dimensions=dims,
                                                  StartTime=start, EndTime=end, Period=300,
                                                  Statistics=[statistic])["Datapoints"]
        return sum(p[statistic] for p in points)

    assert stat("IncomingRecords") == 3
    assert stat("IncomingBytes") == 6
    assert stat("DeliveryToS3.Records") == 3
    assert stat("DeliveryToS3.Success", "Minimum") == 1
    assert 0 <= stat("DeliveryToS3.DataFreshness", "Maximum") < 5
    data = cloudwatch.get_metric_data(MetricDataQueries=[{"Id": "m", "MetricStat": {
        "Metric": {"Namespace": "AWS/Firehose", "MetricName": "IncomingRecords", "Dimensions": dims},
        "Period": 300, "Stat": "Sum"}}], StartTime=start, EndTime=end)
    assert sum(data["MetricDataResults"][0]["Values"]) == 3
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="AWS/Firehose", Dimensions=dims)["Metrics"]}
    assert {"IncomingRecords", "IncomingBytes", "DeliveryToS3.Records", "DeliveryToS3.Success",
            "DeliveryToS3.DataFreshness"} <= names


def test_update_destination_delivers_the_old_buffers_and_keeps_the_rules(firehose, s3):
    bucket = _stream(firehose, s3, "update", size_mb=128, interval=900)
    firehose.put_record(DeliveryStreamName="update", Record={"Data": b"before"})
    description = firehose.describe_delivery_stream(DeliveryStreamName="update")["DeliveryStreamDescription"]
    with pytest.raises(ClientError) as info:
        firehose.update_destination(DeliveryStreamName="update", CurrentDeliveryStreamVersionId="1",
                                    DestinationId=description["Destinations"][0]["DestinationId"],
                                    ExtendedS3DestinationUpdate={"Prefix": "p/!{timestamp:yyyy}/"})
    assert info.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert firehose.describe_delivery_stream(DeliveryStreamName="update")[
        "DeliveryStreamDescription"]["VersionId"] == "1"
    firehose.update_destination(DeliveryStreamName="update", CurrentDeliveryStreamVersionId="1",
                                DestinationId=description["Destinations"][0]["DestinationId"],
                                ExtendedS3DestinationUpdate={"Prefix": "v2/",
                                                             "BufferingHints": {"SizeInMBs": 1,
                                                                                "IntervalInSeconds": 0}})
    firehose.put_record(DeliveryStreamName="update", Record={"Data": b"after"})
    objects = _objects(s3, bucket)
    assert len(objects) == 2
    (old,) = [k for k in objects if objects[k] == b"before"]
    (new,) = [k for k in objects if objects[k] == b"after"]
    assert DEFAULT_KEY.match(old)["version"] == "1"
    assert re.match(r"^v2/\d{4}/\d{2}/\d{2}/\d{2}/update-2-", new), new


@pytest.mark.slow  # kills and restarts localaws server processes (the tier: tests/conftest.py)
def test_acknowledged_records_survive_kill_9_and_are_delivered_exactly_once(tmp_path):
    """Durable writes: a PutRecordBatch is answered once its records are in a snapshot. After a
    SIGKILL with every record still buffered, the restarted localaws delivers stream ``soon``'s by
    its interval and stream ``late``'s at stop; every acknowledged record arrives exactly once."""
    from tests.localaws.test_server import serve

    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state), "--snapshot-interval", "3600")
    sent: dict[str, list[bytes]] = {"soon": [], "late": []}
    try:
        s3, firehose = first.client("s3"), first.client("firehose")
        s3.create_bucket(Bucket="fh-restart")
        for name, interval in (("soon", 4), ("late", 900)):
            firehose.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration={
                "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-restart", "Prefix": f"{name}/",
                "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": interval}})
        for batch in range(4):
            for name in sent:
                records = [f"{name}-{batch}-{i:03d}\n".encode() for i in range(100)]
                answer = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
                assert answer["FailedPutCount"] == 0
                sent[name] += records
        assert "Contents" not in s3.list_objects_v2(Bucket="fh-restart")  # all still buffered
    finally:
        first.proc.kill()  # SIGKILL right after the last acknowledgement: no final snapshot, no delivery
        first.proc.wait(timeout=30)

    def delivered(server, name: str) -> list[bytes]:
        s3 = server.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="fh-restart", Prefix=f"{name}/").get("Contents", [])]
        return [line for k in keys for line in
                s3.get_object(Bucket="fh-restart", Key=k)["Body"].read().splitlines(keepends=True)]

    second = serve(tmp_path, "--state-dir", str(state))
    try:
        assert "800 Firehose records were buffered at the last snapshot" in second.log
        deadline = time.monotonic() + 15
        while not delivered(second, "soon") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(delivered(second, "soon")) == sorted(sent["soon"])
        assert delivered(second, "late") == []
    finally:
        assert second.stop() == 0  # delivers "late" before the final snapshot

    third = serve(tmp_path, "--state-dir", str(state))
    try:
        assert sorted(delivered(third, "late")) == sorted(sent["late"])
        assert sorted(delivered(third, "soon")) == sorted(sent["soon"])
    finally:
        assert third.stop() == 0
