"""Glue 5.0 job "flights_gold": one day of silver flights -> gold ``flights`` and ``carrier_daily``.

Job arguments (``getResolvedOptions``):

All but ``--ds`` are the job's default arguments, from ``lake.layout.Layout.glue_arguments``:

* ``--ds``: the day, ``YYYY-MM-DD``.
* ``--partition_name``: the partition column (the contract's ``partition_key``, ``dt``); below
  ``<p>=<ds>`` is the day's partition folder.
* ``--gold_tables``: the contract's gold tables, comma-separated; must be :data:`GOLD_TABLES`
  (this script's outputs), each written to ``<gold_path>/<table>/``.
* ``--silver_path``: ``s3://<silver>/flights`` (the day is read from ``<silver_path>/<p>=<ds>/``).
* ``--dimensions_path``: ``s3://<silver>/reference`` holding ``airlines/``, ``airports/`` (Parquet).
* ``--gold_path``: ``s3://<gold>``; writes ``<gold_path>/flights/<p>=<ds>/`` and
  ``<gold_path>/carrier_daily/<p>=<ds>/``.
* ``--lease_path``: ``s3://<artifacts>/leases/<job>``; the run holds ``<lease_path>/<p>=<ds>.json``
  while it writes the day (see :func:`acquire_lease`).

Each output overwrites only its ``dt`` partition (dynamic partition overwrite), so a rerun or a
backfill of a day replaces that day and leaves the others alone. Two runs of the same day at once
(a manual run during a backfill) would each delete the partition's old files and add their own:
both copies would stay. So a run first takes the day's lease, an S3 object created with
``If-None-Match: *`` (S3 conditional writes: only one creator succeeds). A run that finds the
lease held by a Glue run still active fails at once with :class:`PartitionBusyError`, before
reading anything; the Airflow task retries it later. A lease left by a run that is no longer
active (it failed, was stopped, or its process died) is taken over with ``If-Match`` on the old
lease's ETag, so of two runs taking over only one succeeds.

Gold ``flights``: every silver column, plus

* ``carrier_name``, ``origin_name``, ``dest_name`` (left joins: unknown codes give null names),
  ``origin_tzone`` (the origin's IANA zone; when the airports table has none, a fixed offset
  from its ``tz`` hours);
* ``sched_dep_local`` (timestamp_ntz: the scheduled departure on the origin's clock, from
  year/month/day + ``sched_dep_time`` HHMM), ``sched_dep_utc`` (timestamp, UTC instant);
* ``dep_local``/``dep_utc``: actual departure = scheduled + ``dep_delay`` minutes (null when
  cancelled). Computed from the delay rather than ``dep_time`` HHMM, which wraps at midnight;
* ``is_cancelled`` (``dep_time`` is null), ``is_diverted`` (departed, ``arr_delay`` null),
  ``is_delayed_15`` (``arr_delay`` >= 15: the US DOT counts a flight as delayed when it arrives
  15 minutes or more after schedule), ``is_on_time`` (``arr_delay`` < 15; false when cancelled or
  diverted);
* ``dep_delay_bucket``/``arr_delay_bucket``: ``cancelled``, ``diverted`` (arrival only),
  ``early`` (< 0), ``on_time`` (0-14), ``late_15_59``, ``late_60_179``, ``late_180_plus``;
* ``made_up_minutes`` = ``dep_delay`` - ``arr_delay`` (minutes recovered in the air);
* ``speed_mph`` = ``distance`` / (``air_time`` / 60), miles per hour (null without air time);
* ``dt`` (string ``YYYY-MM-DD``, the partition).

Gold ``carrier_daily`` (one row per dt and carrier): ``carrier_name``, ``flights`` (scheduled),
``cancelled``, ``diverted``, ``delayed_15``, ``on_time``, ``on_time_rate`` = on_time / flights
(cancelled and diverted flights count as not on time), ``avg_arr_delay``, ``p50_arr_delay``,
``p95_arr_delay`` (minutes, over flights with an arrival delay; exact percentiles with linear
interpolation).

The transformations are plain functions so tests can import this file by path and run them on
a local SparkSession; ``main`` is what Glue runs.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

GOLD_TABLES = ("flights", "carrier_daily")
#: The partition column when a caller gives none (the flights contract's ``partition_key``); ``main``
#: always passes ``--partition_name``.
PARTITION = "dt"
#: Glue job run states in which a run may still write (``JobRunState``, Glue API reference).
ACTIVE_RUN_STATES = ("STARTING", "RUNNING", "STOPPING", "WAITING")


class PartitionBusyError(RuntimeError):
    """Another Glue run, still active, holds the day's lease; this run wrote nothing."""


def _lease_location(lease_path: str, ds: str, partition: str = PARTITION) -> tuple[str, str]:
    bucket, _, prefix = lease_path.split("://", 1)[1].partition("/")
    return bucket, f"{prefix.rstrip('/')}/{partition}={ds}.json".lstrip("/")


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def acquire_lease(s3: Any, glue: Any, lease_path: str, ds: str, job_name: str, run_id: str,
                  partition: str = PARTITION) -> dict[str, Any]:
    """Take the lease of day ``ds`` for Glue run ``run_id`` of ``job_name``; returns the lease
    (``job``, ``run_id``, ``ds``, ``acquired_at`` ISO UTC, ``took_over`` the previous holder's run id or None).

    :param s3: a boto3 S3 client; :param glue: a boto3 Glue client (``GetJobRun`` on the holder).
    :raises PartitionBusyError: the lease is held by a run in one of :data:`ACTIVE_RUN_STATES`,
        or another run took over a stale lease first. The message names the day, the holder and
        since when it holds the lease.
    :raises botocore.exceptions.ClientError: any other S3 or Glue error.
    """
    bucket, key = _lease_location(lease_path, ds, partition)
    lease = {"job": job_name, "run_id": run_id, "ds": ds,
             "acquired_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "took_over": None}
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(lease).encode(), IfNoneMatch="*")
        return lease
    except Exception as exc:  # botocore ClientError
        if _error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise
    held = s3.get_object(Bucket=bucket, Key=key)
    holder = json.loads(held["Body"].read())
    if holder.get("run_id") == run_id:
        return holder
    try:
        state = glue.get_job_run(JobName=holder["job"], RunId=holder["run_id"])["JobRun"]["JobRunState"]
    except Exception as exc:  # noqa: BLE001 - a run Glue no longer knows cannot be writing
        if _error_code(exc) != "EntityNotFoundException":
            raise
        state = "UNKNOWN"
    busy = (f"partition {partition}={ds} is being written by Glue run {holder['run_id']} of job {holder['job']} "
            f"(state {{state}}, lease s3://{bucket}/{key} held since {holder.get('acquired_at')}); "
            f"this run {run_id} stopped before writing anything: retry it when that run has finished")
    if state in ACTIVE_RUN_STATES:
        raise PartitionBusyError(busy.format(state=state))
    lease["took_over"] = holder["run_id"]
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(lease).encode(), IfMatch=held["ETag"])
    except Exception as exc:  # botocore ClientError
        if _error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"):
            raise PartitionBusyError(busy.format(state="taken over by another run just now")) from exc
        raise
    return lease


def release_lease(s3: Any, lease_path: str, ds: str, run_id: str, partition: str = PARTITION) -> bool:
    """Delete the day's lease if ``run_id`` still holds it; returns whether it was deleted."""
    bucket, key = _lease_location(lease_path, ds, partition)
    try:
        holder = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:  # botocore ClientError
        if _error_code(exc) in ("NoSuchKey", "404"):
            return False
        raise
    if holder.get("run_id") != run_id:
        return False
    s3.delete_object(Bucket=bucket, Key=key)
    return True


def read_day(spark: SparkSession, silver_path: str, ds: str, partition: str = PARTITION) -> DataFrame:
    """The silver flights of ``ds`` (``<silver_path>/<partition>=<ds>/``) with a ``<partition>``
    string column.

    :raises pyspark.errors.AnalysisException: "Path does not exist" when the day has no silver data.
    """
    return spark.read.parquet(f"{silver_path.rstrip('/')}/{partition}={ds}/").withColumn(partition, F.lit(ds))


def _bucket(delay: Column, missing_label: str) -> Column:
    return (
        F.when(delay.isNull(), F.lit(missing_label))
        .when(delay < 0, "early")
        .when(delay < 15, "on_time")
        .when(delay < 60, "late_15_59")
        .when(delay < 180, "late_60_179")
        .otherwise("late_180_plus")
    )


def enrich_flights(flights: DataFrame, airlines: DataFrame, airports: DataFrame) -> DataFrame:
    """Gold ``flights`` from silver flights and the airlines/airports dimensions (columns in
    the module docstring). Row count is unchanged (left joins on unique dimension keys).

    Needs ``spark.sql.session.timeZone`` = UTC (``main`` sets it): local times are built as
    wall-clock timestamps and converted with ``to_utc_timestamp``.

    :raises ValueError: when the session time zone is not UTC.
    """
    spark = flights.sparkSession
    if spark.conf.get("spark.sql.session.timeZone") not in ("UTC", "Etc/UTC", "GMT"):
        raise ValueError("enrich_flights needs spark.sql.session.timeZone=UTC")
    carriers = airlines.select(F.col("carrier"), F.col("name").alias("carrier_name"))
    origins = airports.select(
        F.col("faa").alias("origin"),
        F.col("name").alias("origin_name"),
        F.coalesce(F.col("tzone"), F.format_string("%+03d:00", F.col("tz").cast("int"))).alias("origin_tzone"),
    )
    dests = airports.select(F.col("faa").alias("dest"), F.col("name").alias("dest_name"))
    sched_minutes = (F.col("sched_dep_time") / 100).cast("int") * 60 + F.col("sched_dep_time") % 100
    local_midnight = F.make_date("year", "month", "day").cast("timestamp_ntz")
    sched_local = local_midnight + F.make_dt_interval(F.lit(0), F.lit(0), sched_minutes.cast("int"))
    dep_local = sched_local + F.make_dt_interval(F.lit(0), F.lit(0), F.col("dep_delay").cast("int"))
    to_utc = lambda ts: F.to_utc_timestamp(ts.cast("timestamp"), F.col("origin_tzone"))  # noqa: E731
    cancelled = F.col("dep_time").isNull()
    return (
        flights.join(F.broadcast(carriers), "carrier", "left")
        .join(F.broadcast(origins), "origin", "left")
        .join(F.broadcast(dests), "dest", "left")
        .withColumn("sched_dep_local", sched_local)
        .withColumn("sched_dep_utc", to_utc(F.col("sched_dep_local")))
        .withColumn("dep_local", F.when(~cancelled, dep_local))
        .withColumn("dep_utc", to_utc(F.col("dep_local")))
        .withColumn("is_cancelled", cancelled)
        .withColumn("is_diverted", ~cancelled & F.col("arr_delay").isNull())
        .withColumn("is_delayed_15", F.coalesce(F.col("arr_delay") >= 15, F.lit(False)))
        .withColumn("is_on_time", F.coalesce(F.col("arr_delay") < 15, F.lit(False)))
        .withColumn("dep_delay_bucket", _bucket(F.col("dep_delay"), "cancelled"))
        .withColumn("arr_delay_bucket",
                    F.when(cancelled, F.lit("cancelled")).otherwise(_bucket(F.col("arr_delay"), "diverted")))
        .withColumn("made_up_minutes", F.col("dep_delay") - F.col("arr_delay"))
        .withColumn("speed_mph",
                    F.when(F.col("air_time") > 0, F.col("distance") / (F.col("air_time") / F.lit(60.0))))
        .select(*flights.columns, "carrier_name", "origin_name", "dest_name",
                "origin_tzone", "sched_dep_local", "sched_dep_utc", "dep_local", "dep_utc", "is_cancelled",
                "is_diverted", "is_delayed_15", "is_on_time", "dep_delay_bucket", "arr_delay_bucket",
                "made_up_minutes", "speed_mph")
    )


def carrier_daily(gold_flights: DataFrame, partition: str = PARTITION) -> DataFrame:
    """Gold ``carrier_daily`` from gold ``flights``: one row per (``partition`` = day, carrier);
    columns in the module docstring. Counts are bigint, rates and delays double (minutes)."""
    arr = F.col("arr_delay")
    return (
        gold_flights.groupBy(partition, "carrier")
        .agg(
            F.first("carrier_name", ignorenulls=True).alias("carrier_name"),
            F.count(F.lit(1)).alias("flights"),
            F.sum(F.col("is_cancelled").cast("long")).alias("cancelled"),
            F.sum(F.col("is_diverted").cast("long")).alias("diverted"),
            F.sum(F.col("is_delayed_15").cast("long")).alias("delayed_15"),
            F.sum(F.col("is_on_time").cast("long")).alias("on_time"),
            F.avg(arr).alias("avg_arr_delay"),
            F.percentile(arr, F.lit(0.5)).alias("p50_arr_delay"),
            F.percentile(arr, F.lit(0.95)).alias("p95_arr_delay"),
        )
        .withColumn("on_time_rate", F.col("on_time") / F.col("flights"))
        .select(partition, "carrier", "carrier_name", "flights", "cancelled", "diverted", "delayed_15", "on_time",
                "on_time_rate", "avg_arr_delay", "p50_arr_delay", "p95_arr_delay")
    )


def write_partition(df: DataFrame, path: str, partition: str = PARTITION) -> int:
    """Overwrite only the ``partition`` values present in ``df`` under ``path`` (one file each);
    returns the rows written.

    The rows are counted while they are written (``DataFrame.observe``), not by a ``count()``
    before: that would run the whole plan a second time (or need a ``cache()``, which spilled to
    disk on a 20M-row day).
    """
    df.sparkSession.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    written = Observation()
    (df.observe(written, F.count(F.lit(1)).alias("rows"))
     .repartition(partition).write.mode("overwrite").partitionBy(partition).parquet(path))
    return int(written.get["rows"])


def transform(spark: SparkSession, ds: str, silver_path: str, dimensions_path: str,
              partition: str = PARTITION) -> dict[str, DataFrame]:
    """Read the day and the dimensions; return ``{"flights": ..., "carrier_daily": ...}`` (not written).

    Nothing is cached: each table is one pass over the silver Parquet when it is written, and
    ``carrier_daily``'s pass reads only the columns it needs (Parquet column pruning), which costs
    less than keeping the enriched day in memory (on a 20.9M-row day the cache spilled to disk).
    """
    dims = dimensions_path.rstrip("/")
    flights = read_day(spark, silver_path, ds, partition)
    gold = enrich_flights(flights, spark.read.parquet(f"{dims}/airlines/"), spark.read.parquet(f"{dims}/airports/"))
    return {"flights": gold, "carrier_daily": carrier_daily(gold, partition)}


def gold_tables(names: str) -> tuple[str, ...]:
    """The ``--gold_tables`` argument (comma-separated) as a tuple, checked against :data:`GOLD_TABLES`.

    :raises ValueError: when the contract's gold tables are not the ones this script writes.
    """
    tables = tuple(n.strip() for n in names.split(",") if n.strip())
    if sorted(tables) != sorted(GOLD_TABLES):
        raise ValueError(f"--gold_tables {names!r}: this script writes {', '.join(GOLD_TABLES)}; "
                         "the dataset contract's gold.tables must name exactly these")
    return tables


def main(argv: list[str]) -> None:
    """Glue entry point: parse the job arguments, transform the day, write both gold tables."""
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    import boto3

    args = getResolvedOptions(argv, ["JOB_NAME", "JOB_RUN_ID", "ds", "silver_path", "gold_path", "dimensions_path",
                                     "lease_path", "partition_name", "gold_tables"])
    ds, run_id, part = args["ds"], args["JOB_RUN_ID"], args["partition_name"]
    tables_out = gold_tables(args["gold_tables"])
    s3, glue = boto3.client("s3"), boto3.client("glue")
    lease = acquire_lease(s3, glue, args["lease_path"], ds, args["JOB_NAME"], run_id, part)
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    logger = glue_context.get_logger()
    if lease["took_over"]:
        logger.warn(f"flights_gold {ds}: took over the lease of run {lease['took_over']}, which is no longer active")
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    try:
        tables = transform(spark, ds, args["silver_path"], args["dimensions_path"], part)
        gold = args["gold_path"].rstrip("/")
        for name in tables_out:
            rows = write_partition(tables[name], f"{gold}/{name}", part)
            logger.info(f"flights_gold {ds}: wrote {rows} rows to {gold}/{name}/{part}={ds}/")
        job.commit()
    finally:
        release_lease(s3, args["lease_path"], ds, run_id, part)


if __name__ == "__main__":
    main(sys.argv)
