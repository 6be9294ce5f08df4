"""Glue 5.0 job "flight_events_gold": one hour of Firehose deliveries -> gold ``flight_events`` and
``departures_hourly``.

Job arguments (``getResolvedOptions``); all but ``--dt`` and ``--hour`` are the job's default
arguments, from ``lake.layout.Layout.stream_glue_arguments``:

* ``--dt`` (``YYYY-MM-DD``), ``--hour`` (``HH``): the event hour, UTC (the data interval's start).
* ``--bronze_path``: ``s3://<bronze>/flight_events``; the hour's Firehose objects are under
  ``<bronze_path>/dt=<dt>/hour=<hour>/`` (dynamic partitioning by event time). Each object is GZIP of
  records concatenated as sent; ``lake stream send`` ends every record with ``\\n``, so an object is
  JSON lines (Amazon Data Firehose Developer Guide, "Data delivery format":
  https://docs.aws.amazon.com/firehose/latest/dev/basic-deliver.html).
* ``--gold_path``: ``s3://<gold>``; writes ``<gold_path>/flight_events/dt=<dt>/hour=<hour>/`` and
  ``<gold_path>/departures_hourly/dt=<dt>/hour=<hour>/`` (each overwritten: dynamic partition overwrite;
  an hour with no record gets one Parquet file with the schema and no rows: :func:`write_hour`).
* ``--gold_tables``: must be :data:`GOLD_TABLES`.
* ``--runs_path``: ``s3://<artifacts>/stream-runs/flight_events``; the run writes
  ``<runs_path>/dt=<dt>/hour=<hour>/run.json`` (:func:`run_record`): what it read and wrote.

Gold ``flight_events``: one row per ``event_id`` (records delivered twice, e.g. a client's resend,
are dropped: the first by source object name and line is kept), the contract's columns with
``event_time`` and ``sched_dep_utc`` as timestamps (UTC), plus ``source_object`` (the Firehose
object's file name) and the partitions ``dt``, ``hour`` (strings).

Gold ``departures_hourly`` (one row per origin and carrier with an event in the hour):
``hour_utc`` (timestamp, the hour's start), ``origin``, ``carrier``, ``departures`` (departed
events), ``cancelled`` (cancelled events), ``avg_dep_delay`` (minutes, over departed events; null
when none), ``dt``, ``hour``.

Bad input fails the run before anything is written, naming the object and the line: a record that
is not JSON, or that lacks a required column (:class:`BadRecordError`). An event whose
``event_time`` is outside the hour cannot come from Firehose's partitioning and fails it too.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

GOLD_TABLES = ("flight_events", "departures_hourly")
#: The records' columns (include/datasets/flight_events.json), as JSON types.
SCHEMA = T.StructType([
    T.StructField("event_id", T.StringType()), T.StructField("event_type", T.StringType()),
    T.StructField("event_time", T.StringType()), T.StructField("carrier", T.StringType()),
    T.StructField("flight", T.IntegerType()), T.StructField("tailnum", T.StringType()),
    T.StructField("origin", T.StringType()), T.StructField("dest", T.StringType()),
    T.StructField("sched_dep_utc", T.StringType()), T.StructField("dep_delay", T.IntegerType()),
    T.StructField("distance", T.IntegerType()), T.StructField("_corrupt_record", T.StringType()),
])
REQUIRED = ("event_id", "event_type", "event_time", "carrier", "flight", "origin", "dest", "sched_dep_utc",
            "distance")
TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss'Z'"


class BadRecordError(ValueError):
    """A delivered record is not valid JSON or lacks a required column (the message names the object and line)."""


def read_hour(spark: SparkSession, paths: list[str]) -> DataFrame:
    """The records of the hour's objects (``paths``; none gives an empty frame) with ``source_object``
    (file name) and ``line`` (1-based within the object).

    :raises BadRecordError: naming the first bad record's object, line and problem.
    """
    if not paths:
        return spark.createDataFrame([], SCHEMA).withColumn("source_object", F.lit("")).withColumn("line", F.lit(0))
    text = spark.read.text(paths).withColumn("source_object", F.regexp_extract(F.input_file_name(), r"([^/]+)$", 1))
    from pyspark.sql.window import Window

    text = text.withColumn("line", F.row_number().over(
        Window.partitionBy("source_object").orderBy(F.monotonically_increasing_id())))
    text = text.where(F.trim("value") != "")
    parsed = text.select("*", F.from_json("value", SCHEMA, {"mode": "PERMISSIVE",
                                                            "columnNameOfCorruptRecord": "_corrupt_record"}).alias("r"))
    rows = parsed.select("source_object", "line", "value", "r.*")
    missing = F.concat_ws(",", *[F.when(F.col(c).isNull(), F.lit(c)) for c in REQUIRED])
    bad = rows.where(F.col("_corrupt_record").isNotNull() | (missing != "")).select(
        "source_object", "line", "value", missing.alias("missing"),
        F.col("_corrupt_record").isNotNull().alias("corrupt")).limit(3).collect()
    if bad:
        first = bad[0]
        problem = "not JSON" if first["corrupt"] else f"no value for {first['missing']}"
        raise BadRecordError(f"flight_events: object {first['source_object']}, line {first['line']}: {problem}: "
                             f"{first['value'][:200]!r}")
    return rows.drop("_corrupt_record", "value")


def transform(records: DataFrame, dt: str, hour: str) -> dict[str, Any]:
    """``{"flight_events": df, "departures_hourly": df, "records": int, "duplicates": int}`` (not written).

    :raises BadRecordError: for an event outside the hour ``dt hour``.
    """
    from pyspark.sql.window import Window

    events = (records.withColumn("event_time", F.to_timestamp("event_time", TIME_FORMAT))
              .withColumn("sched_dep_utc", F.to_timestamp("sched_dep_utc", TIME_FORMAT)))
    outside = events.where(F.date_format("event_time", "yyyy-MM-dd HH") != F.lit(f"{dt} {hour}")).limit(1).collect()
    if outside:
        r = outside[0]
        raise BadRecordError(f"flight_events: object {r['source_object']}, line {r['line']}: event_time "
                             f"{r['event_time']} is not in the hour {dt} {hour}:00 UTC")
    first = Window.partitionBy("event_id").orderBy("source_object", "line")
    deduped = (events.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n", "line")
               .withColumn("dt", F.lit(dt)).withColumn("hour", F.lit(hour))).cache()
    departed = F.col("event_type") == "departed"
    hourly = (deduped.groupBy("origin", "carrier").agg(
        F.sum(departed.cast("int")).alias("departures"),
        F.sum((F.col("event_type") == "cancelled").cast("int")).alias("cancelled"),
        F.avg(F.when(departed, F.col("dep_delay"))).alias("avg_dep_delay"))
        .select(F.to_timestamp(F.lit(f"{dt} {hour}:00:00")).alias("hour_utc"), "origin", "carrier",
                F.col("departures").cast("long"), F.col("cancelled").cast("long"), "avg_dep_delay",
                F.lit(dt).alias("dt"), F.lit(hour).alias("hour")))
    n_records, n_events = records.count(), deduped.count()
    return {"flight_events": deduped, "departures_hourly": hourly, "records": n_records,
            "duplicates": n_records - n_events}


def write_hour(df: DataFrame, path: str, dt: str, hour: str, *, empty: bool) -> None:
    """Overwrite only the ``dt``/``hour`` partition of ``df`` under ``path``.

    An hour with no event (``empty``) still gets its partition folder: one Parquet file with the
    table's schema and no rows. Spark's partitioned write creates no folder for an empty frame, and on
    a lake whose table the crawler has not catalogued yet the hour's Athena checks would then fail on
    a table that does not exist; with the file the crawler catalogs the table and the hour, and the
    checks read 0 rows. (A non-partitioned write of an empty frame leaves one file holding the schema:
    Spark's FileFormatWriter, SPARK-23271.)
    """
    if empty:
        df.drop("dt", "hour").coalesce(1).write.mode("overwrite").parquet(f"{path}/dt={dt}/hour={hour}")
        return
    df.sparkSession.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    df.coalesce(1).write.mode("overwrite").partitionBy("dt", "hour").parquet(path)


def run_record(dt: str, hour: str, objects: list[str], result: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The run's record (``run.json``): ``{"dt", "hour", "run_id", "objects" (file names read),
    "records" (lines read), "events" (written, one per event_id), "duplicates" (records dropped)}``."""
    return {"dt": dt, "hour": hour, "run_id": run_id, "objects": sorted(objects), "records": result["records"],
            "events": result["records"] - result["duplicates"], "duplicates": result["duplicates"]}


def main(argv: list[str]) -> None:
    """Glue entry point: list the hour's objects, transform them, write both gold tables and run.json."""
    import boto3
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    args = getResolvedOptions(argv, ["JOB_NAME", "JOB_RUN_ID", "dt", "hour", "bronze_path", "gold_path", "gold_tables",
                                     "runs_path"])
    dt, hour = args["dt"], args["hour"]
    if sorted(t for t in args["gold_tables"].split(",") if t) != sorted(GOLD_TABLES):
        raise ValueError(f"--gold_tables {args['gold_tables']!r}: this script writes {', '.join(GOLD_TABLES)}")
    s3 = boto3.client("s3")
    bucket, _, root = args["bronze_path"][len("s3://"):].partition("/")
    prefix = f"{root.strip('/')}/dt={dt}/hour={hour}/"
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    logger = glue_context.get_logger()
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    result = transform(read_hour(spark, [f"s3://{bucket}/{k}" for k in keys]), dt, hour)
    gold = args["gold_path"].rstrip("/")
    empty = result["records"] == 0
    for name in GOLD_TABLES:
        write_hour(result[name], f"{gold}/{name}", dt, hour, empty=empty)
    record = run_record(dt, hour, [k.rsplit("/", 1)[-1] for k in keys], result, args["JOB_RUN_ID"])
    runs_bucket, _, runs_root = args["runs_path"][len("s3://"):].partition("/")
    s3.put_object(Bucket=runs_bucket, Key=f"{runs_root.strip('/')}/dt={dt}/hour={hour}/run.json",
                  Body=json.dumps(record).encode(), ContentType="application/json")
    logger.info(f"flight_events_gold {dt} {hour}:00: {len(keys)} objects, {record['records']} records, "
                f"{record['events']} events written to {gold}/flight_events/dt={dt}/hour={hour}/, "
                f"{record['duplicates']} duplicates dropped")
    job.commit()


if __name__ == "__main__":
    main(sys.argv)
