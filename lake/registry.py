"""Reading the delivery registry: what has been delivered to the lake, and how far a dataset has got.

The ``lake-registry`` Lambda (``include/lambdas/registry/handler.py``) writes one item per object
version delivered to bronze into the DynamoDB table ``LAKE_REGISTRY_TABLE`` (default
``lake_deliveries``; definition in :func:`lake.deploy.provision.registry_table_definition`). These
functions read it with boto3 (any DynamoDB client: pass one made from Airflow's ``aws_default``,
or let them make one from boto3's usual chain), following ``LastEvaluatedKey`` through every page.

A delivery, as returned (:func:`delivery`)::

    {"uri": "s3://lake-bronze/flights/ingest_date=2013-01-05/flights_20130105.csv.zip",
     "bucket": str, "key": str (decoded), "version_id": str ("null" for an unversioned object),
     "size": int (bytes), "etag": str (no quotes), "event_time": datetime (UTC, S3's eventTime),
     "event_name": str ("ObjectCreated:Put", ...), "sequencer": str,
     "dataset": str | None, "partition": str | None ("dt=2013-01-05", "dt=2013-06-01/hour=14"),
     "ttl": int (epoch seconds)}

DynamoDB deletes an item some time after its ``ttl`` (AWS: "within a few days"), and until then a
query still returns it; with ``LAKE_REGISTRY_TTL_DAYS`` (400) far beyond the days the lake
processes, the functions do not filter on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3

from lake.layout import REGISTRY_PARTITION_INDEX, REGISTRY_TIME_INDEX
from lake.settings import Settings, get


def _client(client: Any | None) -> Any:
    return client if client is not None else boto3.client("dynamodb")


def _value(attr: dict[str, Any]) -> Any:
    if "S" in attr:
        return attr["S"]
    if "N" in attr:
        return int(attr["N"])
    raise ValueError(f"registry item attribute of an unexpected type: {attr}")


def delivery(item: dict[str, Any]) -> dict[str, Any]:
    """One DynamoDB item (attribute-value form) as a delivery (shape in the module docstring)."""
    raw = {name: _value(attr) for name, attr in item.items()}
    return {
        "uri": raw["pk"], "bucket": raw.get("bucket"), "key": raw.get("key"), "version_id": raw["version_id"],
        "size": raw.get("size"), "etag": raw.get("etag"),
        "event_time": datetime.fromisoformat(raw["event_time"]) if "event_time" in raw else None,
        "event_name": raw.get("event_name"), "sequencer": raw.get("sequencer"),
        "dataset": raw.get("dataset"), "partition": raw.get("partition"), "ttl": raw.get("ttl"),
    }


def _query(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items = []
    for page in client.get_paginator("query").paginate(**kwargs):
        items += page["Items"]
    return items


def deliveries(dataset: str, partition: str, *, client: Any | None = None,
               settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every delivery of ``dataset``'s ``partition`` (e.g. ``"flights", "dt=2013-01-05"``), all
    versions, ordered by ``(event_time, uri, version_id)``: a query of the ``by_partition`` index.

    :raises botocore.exceptions.ClientError: e.g. ResourceNotFoundException when the table does not exist.
    """
    s = settings or get()
    items = _query(_client(client), TableName=s.registry_table, IndexName=REGISTRY_PARTITION_INDEX,
                   KeyConditionExpression="#d = :d AND #p = :p",
                   ExpressionAttributeNames={"#d": "dataset", "#p": "partition"},
                   ExpressionAttributeValues={":d": {"S": dataset}, ":p": {"S": partition}})
    return sorted((delivery(i) for i in items), key=lambda d: (d["event_time"], d["uri"], d["version_id"]))


def partitions(dataset: str, *, since: str | None = None, client: Any | None = None,
               settings: Settings | None = None) -> dict[str, int]:
    """``{partition: deliveries}`` of ``dataset`` (partitions ``>= since`` when given), in partition order."""
    s = settings or get()
    condition, values = "#d = :d", {":d": {"S": dataset}}
    if since is not None:
        condition, values = condition + " AND #p >= :p", {**values, ":p": {"S": since}}
    items = _query(_client(client), TableName=s.registry_table, IndexName=REGISTRY_PARTITION_INDEX,
                   KeyConditionExpression=condition, ExpressionAttributeNames={"#d": "dataset", "#p": "partition"},
                   ExpressionAttributeValues=values, ProjectionExpression="#p")
    out: dict[str, int] = {}
    for i in items:
        out[i["partition"]["S"]] = out.get(i["partition"]["S"], 0) + 1
    return dict(sorted(out.items()))


def watermark(dataset: str, *, client: Any | None = None, settings: Settings | None = None) -> datetime | None:
    """The latest S3 event time (``eventTime``, UTC, an aware ``datetime``) of any delivery of
    ``dataset``, or None when nothing was delivered: one item of the ``by_event_time`` index, newest first.
    The registry stores ``eventTime`` as S3 writes it (ISO 8601, ``Z``, milliseconds), so text order
    is time order."""
    s = settings or get()
    page = _client(client).query(TableName=s.registry_table, IndexName=REGISTRY_TIME_INDEX,
                                 KeyConditionExpression="#d = :d", ExpressionAttributeNames={"#d": "dataset"},
                                 ExpressionAttributeValues={":d": {"S": dataset}}, ScanIndexForward=False, Limit=1)
    items = page.get("Items", [])
    return datetime.fromisoformat(items[0]["event_time"]["S"]) if items else None


def latest_partition(dataset: str, *, client: Any | None = None, settings: Settings | None = None) -> str | None:
    """The greatest partition (text order: ``dt=YYYY-MM-DD[/hour=HH]`` sorts by time) with a delivery
    of ``dataset``, or None: how far the data itself has got, e.g. a stream's latest event hour."""
    s = settings or get()
    page = _client(client).query(TableName=s.registry_table, IndexName=REGISTRY_PARTITION_INDEX,
                                 KeyConditionExpression="#d = :d", ExpressionAttributeNames={"#d": "dataset"},
                                 ExpressionAttributeValues={":d": {"S": dataset}}, ScanIndexForward=False, Limit=1)
    items = page.get("Items", [])
    return items[0]["partition"]["S"] if items else None
