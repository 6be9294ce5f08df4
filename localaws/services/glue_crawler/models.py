"""The crawl: one crawler run over its S3 targets, written into moto's Glue catalog.

:class:`LocalCrawl` is one crawl's state (kept in the crawler's ``crawls``, shaped for ListCrawls
and ``LastCrawl``); ``_crawl`` runs it on a background thread: it groups each ``S3Targets`` path's
objects into tables (:mod:`localaws.services.glue_crawler.grouping`), samples and infers each
table's schema (:mod:`localaws.services.glue_crawler.inference`), then creates or updates the
tables and adds their partitions in the Glue catalog that ``GetTable`` and Athena read, as the
crawler's ``SchemaChangePolicy`` says. Objects are read from moto's in-memory S3, never over HTTP.
States: RUNNING -> STOPPING -> COMPLETED | STOPPED | FAILED (moto's crawl states); a few lines go
to CloudWatch Logs ``/aws-glue/crawlers``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from moto.glue import models as glue_models
from moto.logs.models import logs_backends
from moto.moto_api._internal import mock_random

from localaws.runtime import RUNTIME, log
from localaws.services import s3memory
from localaws.services.glue_crawler.grouping import TablePlan, merge_similar, plan_target, table_name
from localaws.services.glue_crawler.inference import (
    SAMPLE_BYTES,
    FileSchema,
    UnknownFormat,
    infer_schema,
    merge_schemas,
)

#: CSV/JSON objects sampled per table (Parquet footers are read for every object).
SAMPLE_FILES = 5
#: A crawl lasts at least this many seconds (tests raise it to exercise StopCrawler).
MIN_CRAWL_SECONDS = 0.0
#: After StopCrawler a crawler stays STOPPING at least this long before READY, so a client sees
#: the state AWS documents between the two (on AWS stopping takes seconds or more).
STOPPING_SECONDS = 2.0
LOG_GROUP = "/aws-glue/crawlers"

PARQUET_FORMATS = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
}
TEXT_FORMATS = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
}
_catalog_lock = threading.Lock()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LocalCrawl:
    """One crawl, shaped for ListCrawls (``CrawlerHistory``) and ``LastCrawl``.

    ``status``: RUNNING, STOPPING, COMPLETED, STOPPED or FAILED (moto's crawl states).
    """

    def __init__(self, crawler_name: str) -> None:
        self.crawl_id = str(mock_random.uuid4())
        self.crawler_name = crawler_name
        self.status = "RUNNING"
        self.start_time = _now()
        self.end_time: datetime | None = None
        self.error_message: str | None = None
        self.stop_requested = False
        self.stop_requested_at: float | None = None  # time.monotonic() of StopCrawler
        self.log_group = LOG_GROUP
        self.log_stream = crawler_name
        self.message_prefix = self.crawl_id
        self.dpu_hour = 0.0
        self.summary: dict[str, int] = {}

    def advance(self) -> None:
        """State is driven by the crawl thread."""

    @property
    def finished(self) -> bool:
        return self.status in ("COMPLETED", "STOPPED", "FAILED")

    @property
    def last_crawl_status(self) -> str:
        return {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED", "FAILED": "FAILED"}.get(self.status, self.status)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "CrawlId": self.crawl_id,
            "State": "RUNNING" if self.status == "STOPPING" else self.status,
            "StartTime": self.start_time,
            "DPUHour": self.dpu_hour,
            "LogGroup": self.log_group,
            "LogStream": self.log_stream,
            "MessagePrefix": self.message_prefix,
            "Summary": json.dumps(self.summary),
        }
        if self.end_time:
            out["EndTime"] = self.end_time
        if self.error_message:
            out["ErrorMessage"] = self.error_message
        return out


def _cloudwatch(crawler: glue_models.FakeCrawler, crawl: LocalCrawl, message: str) -> None:
    try:
        logs = logs_backends[crawler.backend.account_id][crawler.backend.region_name]
        logs.ensure_log_group(LOG_GROUP)
        if crawler.name not in logs.groups[LOG_GROUP].streams:
            logs.create_log_stream(LOG_GROUP, crawler.name)
        logs.put_log_events(LOG_GROUP, crawler.name,
                            [{"timestamp": int(time.time() * 1000), "message": f"[{crawl.crawl_id}] {message}"}])
    except Exception:  # noqa: BLE001 - logging must never fail a crawl
        log.debug("crawler %s: CloudWatch log write failed", crawler.name, exc_info=True)


def _storage_descriptor(schema: FileSchema, location: str, crawler_name: str, objects: list[s3memory.S3Object],
                        columns: list[tuple[str, str]]) -> dict[str, Any]:
    size = sum(o.size for o in objects)
    params = {
        "classification": schema.classification,
        "compressionType": schema.compression,
        "typeOfData": "file",
        "objectCount": str(len(objects)),
        "sizeKey": str(size),
        "recordCount": str(schema.records),
        "averageRecordSize": str(size // schema.records if schema.records else 0),
        "CrawlerSchemaDeserializerVersion": "1.0",
        "CrawlerSchemaSerializerVersion": "1.0",
        "UPDATED_BY_CRAWLER": crawler_name,
    }
    if schema.classification == "parquet":
        formats, serde = PARQUET_FORMATS, {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            "Parameters": {"serialization.format": "1"},
        }
    elif schema.classification == "csv":
        delim = schema.options.get("delimiter", ",")
        params.update({"delimiter": delim, "columnsOrdered": "true",
                       "areColumnsQuoted": str(bool(schema.options.get("quoted"))).lower()})
        if schema.options.get("header"):
            params["skip.header.line.count"] = "1"
        formats = TEXT_FORMATS
        if schema.options.get("quoted"):
            serde = {"SerializationLibrary": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
                     "Parameters": {"separatorChar": delim, "quoteChar": '"'}}
        else:
            serde = {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                     "Parameters": {"field.delim": delim}}
    else:
        formats = TEXT_FORMATS
        serde = {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                 "Parameters": {"paths": ",".join(n for n, _ in columns)}}
    return {
        "Columns": [{"Name": n, "Type": t} for n, t in columns],
        "Location": location,
        **formats,
        "Compressed": schema.compression != "none",
        "NumberOfBuckets": -1,
        "SerdeInfo": serde,
        "BucketColumns": [],
        "SortColumns": [],
        "Parameters": params,
        "StoredAsSubDirectories": False,
    }


def _infer_plan(account_id: str, plan: TablePlan) -> None:
    schemas: list[FileSchema] = []
    parquet = [o for o in plan.objects if o.key.endswith(".parquet")]
    sampled = 0
    for obj in plan.objects:
        is_parquet_name = obj in parquet
        if not is_parquet_name and sampled >= SAMPLE_FILES and schemas and schemas[0].classification != "parquet":
            continue
        data = s3memory.read_object(account_id, obj.bucket, obj.key)
        truncated = False
        if data[:4] != b"PAR1" and len(data) > SAMPLE_BYTES and data[:2] != b"\x1f\x8b":
            data, truncated = data[:SAMPLE_BYTES], True
        try:
            schemas.append(infer_schema(obj.key, data, truncated=truncated))
        except UnknownFormat as exc:
            log.warning("crawler: %s is not a recognised format (%s); ignored", obj.url, exc)
        sampled += 1
    if not schemas:
        plan.schema = None
        return
    majority = Counter(s.classification for s in schemas).most_common(1)[0][0]
    plan.schema = merge_schemas([s for s in schemas if s.classification == majority])


def target_url(path: str) -> str:
    """An ``S3Targets`` ``Path`` as the crawl reads it: ``s3://`` added when it has no scheme
    (``"bucket/prefix"`` -> ``"s3://bucket/prefix"``, which AWS's crawler accepts and crawls), and
    empty path segments dropped (:func:`s3memory.normalize_location`)."""
    path = path.strip()
    if "://" not in path:
        path = "s3://" + path.lstrip("/")
    return s3memory.normalize_location(path)


def _crawl(crawler: glue_models.FakeCrawler, crawl: LocalCrawl) -> None:
    backend = crawler.backend
    account_id = backend.account_id
    started = time.monotonic()
    created = updated = deleted = parts_added = 0
    _cloudwatch(crawler, crawl, f"BENCHMARK : Running Start Crawl for Crawler {crawler.name}")
    try:
        plans: list[TablePlan] = []
        for target in (crawler.targets or {}).get("S3Targets", []) or []:
            path = target_url(target.get("Path", ""))
            bucket, key_prefix = s3memory.split_url(path)
            if key_prefix and not key_prefix.endswith("/"):
                key_prefix += "/"
            target_plans = plan_target(account_id, path, target.get("Exclusions") or [], crawler.table_prefix)
            for plan in target_plans:
                if crawl.stop_requested:
                    break
                _infer_plan(account_id, plan)
            target_plans = [p for p in target_plans if p.schema is not None]
            base = key_prefix.rstrip("/").rsplit("/", 1)[-1] if key_prefix else bucket
            plans += merge_similar(target_plans, f"s3://{bucket}/{key_prefix}", table_name(base, crawler.table_prefix))
        deadline = crawl.start_time.timestamp() + MIN_CRAWL_SECONDS
        while time.time() < deadline and not crawl.stop_requested:
            time.sleep(0.05)
        if crawl.stop_requested:
            stopping_until = (getattr(crawl, "stop_requested_at", None) or time.monotonic()) + STOPPING_SECONDS
            while (left := stopping_until - time.monotonic()) > 0 and not RUNTIME.stopping.wait(min(left, 0.05)):
                pass
            crawl.status = "STOPPED"
            return
        policy = crawler.schema_change_policy or {}
        update_behavior = policy.get("UpdateBehavior", "UPDATE_IN_DATABASE")
        delete_behavior = policy.get("DeleteBehavior", "DEPRECATE_IN_DATABASE")
        with _catalog_lock:
            if crawler.database_name not in backend.databases:
                backend.create_database(crawler.database_name, {"Name": crawler.database_name})
            database = backend.databases[crawler.database_name]
            for plan in plans:
                c, u, p = _write_table(backend, crawler, plan, update_behavior)
                created, updated, parts_added = created + c, updated + u, parts_added + p
            deleted = _handle_deleted(backend, database, crawler, plans, delete_behavior)
        crawl.status = "STOPPING"
        crawl.summary = {"TablesCreated": created, "TablesUpdated": updated, "TablesDeleted": deleted,
                         "PartitionsAdded": parts_added}
        crawl.status = "COMPLETED"
    except Exception as exc:  # noqa: BLE001 - any failure is the crawl's failure
        log.exception("crawler %s failed", crawler.name)
        crawl.error_message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, s3memory.S3PathError) else str(exc)
        crawl.status = "FAILED"
    finally:
        elapsed = time.monotonic() - started
        crawl.end_time = _now()
        crawl.dpu_hour = round(elapsed / 3600, 6)
        metrics = _metrics(crawler)
        metrics["runtimes"] = (metrics["runtimes"] + [elapsed])[-20:]
        metrics.update(TablesCreated=created, TablesUpdated=updated, TablesDeleted=deleted)
        _cloudwatch(crawler, crawl, f"BENCHMARK : Crawler has finished running and is in state READY "
                                    f"({crawl.last_crawl_status})")
        log.info("crawler %s: %s, %d tables created, %d updated, %d partitions added in %.1f s%s", crawler.name,
                 crawl.last_crawl_status, created, updated, parts_added, elapsed,
                 f" - {crawl.error_message}" if crawl.error_message else "")


def _columns_signature(table_input: dict[str, Any]) -> tuple:
    sd = table_input.get("StorageDescriptor") or {}
    return (
        tuple((c["Name"], c["Type"]) for c in sd.get("Columns", [])),
        tuple((c["Name"], c["Type"]) for c in table_input.get("PartitionKeys", [])),
        sd.get("InputFormat"),
        (sd.get("SerdeInfo") or {}).get("SerializationLibrary"),
        sd.get("Location"),
    )


def _write_table(backend: glue_models.GlueBackend, crawler: glue_models.FakeCrawler, plan: TablePlan,
                 update_behavior: str) -> tuple[int, int, int]:
    """Create or update one table and add its new partitions; returns (created, updated, partitions added)."""
    assert plan.schema is not None
    keys = set(plan.partition_keys)
    columns = [(n, t) for n, t in plan.schema.columns if n not in keys]
    sd = _storage_descriptor(plan.schema, plan.location, crawler.name, plan.objects, columns)
    table_input = {
        "Name": plan.name,
        "Owner": "owner",
        "Retention": 0,
        "StorageDescriptor": sd,
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in plan.partition_keys],
        "TableType": "EXTERNAL_TABLE",
        "Parameters": dict(sd["Parameters"]),
    }
    database = backend.databases[crawler.database_name]
    existing = database.tables.get(plan.name)
    created = updated = 0
    if existing is None:
        backend.create_table(crawler.database_name, plan.name, table_input)
        table = database.tables[plan.name]
        created = 1
    else:
        table = existing
        current = existing.get_version(str(existing._current_version))
        if _columns_signature(current) != _columns_signature(table_input):
            if update_behavior == "UPDATE_IN_DATABASE":
                existing.update(table_input)
                updated = 1
            else:
                log.info("crawler %s: schema of %s.%s changed; not updated (UpdateBehavior=%s)", crawler.name,
                         crawler.database_name, plan.name, update_behavior)
    added = 0
    if plan.partition_keys:
        by_location: dict[str, list[s3memory.S3Object]] = {}
        for obj in plan.objects:
            for loc in plan.partitions.values():
                if obj.url.startswith(loc):
                    by_location.setdefault(loc, []).append(obj)
                    break
        for values, loc in sorted(plan.partitions.items()):
            if str(list(values)) in table.partitions:
                continue
            part_sd = _storage_descriptor(plan.schema, loc, crawler.name, by_location.get(loc, []), columns)
            table.create_partition({"Values": list(values), "StorageDescriptor": part_sd,
                                    "Parameters": dict(part_sd["Parameters"])})
            added += 1
    return created, updated, added


def _handle_deleted(backend: glue_models.GlueBackend, database, crawler: glue_models.FakeCrawler,
                    plans: list[TablePlan], behavior: str) -> int:
    """Tables this crawler made whose data is gone: DeleteBehavior LOG / DELETE_FROM_DATABASE /
    DEPRECATE_IN_DATABASE. Returns how many were deleted or deprecated."""
    found = {p.name for p in plans}
    targets = [target_url(t.get("Path", "")) for t in (crawler.targets or {}).get("S3Targets", []) or []]
    gone = []
    for name, table in list(database.tables.items()):
        current = table.get_version(str(table._current_version))
        params = current.get("Parameters") or {}
        location = (current.get("StorageDescriptor") or {}).get("Location", "")
        if name in found or params.get("UPDATED_BY_CRAWLER") != crawler.name:
            continue
        if any(location.startswith(t.rstrip("/")) for t in targets):
            gone.append((name, table, current))
    if behavior == "LOG":
        for name, _, _ in gone:
            log.info("crawler %s: table %s has no data any more (DeleteBehavior=LOG)", crawler.name, name)
        return 0
    for name, table, current in gone:
        if behavior == "DELETE_FROM_DATABASE":
            del database.tables[name]
        else:
            new = json.loads(json.dumps(current, default=str))
            for drop in ("DatabaseName", "CreateTime", "UpdateTime", "VersionId", "CatalogId"):
                new.pop(drop, None)
            new.setdefault("Parameters", {})["DEPRECATED_BY_CRAWLER"] = "1"
            table.update(new)
    return len(gone)


def _metrics(crawler: glue_models.FakeCrawler) -> dict[str, Any]:
    metrics = crawler.__dict__.get("localaws_metrics")
    if metrics is None:
        metrics = {"runtimes": [], "TablesCreated": 0, "TablesUpdated": 0, "TablesDeleted": 0}
        crawler.localaws_metrics = metrics  # type: ignore[attr-defined]
    return metrics
