"""Glue 5.0 job "sales_gold": one day of silver sales (TPC-H order lines) -> gold ``sales`` and ``sales_region_daily``.

Job arguments (``getResolvedOptions``), the same as flights_gold.py's; all but ``--ds`` are the
job's default arguments, from ``lake.layout.Layout.glue_arguments``:

* ``--ds``: the day, ``YYYY-MM-DD`` (the orders' ``o_orderdate``).
* ``--partition_name``: the partition column (the contract's ``partition_key``, ``dt``); below
  ``<p>=<ds>`` is the day's partition folder.
* ``--gold_tables``: the contract's gold tables, comma-separated; must be :data:`GOLD_TABLES`
  (this script's outputs), each written to ``<gold_path>/<table>/``.
* ``--silver_path``: ``s3://<silver>/sales`` (the day is read from ``<silver_path>/<p>=<ds>/``).
* ``--dimensions_path``: ``s3://<silver>/reference`` holding ``customer/``, ``supplier/``,
  ``nation/``, ``region/``, ``partsupp/`` (Parquet, ``lake source load-dimensions --dataset sales``).
* ``--gold_path``: ``s3://<gold>``; writes ``<gold_path>/sales/<p>=<ds>/`` and
  ``<gold_path>/sales_region_daily/<p>=<ds>/``.
* ``--lease_path``: ``s3://<artifacts>/leases/<job>``; the run holds ``<lease_path>/<p>=<ds>.json``
  while it writes the day (see :func:`acquire_lease`).

Each output overwrites only its day's partition (dynamic partition overwrite), so a rerun or a
backfill of a day replaces that day and leaves the others alone; two runs of one day at once are
kept apart by the day's lease, exactly as in flights_gold.py (whose docstring explains the lease).

Gold ``sales`` (one row per order line): every silver column, plus

* ``customer_nation``, ``customer_region`` (the ordering customer's nation and region names:
  customer -> nation -> region), ``supplier_nation`` (the line's supplier's nation name),
  ``ps_supplycost`` (partsupp of the line's part and supplier). Left joins on the dimensions'
  unique keys, so the row count is the silver count; an unknown key gives nulls, which the
  data-quality checks (include/sql/sales/dq) report;
* ``revenue`` = ``l_extendedprice * (1 - l_discount)``, ``cost`` = ``ps_supplycost * l_quantity``,
  ``profit`` = ``revenue - cost`` (TPC-H query 9's ``amount``, clause 2.4.9), double;
* ``<p>`` (``dt``: string ``YYYY-MM-DD``, the partition; the orders' ``o_orderdate``).

Gold ``sales_region_daily`` (one row per ``<p>`` and customer region): ``region``, ``orders``
(distinct ``o_orderkey``), ``lines``, ``quantity`` (sum of ``l_quantity``), ``revenue``, ``cost``,
``profit`` (sums), ``profit_margin`` = profit / revenue (null when revenue is 0).

The lease and the partition writing are the same code as in flights_gold.py (copied: a Glue job
runs one script file and the project's jobs pass no ``--extra-py-files``; a shared module for
both would need one, uploaded by provisioning).

The transformations are plain functions so tests can import this file by path and run them on
a local SparkSession; ``main`` is what Glue runs.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

GOLD_TABLES = ("sales", "sales_region_daily")
#: The partition column when a caller gives none (the sales contract's ``partition_key``); ``main``
#: always passes ``--partition_name``.
PARTITION = "dt"
#: The dimension tables read from ``--dimensions_path`` (one folder each).
DIMENSIONS = ("customer", "supplier", "nation", "region", "partsupp")
#: Glue job run states in which a run may still write (``JobRunState``, Glue API reference).
ACTIVE_RUN_STATES = ("STARTING", "RUNNING", "STOPPING", "WAITING")


# --- the day's lease: the same code as flights_gold.py ------------------------------------------


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


# --- sales --------------------------------------------------------------------------------------


def read_day(spark: SparkSession, silver_path: str, ds: str, partition: str = PARTITION) -> DataFrame:
    """The silver sales of ``ds`` (``<silver_path>/<partition>=<ds>/``) with a ``<partition>``
    string column.

    :raises pyspark.errors.AnalysisException: "Path does not exist" when the day has no silver data.
    """
    return spark.read.parquet(f"{silver_path.rstrip('/')}/{partition}={ds}/").withColumn(partition, F.lit(ds))


def enrich_sales(sales: DataFrame, customer: DataFrame, supplier: DataFrame, nation: DataFrame,
                 region: DataFrame, partsupp: DataFrame) -> DataFrame:
    """Gold ``sales`` from silver sales and the TPC-H dimensions (columns in the module docstring).
    Row count is unchanged (left joins on the dimensions' unique keys)."""
    nations = nation.join(region, F.col("n_regionkey") == F.col("r_regionkey"), "left")
    customers = customer.join(F.broadcast(nations), F.col("c_nationkey") == F.col("n_nationkey"), "left").select(
        F.col("c_custkey").alias("o_custkey"), F.col("n_name").alias("customer_nation"),
        F.col("r_name").alias("customer_region"))
    suppliers = supplier.join(F.broadcast(nation), F.col("s_nationkey") == F.col("n_nationkey"), "left").select(
        F.col("s_suppkey").alias("l_suppkey"), F.col("n_name").alias("supplier_nation"))
    costs = partsupp.select(F.col("ps_partkey").alias("l_partkey"), F.col("ps_suppkey").alias("l_suppkey"),
                            "ps_supplycost")
    revenue = F.col("l_extendedprice") * (F.lit(1.0) - F.col("l_discount"))
    cost = F.col("ps_supplycost") * F.col("l_quantity")
    return (
        sales.join(customers, "o_custkey", "left")
        .join(suppliers, "l_suppkey", "left")
        .join(costs, ["l_partkey", "l_suppkey"], "left")
        .withColumn("revenue", revenue)
        .withColumn("cost", cost)
        .withColumn("profit", F.col("revenue") - F.col("cost"))
        .select(*sales.columns, "customer_nation", "customer_region", "supplier_nation", "ps_supplycost",
                "revenue", "cost", "profit")
    )


def region_daily(gold_sales: DataFrame, partition: str = PARTITION) -> DataFrame:
    """Gold ``sales_region_daily`` from gold ``sales``: one row per (``partition`` = day, customer
    region); counts bigint, quantity and money double."""
    return (
        gold_sales.groupBy(partition, F.col("customer_region").alias("region"))
        .agg(
            F.countDistinct("o_orderkey").alias("orders"),
            F.count(F.lit(1)).alias("lines"),
            F.sum("l_quantity").alias("quantity"),
            F.sum("revenue").alias("revenue"),
            F.sum("cost").alias("cost"),
            F.sum("profit").alias("profit"),
        )
        .withColumn("profit_margin", F.when(F.col("revenue") != 0, F.col("profit") / F.col("revenue")))
        .select(partition, "region", "orders", "lines", "quantity", "revenue", "cost", "profit", "profit_margin")
    )


def transform(spark: SparkSession, ds: str, silver_path: str, dimensions_path: str,
              partition: str = PARTITION) -> dict[str, DataFrame]:
    """Read the day and the dimensions; return ``{"sales": ..., "sales_region_daily": ...}`` (not written).

    Nothing is cached: each table is one pass over the silver Parquet when it is written (the
    aggregate's pass reads only the columns it needs), as in flights_gold.py.
    """
    dims = dimensions_path.rstrip("/")
    tables = {name: spark.read.parquet(f"{dims}/{name}/") for name in DIMENSIONS}
    gold = enrich_sales(read_day(spark, silver_path, ds, partition), **tables)
    return {"sales": gold, "sales_region_daily": region_daily(gold, partition)}


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
    logger = glue_context.get_logger()
    if lease["took_over"]:
        logger.warn(f"sales_gold {ds}: took over the lease of run {lease['took_over']}, which is no longer active")
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    try:
        tables = transform(spark, ds, args["silver_path"], args["dimensions_path"], part)
        gold = args["gold_path"].rstrip("/")
        for name in tables_out:
            rows = write_partition(tables[name], f"{gold}/{name}", part)
            logger.info(f"sales_gold {ds}: wrote {rows} rows to {gold}/{name}/{part}={ds}/")
        job.commit()
    finally:
        release_lease(s3, args["lease_path"], ds, run_id, part)


if __name__ == "__main__":
    main(sys.argv)
