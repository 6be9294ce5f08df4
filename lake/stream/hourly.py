"""The hourly stream run's logic (dags/flight_events_hourly.py): when an hour is complete, what the
registry says was delivered, late events, and the run summary. Plain functions over boto3 clients
and plain values, tested without Airflow.

**When an hour is ready.** The registry (lake/registry.py) knows every Firehose object and its
partition, the event hour (``dt=YYYY-MM-DD/hour=HH``). Firehose partitions by event time, so an
object of a later hour means the stream's event time has got at least to that hour's start: the
*watermark* is the start of the latest delivered partition (a lower bound of the latest event
time delivered). An hour ``[start, end)`` is ready when

1. the watermark is at least ``end + lateness`` (``LAKE_STREAM_LATENESS``, default 15 min): events
   up to ``lateness`` late have had their time; and
2. ``buffer`` seconds (``LAKE_FIREHOSE_BUFFER_SECONDS``, the stream's BufferingHints
   IntervalInSeconds) have passed, on the wall clock, since the first object of a partition at or
   past that point arrived (its S3 event time): Firehose keeps one buffer per partition and writes
   it at most IntervalInSeconds after its first record ("Buffering hints",
   https://docs.aws.amazon.com/firehose/latest/dev/buffering-hints.html), so every record of the hour
   sent before that later one has been flushed by then.

**Late events** (sent after their hour ran) land in their own hour's partition all the same; the run
of a later hour counts them: for each of the ``LAKE_STREAM_LATE_LOOKBACK`` hours before its own that
has a run record (``run.json``, written by the Glue job), the registry's objects of that hour that
the run did not read are late, and their records are counted. ``airflow tasks clear`` (or a backfill
with ``--reprocess-behavior completed``) of that hour reads them: nothing is lost.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from lake import registry
from lake.layout import Layout, split_uri
from lake.settings import Settings

HOUR = timedelta(hours=1)


def partition_start(partition: str) -> datetime:
    """The start (UTC, aware) of a registry partition ``dt=YYYY-MM-DD/hour=HH``.

    :raises ValueError: when ``partition`` is not of that form.
    """
    values = dict(part.split("=", 1) for part in partition.split("/") if "=" in part)
    if set(values) != {"dt", "hour"}:
        raise ValueError(f"partition {partition!r} is not dt=YYYY-MM-DD/hour=HH")
    return datetime.strptime(f"{values['dt']} {values['hour']}", "%Y-%m-%d %H").replace(tzinfo=UTC)


def ready_at(hour_end: datetime, lateness: timedelta) -> datetime:
    """The first partition start that proves the watermark passed ``hour_end + lateness``: that
    instant rounded up to a whole hour (partitions are hours)."""
    point = hour_end + lateness
    floor = point.replace(minute=0, second=0, microsecond=0)
    return floor if floor == point else floor + HOUR


def readiness(first_partition: str | None, first_arrival: datetime | None, hour_end: datetime, *,
              lateness: timedelta, buffer: timedelta, now: datetime) -> tuple[bool, str]:
    """Whether the hour ending at ``hour_end`` is ready (rule in the module docstring).

    :param first_partition: the earliest delivered partition at or after :func:`ready_at`, or None.
    :param first_arrival: the S3 event time of that partition's first object (UTC).
    :returns: ``(ready, why)``, ``why`` a sentence for the log.
    """
    needed = ready_at(hour_end, lateness)
    if first_partition is None or first_arrival is None:
        return False, f"no delivery at or after {needed:%Y-%m-%d %H:%M} UTC yet (hour end + {lateness})"
    flushed = first_arrival + buffer
    if now < flushed:
        return False, (f"watermark {first_partition} passed; waiting until {flushed:%H:%M:%S} UTC for the "
                       f"Firehose buffers ({buffer.total_seconds():.0f} s) to flush")
    return True, f"watermark {first_partition} >= {needed:%Y-%m-%d %H:%M} UTC and the buffers have flushed"


def hour_ready(s: Settings, lay: Layout, hour_end: datetime, *, now: datetime, ddb: Any) -> tuple[bool, str]:
    """:func:`readiness` of the hour ending at ``hour_end`` from the registry (two or three queries)."""
    needed = lay.stream_hour_partition(ready_at(hour_end, timedelta(seconds=s.stream_lateness)))
    later = registry.partitions(lay.dataset, since=needed, client=ddb, settings=s)
    first = next(iter(later), None)
    arrival = None
    if first is not None:
        arrival = min(d["event_time"] for d in registry.deliveries(lay.dataset, first, client=ddb, settings=s))
    return readiness(first, arrival, hour_end, lateness=timedelta(seconds=s.stream_lateness),
                     buffer=timedelta(seconds=s.firehose_buffer_seconds), now=now)


def count_records(body: bytes) -> int:
    """Records in one Firehose object (GZIP when it starts with the gzip magic): non-empty lines."""
    data = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    return sum(1 for line in data.splitlines() if line.strip())


def run_record(s3: Any, lay: Layout, start: datetime) -> dict[str, Any] | None:
    """The Glue job's record of the hour at ``start`` (``run.json``, shape in
    include/glue_scripts/flight_events_gold.py ``run_record``), or None when the hour never ran."""
    bucket = split_uri(lay.stream_runs_root)[0]
    try:
        body = s3.get_object(Bucket=bucket, Key=lay.stream_run_key(start))["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


def unread(deliveries: list[dict[str, Any]], read: list[str]) -> list[dict[str, Any]]:
    """The deliveries (:func:`lake.registry.deliveries`) whose object (file name) is not in ``read``."""
    seen = set(read)
    return [d for d in deliveries if d["key"].rsplit("/", 1)[-1] not in seen]


def late_events(s: Settings, lay: Layout, start: datetime, *, s3: Any, ddb: Any) -> dict[str, Any]:
    """Late deliveries of the ``LAKE_STREAM_LATE_LOOKBACK`` hours before ``start``: objects the
    registry holds for an hour that already ran but that its run did not read.

    :returns: ``{"events": int (records in those objects), "objects": int,
        "hours": {partition: records}}`` (only hours with late objects).
    """
    hours: dict[str, int] = {}
    objects = 0
    for back in range(1, s.stream_late_lookback + 1):
        hour = start - back * HOUR
        record = run_record(s3, lay, hour)
        if record is None:
            continue
        partition = lay.stream_hour_partition(hour)
        late = unread(registry.deliveries(lay.dataset, partition, client=ddb, settings=s), record["objects"])
        if late:
            objects += len(late)
            hours[partition] = sum(count_records(s3.get_object(Bucket=d["bucket"], Key=d["key"])["Body"].read())
                                   for d in late)
    return {"events": sum(hours.values()), "objects": objects, "hours": dict(sorted(hours.items()))}


def registry_mismatch(record: dict[str, Any], deliveries: list[dict[str, Any]],
                      gold_objects: list[str]) -> list[dict[str, Any]]:
    """The DQ check "counts equal the registry's records for the hour": every object the registry
    holds for the hour was read by the run (``record["objects"]``) and is in gold (``gold_objects``:
    the distinct ``source_object`` of the hour's gold events, from Athena), and nothing else is.

    :returns: one row per object that differs, ``{"object", "registry", "read", "gold"}`` (booleans); no rows = pass.
    """
    reg = {d["key"].rsplit("/", 1)[-1] for d in deliveries}
    read, gold = set(record["objects"]), set(gold_objects)
    # An object with no event (every line a duplicate of an earlier object's) is read but not in gold.
    rows = []
    for name in sorted(reg | read | gold):
        flags = {"registry": name in reg, "read": name in read, "gold": name in gold}
        if not (flags["registry"] and flags["read"]) or (flags["gold"] and not flags["registry"]):
            rows.append({"object": name, **flags})
    return rows


def summary(hour: str, record: dict[str, Any], late: dict[str, Any], dq: dict[str, int]) -> dict[str, str]:
    """The SNS summary of an hour's run: ``{"subject", "message"}``.

    :param hour: ``YYYY-MM-DD HH:00`` (UTC); ``record``: the run record; ``late``: :func:`late_events`;
        ``dq``: the checks' violating row counts (all 0).
    """
    subject = f"lake flight_events {hour} UTC: {record['events']} events"
    lines = [
        (f"Hour {hour} UTC (+1 h): {record['events']} events in gold from {len(record['objects'])} Firehose objects "
         f"({record['records']} records read, {record['duplicates']} duplicates dropped)."),
        f"Late events (delivered after their hour ran): {late['events']} in {late['objects']} objects"
        + (f" ({', '.join(f'{p} {n}' for p, n in late['hours'].items())}); rerun those hours to include them."
           if late["events"] else "."),
        "Data quality: " + ", ".join(f"{name} {'pass' if n == 0 else f'FAIL ({n})'}" for name, n in dq.items()) + ".",
    ]
    return {"subject": subject[:100], "message": "\n".join(lines)}


# --- what the DAG's tasks call -------------------------------------------------------------------


def hour_label(start: datetime) -> str:
    """``YYYY-MM-DD HH:00`` of the hour at ``start`` (UTC), for logs and the summary."""
    return start.astimezone(UTC).strftime("%Y-%m-%d %H:00")


def evaluate(s: Settings, lay: Layout, start: datetime, checks: dict[str, list[dict[str, Any]]],
             gold_objects: list[dict[str, Any]], *, s3: Any, ddb: Any) -> dict[str, int]:
    """The hour's data-quality verdict: the Athena checks' violating rows (``checks``, include/sql/
    flight_events/dq) plus ``matches_registry`` (:func:`registry_mismatch` of the run record, the
    registry's deliveries of the hour and ``gold_objects``, the rows of ``hourly/gold_objects.sql``).

    :returns: check -> violating rows (all 0).
    :raises lake.pipeline.DataQualityError: naming every failing check.
    :raises RuntimeError: when the hour has no run record (the Glue job did not run).
    """
    from lake import pipeline

    record = run_record(s3, lay, start)
    if record is None:
        raise RuntimeError(f"{lay.dataset} {hour_label(start)}: no run record s3://"
                           f"{split_uri(lay.stream_runs_root)[0]}/{lay.stream_run_key(start)} (did the Glue job run?)")
    deliveries = registry.deliveries(lay.dataset, lay.stream_hour_partition(start), client=ddb, settings=s)
    rows = {**checks, "matches_registry": registry_mismatch(record, deliveries,
                                                            [r["source_object"] for r in gold_objects])}
    return pipeline.evaluate_dq(rows, f"{lay.dataset} {hour_label(start)}")


def run_summary(s: Settings, lay: Layout, start: datetime, dq: dict[str, int], *, s3: Any, ddb: Any) -> dict[str, Any]:
    """:func:`summary` of the hour at ``start`` from its run record and :func:`late_events`, plus
    the numbers: ``{"subject", "message", "events", "duplicates", "late_events"}``."""
    record = run_record(s3, lay, start)
    if record is None:
        raise RuntimeError(f"{lay.dataset} {hour_label(start)}: no run record (did the Glue job run?)")
    late = late_events(s, lay, start, s3=s3, ddb=ddb)
    return {**summary(hour_label(start), record, late, dq), "events": record["events"],
            "duplicates": record["duplicates"], "late_events": late["events"]}
