"""The delivery registry: provisioned on localaws, fed by real S3 events, read back with lake.registry.

One provisioned lake per module (fresh bucket, table and function names): provision's ``roles``,
``buckets`` and ``registry`` steps, with a Firehose stream's rule added the way a stream's layout
gives it (:func:`lake.layout.firehose_delivery_rule`). Items are checked against what S3 says
(``head_object``), never against the handler's own numbers.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, datetime

import pytest

from lake import contracts, registry, source
from lake.deploy import provision
from lake.layout import firehose_delivery_rule
from lake.settings import Settings
from tests.helpers import BLIZZARD

DAYS = (BLIZZARD, "2013-02-09")  # consecutive: one replay
STREAM_PREFIX = "flight_events/dt=!{partitionKeyFromQuery:dt}/hour=!{partitionKeyFromQuery:hour}/"
JQ = "{dt: .event_time[0:10], hour: .event_time[11:13]}"


def _wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _items(ddb, table: str) -> list[dict]:
    items = []
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    return [registry.delivery(i) for i in items]


def _log_lines(logs, function: str) -> list[dict]:
    try:
        events = [e["message"] for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=f"/aws/lambda/{function}") for e in page["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [json.loads(m) for m in events if m.lstrip().startswith('{"')]


@pytest.fixture(scope="module")
def lake(localaws):
    """A provisioned registry: ``{"s", "aws", "ddb", "s3", "logs", "rows", "rows_again"}``."""
    tag = uuid.uuid4().hex[:8]
    s = Settings(bronze_bucket=f"reg-bronze-{tag}", silver_bucket=f"reg-silver-{tag}", gold_bucket=f"reg-gold-{tag}",
                 artifacts_bucket=f"reg-artifacts-{tag}", registry_table=f"deliveries_{tag}",
                 registry_function=f"registry-{tag}")
    aws = provision.Clients(s.region, localaws.endpoint_url)
    stream_rule = firehose_delivery_rule("flight_events", s.bronze_bucket, STREAM_PREFIX, dynamic_partitioning=True)
    daily_rules = provision.registry_rules
    with pytest.MonkeyPatch.context() as mp:
        # The rule a flight_events stream contract gives (Layout.delivery_rules), added here whether or
        # not include/datasets holds one.
        mp.setattr(provision, "registry_rules", lambda st: [*[r for r in daily_rules(st) if r != stream_rule],
                                                            stream_rule])
        s3 = aws("s3")
        provision.run_step("roles", s, aws)
        provision.run_step("buckets", s, aws)
        # Someone else's notification on bronze, which the registry's must not replace.
        sqs = aws("sqs")
        url = sqs.create_queue(QueueName=f"reg-other-{tag}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Statement": [{
            "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": queue_arn}]})})
        s3.put_bucket_notification_configuration(Bucket=s.bronze_bucket, NotificationConfiguration={
            "QueueConfigurations": [{"Id": "audit", "QueueArn": queue_arn, "Events": ["s3:ObjectRemoved:*"]}]})
        rows = provision.run_step("registry", s, aws)
        rows_again = provision.run_step("registry", s, aws)
        yield {"s": s, "aws": aws, "ddb": aws("dynamodb"), "s3": s3, "logs": aws("logs"), "rows": rows,
               "rows_again": rows_again, "queue_arn": queue_arn}


@pytest.fixture(scope="module")
def delivered(lake):
    """The two real days replayed into bronze (zip + manifest each), registered: their keys."""
    s, s3 = lake["s"], lake["s3"]
    flights = contracts.load("flights")
    source.replay(flights, date.fromisoformat(DAYS[0]), date.fromisoformat(DAYS[-1]), bucket=s.bronze_bucket, s3=s3)
    keys = [k for day in DAYS for k in (flights.source_key(day), flights.manifest_key(day))]
    _wait_for(lambda: len(_items(lake["ddb"], s.registry_table)) >= len(keys), what="the days' items")
    return keys


def test_provisioning_creates_the_table_as_documented_and_is_idempotent(lake):
    s, ddb = lake["s"], lake["ddb"]
    table = ddb.describe_table(TableName=s.registry_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "version_id", "KeyType": "RANGE"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]} \
        == {"by_partition": ["dataset", "partition"], "by_event_time": ["dataset", "event_time"]}
    pitr = ddb.describe_continuous_backups(TableName=s.registry_table)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert ddb.describe_time_to_live(TableName=s.registry_table)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    first = {r["resource"]: r["action"] for r in lake["rows"]}
    assert first[f"s3://{s.bronze_bucket} notifications"] == "created"  # ours added next to "audit"
    assert first[f"dynamodb:{s.registry_table}"] == "created"
    assert {r["action"] for r in lake["rows_again"]} == {"unchanged"}, lake["rows_again"]
    config = lake["s3"].get_bucket_notification_configuration(Bucket=s.bronze_bucket)
    # The other configuration is kept; one registry configuration per dataset prefix of bronze.
    assert [q["Id"] for q in config["QueueConfigurations"]] == ["audit"]
    assert sorted((c["Id"], c["Filter"]["Key"]["FilterRules"][0]["Value"])
                  for c in config["LambdaFunctionConfigurations"]) == [
        (f"{s.registry_function}-flight_events", "flight_events/"), (f"{s.registry_function}-flights", "flights/"),
        (f"{s.registry_function}-sales", "sales/")]
    assert {tuple(c["Events"]) for c in config["LambdaFunctionConfigurations"]} == {("s3:ObjectCreated:*",)}


def test_each_delivered_object_version_is_one_item_equal_to_what_s3_says(lake, delivered):
    s, s3 = lake["s"], lake["s3"]
    items = {(d["key"], d["version_id"]): d for d in _items(lake["ddb"], s.registry_table) if d["key"] in delivered}
    assert len(items) == len(delivered)
    for key in delivered:
        head = s3.head_object(Bucket=s.bronze_bucket, Key=key)
        d = items[(key, head["VersionId"])]
        assert d["uri"] == f"s3://{s.bronze_bucket}/{key}" and d["bucket"] == s.bronze_bucket
        assert d["size"] == head["ContentLength"]
        assert d["etag"] == head["ETag"].strip('"')
        assert d["dataset"] == "flights"
        assert d["partition"] == f"dt={key.split('ingest_date=')[1][:10]}"
        assert d["event_name"] == "ObjectCreated:Put"
        # The S3 event's time: after the object was written, within the test's run.
        assert abs((d["event_time"] - head["LastModified"]).total_seconds()) < 5
        assert d["ttl"] == int(d["event_time"].timestamp()) + s.registry_ttl_days * 86400


def test_a_redelivered_event_writes_nothing_new_and_is_logged_as_a_duplicate(lake, delivered):
    s, s3, ddb = lake["s"], lake["s3"], lake["ddb"]
    key = delivered[0]
    head = s3.head_object(Bucket=s.bronze_bucket, Key=key)
    before = _items(ddb, s.registry_table)
    (original,) = [d for d in before if d["key"] == key and d["version_id"] == head["VersionId"]]
    # The event S3 would deliver again (same version, same time), sent as S3 sends it: asynchronously.
    record = {"eventTime": original["event_time"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
              "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": s.bronze_bucket},
                     "object": {"key": key, "size": head["ContentLength"], "eTag": head["ETag"].strip('"'),
                                "versionId": head["VersionId"], "sequencer": original["sequencer"]}}}
    answer = lake["aws"]("lambda").invoke(FunctionName=s.registry_function, Payload=json.dumps({"Records": [record]}))
    assert json.loads(answer["Payload"].read()) == {"records": 1, "registered": 0, "duplicates": 1, "unmatched": 0}
    assert sorted(map(str, _items(ddb, s.registry_table))) == sorted(map(str, before))
    lines = _wait_for(lambda: [ln for ln in _log_lines(lake["logs"], s.registry_function)
                               if ln["registry"] == "duplicate" and ln["file"].endswith(key)], what="the duplicate line")
    assert lines[0]["bytes"] == head["ContentLength"] and lines[0]["version_id"] == head["VersionId"]


def test_a_new_version_of_a_key_is_a_new_delivery(lake, delivered):
    s, s3, ddb = lake["s"], lake["s3"], lake["ddb"]
    key = delivered[1]  # the first day's manifest, sent again by the source
    body = s3.get_object(Bucket=s.bronze_bucket, Key=key)["Body"].read()
    new = s3.put_object(Bucket=s.bronze_bucket, Key=key, Body=body)["VersionId"]
    versions = {v["VersionId"] for v in s3.list_object_versions(Bucket=s.bronze_bucket, Prefix=key)["Versions"]}
    assert len(versions) == 2
    got = _wait_for(lambda: {d["version_id"] for d in _items(ddb, s.registry_table) if d["key"] == key} == versions
                    and versions, what="both versions' items")
    assert new in got


def test_a_key_with_spaces_and_unicode_is_decoded_and_registered_without_a_dataset(lake):
    s, s3, ddb = lake["s"], lake["s3"], lake["ddb"]
    key = "flights/ingest_date=2013-02-08/notes for é+ü 100%.txt"
    put = s3.put_object(Bucket=s.bronze_bucket, Key=key, Body="ça va".encode())
    (d,) = _wait_for(lambda: [d for d in _items(ddb, s.registry_table) if d["key"] == key], what="the odd key's item")
    head = s3.head_object(Bucket=s.bronze_bucket, Key=key)
    assert d["uri"] == f"s3://{s.bronze_bucket}/{key}"
    assert (d["version_id"], d["size"], d["etag"]) == (put["VersionId"], head["ContentLength"], head["ETag"].strip('"'))
    assert d["dataset"] is None and d["partition"] is None  # no rule names it: kept, outside the indexes
    line = _wait_for(lambda: [ln for ln in _log_lines(lake["logs"], s.registry_function) if ln["file"] == d["uri"]],
                     what="its log line")[0]
    assert line["unmatched"] is True and line["bytes"] == len("ça va".encode())


def test_firehose_objects_are_registered_in_their_event_hour(lake):
    s, s3, ddb, aws = lake["s"], lake["s3"], lake["ddb"], lake["aws"]
    name = f"{s.registry_function}-events"
    iam = aws("iam")
    role = iam.create_role(RoleName=f"{name}-fh", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws("firehose").create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="DirectPut", ExtendedS3DestinationConfiguration={
            "RoleARN": role, "BucketARN": f"arn:aws:s3:::{s.bronze_bucket}", "Prefix": STREAM_PREFIX,
            "ErrorOutputPrefix": "flight_events_errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
            "DynamicPartitioningConfiguration": {"Enabled": True},
            "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": JQ},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}})
    events = [{"event_id": str(i), "event_time": f"2013-06-01T{h:02d}:{m:02d}:00Z"}
              for i, (h, m) in enumerate([(9, 5), (9, 40), (10, 1)])]
    aws("firehose").put_record_batch(DeliveryStreamName=name,
                                     Records=[{"Data": json.dumps(e).encode() + b"\n"} for e in events])
    hours = _wait_for(lambda: registry.partitions("flight_events", client=ddb, settings=s)
                      if len(registry.partitions("flight_events", client=ddb, settings=s)) == 2 else None,
                      what="two hours of Firehose objects")
    assert hours == {"dt=2013-06-01/hour=09": 1, "dt=2013-06-01/hour=10": 1}
    (obj,) = registry.deliveries("flight_events", "dt=2013-06-01/hour=09", client=ddb, settings=s)
    head = s3.head_object(Bucket=s.bronze_bucket, Key=obj["key"])
    assert obj["key"].startswith("flight_events/dt=2013-06-01/hour=09/")
    assert (obj["size"], obj["etag"], obj["version_id"]) == (head["ContentLength"], head["ETag"].strip('"'),
                                                             head["VersionId"])
    body = s3.get_object(Bucket=s.bronze_bucket, Key=obj["key"])["Body"].read()
    assert [json.loads(x)["event_id"] for x in body.splitlines()] == ["0", "1"]
    assert registry.latest_partition("flight_events", client=ddb, settings=s) == "dt=2013-06-01/hour=10"


def test_the_partition_index_and_the_watermark(lake, delivered):
    s, s3, ddb = lake["s"], lake["s3"], lake["ddb"]
    flights = contracts.load("flights")
    for day in DAYS:
        got = registry.deliveries("flights", f"dt={day}", client=ddb, settings=s)
        current = {(k, s3.head_object(Bucket=s.bronze_bucket, Key=k)["VersionId"])
                   for k in (flights.source_key(day), flights.manifest_key(day))}
        assert current <= {(d["key"], d["version_id"]) for d in got}
        assert {d["partition"] for d in got} == {f"dt={day}"}
        assert [d["event_time"] for d in got] == sorted(d["event_time"] for d in got)
    assert registry.deliveries("flights", "dt=1999-01-01", client=ddb, settings=s) == []
    every = [d for d in _items(ddb, s.registry_table) if d["dataset"] == "flights"]
    assert registry.watermark("flights", client=ddb, settings=s) == max(d["event_time"] for d in every)
    assert isinstance(registry.watermark("flights", client=ddb, settings=s), datetime)
    assert registry.watermark("no_such_dataset", client=ddb, settings=s) is None
    assert registry.latest_partition("flights", client=ddb, settings=s) == f"dt={max(DAYS)}"


def test_every_delivery_is_one_json_line_in_the_log_group(lake, delivered):
    s = lake["s"]
    lines = _wait_for(lambda: [ln for ln in _log_lines(lake["logs"], s.registry_function)
                               if ln["registry"] == "registered" and ln.get("dataset") == "flights"]
                      if len([ln for ln in _log_lines(lake["logs"], s.registry_function)
                              if ln["registry"] == "registered" and ln.get("dataset") == "flights"]) >= 4 else None,
                      what="the days' log lines")
    by_file = {ln["file"]: ln for ln in lines}
    for key in delivered:
        head = lake["s3"].head_object(Bucket=s.bronze_bucket, Key=key)
        line = by_file[f"s3://{s.bronze_bucket}/{key}"]
        assert line["bytes"] == head["ContentLength"]
        assert set(line) >= {"registry", "file", "bytes", "event_time", "dataset", "partition", "version_id"}
        assert datetime.fromisoformat(line["event_time"]).tzinfo is not None


# --- the rules and the handler's refusals, without AWS ------------------------------------------


@pytest.fixture
def handler_env(monkeypatch):
    from tests.helpers import REPO, import_path

    mod = import_path("registry_handler", REPO / "include" / "lambdas" / "registry" / "handler.py")
    rule = firehose_delivery_rule("events", "b", "raw/", dynamic_partitioning=False)
    monkeypatch.setenv("LAKE_REGISTRY_RULES", json.dumps([rule]))
    monkeypatch.setenv("LAKE_REGISTRY_TTL_DAYS", "10")
    monkeypatch.setenv("LAKE_REGISTRY_TABLE", "t")
    return mod


def test_rules_come_from_the_contract_templates_and_firehose_prefixes(handler_env):
    import re

    from lake.layout import day_key_pattern, for_dataset

    lay = for_dataset(Settings(), "flights")
    zip_rule, manifest_rule = lay.delivery_rules()
    assert re.fullmatch(zip_rule["pattern"], lay.bronze_key("2013-01-05"))
    assert re.fullmatch(manifest_rule["pattern"], lay.manifest_key("2013-01-05"))
    assert not re.fullmatch(zip_rule["pattern"], lay.manifest_key("2013-01-05"))
    # The two placeholders must name the same day.
    assert not re.fullmatch(zip_rule["pattern"], "flights/ingest_date=2013-01-05/flights_20130106.csv.zip")
    with pytest.raises(ValueError, match=r"unknown placeholder \{day\}"):
        day_key_pattern("x/{day}.zip")
    # Without a timestamp expression or dynamic partitioning Firehose appends yyyy/MM/dd/HH/.
    assert handler_env.classify("b", "raw/2026/12/01/22/s-1-2026-12-01-22-05-00-0a1b") == ("events", "2026/12/01/22")
    assert handler_env.classify("b", "raw/elsewhere.txt") is None
    assert handler_env.classify("other-bucket", "raw/2026/12/01/22/s-1") is None


def test_a_malformed_record_or_rule_list_is_a_clear_error(handler_env, monkeypatch):
    record = {"eventTime": "2026-12-01T18:40:36.123Z",
              "s3": {"bucket": {"name": "b"}, "object": {"key": "raw/a+b%C3%A9", "eTag": "e"}}}
    with pytest.raises(ValueError, match=r"record 3 of the event has no s3\.object\.size"):
        handler_env.item(record, 3)
    with pytest.raises(TypeError, match="no Records list"):
        handler_env.handler({"Event": "s3:TestEvent"})
    item = handler_env.item({**record, "s3": {**record["s3"], "object": {**record["s3"]["object"], "size": 3}}})
    assert item["key"] == {"S": "raw/a bé"} and item["version_id"] == {"S": "null"}
    assert int(item["ttl"]["N"]) == int(datetime.fromisoformat("2026-12-11T18:40:36.123+00:00").timestamp())
    monkeypatch.setenv("LAKE_REGISTRY_RULES", '[{"dataset": "x", "bucket": "b"}]')
    with pytest.raises(ValueError, match=r"LAKE_REGISTRY_RULES\[0\] lacks pattern, partition"):
        handler_env.classify("b", "k")
