"""S3 event notifications to SQS, SNS and Lambda, as AWS documents them.

Sources: "Amazon S3 Event Notifications"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventNotifications.html), "Event message
structure" (.../notification-content-structure.html), "Configuring event notifications using object
key name filtering" (.../notification-how-to-filtering.html), and Lambda's "Asynchronous invocation"
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html).

moto stores the configuration and sends some events itself, but wrongly for an emulator whose
answers must be AWS's: it sends them inside the request, before the write is durable; it drops
every delivery error silently; it invokes Lambda synchronously (the PUT waited for the handler)
and never retries; it sends no ``ObjectRemoved:DeleteMarkerCreated`` (a versioned delete sent
nothing) and ``ObjectRemoved:Delete`` only when a key's last version went; its records lack
``userIdentity``, ``requestParameters``, ``responseElements``, ``ownerIdentity``, ``versionId``
and ``sequencer``; it URL-encodes ``/`` in keys and matches filters on the unencoded key; and
it accepts configurations AWS refuses (overlapping rules, destinations that do not exist or whose
resource policy does not let S3 write), storing a configuration before refusing its region.

This module keeps moto's parsing and storage (``NotificationConfiguration``) and replaces the rest:

* :func:`validate` runs before moto stores a configuration (PutBucketNotificationConfiguration);
* moto's ``notifications.send_event`` / ``send_test_event`` are replaced: a matching event becomes one
  *delivery* per destination, kept in an outbox on the account's S3 backend (``localaws_outbox``), so
  the snapshot that makes the write durable also holds its pending deliveries;
* the server hands the deliveries of a request to the dispatcher once the request is durable
  (:class:`Batch`, used by ``localaws.server``); a delivery leaves the outbox once delivered (SQS,
  SNS) or once its asynchronous Lambda invocation is finished with (success or retries exhausted);
* at start, deliveries still in the outbox (restored from the snapshot) are sent again: delivery
  is at least once, as on AWS, and a restart may repeat one.

EventBridge (``EventBridgeConfiguration``) is left to moto's own sender, unchanged.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import quote_plus

from moto.s3 import models as s3_models
from moto.s3 import notifications as moto_notifications
from moto.s3.exceptions import (
    InvalidArgumentError,
    InvalidFilterRuleName,
    InvalidNotificationDestination,
    InvalidNotificationEvent,
)
from moto.s3.responses import S3Response

from localaws.runtime import RUNTIME, log

#: Subject of the SNS messages S3 publishes.
SNS_SUBJECT = "Amazon S3 Notification"

#: (kind, attribute of moto's NotificationConfiguration, key of the parsed XML configuration, ARN key)
DESTINATIONS = (("queue", "queue", "QueueConfiguration", "Queue"),
                ("topic", "topic", "TopicConfiguration", "Topic"),
                ("lambda", "cloud_function", "CloudFunctionConfiguration", "CloudFunction"))

_local = threading.local()
_outbox_lock = threading.Lock()
_sequencer_lock = threading.Lock()
_last_sequencer = 0
_dispatch: queue.Queue[tuple[str, str]] = queue.Queue()
_dispatcher: threading.Thread | None = None
_in_flight: set[str] = set()
_installed = False


# -- event records

def encode_key(key: str) -> str:
    """An object key as S3 event records carry it and as filter rules are matched against it:
    URL-encoded, a space as ``+`` (the documented example; AWS: "The s3 key provided in the event
    notification is URL encoded"); ``/`` and the characters Java's ``URLEncoder`` leaves alone
    (letters, digits, ``.-*_``) are kept, the rest percent-encoded as UTF-8."""
    return quote_plus(key, safe="/*").replace("~", "%7E")


def _event_version(event_name: str) -> str:
    """2.1 for most events; 2.2 replication; 2.3 lifecycle, Intelligent-Tiering, ACL, tagging and
    restore-delete events (the "Event message structure" page)."""
    if event_name.startswith("s3:Replication:"):
        return "2.2"
    if event_name.startswith(("s3:LifecycleExpiration:", "s3:LifecycleTransition", "s3:IntelligentTiering",
                              "s3:ObjectAcl:", "s3:ObjectTagging:")) or event_name == "s3:ObjectRestore:Delete":
        return "2.3"
    return "2.1"


def _next_sequencer() -> str:
    """A hexadecimal string that grows with every event (S3: compare sequencers of one key to order
    its events); nanoseconds since the epoch, so it keeps growing across restarts."""
    global _last_sequencer
    with _sequencer_lock:
        _last_sequencer = max(_last_sequencer + 1, time.time_ns())
        return f"{_last_sequencer:016X}"


def _now_iso() -> str:
    """ISO 8601 in UTC with milliseconds, as S3 writes ``eventTime``: ``2026-12-01T18:40:36.123Z``."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _record(event_name: str, bucket: Any, obj: dict[str, Any], configuration_id: str, sequencer: str,
            requester: dict[str, str]) -> dict[str, Any]:
    """One record of the documented structure; ``obj`` has ``key`` and, as the event has them,
    ``size``, ``eTag``, ``versionId``."""
    s3_object: dict[str, Any] = {"key": encode_key(obj["key"])}
    for field in ("size", "eTag", "versionId"):
        if obj.get(field) is not None:
            s3_object[field] = obj[field]
    s3_object["sequencer"] = sequencer
    return {
        "eventVersion": _event_version(event_name),
        "eventSource": "aws:s3",
        "awsRegion": bucket.region_name,
        "eventTime": _now_iso(),
        "eventName": event_name[3:],  # without the "s3:" prefix
        "userIdentity": {"principalId": requester["principal"]},
        "requestParameters": {"sourceIPAddress": requester["source_ip"]},
        "responseElements": {"x-amz-request-id": requester["request_id"], "x-amz-id-2": requester["host_id"]},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket.name, "ownerIdentity": {"principalId": bucket.account_id},
                       "arn": bucket.arn},
            "object": s3_object,
        },
    }


# -- matching

def _events_overlap(a: str, b: str) -> bool:
    """``s3:ObjectCreated:*`` overlaps every ``s3:ObjectCreated:...``; other names only themselves."""
    if a == b:
        return True
    for wide, narrow in ((a, b), (b, a)):
        if wide.endswith(":*") and narrow.startswith(wide[:-1]):
            return True
    return False


def _rules(filters: dict[str, Any] | None) -> dict[str, str]:
    """``{"prefix": ..., "suffix": ...}`` of moto's parsed ``Filter`` (absent rules left out)."""
    rules = ((filters or {}).get("S3Key") or {}).get("FilterRule") or []
    if isinstance(rules, dict):
        rules = [rules]
    return {r["Name"].lower(): r.get("Value") or "" for r in rules}


def matches(events: list[str], filters: dict[str, Any] | None, event_name: str, key: str) -> bool:
    """Whether a configuration (its ``events`` and moto's ``filters``) selects ``event_name`` on
    ``key``: an event of the list (or its ``:*`` family), and the URL-encoded key starting with the
    prefix and ending with the suffix (the filtering page: special characters in filter values
    must be URL-encoded, i.e. rules apply to the encoded key). Case-sensitive."""
    if not any(_events_overlap(e, event_name) for e in events):
        return False
    rules = _rules(filters)
    encoded = encode_key(key)
    return encoded.startswith(rules.get("prefix", "")) and encoded.endswith(rules.get("suffix", ""))


# -- validation (PutBucketNotificationConfiguration)

def _configurations(config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(kind, label, configuration)`` of the parsed XML, ``label`` naming it in errors."""
    out = []
    for kind, _, xml_key, _ in DESTINATIONS:
        items = config.get(xml_key) or []
        for i, item in enumerate(items if isinstance(items, list) else [items]):
            label = f"{xml_key}[{i}]" + (f" (Id {item['Id']!r})" if item.get("Id") else "")
            out.append((kind, label, item))
    return out


def validate(account_id: str, bucket: Any, config: dict[str, Any]) -> None:
    """Refuse a notification configuration as S3 does, before anything is stored.

    * an event name S3 does not know -> moto's ``InvalidArgument`` naming it;
    * two filter rules of one name in a filter -> ``Cannot specify more than one prefix rule in a filter.``;
    * two configurations sharing an event type (``s3:ObjectCreated:*`` shares with every
      ``s3:ObjectCreated:...``) whose prefixes overlap (one starts the other; none: "") and whose
      suffixes overlap (one ends the other) -> ``InvalidArgument``: without filters "Configurations
      overlap. Configurations on the same bucket cannot share a common event type.", with filters
      "Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules if the
      prefixes are overlapping for the same event type." (S3's messages; the filtering page's rule);
    * a destination in another region -> moto's ``InvalidArgument`` (region not valid);
    * a destination that does not exist, or whose resource policy does not let ``s3.amazonaws.com``
      write to it for this bucket (:func:`policy_allows_s3`: the queue's ``Policy`` for
      ``sqs:SendMessage``, the topic's for ``SNS:Publish``, the function's AddPermission statements
      for ``lambda:InvokeFunction``) -> ``InvalidArgument`` "Unable to validate the following
      destination configurations", the ARN as ArgumentName and the reason as ArgumentValue.
    """
    items = _configurations(config)
    for _, label, item in items:
        events = item.get("Event") or []
        for event in events if isinstance(events, list) else [events]:
            if not moto_notifications.S3NotificationEvent.is_event_valid(event):
                raise InvalidNotificationEvent(event)
        rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("FilterRule") or []
        seen: set[str] = set()
        for rule in rules if isinstance(rules, list) else [rules]:
            name = str(rule.get("Name")).lower()
            if name not in ("prefix", "suffix"):
                raise InvalidFilterRuleName(str(rule.get("Name")))
            if name in seen:
                raise InvalidArgumentError(f"Cannot specify more than one {name} rule in a filter.",
                                           "FilterRule.Name", name)
            seen.add(name)
    for i, (_, label_a, a) in enumerate(items):
        for _, label_b, b in items[i + 1:]:
            shared = [(ea, eb) for ea in _as_list(a.get("Event")) for eb in _as_list(b.get("Event"))
                      if _events_overlap(ea, eb)]
            if not shared:
                continue
            ra, rb = _rules(a.get("Filter")), _rules(b.get("Filter"))
            pa, pb, sa, sb = ra.get("prefix", ""), rb.get("prefix", ""), ra.get("suffix", ""), rb.get("suffix", "")
            if not (pa.startswith(pb) or pb.startswith(pa)) or not (sa.endswith(sb) or sb.endswith(sa)):
                continue
            if not ra and not rb:
                raise InvalidArgumentError(
                    "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
                    "Event", f"{shared[0][0]}, {shared[0][1]} ({label_a} and {label_b} of bucket {bucket.name})")
            raise InvalidArgumentError(
                "Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules if the "
                "prefixes are overlapping for the same event type.",
                "Event", f"{shared[0][0]}, {shared[0][1]} ({label_a} and {label_b} of bucket {bucket.name})")
    for kind, label, item in items:
        arn = item[{k: a for k, _, _, a in DESTINATIONS}[kind]]
        if arn.split(":")[3] != bucket.region_name:
            raise InvalidNotificationDestination()
        reason = _destination_problem(account_id, kind, arn, bucket)
        if reason:
            raise InvalidArgumentError("Unable to validate the following destination configurations", arn,
                                       f"{reason} ({label} of bucket {bucket.name})")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def _destination_problem(account_id: str, kind: str, arn: str, bucket: Any) -> str | None:
    """Why S3 could not deliver to ``arn`` (it does not exist, or its resource policy does not let
    S3 write to it for ``bucket``), or None."""
    parts = arn.split(":")
    region, owner = parts[3], parts[4] or account_id
    if kind == "queue":
        from moto.sqs.models import sqs_backends

        try:
            queue_ = sqs_backends[owner][region].get_queue(parts[5])
        except Exception:  # noqa: BLE001 - moto raises QueueDoesNotExist
            return f"The destination queue {parts[5]} does not exist"
        if not policy_allows_s3(queue_.policy, "sqs:SendMessage", arn, bucket.arn, account_id):
            return ("Permissions on the destination queue do not allow S3 to publish notifications from this "
                    "bucket: its Policy has no statement allowing principal s3.amazonaws.com sqs:SendMessage")
        return None
    if kind == "topic":
        from moto.sns.models import sns_backends

        try:
            topic = sns_backends[owner][region].get_topic(arn)
        except Exception:  # noqa: BLE001 - moto raises TopicNotFound
            return f"The destination topic {parts[5]} does not exist"
        if not policy_allows_s3(topic.policy, "SNS:Publish", arn, bucket.arn, account_id):
            return ("Permissions on the destination topic do not allow S3 to publish notifications from this "
                    "bucket: its Policy has no statement allowing principal s3.amazonaws.com SNS:Publish")
        return None
    from moto.awslambda.models import lambda_backends

    try:
        fn = lambda_backends[owner][region].get_function(arn)
    except Exception:  # noqa: BLE001 - moto raises UnknownFunctionException
        return f"The destination function {arn} does not exist"
    if not policy_allows_s3({"Statement": list(getattr(fn.policy, "statements", []))}, "lambda:InvokeFunction",
                            arn, bucket.arn, account_id):
        return (f"Not authorized to invoke function [{arn}]: its resource-based policy has no statement allowing "
                "principal s3.amazonaws.com lambda:InvokeFunction from this bucket (Lambda AddPermission)")
    return None


def policy_allows_s3(policy: Any, action: str, resource_arn: str, bucket_arn: str, account_id: str) -> bool:
    """Whether resource policy ``policy`` (a JSON string or dict; None: no policy) lets S3 perform
    ``action`` on ``resource_arn`` for an event of ``bucket_arn`` (owned by ``account_id``).

    A statement applies when its principal is ``s3.amazonaws.com`` or everyone (``*``, ``{"AWS": "*"}``),
    its Action matches ``action`` (case-insensitive, ``*`` wildcards), its Resource (if any) matches
    ``resource_arn``, and each condition is ``ArnLike``/``ArnEquals``/``StringLike``/``StringEquals``
    on ``aws:SourceArn`` (the bucket's ARN) or ``aws:SourceAccount`` and holds. A condition on any
    other key (``aws:SourceOwner`` of SNS's default topic policy, say) is not known to hold, so its
    statement does not apply. An applying Deny wins over an Allow; without an applying Allow, no.
    """
    if not policy:
        return False
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return False
    allowed = False
    for st in _as_list(policy.get("Statement")):
        principal = st.get("Principal")
        if isinstance(principal, dict):
            principals = _as_list(principal.get("Service")) + [p for p in _as_list(principal.get("AWS")) if p == "*"]
        else:
            principals = _as_list(principal)
        if not any(p in ("s3.amazonaws.com", "*") for p in principals):
            continue
        if not any(fnmatch.fnmatch(action.lower(), a.lower()) for a in _as_list(st.get("Action"))):
            continue
        resources = _as_list(st.get("Resource"))
        if resources and not any(fnmatch.fnmatchcase(resource_arn, r) for r in resources):
            continue
        applies = True
        for operator, conditions in (st.get("Condition") or {}).items():
            for key, values in conditions.items():
                actual = {"aws:sourcearn": bucket_arn, "aws:sourceaccount": account_id}.get(key.lower())
                if actual is None or operator not in ("ArnLike", "ArnEquals", "StringLike", "StringEquals"):
                    applies = False
                elif operator.endswith("Like"):
                    applies &= any(fnmatch.fnmatchcase(actual, v) for v in _as_list(values))
                else:
                    applies &= actual in _as_list(values)
        if not applies:
            continue
        if st.get("Effect") == "Deny":
            return False
        allowed = allowed or st.get("Effect") == "Allow"
    return allowed


# -- the outbox and requests

def _outbox(backend: Any) -> dict[str, dict[str, Any]]:
    return getattr(backend, "localaws_outbox", None) or {}


def _set_outbox(backend: Any, change: Callable[[dict[str, dict[str, Any]]], None]) -> None:
    # Copy on write: a snapshot pickling the old dict never sees it change size.
    with _outbox_lock:
        outbox = dict(_outbox(backend))
        change(outbox)
        backend.localaws_outbox = outbox


def _backend(account_id: str) -> Any:
    return s3_models.s3_backends[account_id]["aws"]


def pending(account_id: str | None = None) -> list[dict[str, Any]]:
    """Deliveries not yet finished with (all accounts, or ``account_id``'s), oldest first. Each is
    ``{id, account_id, kind, arn, bucket, configuration_id, message, created, request_id}``."""
    out: list[dict[str, Any]] = []
    for acct, partitions in list(s3_models.s3_backends.items()):
        if account_id and acct != account_id:
            continue
        for backend in list(partitions.values()):
            out.extend(_outbox(backend).values())
    return sorted(out, key=lambda d: d["created"])


class Batch:
    """The deliveries a request makes: recorded during the request, released once it is durable.

    ``localaws.server`` wraps every AWS request: ``with batch.collecting(): app(environ,
    batch.wrap(start_response))``, waits for durability, then :meth:`release`. The request's
    ``x-amz-request-id`` / ``x-amz-id-2`` response headers go into the records' ``responseElements``
    as moto answers (inside the request, so before the snapshot).
    """

    def __init__(self, environ: dict[str, Any]) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self._environ = environ
        self._requester: dict[str, str] | None = None

    @property
    def operation(self) -> str | None:
        """The request's API operation (``PutObjectTagging``...), from localaws's botocore routing."""
        from localaws import faults

        op = faults.identify(self._environ)
        return op.name if op is not None else None

    @property
    def requester(self) -> dict[str, str]:
        """Who made the request (``principal``, ``source_ip``) and placeholder ids; worked out only
        for a request that makes an event."""
        if self._requester is None:
            self._requester = _requester(self._environ)
        return self._requester

    def wrap(self, start_response: Callable) -> Callable:
        def wrapped(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            if self.deliveries:
                values = {k.lower(): v for k, v in headers}
                # moto's S3 answers x-amzn-requestid, not S3's x-amz-request-id: the records carry
                # whichever the client got, so they can be matched to the response.
                request_id = values.get("x-amz-request-id") or values.get("x-amzn-requestid")
                for d in self.deliveries:
                    _set_response_ids(d["message"], request_id, values.get("x-amz-id-2"))
            return start_response(status, headers, exc_info)

        return wrapped

    @contextlib.contextmanager
    def collecting(self) -> Iterator[Batch]:
        _local.batch = self
        try:
            yield self
        finally:
            _local.batch = None

    def release(self) -> None:
        """Hand the request's deliveries to the dispatcher."""
        for d in self.deliveries:
            _enqueue(d["account_id"], d["id"])
        self.deliveries = []


def _requester(environ: dict[str, Any] | None) -> dict[str, str]:
    environ = environ or {}
    auth = environ.get("HTTP_AUTHORIZATION", "")
    access_key = auth.partition("Credential=")[2].partition("/")[0] if "Credential=" in auth else ""
    return {"principal": f"AWS:{access_key}" if access_key else "AWS:localaws",
            "source_ip": environ.get("REMOTE_ADDR") or "127.0.0.1",
            "request_id": uuid.uuid4().hex[:16].upper(), "host_id": uuid.uuid4().hex}


def _set_response_ids(message: dict[str, Any], request_id: str | None, host_id: str | None) -> None:
    if not request_id:
        return
    if "Records" in message:
        for record in message["Records"]:
            elements = record["responseElements"]
            elements["x-amz-request-id"] = request_id
            elements["x-amz-id-2"] = host_id or elements["x-amz-id-2"]
    else:  # s3:TestEvent
        message["RequestId"] = request_id
        message["HostId"] = host_id or message["HostId"]


def _add(account_id: str, deliveries: list[dict[str, Any]]) -> None:
    """Put ``deliveries`` in the outbox; inside a request they wait for it, otherwise they go now."""
    if not deliveries:
        return
    _set_outbox(_backend(account_id), lambda box: box.update({d["id"]: d for d in deliveries}))
    batch = getattr(_local, "batch", None)
    if batch is not None:
        batch.deliveries.extend(deliveries)
    else:  # a write made inside the server process (crawler, Athena): no request to wait for
        for d in deliveries:
            _enqueue(account_id, d["id"])


def _delivery(account_id: str, kind: str, arn: str, bucket: Any, configuration_id: str,
              message: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "account_id": account_id, "kind": kind, "arn": arn, "bucket": bucket.name,
            "configuration_id": configuration_id, "message": message, "created": time.time(),
            "request_id": str(uuid.uuid4())}


def emit(account_id: str, event_name: str, bucket: Any, obj: dict[str, Any]) -> None:
    """Record the deliveries of event ``event_name`` (``s3:...``) on ``obj`` (``key`` and, when the
    event has them, ``size``, ``eTag``, ``versionId``) for every matching configuration of ``bucket``."""
    config = bucket.notification_configuration
    if config is None:
        return
    requester = getattr(getattr(_local, "batch", None), "requester", None) or _requester(None)
    sequencer = _next_sequencer()
    deliveries = []
    for kind, attr, _, _ in DESTINATIONS:
        for n in getattr(config, attr):
            if matches(n.events, n.filters, event_name, obj["key"]):
                record = _record(event_name, bucket, obj, n.id, sequencer, requester)
                deliveries.append(_delivery(account_id, kind, n.arn, bucket, n.id, {"Records": [record]}))
    _add(account_id, deliveries)


def _object_of(bucket: Any, key: Any) -> dict[str, Any]:
    versioned = getattr(bucket, "versioning_status", None) in ("Enabled", "Suspended")
    return {"key": key.name, "size": key.size, "eTag": key.etag.replace('"', ""),
            "versionId": str(key.version_id) if versioned and key.version_id else None}


def _send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
    """Replaces moto's ``notifications.send_event``. Removal events come from :func:`_delete_object`
    (moto sends them only in some cases), so moto's are dropped here."""
    name = event_name.value if isinstance(event_name, Enum) else str(event_name)
    if name.startswith("s3:ObjectRemoved:") or key is None:
        return
    # moto also sends ObjectTagging:Put when PutObject, CopyObject or CompleteMultipartUpload store
    # tags, and could send ObjectAcl:Put likewise; S3 sends them only for the tagging / ACL calls.
    if name in ("s3:ObjectCreated:Put", "s3:ObjectCreated:Post") and getattr(key, "multipart", None) is not None:
        return  # moto's CompleteMultipartUpload stores the object with put_object: one event, not two
    only_for = _ONLY_FOR.get(name)
    if only_for is not None and getattr(getattr(_local, "batch", None), "operation", None) != only_for:
        return
    emit(account_id, name, bucket, _object_of(bucket, key))
    _event_bridge(account_id, name, bucket, key)


#: Events S3 sends only for one API operation.
_ONLY_FOR = {"s3:ObjectTagging:Put": "PutObjectTagging", "s3:ObjectTagging:Delete": "DeleteObjectTagging",
             "s3:ObjectAcl:Put": "PutObjectAcl"}


def _event_bridge(account_id: str, name: str, bucket: Any, key: Any) -> None:
    config = bucket.notification_configuration
    if config is not None and config.event_bridge is not None:
        moto_notifications._send_event_bridge_message(account_id, bucket, name, key)


def _send_test_event(account_id: str, bucket: Any) -> None:
    """Replaces moto's ``send_test_event``: one ``s3:TestEvent`` per queue and topic of the new
    configuration (not to Lambda functions), as S3 sends when a configuration is put."""
    requester = getattr(getattr(_local, "batch", None), "requester", None) or _requester(None)
    deliveries, seen = [], set()
    for kind, attr, _, _ in DESTINATIONS[:2]:
        for n in getattr(bucket.notification_configuration, attr):
            if n.arn in seen:
                continue
            seen.add(n.arn)
            message = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": _now_iso(), "Bucket": bucket.name,
                       "RequestId": requester["request_id"], "HostId": requester["host_id"]}
            deliveries.append(_delivery(account_id, kind, n.arn, bucket, n.id, message))
    _add(account_id, deliveries)


_original_put_configuration = s3_models.S3Backend.put_bucket_notification_configuration
_original_config_from_body = S3Response._notification_config_from_body

_FILTER_NAME = re.compile(rb"<Name>\s*([^<]*?)\s*</Name>")
_EMPTY_VALUE = re.compile(rb"<Value>\s*</Value>|<Value\s*/>")


def _config_from_body(self: S3Response) -> dict[str, Any]:
    """moto's parser of the PutBucketNotificationConfiguration body, after the filter rules are
    checked: S3 takes rule names in any case (``Prefix`` as well as ``prefix``; moto asserted the
    lowercase ones, an HTTP 500 otherwise); any other name -> ``InvalidArgument`` "filter rule name
    must be either prefix or suffix"; an empty value -> ``InvalidArgument`` naming FilterRule.Value
    (moto's assertion again)."""
    body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
    for match in _FILTER_NAME.finditer(body):
        if match.group(1).lower() not in (b"prefix", b"suffix"):
            raise InvalidFilterRuleName(match.group(1).decode(errors="replace"))
    if _EMPTY_VALUE.search(body):
        raise InvalidArgumentError("localaws: a filter rule needs a non-empty value", "FilterRule.Value", "")
    self.body = _FILTER_NAME.sub(lambda m: b"<Name>" + m.group(1).lower() + b"</Name>", body)
    return _original_config_from_body(self)
_original_delete_object = s3_models.S3Backend.delete_object


def _put_configuration(self: Any, bucket_name: str, notification_config: dict[str, Any]) -> None:
    validate(self.account_id, self.get_bucket(bucket_name), notification_config or {})
    # S3 answers GetBucketNotificationConfiguration with the rule names "Prefix" / "Suffix", whatever
    # case they were put in (https://github.com/aws/aws-sdk/issues/389); moto echoed them as put.
    for _, _, item in _configurations(notification_config or {}):
        rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("FilterRule") or []
        for rule in rules if isinstance(rules, list) else [rules]:
            rule["Name"] = rule["Name"].capitalize()
    _original_put_configuration(self, bucket_name, notification_config)


def _delete_object(self: Any, bucket_name: str, key_name: str, version_id: str | None = None,
                   bypass: bool = False) -> tuple[bool, dict[str, Any]]:
    """moto's delete_object, then the event S3 sends: ``ObjectRemoved:DeleteMarkerCreated`` when a
    delete marker was made (versioned bucket, no version id), ``ObjectRemoved:Delete`` when an object
    or a version was removed (with ``versionId`` when a version was named)."""
    bucket = self.get_bucket(bucket_name)
    present = key_name in bucket.keys
    before = [str(v.version_id) for v in bucket.keys.getlist(key_name, [])] if present else []
    current = bucket.keys.get(key_name) if present else None
    deleted, meta = _original_delete_object(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
    if bucket.notification_configuration is None:
        return deleted, meta
    if version_id is None and meta.get("delete-marker") == "true":
        marker = bucket.keys.getlist(key_name, [None])[-1]
        emit(self.account_id, "s3:ObjectRemoved:DeleteMarkerCreated", bucket,
             {"key": key_name, "versionId": meta.get("version-id")})
        if marker is not None:
            _event_bridge(self.account_id, "s3:ObjectRemoved:DeleteMarkerCreated", bucket, marker)
    elif deleted and before and (version_id is None or str(version_id) in before):
        emit(self.account_id, "s3:ObjectRemoved:Delete", bucket,
             {"key": key_name, "versionId": str(version_id) if version_id is not None else None})
        if current is not None:
            _event_bridge(self.account_id, "s3:ObjectRemoved:Delete", bucket, current)
    return deleted, meta


# -- delivery

def _enqueue(account_id: str, delivery_id: str) -> None:
    global _dispatcher
    _dispatch.put((account_id, delivery_id))
    if _dispatcher is None or not _dispatcher.is_alive():
        _dispatcher = RUNTIME.spawn("localaws-s3-events", _dispatch_loop)


def _dispatch_loop() -> None:
    while not RUNTIME.stopping.is_set():
        try:
            account_id, delivery_id = _dispatch.get(timeout=0.2)
        except queue.Empty:
            continue
        try:
            _deliver(account_id, delivery_id)
        except Exception:  # noqa: BLE001 - keep delivering the others
            log.exception("S3 event delivery %s failed", delivery_id)


def _remove(account_id: str, delivery_id: str) -> None:
    _set_outbox(_backend(account_id), lambda box: box.pop(delivery_id, None))


def _deliver(account_id: str, delivery_id: str) -> None:
    d = _outbox(_backend(account_id)).get(delivery_id)
    if d is None or delivery_id in _in_flight:
        return
    what = f"S3 event notification of bucket {d['bucket']} (configuration {d['configuration_id']}) to {d['arn']}"
    region, owner = d["arn"].split(":")[3], d["arn"].split(":")[4] or account_id
    body = json.dumps(d["message"])
    if d["kind"] == "lambda":
        from moto.awslambda.models import lambda_backends

        from localaws.services.awslambda.asynchronous import invoke_async

        try:
            fn = lambda_backends[owner][region].get_function(d["arn"])
        except Exception:  # noqa: BLE001 - deleted since the configuration was put
            log.warning("%s not delivered: the function does not exist; dropped", what)
            with RUNTIME.state_change():
                _remove(account_id, delivery_id)
            return
        _in_flight.add(delivery_id)

        def done(outcome: str) -> None:
            with RUNTIME.state_change():
                _remove(account_id, delivery_id)
            _in_flight.discard(delivery_id)

        invoke_async(fn, body.encode(), request_id=d["request_id"], on_done=done, enqueued_at=d["created"])
        return
    with RUNTIME.state_change():
        try:
            if d["kind"] == "queue":
                from moto.sqs.models import sqs_backends

                sqs_backends[owner][region].send_message(queue_name=d["arn"].split(":")[5], message_body=body)
            else:
                from moto.sns.models import sns_backends

                sns_backends[owner][region].get_topic(d["arn"]).publish(body, subject=SNS_SUBJECT)
        except Exception as exc:  # noqa: BLE001 - S3 cannot deliver either (destination deleted since)
            log.warning("%s not delivered: %s; dropped", what, exc)
        _remove(account_id, delivery_id)


def resume() -> int:
    """At server start: send again every delivery left in the outbox (restored from a snapshot, or
    left by a server stopped in this process); returns how many."""
    global _dispatch
    _dispatch = queue.Queue()
    _in_flight.clear()
    left = pending()
    for d in left:
        _enqueue(d["account_id"], d["id"])
    if left:
        log.info("%d S3 event notification(s) were not delivered before the last stop; sending them now", len(left))
    return len(left)


def install() -> None:
    """Patch moto's S3 notifications (idempotent)."""
    global _installed
    if _installed:
        return
    moto_notifications.send_event = _send_event
    moto_notifications.send_test_event = _send_test_event
    s3_models.S3Backend.put_bucket_notification_configuration = _put_configuration  # type: ignore[method-assign]
    s3_models.S3Backend.delete_object = _delete_object  # type: ignore[method-assign]
    S3Response._notification_config_from_body = _config_from_body  # type: ignore[method-assign]
    _installed = True
