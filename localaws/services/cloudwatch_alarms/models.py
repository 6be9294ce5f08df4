"""Alarm state, history and actions on moto's CloudWatch backend, and the evaluator thread.

moto stores alarms (``moto.cloudwatch.models.Alarm``) and metric data but never evaluates; this
module patches its backend so that:

* ``put_metric_alarm`` validates what evaluation needs (clear errors naming the alarm and the field;
  metric-math, anomaly-band and composite alarms are refused with HTTP 501, see
  :class:`AlarmNotEmulated`), starts a new alarm in ``INSUFFICIENT_DATA`` ("Unchecked: Initial
  alarm creation", as AWS; moto starts in ``OK``), keeps the state of an alarm it updates (the
  PutMetricAlarm reference: "its state is left unchanged") and records a ``ConfigurationUpdate``;
* ``set_alarm_state`` records a ``StateUpdate`` and runs the actions, as AWS does;
* ``delete_alarms`` records a ``ConfigurationUpdate`` (``Alarm "x" deleted``);
* :class:`Evaluator` evaluates every metric alarm every ``RUNTIME.alarm_evaluation_seconds``
  (env ``LOCALAWS_ALARM_EVALUATION_SECONDS``, default 60 as AWS) with
  :func:`localaws.services.cloudwatch_alarms.evaluation.decide`.

History lives on the backend (``localaws_alarm_history``), so it persists with the snapshot and
outlives a deleted alarm, as AWS keeps history (two weeks; localaws keeps it all).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch import models as cw
from moto.cloudwatch.exceptions import InvalidParameterCombination, ValidationError
from moto.core.utils import utcnow
from moto.sns import models as sns_models

from localaws.runtime import RUNTIME, NotEmulated, log
from localaws.services.cloudwatch_alarms import evaluation as ev

#: Serialises alarm changes between requests and the evaluator (moto's dicts have no lock).
LOCK = threading.RLock()
INITIAL_REASON = "Unchecked: Initial alarm creation"


class AlarmNotEmulated(NotEmulated):
    """An alarm localaws would store but not evaluate: refused with HTTP 501 ``NotImplemented``
    (botocore does not retry it; see localaws/server.py ``NOT_IMPLEMENTED``)."""


@functools.cache
def _region_name(region: str) -> str:
    """AWS's long region name (``US East (N. Virginia)``), from botocore's endpoints data."""
    from botocore.loaders import Loader

    for partition in Loader().load_data("endpoints")["partitions"]:
        if region in partition["regions"]:
            return partition["regions"][region].get("description", region)
    return region


def _epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


def _iso_dt(ts: datetime) -> str:
    return ev.iso(_epoch(ts))


def _history(backend: cw.CloudWatchBackend) -> list[dict[str, Any]]:
    if "localaws_alarm_history" not in backend.__dict__:
        backend.localaws_alarm_history = []  # type: ignore[attr-defined]
    return backend.localaws_alarm_history  # type: ignore[attr-defined]


def _add_history(backend: cw.CloudWatchBackend, alarm: cw.Alarm, kind: str, summary: str, data: dict) -> None:
    _history(backend).append({"AlarmName": alarm.name, "AlarmType": "MetricAlarm", "Timestamp": utcnow(),
                              "HistoryItemType": kind, "HistorySummary": summary,
                              "HistoryData": json.dumps(data, separators=(",", ":"))})


def _config(alarm: cw.Alarm) -> dict[str, Any]:
    """The alarm as AWS writes it in ConfigurationUpdate history: camelCase keys, ``okactions``
    lower-case and ``alarmDescription`` ``""`` when none (a published ``createdAlarm`` of 2014)."""
    out: dict[str, Any] = {
        "alarmName": alarm.name, "alarmArn": alarm.alarm_arn, "alarmDescription": alarm.description or "",
        "alarmConfigurationUpdatedTimestamp": _iso_dt(alarm.configuration_updated_timestamp),
        "actionsEnabled": alarm.actions_enabled, "okactions": list(alarm.ok_actions),
        "alarmActions": list(alarm.alarm_actions), "insufficientDataActions": list(alarm.insufficient_data_actions),
        "stateValue": alarm.state_value, "stateUpdatedTimestamp": _iso_dt(alarm.state_updated_timestamp),
        "metricName": alarm.metric_name, "namespace": alarm.namespace,
        "dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions],
        "period": alarm.period, "unit": alarm.unit, "evaluationPeriods": alarm.evaluation_periods,
        "datapointsToAlarm": alarm.datapoints_to_alarm, "threshold": alarm.threshold,
        "comparisonOperator": alarm.comparison_operator, "treatMissingData": alarm.treat_missing_data,
        "metrics": [],
    }
    out["statistic" if alarm.statistic else "extendedStatistic"] = alarm.statistic or alarm.extended_statistic
    return {k: v for k, v in out.items() if v is not None}


def spec_of(alarm: cw.Alarm) -> ev.Spec:
    n = int(alarm.evaluation_periods)
    return ev.Spec(period=int(alarm.period), evaluation_periods=n,
                   datapoints_to_alarm=int(alarm.datapoints_to_alarm or n), threshold=float(alarm.threshold),
                   operator=alarm.comparison_operator, treat_missing_data=alarm.treat_missing_data or "missing",
                   statistic=alarm.statistic, extended_statistic=alarm.extended_statistic, unit=alarm.unit,
                   low_sample_count=alarm.evaluate_low_sample_count_percentile)


def validate(name: str, namespace: str | None, metric_name: str | None, comparison_operator: str | None,
             evaluation_periods: Any, period: Any, threshold: Any, statistic: str | None,
             extended_statistic: str | None, datapoints_to_alarm: Any, treat_missing_data: str | None,
             metric_data_queries: Any, rule: str | None) -> None:
    """Refuse an alarm that localaws cannot evaluate as AWS would (501) or that AWS refuses (400).

    :raises AlarmNotEmulated: metric math (``Metrics``), anomaly bands, composite alarms,
        extended statistics other than percentiles.
    :raises ValidationError: a missing or invalid field, named with the alarm.
    """
    where = f"alarm '{name}'"
    if rule is not None:
        raise AlarmNotEmulated(f"localaws does not evaluate composite alarms ({where}: AlarmRule); "
                               "see docs/localaws.md, \"CloudWatch alarms\"")
    if metric_data_queries:
        raise AlarmNotEmulated(f"localaws does not evaluate metric-math alarms ({where}: Metrics); use "
                               "Namespace, MetricName, Dimensions and Statistic or ExtendedStatistic "
                               "(docs/localaws.md, \"CloudWatch alarms\")")
    if comparison_operator in ev.BAND_OPERATORS:
        raise AlarmNotEmulated(f"localaws does not evaluate anomaly-detection alarms ({where}: ComparisonOperator "
                               f"{comparison_operator} needs a band from ThresholdMetricId and Metrics)")
    if comparison_operator not in ev.OPERATORS:
        raise ValidationError(f"1 validation error detected: Value '{comparison_operator}' at 'comparisonOperator' "
                              f"({where}) failed to satisfy constraint: Member must satisfy enum value set: "
                              f"[{', '.join([*ev.OPERATORS, *ev.BAND_OPERATORS])}]")
    for field, value in (("Namespace", namespace), ("MetricName", metric_name), ("Period", period),
                         ("Threshold", threshold)):
        if value in (None, ""):
            raise ValidationError(f"{where}: {field} is required for an alarm on a single metric")
    if (statistic is None) == (extended_statistic is None):
        raise InvalidParameterCombination(f"{where}: exactly one of Statistic and ExtendedStatistic must be set")
    if statistic is not None and statistic not in ev.STATISTICS:
        raise ValidationError(f"1 validation error detected: Value '{statistic}' at 'statistic' ({where}) failed to "
                              f"satisfy constraint: Member must satisfy enum value set: [{', '.join(ev.STATISTICS)}]")
    if extended_statistic is not None and not ev.PERCENTILE.match(extended_statistic):
        raise AlarmNotEmulated(f"localaws evaluates only percentile extended statistics (p0 to p100, e.g. p99.9); "
                               f"{where} has ExtendedStatistic {extended_statistic}")
    p = int(period)
    if p not in (10, 20, 30) and (p <= 0 or p % 60):
        raise ValidationError(f"{where}: Period {p} is invalid: valid values are 10, 20, 30 and any multiple of 60")
    n = int(evaluation_periods)
    if n < 1:
        raise ValidationError(f"{where}: EvaluationPeriods must be at least 1 (got {n})")
    # PutMetricAlarm reference, EvaluationPeriods: at most seven days in all, one day for periods under an hour.
    limit = 86_400 if p < 3600 else 604_800
    if n * p > limit:
        raise ValidationError(f"{where}: EvaluationPeriods x Period = {n} x {p} s exceeds {limit} s (one day for "
                              "periods under an hour, seven days otherwise)")
    if datapoints_to_alarm is not None and not 1 <= int(datapoints_to_alarm) <= n:
        raise ValidationError(f"{where}: DatapointsToAlarm ({datapoints_to_alarm}) must be between 1 and "
                              f"EvaluationPeriods ({n})")
    if treat_missing_data is not None and treat_missing_data not in ev.TREAT_MISSING:
        raise ValidationError(f"{where}: TreatMissingData '{treat_missing_data}' is invalid: valid values are "
                              f"{', '.join(ev.TREAT_MISSING)}")


# -- state changes and actions

def change_state(backend: cw.CloudWatchBackend, alarm: cw.Alarm, state: str, reason: str,
                 reason_data: str | None) -> bool:
    """Set the alarm's state; on a change of StateValue record history and run the actions.
    Returns whether StateValue changed."""
    old_value, old_reason, old_data = alarm.state_value, alarm.state_reason, alarm.state_reason_data
    now = utcnow()
    alarm.state_reason, alarm.state_reason_data = reason, reason_data
    if state == old_value:
        return False
    alarm.state_value = state
    alarm.state_updated_timestamp = now
    alarm.state_transitioned_timestamp = now

    def side(value: str, why: str, data: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"stateValue": value, "stateReason": why}
        if data:
            try:
                out["stateReasonData"] = json.loads(data)
            except ValueError:
                pass
        return out

    _add_history(backend, alarm, "StateUpdate", f"Alarm updated from {old_value} to {state}",
                 {"version": "1.0", "oldState": side(old_value, old_reason, old_data),
                  "newState": side(state, reason, reason_data)})
    log.info("CloudWatch alarm %s: %s -> %s (%s)", alarm.name, old_value, state, reason)
    if alarm.actions_enabled:
        actions = {ev.ALARM: alarm.alarm_actions, ev.OK: alarm.ok_actions,
                   ev.INSUFFICIENT_DATA: alarm.insufficient_data_actions}[state]
        for arn in actions or []:
            _run_action(backend, alarm, arn, old_value, now)
    return True


def notification(backend: cw.CloudWatchBackend, alarm: cw.Alarm, old_value: str, when: datetime) -> dict[str, Any]:
    """The JSON AWS publishes to an SNS alarm action: the keys, their order and forms of its
    published notifications of 2022-2025 (``Statistic`` in capitals, ``Dimensions`` as
    ``[{"value", "name"}]``, ``DatapointsToAlarm`` and ``TreatMissingData`` always present)."""
    trigger: dict[str, Any] = {"MetricName": alarm.metric_name, "Namespace": alarm.namespace}
    if alarm.statistic:
        trigger.update({"StatisticType": "Statistic", "Statistic": alarm.statistic.upper()})
    else:
        trigger.update({"StatisticType": "ExtendedStatistic", "ExtendedStatistic": alarm.extended_statistic})
    trigger.update({
        "Unit": alarm.unit,
        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
        "Period": int(alarm.period), "EvaluationPeriods": int(alarm.evaluation_periods),
        "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
        "ComparisonOperator": alarm.comparison_operator, "Threshold": float(alarm.threshold),
        # "missing" since 2022; notifications of 2019-2021 read "- TreatMissingData: missing".
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
    })
    return {
        "AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": backend.account_id,
        "AlarmConfigurationUpdatedTimestamp": _iso_dt(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value, "NewStateReason": alarm.state_reason,
        "StateChangeTime": _iso_dt(when), "Region": _region_name(backend.region_name), "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_value, "OKActions": list(alarm.ok_actions), "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions), "Trigger": trigger,
    }


def _run_action(backend: cw.CloudWatchBackend, alarm: cw.Alarm, arn: str, old_value: str, when: datetime) -> None:
    parts = arn.split(":")
    stamp = int(_epoch(when) * 1000)
    if len(parts) < 6 or parts[2] != "sns":
        _add_history(backend, alarm, "Action", f"Failed to execute action {arn}",
                     {"actionState": "Failed", "stateUpdateTimestamp": stamp,
                      "error": "localaws runs only Amazon SNS alarm actions"})
        log.warning("CloudWatch alarm %s: action %s not run: localaws runs only SNS alarm actions", alarm.name, arn)
        return
    topic = sns_models.sns_backends[parts[4]][parts[3]].topics.get(arn)
    message = json.dumps(notification(backend, alarm, old_value, when), separators=(",", ":"))
    if topic is None:
        _add_history(backend, alarm, "Action", f"Failed to execute action {arn}",
                     {"actionState": "Failed", "stateUpdateTimestamp": stamp, "notificationResource": arn,
                      "error": "Resource not found"})
        log.warning("CloudWatch alarm %s: SNS topic %s does not exist", alarm.name, arn)
        return
    subject = f'{alarm.state_value}: "{alarm.name}" in {_region_name(backend.region_name)}'[:100]
    topic.publish(message, subject=subject)
    _add_history(backend, alarm, "Action", f"Successfully executed action {arn}",
                 {"actionState": "Succeeded", "stateUpdateTimestamp": stamp, "notificationResource": arn,
                  "publishedMessage": message})


# -- patches of moto's backend

_original_put = cw.CloudWatchBackend.put_metric_alarm
_original_set_state = cw.CloudWatchBackend.set_alarm_state
_original_delete = cw.CloudWatchBackend.delete_alarms


def _put_metric_alarm(self: cw.CloudWatchBackend, name: str, namespace: str, metric_name: str,
                      comparison_operator: str, evaluation_periods: int, period: int, threshold: float,
                      statistic: str, description: str, dimensions: list[dict[str, str]], alarm_actions: list[str],
                      *args: Any, **kwargs: Any) -> cw.Alarm:
    validate(name, namespace, metric_name, comparison_operator, evaluation_periods, period, threshold, statistic,
             kwargs.get("extended_statistic"), kwargs.get("datapoints_to_alarm"), kwargs.get("treat_missing_data"),
             kwargs.get("metric_data_queries"), kwargs.get("rule"))
    with LOCK:
        old = self.alarms.get(name)
        alarm = _original_put(self, name, namespace, metric_name, comparison_operator, evaluation_periods, period,
                              threshold, statistic, description, dimensions, alarm_actions, *args, **kwargs)
        if old is not None:
            for attr in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp"):
                setattr(alarm, attr, getattr(old, attr))
            alarm.state_transitioned_timestamp = getattr(old, "state_transitioned_timestamp",
                                                         old.state_updated_timestamp)
            _add_history(self, alarm, "ConfigurationUpdate", f'Alarm "{name}" updated',
                         {"version": "1.0", "type": "Update", "updatedAlarm": _config(alarm),
                          "originalAlarm": _config(old)})
        else:
            alarm.state_value, alarm.state_reason, alarm.state_reason_data = ev.INSUFFICIENT_DATA, INITIAL_REASON, None
            alarm.state_transitioned_timestamp = alarm.state_updated_timestamp
            _add_history(self, alarm, "ConfigurationUpdate", f'Alarm "{name}" created',
                         {"version": "1.0", "type": "Create", "createdAlarm": _config(alarm)})
        return alarm


def _set_alarm_state(self: cw.CloudWatchBackend, alarm_name: str, reason: str, reason_data: str,
                     state_value: str) -> None:
    with LOCK:
        _original_set_state(self, alarm_name, reason, reason_data, state_value)  # validates; moto's update_state
        alarm = self.alarms[alarm_name]
        # moto's update_state set the new values and kept the old ones in alarm.history: undo, then change
        # through change_state so history and actions are AWS's.
        _kind, alarm.state_reason, alarm.state_reason_data, alarm.state_value, alarm.state_updated_timestamp = \
            alarm.history.pop()
        change_state(self, alarm, state_value, reason, reason_data)


def _delete_alarms(self: cw.CloudWatchBackend, alarm_names: list[str]) -> None:
    with LOCK:
        for name in alarm_names:
            alarm = self.alarms.get(name)
            if alarm is not None:
                _add_history(self, alarm, "ConfigurationUpdate", f'Alarm "{name}" deleted',
                             {"version": "1.0", "type": "Delete", "deletedAlarm": _config(alarm)})
        _original_delete(self, alarm_names)


def install() -> None:
    """Patch moto's CloudWatch backend (idempotent)."""
    cw.CloudWatchBackend.put_metric_alarm = _put_metric_alarm  # type: ignore[method-assign]
    cw.CloudWatchBackend.set_alarm_state = _set_alarm_state  # type: ignore[method-assign]
    cw.CloudWatchBackend.delete_alarms = _delete_alarms  # type: ignore[method-assign]


# -- evaluation

def _periods(backend: cw.CloudWatchBackend, alarm: cw.Alarm, since: float) -> dict[float, ev.Samples]:
    """The alarm's metric data since ``since`` (epoch s), by period start. A datum belongs to the
    alarm's metric when namespace, name and the whole dimension set are equal (a metric is
    identified by all its dimensions), and its unit too when the alarm sets one."""
    want = sorted((d.name, d.value) for d in alarm.dimensions)
    period = int(alarm.period)
    out: dict[float, ev.Samples] = {}
    for datum in list(backend.metric_data):
        if datum.namespace != alarm.namespace or datum.name != alarm.metric_name:
            continue
        ts = _epoch(datum.timestamp)
        if ts < since or sorted((d.name, d.value) for d in datum.dimensions) != want:
            continue
        if alarm.unit and datum.unit != alarm.unit:
            continue
        samples = out.setdefault(ts // period * period, ev.Samples())
        if isinstance(datum, cw.MetricAggregatedDatum):
            samples.sets.append((datum.sum, datum.min, datum.max, datum.sample_count))
        else:
            samples.values.append(datum.value)
    return out


def evaluate_alarm(backend: cw.CloudWatchBackend, alarm: cw.Alarm, now: float) -> bool:
    """Evaluate one alarm at ``now``; returns whether its StateValue changed."""
    if alarm.rule is not None or alarm.metric_data_queries or alarm.comparison_operator not in ev.OPERATORS:
        return False
    spec = spec_of(alarm)
    since = (now // spec.period - ev.evaluation_range(spec) - 1) * spec.period
    outcome = ev.decide(spec, _periods(backend, alarm, since), now)
    if outcome.state is None or outcome.state == alarm.state_value:
        return False
    return change_state(backend, alarm, outcome.state, outcome.reason,
                        json.dumps(outcome.reason_data, separators=(",", ":")))


def evaluate_all(now: float | None = None) -> int:
    """Evaluate every metric alarm of every account and region; returns how many changed state."""
    now = time.time() if now is None else now
    changed = 0
    for account in list(cw.cloudwatch_backends.values()):
        for backend in list(account.values()):
            for alarm in list(backend.alarms.values()):
                with LOCK:
                    if backend.alarms.get(alarm.name) is not alarm:
                        continue
                    try:
                        changed += evaluate_alarm(backend, alarm, now)
                    except Exception:  # noqa: BLE001 - one alarm's failure must not stop the others
                        log.exception("CloudWatch alarm %s: evaluation failed", alarm.name)
    return changed


class Evaluator:
    """The thread that evaluates alarms every ``RUNTIME.alarm_evaluation_seconds``.

    :meth:`start` takes ``shared`` (a context manager factory: the server's snapshot lock, held
    while an evaluation changes state) and ``changed`` (called after a round that changed state:
    counts the change and, with durable writes, waits for the snapshot holding it).
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.rounds = 0

    def start(self, shared: Callable[[], ContextManager[Any]], changed: Callable[[], None]) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(shared, changed), name="localaws-alarms",
                                        daemon=True)
        self._thread.start()

    def configure(self, seconds: float) -> None:
        """Change the evaluation interval now (tests shorten it); the next round is due at once."""
        if seconds <= 0:
            raise ValueError(f"alarm evaluation interval must be positive, got {seconds}")
        RUNTIME.alarm_evaluation_seconds = seconds
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self, shared: Callable[[], ContextManager[Any]], changed: Callable[[], None]) -> None:
        while not self._stop.is_set():
            self._wake.wait(RUNTIME.alarm_evaluation_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with shared():
                    count = evaluate_all()
                self.rounds += 1
                if count:
                    changed()
            except Exception:  # noqa: BLE001 - keep evaluating; the next round tries again
                log.exception("CloudWatch alarm evaluation round failed")


EVALUATOR = Evaluator()

