"""Lambda "registry": every object delivered to the lake -> one DynamoDB item per object version.

Handler ``handler.handler`` (python3.12; boto3 from the runtime, nothing else). S3 invokes it
asynchronously for ``s3:ObjectCreated:*`` on the bronze bucket (the daily zips and manifests, the
Firehose objects of a stream; ``lake.deploy.provision.registry`` subscribes it, one notification
configuration per dataset prefix). The event is S3's (Amazon S3 User Guide, "Event message
structure": https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)::

    {"Records": [{"eventTime": "2026-12-01T18:40:36.123Z", "eventName": "ObjectCreated:Put",
                  "s3": {"bucket": {"name": "lake-bronze"},
                         "object": {"key": "flights/ingest_date%3D2013-01-05/...", "size": 21034,
                                    "eTag": "0f343b0931126a20f133d67c2b018a3b", "versionId": "3HL4k...",
                                    "sequencer": "0055AED6DCD90281E5"}}}]}

The key is URL-encoded, a space as ``+`` (the same page: "The s3 key provided in the event
notification is URL encoded"): it is decoded with ``urllib.parse.unquote_plus``. ``versionId`` is
absent for an object of an unversioned bucket: the item's version id is then ``"null"``, the
version id S3 itself gives such objects (ListObjectVersions).

Configuration (environment, set by ``lake.deploy.provision.registry`` from the settings and the
layouts; the handler derives no name itself):

* ``LAKE_REGISTRY_TABLE``: the table (``lake_deliveries``);
* ``LAKE_REGISTRY_TTL_DAYS``: days an item lives after its event (the ``ttl`` attribute);
* ``LAKE_REGISTRY_RULES``: JSON list of delivery rules (``lake.layout.Layout.delivery_rules``,
  ``lake.layout.firehose_delivery_rule``): ``{"dataset", "bucket", "prefix", "pattern",
  "partition"}``. The first rule whose bucket is the object's and whose ``pattern`` (a regular
  expression) matches the whole decoded key gives the dataset and the partition
  (``partition.format(**groups)``, a trailing ``/`` removed, e.g. ``dt=2013-01-05``).

Item (one per object version; key ``pk`` = ``s3://<bucket>/<key>``, sort key ``version_id``)::

    pk S, version_id S, bucket S, key S (decoded), size N (bytes), etag S (no quotes),
    event_time S (the record's eventTime, ISO 8601 UTC), event_name S, sequencer S,
    dataset S, partition S (absent when no rule matches: the object is still registered, and
    stays out of the dataset indexes), ttl N (epoch seconds: event_time + TTL days)

Written with ``attribute_not_exists(pk)``: S3 delivers an event at least once, and a redelivered
event (or a second event for the same version) finds its item and writes nothing; it is counted as
a duplicate. Each object logs one JSON line to the function's log group::

    {"registry": "registered" | "duplicate", "file": "s3://bucket/key", "bytes": 21034,
     "event_time": "...", "dataset": "flights", "partition": "dt=2013-01-05", "version_id": "..."}

plus ``"unmatched": true`` and a warning when no rule matched. A record without
``s3.bucket.name``, ``s3.object.key``, ``s3.object.size`` or ``eventTime`` (``ValueError`` naming
the record and the field), an event without ``Records`` or a rule list that is not a list
(``TypeError``), an unreadable rule or an AWS error raises: the invocation fails, and
Lambda retries it as it retries every asynchronous invocation (twice); the items written before it
make the retry a duplicate for them.

Result: ``{"records": n, "registered": n, "duplicates": n, "unmatched": n}``.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import boto3
from botocore.exceptions import ClientError

#: S3's version id of an object written while the bucket was not versioned.
NULL_VERSION = "null"

_client = None
_rules_cache: tuple[str, list[tuple[dict[str, str], re.Pattern[str]]]] | None = None


def _dynamodb():
    global _client
    if _client is None:
        _client = boto3.client("dynamodb")
    return _client


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"registry: environment variable {name} is not set (lake provision sets it)")
    return value


def rules() -> list[tuple[dict[str, str], re.Pattern[str]]]:
    """The delivery rules of ``LAKE_REGISTRY_RULES``, their patterns compiled (cached per value).

    :raises ValueError: when the variable is missing, not a JSON list, or a rule lacks a field or
        has a pattern that does not compile (naming the rule's index).
    """
    global _rules_cache
    text = _env("LAKE_REGISTRY_RULES")
    if _rules_cache is not None and _rules_cache[0] == text:
        return _rules_cache[1]
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"registry: LAKE_REGISTRY_RULES is not JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise TypeError("registry: LAKE_REGISTRY_RULES must be a JSON list of rules")
    compiled = []
    for i, rule in enumerate(raw):
        missing = [f for f in ("dataset", "bucket", "pattern", "partition") if not isinstance(rule.get(f), str)]
        if missing:
            raise ValueError(f"registry: LAKE_REGISTRY_RULES[{i}] lacks {', '.join(missing)}")
        try:
            compiled.append((rule, re.compile(rule["pattern"])))
        except re.error as exc:
            raise ValueError(f"registry: LAKE_REGISTRY_RULES[{i}] pattern does not compile: {exc}") from exc
    _rules_cache = (text, compiled)
    return compiled


def classify(bucket: str, key: str) -> tuple[str, str] | None:
    """``(dataset, partition)`` of the decoded ``key`` in ``bucket`` by the first matching rule, or None."""
    for rule, pattern in rules():
        if rule["bucket"] != bucket:
            continue
        m = pattern.fullmatch(key)
        if m:
            return rule["dataset"], rule["partition"].format(**m.groupdict()).rstrip("/")
    return None


def _field(record: dict[str, Any], index: int, *path: str) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, dict) or value.get(part) is None:
            raise ValueError(f"registry: record {index} of the event has no {'.'.join(path)}")
        value = value[part]
    return value


def _epoch(event_time: str) -> datetime:
    return datetime.fromisoformat(event_time)  # Python 3.11+ reads the "Z"


def item(record: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """The DynamoDB item (attribute-value form) of one S3 event record (shape in the module docstring).

    :raises ValueError: naming the record and the missing field.
    """
    bucket = _field(record, index, "s3", "bucket", "name")
    key = unquote_plus(_field(record, index, "s3", "object", "key"))
    size = int(_field(record, index, "s3", "object", "size"))
    event_time = _field(record, index, "eventTime")
    obj = record["s3"]["object"]
    version = obj.get("versionId") or NULL_VERSION
    try:
        expires = int((_epoch(event_time) + timedelta(days=int(_env("LAKE_REGISTRY_TTL_DAYS")))).timestamp())
    except ValueError as exc:
        raise ValueError(f"registry: record {index}: eventTime {event_time!r} or LAKE_REGISTRY_TTL_DAYS: {exc}") from exc
    out: dict[str, Any] = {
        "pk": {"S": f"s3://{bucket}/{key}"}, "version_id": {"S": version},
        "bucket": {"S": bucket}, "key": {"S": key}, "size": {"N": str(size)},
        "etag": {"S": str(obj.get("eTag", "")).strip('"')}, "event_time": {"S": event_time},
        "event_name": {"S": str(record.get("eventName", ""))}, "sequencer": {"S": str(obj.get("sequencer", ""))},
        "ttl": {"N": str(expires)},
    }
    found = classify(bucket, key)
    if found is not None:
        out["dataset"], out["partition"] = {"S": found[0]}, {"S": found[1]}
    return out


def register(record: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """Write one record's item unless its version is registered; returns its log line (a dict)."""
    it = item(record, index)
    line = {"file": it["pk"]["S"], "bytes": int(it["size"]["N"]), "event_time": it["event_time"]["S"],
            "dataset": it.get("dataset", {}).get("S"), "partition": it.get("partition", {}).get("S"),
            "version_id": it["version_id"]["S"]}
    try:
        _dynamodb().put_item(TableName=_env("LAKE_REGISTRY_TABLE"), Item=it,
                             ConditionExpression="attribute_not_exists(pk)")
        line = {"registry": "registered", **line}
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        line = {"registry": "duplicate", **line}
    if "dataset" not in it:
        line["unmatched"] = True
    return line


def handler(event: dict[str, Any], context: Any = None) -> dict[str, int]:
    """Register every record of an S3 event (see the module docstring)."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise TypeError("registry: the event has no Records list (not an S3 event notification)")
    counts = {"records": len(records), "registered": 0, "duplicates": 0, "unmatched": 0}
    for i, record in enumerate(records):
        line = register(record, i)
        counts["registered" if line["registry"] == "registered" else "duplicates"] += 1
        if line.get("unmatched"):
            counts["unmatched"] += 1
            print(f"WARNING registry: {line['file']} matches no delivery rule: registered without dataset")
        print(json.dumps(line, sort_keys=True), flush=True)
    return counts
