"""The hourly stream run's pure logic (lake/stream/hourly.py): readiness from the watermark and the
Firehose buffer, late deliveries, the registry check, record counts of real Firehose-shaped objects."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from lake import layout, settings
from lake.stream import hourly

END = datetime(2013, 6, 1, 6, tzinfo=UTC)  # the hour 05:00-06:00 UTC
LATE, BUFFER = timedelta(minutes=15), timedelta(seconds=60)
ARRIVED = datetime(2026, 12, 2, 1, 0, 0, tzinfo=UTC)


def test_partition_start_and_ready_at():
    assert hourly.partition_start("dt=2013-06-01/hour=07") == datetime(2013, 6, 1, 7, tzinfo=UTC)
    with pytest.raises(ValueError, match="dt=YYYY-MM-DD/hour=HH"):
        hourly.partition_start("dt=2013-06-01")
    # 06:15 is inside hour 06: only an object of hour 07 proves event time passed 06:15.
    assert hourly.ready_at(END, LATE) == datetime(2013, 6, 1, 7, tzinfo=UTC)
    assert hourly.ready_at(END, timedelta(0)) == END


@pytest.mark.parametrize(("partition", "arrival", "now", "ready"), [
    (None, None, ARRIVED, False),                                           # nothing at or past 07:00
    ("dt=2013-06-01/hour=07", ARRIVED, ARRIVED + timedelta(seconds=59), False),  # buffers may still hold 05:xx
    ("dt=2013-06-01/hour=07", ARRIVED, ARRIVED + BUFFER, True),
])
def test_readiness(partition, arrival, now, ready):
    ok, why = hourly.readiness(partition, arrival, END, lateness=LATE, buffer=BUFFER, now=now)
    assert ok is ready, why
    assert ("flush" in why) or partition is None or ready


def _object(records: list[dict]) -> bytes:
    return gzip.compress(b"".join((json.dumps(r) + "\n").encode() for r in records))


def test_count_records_gzip_and_plain():
    records = [{"event_id": str(i), "event_time": "2013-06-01T05:00:00Z"} for i in range(7)]
    assert hourly.count_records(_object(records)) == 7
    assert hourly.count_records(b"".join((json.dumps(r) + "\n").encode() for r in records) + b"\n") == 7


def test_unread_and_registry_mismatch():
    def d(name):
        return {"key": f"flight_events/dt=2013-06-01/hour=05/{name}", "bucket": "lake-bronze"}

    deliveries = [d("a.gz"), d("b.gz"), d("c.gz")]
    assert [x["key"][-4:] for x in hourly.unread(deliveries, ["a.gz", "b.gz"])] == ["c.gz"]
    record = {"objects": ["a.gz", "b.gz", "c.gz"]}
    assert hourly.registry_mismatch(record, deliveries, ["a.gz", "b.gz"]) == []  # c.gz: only duplicates
    assert hourly.registry_mismatch({"objects": ["a.gz", "b.gz"]}, deliveries, ["a.gz", "b.gz"]) == [
        {"object": "c.gz", "registry": True, "read": False, "gold": False}]
    assert hourly.registry_mismatch(record, deliveries, ["a.gz", "x.gz"])[0]["object"] == "x.gz"


def test_summary_names_events_duplicates_and_late():
    record = {"events": 98, "records": 100, "duplicates": 2, "objects": ["a.gz"]}
    late = {"events": 3, "objects": 1, "hours": {"dt=2013-06-01/hour=04": 3}}
    out = hourly.summary("2013-06-01 05:00", record, late, {"duplicate_event_id": 0})
    assert out["subject"] == "lake flight_events 2013-06-01 05:00 UTC: 98 events"
    assert "2 duplicates dropped" in out["message"] and "3 in 1 objects (dt=2013-06-01/hour=04 3)" in out["message"]
    assert "rerun" in out["message"]


def test_layout_hour_names():
    lay = layout.for_dataset(settings.get(), "flight_events")
    start = datetime(2013, 6, 1, 5, tzinfo=UTC)
    assert lay.stream_hour_partition(start) == "dt=2013-06-01/hour=05"
    # the registry's rule gives the same partition for an object Firehose writes there
    import re

    rule = lay.delivery_rules()[0]
    key = lay.stream_partition_prefix(**lay.stream_hour(start)) + "lake-flight-events-1-2013-06-01-05-00-00-x.gz"
    m = re.fullmatch(rule["pattern"], key)
    assert rule["partition"].format(**m.groupdict()) == lay.stream_hour_partition(start)
    assert lay.stream_run_key(start) == "stream-runs/flight_events/dt=2013-06-01/hour=05/run.json"
