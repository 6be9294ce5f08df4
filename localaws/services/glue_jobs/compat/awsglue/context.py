"""``awsglue.context.GlueContext`` for local PySpark: S3 sources and sinks, the Glue Data Catalog
through the Glue API of localaws, and ``purge_s3_path``.

Sources: ``connection_type="s3"`` with format ``csv``, ``json``, ``parquet`` (also ``glueparquet``)
or ``orc``. Sinks write with Spark's ``append`` mode, as Glue's S3 sink does (it never deletes).
"""

from __future__ import annotations

import functools
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import localaws_s3_bridge as bridge
from pyspark.context import SparkContext
from pyspark.sql import DataFrame, SparkSession

from awsglue.dynamicframe import DynamicFrame

_FORMATS = {"csv": "csv", "json": "json", "parquet": "parquet", "glueparquet": "parquet", "orc": "orc"}


@functools.lru_cache(maxsize=1)
def _glue_client():
    import boto3

    return boto3.client("glue")


def _spark_format(fmt: str) -> str:
    f = (fmt or "").lower()
    if f not in _FORMATS:
        raise NotImplementedError(f"format {fmt!r} is not supported by localaws GlueContext (csv, json, parquet, orc)")
    return _FORMATS[f]


def _catalog_format(table: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """Spark format and reader options of a catalog table, from its classification / SerDe."""
    sd = table.get("StorageDescriptor", {})
    params = {**table.get("Parameters", {}), **sd.get("Parameters", {})}
    classification = (params.get("classification") or "").lower()
    serde = sd.get("SerdeInfo", {}).get("SerializationLibrary", "") or ""
    input_format = sd.get("InputFormat", "") or ""
    serde_params = sd.get("SerdeInfo", {}).get("Parameters", {}) or {}
    if classification == "parquet" or "Parquet" in input_format or "parquet" in serde.lower():
        return "parquet", {}
    if classification == "orc" or "Orc" in input_format:
        return "orc", {}
    if classification == "json" or "JsonSerDe" in serde:
        return "json", {}
    if classification == "csv" or "LazySimpleSerDe" in serde or "OpenCSVSerde" in serde:
        sep = serde_params.get("field.delim") or serde_params.get("separatorChar") or ","
        header = str(params.get("skip.header.line.count", "0")) != "0"
        return "csv", {"sep": sep, "header": str(header).lower()}
    raise NotImplementedError(
        f"table {table.get('DatabaseName')}.{table.get('Name')}: storage format {classification or input_format!r} "
        "is not supported by localaws"
    )


class _Logger:
    """Stand-in for Glue's log4j logger: lines go to the driver's stdout (``/aws-glue/jobs/output``)."""

    def _emit(self, level: str, msg: str) -> None:
        print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} {level} GlueLogger: {msg}", flush=True)

    def info(self, msg: str) -> None:
        self._emit("INFO", msg)

    def warn(self, msg: str) -> None:
        self._emit("WARN", msg)

    def error(self, msg: str) -> None:
        self._emit("ERROR", msg)


class GlueContext:
    """Glue's entry point, wrapping a SparkContext (created with localaws's local settings)."""

    def __init__(self, sparkContext: SparkContext | None = None, **options: Any) -> None:
        self._sc = sparkContext or SparkContext.getOrCreate()
        self.spark_session = SparkSession(self._sc) if sparkContext else SparkSession.builder.getOrCreate()
        self.create_dynamic_frame = _DynamicFrameReader(self)
        self.create_data_frame = _DataFrameReader(self)
        self.write_dynamic_frame = _DynamicFrameWriter(self)

    # -- the flat aliases Glue also offers
    def create_dynamic_frame_from_options(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        return self.create_dynamic_frame.from_options(*args, **kwargs)

    def create_dynamic_frame_from_catalog(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        return self.create_dynamic_frame.from_catalog(*args, **kwargs)

    def create_data_frame_from_catalog(self, *args: Any, **kwargs: Any) -> DataFrame:
        return self.create_data_frame.from_catalog(*args, **kwargs)

    def create_data_frame_from_options(self, *args: Any, **kwargs: Any) -> DataFrame:
        return self.create_data_frame.from_options(*args, **kwargs)

    def write_dynamic_frame_from_options(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        return self.write_dynamic_frame.from_options(*args, **kwargs)

    def write_dynamic_frame_from_catalog(self, *args: Any, **kwargs: Any) -> DynamicFrame:
        return self.write_dynamic_frame.from_catalog(*args, **kwargs)

    def get_logger(self) -> _Logger:
        return _Logger()

    # -- reading
    def _read_s3(self, paths: list[str], fmt: str, format_options: dict[str, Any] | None,
                 schema: Any = None, base_path: str | None = None) -> DataFrame:
        opts = dict(format_options or {})
        spark_fmt = _spark_format(fmt)
        reader = self.spark_session.read.format(spark_fmt)
        if spark_fmt == "csv":
            reader = reader.option("header", str(bool(opts.pop("withHeader", False))).lower())
            reader = reader.option("sep", opts.pop("separator", ","))
            reader = reader.option("quote", opts.pop("quoteChar", '"'))
            if opts.pop("multiline", False):
                reader = reader.option("multiLine", "true")
            if schema is None:
                reader = reader.option("inferSchema", "true")
        elif spark_fmt == "json" and opts.pop("multiline", False):
            reader = reader.option("multiLine", "true")
        for key, value in opts.items():
            if key not in ("compression", "jsonPath", "optimizePerformance"):
                reader = reader.option(key, value)
        if schema is not None:
            reader = reader.schema(schema)
        if base_path:
            reader = reader.option("basePath", base_path)
        return reader.load(paths if len(paths) > 1 else paths[0])

    def _read_catalog(self, database: str, table_name: str, push_down_predicate: str = "",
                      additional_options: dict[str, Any] | None = None) -> DataFrame:
        from pyspark.sql.types import StructField, StructType
        from pyspark.sql.types import _parse_datatype_string

        table = _glue_client().get_table(DatabaseName=database, Name=table_name)["Table"]
        location = table["StorageDescriptor"]["Location"]
        fmt, options = _catalog_format(table)
        part_keys = table.get("PartitionKeys", [])
        paths = [location]
        base = None
        predicate = push_down_predicate or (additional_options or {}).get("catalogPartitionPredicate", "")
        if part_keys and predicate:
            paginator = _glue_client().get_paginator("get_partitions")
            parts = [p for page in paginator.paginate(DatabaseName=database, TableName=table_name, Expression=predicate)
                     for p in page["Partitions"]]
            paths = [p["StorageDescriptor"]["Location"] for p in parts]
            base = location
            if not paths:
                return self._empty_frame(table)
        schema = None
        if fmt == "csv":
            schema = StructType([StructField(c["Name"], _parse_datatype_string(_to_spark(c["Type"])))
                                 for c in table["StorageDescriptor"]["Columns"]])
        reader = self.spark_session.read.format(fmt).options(**options)
        if schema is not None:
            reader = reader.schema(schema)
        if base:
            reader = reader.option("basePath", base)
        df = reader.load(paths if len(paths) > 1 else paths[0])
        for key in part_keys:
            if key["Name"] in df.columns:
                df = df.withColumn(key["Name"], df[key["Name"]].cast(_to_spark(key["Type"])))
        return df

    def _empty_frame(self, table: dict[str, Any]) -> DataFrame:
        from pyspark.sql.types import StructField, StructType
        from pyspark.sql.types import _parse_datatype_string

        cols = table["StorageDescriptor"]["Columns"] + table.get("PartitionKeys", [])
        schema = StructType([StructField(c["Name"], _parse_datatype_string(_to_spark(c["Type"]))) for c in cols])
        return self.spark_session.createDataFrame([], schema)

    # -- writing
    def _write_s3(self, df: DataFrame, path: str, fmt: str, partition_keys: list[str],
                  format_options: dict[str, Any] | None) -> None:
        spark_fmt = _spark_format(fmt)
        writer = df.write.mode("append").format(spark_fmt)
        opts = dict(format_options or {})
        if spark_fmt == "csv":
            writer = writer.option("header", str(bool(opts.pop("writeHeader", True))).lower())
            writer = writer.option("sep", opts.pop("separator", ","))
        if "compression" in opts:
            writer = writer.option("compression", opts.pop("compression"))
        if partition_keys:
            writer = writer.partitionBy(*partition_keys)
        writer.save(path)

    def purge_s3_path(self, s3_path: str, options: dict[str, Any] | None = None, transformation_ctx: str = "") -> None:
        """Delete the objects under ``s3_path`` older than ``retentionPeriod`` hours (default 168, as Glue).

        ``excludeStorageClasses`` is honoured; ``manifestFilePath`` is not written locally.
        """
        opts = options or {}
        hours = float(opts.get("retentionPeriod", 168))
        excluded = set(opts.get("excludeStorageClasses", []))
        cutoff = datetime.now(timezone.utc) - timedelta(hours=hours)
        bucket, key = bridge.split_url(s3_path)
        doomed = [o["Key"] for o in bridge.list_keys(bucket, key)
                  if o["LastModified"] <= cutoff and o.get("StorageClass", "STANDARD") not in excluded]
        bridge.delete_keys(bucket, doomed)
        print(f"purge_s3_path {s3_path}: deleted {len(doomed)} objects older than {hours:g} hours", file=sys.stderr)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotImplementedError(f"GlueContext.{name} is not supported by localaws (see docs/localaws.md)")


def _to_spark(glue_type: str) -> str:
    t = glue_type.strip().lower()
    return {"string": "string", "bigint": "bigint", "int": "int", "integer": "int", "double": "double",
            "float": "float", "boolean": "boolean", "date": "date", "timestamp": "timestamp",
            "smallint": "smallint", "tinyint": "tinyint"}.get(t, t)


def _only_s3(connection_type: str) -> None:
    if connection_type != "s3":
        raise NotImplementedError(f"connection_type={connection_type!r} is not supported by localaws (only 's3')")


class _DynamicFrameReader:
    def __init__(self, ctx: GlueContext) -> None:
        self._ctx = ctx

    def from_options(self, connection_type: str, connection_options: dict[str, Any] | None = None,
                     format: str | None = None, format_options: dict[str, Any] | None = None,
                     transformation_ctx: str = "", **kwargs: Any) -> DynamicFrame:
        _only_s3(connection_type)
        paths = list((connection_options or {}).get("paths") or [])
        if not paths:
            raise ValueError("connection_options['paths'] must list at least one s3:// path")
        df = self._ctx._read_s3(paths, format or "", format_options)
        return DynamicFrame(df, self._ctx, transformation_ctx)

    def from_catalog(self, database: str | None = None, table_name: str | None = None, redshift_tmp_dir: str = "",
                     transformation_ctx: str = "", push_down_predicate: str = "",
                     additional_options: dict[str, Any] | None = None, catalog_id: str | None = None,
                     name_space: str | None = None, **kwargs: Any) -> DynamicFrame:
        df = self._ctx._read_catalog(database or name_space or "", table_name or "", push_down_predicate,
                                     additional_options)
        return DynamicFrame(df, self._ctx, transformation_ctx)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotImplementedError(f"create_dynamic_frame.{name} is not supported by localaws")


class _DataFrameReader:
    def __init__(self, ctx: GlueContext) -> None:
        self._ctx = ctx

    def from_options(self, *args: Any, **kwargs: Any) -> DataFrame:
        return _DynamicFrameReader(self._ctx).from_options(*args, **kwargs).toDF()

    def from_catalog(self, *args: Any, **kwargs: Any) -> DataFrame:
        return _DynamicFrameReader(self._ctx).from_catalog(*args, **kwargs).toDF()

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotImplementedError(f"create_data_frame.{name} is not supported by localaws")


class _DynamicFrameWriter:
    def __init__(self, ctx: GlueContext) -> None:
        self._ctx = ctx

    def from_options(self, frame: DynamicFrame, connection_type: str = "s3",
                     connection_options: dict[str, Any] | None = None, format: str | None = None,
                     format_options: dict[str, Any] | None = None, transformation_ctx: str = "",
                     **kwargs: Any) -> DynamicFrame:
        _only_s3(connection_type)
        opts = connection_options or {}
        if "path" not in opts:
            raise ValueError("connection_options['path'] is required for an s3 sink")
        self._ctx._write_s3(_as_df(frame), opts["path"], format or "parquet", list(opts.get("partitionKeys", [])),
                            format_options)
        return frame

    def from_catalog(self, frame: DynamicFrame, database: str | None = None, table_name: str | None = None,
                     redshift_tmp_dir: str = "", transformation_ctx: str = "",
                     additional_options: dict[str, Any] | None = None, catalog_id: str | None = None,
                     name_space: str | None = None, **kwargs: Any) -> DynamicFrame:
        db = database or name_space or ""
        table = _glue_client().get_table(DatabaseName=db, Name=table_name)["Table"]
        fmt, _ = _catalog_format(table)
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        opts = additional_options or {}
        keys = list(opts.get("partitionKeys", keys))
        location = table["StorageDescriptor"]["Location"]
        df = _as_df(frame)
        self._ctx._write_s3(df, location, fmt, keys, None)
        if opts.get("enableUpdateCatalog") and keys:
            _register_partitions(db, table, keys, df)
        return frame

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotImplementedError(f"write_dynamic_frame.{name} is not supported by localaws")


def _as_df(frame: Any) -> DataFrame:
    return frame.toDF() if isinstance(frame, DynamicFrame) else frame


def _register_partitions(database: str, table: dict[str, Any], keys: list[str], df: DataFrame) -> None:
    """enableUpdateCatalog: add catalog partitions for the partition values just written."""
    values = [tuple(str(v) for v in row) for row in df.select(*keys).distinct().collect()]
    client = _glue_client()
    location = table["StorageDescriptor"]["Location"].rstrip("/")
    for vals in values:
        sd = dict(table["StorageDescriptor"])
        sd["Location"] = location + "/" + "/".join(f"{k}={v}" for k, v in zip(keys, vals)) + "/"
        try:
            client.create_partition(DatabaseName=database, TableName=table["Name"],
                                    PartitionInput={"Values": list(vals), "StorageDescriptor": sd})
        except client.exceptions.AlreadyExistsException:
            pass
