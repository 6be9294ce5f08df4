"""``lake stream send`` (lake.stream.send) against the in-process localaws's Firehose: records land in
S3 once each (plus the duplicates asked for) in the dynamic partitions of their event hour, failed
records are retried, pacing follows the rate and the speedup, and oversized records are refused."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections import Counter

import pytest

from lake import contracts, layout, settings
from lake.cli import main
from lake.stream import events, send

ROLE = "arn:aws:iam::123456789012:role/firehose"


@pytest.fixture(scope="module")
def lay() -> layout.Layout:
    return layout.Layout(settings.get(), contracts.load("flight_events"))


@pytest.fixture(scope="module")
def day_events(source_csv) -> list[dict]:
    return events.flight_events("2013-06-01", csv=source_csv)


def _stream(aws_client, lay, *, dynamic: bool) -> tuple[str, str]:
    """A fresh bucket and delivery stream; ``dynamic``: the lake's prefixes, jq query and GZIP (as
    provisioning sets them up, interval 1 s), else zero buffering, no prefix."""
    name = f"send-{uuid.uuid4().hex[:8]}"
    aws_client("s3").create_bucket(Bucket=name)
    config = {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{name}"}
    if dynamic:
        config |= {
            "Prefix": lay.stream_prefix, "ErrorOutputPrefix": lay.stream_error_prefix, "CompressionFormat": "GZIP",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
            "DynamicPartitioningConfiguration": {"Enabled": True},
            "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": lay.stream_partition_query},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}}
    else:
        config |= {"BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0}}
    aws_client("firehose").create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                                                  ExtendedS3DestinationConfiguration=config)
    return name, name


def _objects(s3, bucket: str, known: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Every object of ``bucket`` (those in ``known`` are not read again: objects are never rewritten here)."""
    known = dict(known or {})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            if o["Key"] not in known:
                known[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return known


def test_a_send_lands_every_record_once_plus_duplicates_and_retries_failures(aws_client, lay, day_events,
                                                                             localaws_faults):
    stream, bucket = _stream(aws_client, lay, dynamic=True)
    injector = localaws_faults({"seed": 5, "runs": {"firehose": {"fail_rate": 0.1, "streams": [stream]}}})
    records = list(send.event_records(day_events, events.event_epoch))
    stats = send.Sender(aws_client("firehose"), stream, records, rate=50_000, duplicates=0.02, late=0.02,
                        late_delay=0.3, seed=11, batch_interval=0.05).run()
    assert len(records) > 700
    assert stats.records == len(records) and stats.failed == 0 and stats.pending == 0
    assert stats.duplicated > 0 and stats.late > 0
    failed = injector.state()["counters"]["runs"][f"firehose:{stream}"]["failed"]
    assert stats.retried == failed > 0 and stats.errors == {"ServiceUnavailableException": failed}
    assert stats.sent == len(records) + stats.duplicated
    s3 = aws_client("s3")
    deadline, objects = time.monotonic() + 10, {}
    while True:  # the buffers' 1 s interval
        objects = _objects(s3, bucket, objects)
        lines = [line for body in objects.values() for line in gzip.decompress(body).splitlines(keepends=True)]
        if len(lines) >= stats.sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    sent = Counter(r.data for r in records)
    got = Counter(lines)
    assert set(got) == set(sent)  # every record, newline-terminated as sent, nothing else
    extra = got - sent
    assert sum(extra.values()) == stats.duplicated and set(extra.values()) == {1}
    for key, body in objects.items():  # each object in the partition of its records' event date and hour
        assert not key.startswith("quarantine/"), key
        for raw in gzip.decompress(body).splitlines():
            event = json.loads(raw)
            dt, hour = event["event_time"][:10], event["event_time"][11:13]
            assert key.startswith(lay.stream_partition_prefix(dt=dt, hour=hour)), (key, event["event_time"])


def test_pacing_follows_the_rate_and_the_speedup(aws_client, lay, day_events):
    """A fake clock: at 100 records/s the n-th record goes out in the tick after n / 100 s; with
    speedup 3600 an event goes out once (event_time - first) / 3600 s have passed, not before."""
    stream, _ = _stream(aws_client, lay, dynamic=False)
    firehose = aws_client("firehose")
    now = [0.0]
    clock, sleep = (lambda: now[0]), (lambda s: now.__setitem__(0, now[0] + s))
    records = list(send.event_records(day_events[:250], events.event_epoch))
    stats = send.Sender(firehose, stream, records, rate=100, batch_interval=0.2, clock=clock, sleep=sleep).run()
    assert stats.sent == 250 and stats.batches == len(stats.batch_log)
    for at, _ in stats.batch_log:
        sent_by = sum(n for t, n in stats.batch_log if t <= at)
        assert sent_by == min(250, int(at * 100 + 1e-9) + 1)  # records 0..floor(100 t) are due at t
    assert 2.4 <= stats.elapsed <= 2.6
    day = day_events
    now[0] = 0.0
    records = list(send.event_records(day, events.event_epoch))
    stats = send.Sender(firehose, stream, records, rate=1e9, speedup=3600, batch_interval=0.5, clock=clock,
                        sleep=sleep).run()
    first = events.event_epoch(day[0])
    offsets = [(events.event_epoch(e) - first) / 3600 for e in day]
    for at, _ in stats.batch_log:
        assert sum(n for t, n in stats.batch_log if t <= at) == sum(1 for o in offsets if o <= at + 1e-9)
    assert abs(stats.elapsed - offsets[-1]) <= 0.5


def test_a_record_over_1000_kib_is_an_error_and_the_limit_is_accepted(aws_client, lay, tmp_path):
    stream, bucket = _stream(aws_client, lay, dynamic=False)
    big = tmp_path / "big.tmpl"
    big.write_text('{"pad": "' + "x" * 1_024_000 + '", "n": {{random.number(9)}}}')
    from lake.stream.templates import RecordTemplate
    with pytest.raises(send.RecordTooLarge, match=r"big.tmpl, render 1: the record is 1,024,020 bytes; a Firehose "
                                                  r"record is at most 1,000 KiB \(1,024,000 bytes"):
        send.Sender(aws_client("firehose"), stream, send.template_records(RecordTemplate(big)), count=1).run()
    assert _objects(aws_client("s3"), bucket) == {}  # nothing sent
    exact = send.Record(send.line(b"y" * 1_023_999, "exact"), None, "exact")
    stats = send.Sender(aws_client("firehose"), stream, [exact, exact, exact, exact, exact], rate=1000).run()
    assert stats.sent == 5 and stats.batches == 2  # 4 MiB a call: four such records fit, the fifth goes next
    assert sorted(len(b) for b in _objects(aws_client("s3"), bucket).values()) == [1_024_000, 4_096_000]


def test_cli_sends_a_template(aws_client, lay, tmp_path, capsys):
    stream, bucket = _stream(aws_client, lay, dynamic=False)
    template = tmp_path / "sensor.tmpl"
    template.write_text('{"sensorId": {{random.number(50)}},\n "status": "{{random.arrayElement(["OK","FAIL"])}}"}')
    assert main(["stream", "send", "--template", str(template), "--count", "120", "--rate", "2000",
                 "--duplicates", "0.05", "--seed", "1", "--stream", stream, "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["records"] == 120 and summary["failed"] == 0 and summary["sent"] == 120 + summary["duplicated"]
    lines = [line for body in _objects(aws_client("s3"), bucket).values() for line in body.splitlines()]
    assert len(lines) == summary["sent"]
    assert all(json.loads(line)["status"] in ("OK", "FAIL") for line in lines)
    assert main(["stream", "send", "--template", str(template), "--day", "2013-06-01", "--stream", stream]) == 2
    assert main(["stream", "send", "--dataset", "flights", "--day", "2013-06-01", "--stream", stream]) == 2
    assert "dataset flights is a fact, not a stream" in capsys.readouterr().err
