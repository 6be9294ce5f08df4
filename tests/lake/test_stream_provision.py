"""Provisioning's ``stream`` step against localaws (through boto3): the Firehose delivery stream as
the layout names it, idempotent, updated when the settings change, and delivering as configured."""

from __future__ import annotations

import gzip
import json
import os
import time

import pytest

from lake import layout, settings
from lake.deploy import provision


@pytest.fixture(scope="module")
def lake_aws(localaws):
    """The steps roles, buckets on the session's localaws, with a bronze bucket of this module's own
    (no registry notifications: other modules count the registry's flight_events partitions)."""
    saved = os.environ.get("LAKE_BRONZE_BUCKET")
    os.environ["LAKE_BRONZE_BUCKET"] = "lake-bronze-stream-provision"
    try:
        s = settings.get()
        aws = provision.Clients(s.region, localaws.endpoint_url)
        provision.run_step("roles", s, aws)
        provision.run_step("buckets", s, aws)
        yield s, aws
    finally:
        if saved is None:
            os.environ.pop("LAKE_BRONZE_BUCKET", None)
        else:
            os.environ["LAKE_BRONZE_BUCKET"] = saved


def test_stream_step_creates_then_leaves_unchanged(lake_aws):
    s, aws = lake_aws
    lay = layout.for_dataset(s, "flight_events")
    first = {r["resource"]: r["action"] for r in provision.run_step("stream", s, aws)}
    assert first[f"firehose:{lay.delivery_stream}"] in ("created", "unchanged")
    again = provision.run_step("stream", s, aws)
    assert [r for r in again if r["action"] != "unchanged"] == []
    d = aws("firehose").describe_delivery_stream(DeliveryStreamName=lay.delivery_stream)["DeliveryStreamDescription"]
    assert d["DeliveryStreamType"] == "DirectPut"
    dest = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert dest["BucketARN"] == f"arn:aws:s3:::{s.bronze_bucket}"
    assert dest["Prefix"] == lay.stream_prefix and dest["ErrorOutputPrefix"] == lay.stream_error_prefix
    assert dest["CompressionFormat"] == "GZIP" and dest["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert dest["BufferingHints"] == {"SizeInMBs": s.firehose_buffer_mb, "IntervalInSeconds": s.firehose_buffer_seconds}
    params = {p["ParameterName"]: p["ParameterValue"]
              for p in dest["ProcessingConfiguration"]["Processors"][0]["Parameters"]}
    assert params == {"MetadataExtractionQuery": lay.stream_partition_query, "JsonParsingEngine": "JQ-1.6"}
    assert dest["RoleARN"] == s.firehose_role
    aws("iam").get_role(RoleName=s.firehose_role.rsplit("/", 1)[-1])  # created against localaws
    job = aws("glue").get_job(JobName=lay.glue_job)["Job"]
    assert job["DefaultArguments"]["--bronze_path"] == lay.bronze_root.rstrip("/")
    crawler = aws("glue").get_crawler(Name=lay.gold_crawler)["Crawler"]
    assert [t["Path"] for t in crawler["Targets"]["S3Targets"]] == [lay.gold_location(t) for t in lay.gold_tables]


def test_stream_step_updates_buffer_hints_and_delivers_under_the_prefix(lake_aws, monkeypatch):
    s, aws = lake_aws
    lay = layout.for_dataset(s, "flight_events")
    provision.run_step("stream", s, aws)
    monkeypatch.setenv("LAKE_FIREHOSE_BUFFER_SECONDS", "1")
    s1 = settings.get()
    rows = {r["resource"]: r["action"] for r in provision.run_step("stream", s1, aws)}
    assert rows[f"firehose:{lay.delivery_stream}"] == "updated"
    record = {"event_id": "e1", "event_time": "2013-06-01T05:59:59Z"}
    fh = aws("firehose")
    fh.put_record_batch(DeliveryStreamName=lay.delivery_stream,
                        Records=[{"Data": (json.dumps(record) + "\n").encode()}])
    prefix = lay.stream_partition_prefix(dt="2013-06-01", hour="05")
    s3 = aws("s3")
    deadline = time.monotonic() + 5
    while not (keys := [o["Key"] for o in s3.list_objects_v2(Bucket=s.bronze_bucket, Prefix=prefix).get("Contents", [])]):
        assert time.monotonic() < deadline, f"nothing delivered under {prefix} within 5 s (buffer 1 s)"
        time.sleep(0.2)
    assert keys[0].endswith(".gz")
    body = gzip.decompress(s3.get_object(Bucket=s.bronze_bucket, Key=keys[0])["Body"].read())
    assert json.loads(body) == record
    monkeypatch.delenv("LAKE_FIREHOSE_BUFFER_SECONDS")
    assert {r["action"] for r in provision.run_step("stream", s, aws)
            if r["resource"].startswith("firehose:")} == {"updated"}
