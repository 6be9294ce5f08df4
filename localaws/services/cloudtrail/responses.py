"""Recording every call (WSGI middleware :func:`recording`) and CloudTrail's ``LookupEvents``.

``LookupEvents`` follows the API reference
(https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html): at most one
``LookupAttributes`` item (``EventId``, ``EventName``, ``ReadOnly``, ``Username``, ``ResourceType``,
``ResourceName``, ``EventSource``, ``AccessKeyId``; exact match), ``StartTime`` / ``EndTime``
(inclusive), ``MaxResults`` 1-50 (default 50), ``NextToken`` paging, newest first, events of the
caller's region and account; ``EventCategory=insight`` returns no events (localaws has no Insights).

Deviation from AWS: AWS's LookupEvents returns management events only (data events need a trail
or CloudTrail Lake). localaws returns data events too (S3 object calls, Lambda Invoke, SNS
Publish; ``eventCategory: Data`` in the record), so "who deleted this object" is answered locally;
``ResourceName`` matches a resource's name or its ARN (an object's name is its key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from moto.core.exceptions import JsonRESTError

from localaws import faults as _faults
from localaws.runtime import log
from localaws.services.cloudtrail import records
from localaws.services.cloudtrail.store import STORE

#: LookupAttribute keys (API reference, LookupAttribute).
ATTRIBUTE_KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource",
                  "AccessKeyId")
MAX_RESULTS = 50


def _account(access_key: str | None) -> str:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key) if access_key else DEFAULT_ACCOUNT_ID


def recording(app: Callable, read_only: Callable[[_faults.Operation], bool]) -> Callable:
    """Wrap a WSGI app: each AWS API call it answers is recorded in :data:`STORE` (once answered,
    before the response goes out). Recording never fails a call: an error is logged."""

    def application(environ: dict[str, Any], start_response: Callable) -> Any:
        if not STORE.enabled:
            return app(environ, start_response)
        op = _faults.identify(environ)
        if op is None:
            return app(environ, start_response)
        started = time.time()
        body = None
        if op.protocol != "s3" or op.name == "DeleteObjects":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if 0 < length <= records.MAX_BODY:
                import io

                body = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(body)
        answered: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            answered[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = app(environ, capture)
        try:
            status = int(answered[0].split()[0]) if answered else 500
            reads = read_only(op)
            response_body = None
            # responseElements of a management call that changes state; a data event's answer (an
            # object, a function's result) is never read.
            if status >= 400 or (not reads and op.protocol in ("json", "rest-json", "query")
                                 and not records.is_data_event(op)):
                response_body = b"".join(result)
                if hasattr(result, "close"):
                    result.close()
                result = [response_body]
            access_key = records.credential_scope(environ)[0]
            STORE.append(records.build(op, environ, started=started, account_id=_account(access_key),
                                       read_only=reads, status=status, headers=answered[1] if answered else [],
                                       request_body=body, response_body=response_body))
        except Exception:  # noqa: BLE001 - the audit trail must never break the call it records
            log.exception("localaws could not record the CloudTrail event of %s", op.key)
        return result

    return application


# --- LookupEvents --------------------------------------------------------------------------------

def _error(code: str, message: str) -> JsonRESTError:
    return JsonRESTError(code, message)


def _timestamp(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        raise _error("InvalidTimeRangeException", f"{name} {value!r} is not a timestamp") from None


def _matches(event: dict[str, Any], key: str, value: str) -> bool:
    record = event["record"]
    if key == "EventId":
        return record["eventID"] == value
    if key == "EventName":
        return record["eventName"] == value
    if key == "ReadOnly":
        return str(record["readOnly"]).lower() == value.lower()
    if key == "Username":
        return event["username"] == value
    if key == "EventSource":
        return record["eventSource"] == value
    if key == "AccessKeyId":
        return record["userIdentity"].get("accessKeyId") == value
    if key == "ResourceType":
        return any(r["ResourceType"] == value for r in event["resources"])
    return value in event["names"]


def lookup(params: dict[str, Any], region: str, account_id: str) -> dict[str, Any]:
    """The LookupEvents response for ``params`` (the request's JSON members).

    :raises JsonRESTError: ``InvalidLookupAttributesException`` (more than one attribute, an unknown
        key, a value outside 1-2000 characters), ``InvalidMaxResultsException`` (not 1-50),
        ``InvalidTimeRangeException`` (StartTime after EndTime), ``InvalidNextTokenException`` (a
        token of another query), ``InvalidEventCategoryException`` (not ``insight``).
    """
    attributes = params.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise _error("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
    key = value = None
    if attributes:
        key, value = attributes[0].get("AttributeKey"), attributes[0].get("AttributeValue")
        if key not in ATTRIBUTE_KEYS:
            raise _error("InvalidLookupAttributesException",
                         f"Invalid attribute key {key!r}: must be one of {', '.join(ATTRIBUTE_KEYS)}.")
        if not isinstance(value, str) or not 1 <= len(value) <= 2000:
            raise _error("InvalidLookupAttributesException", "The attribute value must be 1 to 2000 characters.")
    max_results = params.get("MaxResults", MAX_RESULTS)
    if not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
        raise _error("InvalidMaxResultsException", f"MaxResults must be between 1 and {MAX_RESULTS}.")
    start = _timestamp(params.get("StartTime"), "StartTime")
    end = _timestamp(params.get("EndTime"), "EndTime")
    if start is not None and end is not None and start > end:
        raise _error("InvalidTimeRangeException", "StartTime must be before EndTime.")
    category = params.get("EventCategory")
    if category is not None and category != "insight":
        raise _error("InvalidEventCategoryException", f"Invalid EventCategory {category!r}: must be insight.")
    query = hashlib.sha256(json.dumps([key, value, start, end, category, region, account_id]).encode()).hexdigest()
    before = None
    token = params.get("NextToken")
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            before, token_query = int(decoded["seq"]), decoded["q"]
        except (ValueError, KeyError, TypeError):
            raise _error("InvalidNextTokenException", "Invalid NextToken.") from None
        if token_query != query[:16]:
            raise _error("InvalidNextTokenException", "The NextToken belongs to a query with other parameters.")
    events: list[dict[str, Any]] = []
    more = False
    if category is None:
        for event in STORE.newest_first():
            if before is not None and event["seq"] >= before:
                continue
            record = event["record"]
            if record["awsRegion"] != region or record["recipientAccountId"] != account_id:
                continue
            if (start is not None and event["time"] < start) or (end is not None and event["time"] > end):
                continue
            if key is not None and not _matches(event, key, value):
                continue
            if len(events) == max_results:
                more = True
                break
            events.append(event)
    out: dict[str, Any] = {"Events": [_lookup_event(e) for e in events]}
    if more:
        out["NextToken"] = base64.urlsafe_b64encode(json.dumps(
            {"seq": events[-1]["seq"], "q": query[:16]}).encode()).decode()
    return out


def _lookup_event(event: dict[str, Any]) -> dict[str, Any]:
    record = event["record"]
    item = {"EventId": record["eventID"], "EventName": record["eventName"],
            "ReadOnly": str(record["readOnly"]).lower(), "EventTime": event["time"],
            "EventSource": record["eventSource"], "Username": event["username"],
            "Resources": event["resources"], "CloudTrailEvent": json.dumps(record, default=str)}
    if record["userIdentity"].get("accessKeyId"):
        item["AccessKeyId"] = record["userIdentity"]["accessKeyId"]
    return item


def lookup_events(self: Any) -> str:
    """moto ``CloudTrailResponse.lookup_events``: see :func:`lookup`."""
    return json.dumps(lookup(json.loads(self.body or "{}"), self.region, self.current_account))


def install() -> None:
    from moto.cloudtrail.responses import CloudTrailResponse

    CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]
