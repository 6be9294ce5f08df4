"""The CloudWatch API operations localaws answers itself (added to moto's ``CloudWatchResponse``).

* ``DescribeAlarmHistory`` (moto has none): the items :mod:`.models` records, filtered by
  AlarmName, AlarmTypes (default: metric alarms, as AWS), HistoryItemType, StartDate/EndDate,
  ordered by ScanBy (default ``TimestampDescending``), paged by MaxRecords (1-100, default 100)
  and NextToken.
* ``DescribeAlarms``: moto applies only one of its filters (the first given of ActionPrefix,
  AlarmNamePrefix, AlarmNames, StateValue) and returns composite alarms unasked; AWS combines
  them (AlarmNames with AlarmNamePrefix is refused, as AWS documents) and, without AlarmTypes,
  returns metric alarms only, ordered by name. ActionPrefix matches AlarmActions, as
  moto does. MaxRecords/NextToken are not applied (all matches in one page).
"""

from __future__ import annotations

from moto.cloudwatch import responses as cw_responses
from moto.cloudwatch.exceptions import InvalidParameterCombination, InvalidParameterValue
from moto.core.responses import ActionResult

from localaws.services.cloudwatch_alarms import models


def describe_alarm_history(self: cw_responses.CloudWatchResponse) -> ActionResult:
    backend = self.cloudwatch_backend
    name = self._get_param("AlarmName")
    types = self._get_param("AlarmTypes") or ["MetricAlarm"]
    kind = self._get_param("HistoryItemType")
    start, end = self._get_param("StartDate"), self._get_param("EndDate")
    scan_by = self._get_param("ScanBy") or "TimestampDescending"
    limit = int(self._get_param("MaxRecords") or 100)
    if not 1 <= limit <= 100:
        raise InvalidParameterValue(f"The value {limit} for parameter MaxRecords is not in the range 1 to 100.")
    items = [item for item in models._history(backend)
             if (not name or item["AlarmName"] == name) and item["AlarmType"] in types
             and (not kind or item["HistoryItemType"] == kind)
             and (not start or models._epoch(item["Timestamp"]) >= models._epoch(start))
             and (not end or models._epoch(item["Timestamp"]) <= models._epoch(end))]
    items.sort(key=lambda item: models._epoch(item["Timestamp"]), reverse=scan_by != "TimestampAscending")
    token = self._get_param("NextToken")
    try:
        offset = int(token) if token else 0
    except ValueError:
        raise InvalidParameterValue("The value for parameter NextToken is invalid.") from None
    page = items[offset:offset + limit]
    more = offset + limit < len(items)
    return ActionResult({"AlarmHistoryItems": page, "NextToken": str(offset + limit) if more else None})


def describe_alarms(self: cw_responses.CloudWatchResponse) -> ActionResult:
    backend = self.cloudwatch_backend
    action_prefix = self._get_param("ActionPrefix")
    name_prefix = self._get_param("AlarmNamePrefix")
    names = self._get_param("AlarmNames", [])
    state = self._get_param("StateValue")
    types = self._get_param("AlarmTypes") or ["MetricAlarm"]
    if names and name_prefix:  # the DescribeAlarms reference: "you cannot specify AlarmNames" with a prefix
        raise InvalidParameterCombination("DescribeAlarms: AlarmNamePrefix and AlarmNames cannot be used together")
    alarms = [a for a in sorted(backend.alarms.values(), key=lambda a: a.name)  # AWS lists by name
              if (not action_prefix or any(x.startswith(action_prefix) for x in a.alarm_actions))
              and (not name_prefix or a.name.startswith(name_prefix))
              and (not names or a.name in names)
              and (not state or a.state_value == state)]
    result = {"MetricAlarms": [a for a in alarms if a.rule is None] if "MetricAlarm" in types else [],
              "CompositeAlarms": [a for a in alarms if a.rule is not None] if "CompositeAlarm" in types else []}
    return ActionResult(result)


def install() -> None:
    """Add/replace the operations on moto's CloudWatchResponse (idempotent)."""
    cw_responses.CloudWatchResponse.describe_alarm_history = describe_alarm_history  # type: ignore[attr-defined]
    cw_responses.CloudWatchResponse.describe_alarms = describe_alarms  # type: ignore[method-assign]
