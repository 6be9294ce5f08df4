"""CloudWatch metric alarms evaluated as AWS documents (localaws/services/cloudwatch_alarms/).

The oracle is AWS's documentation: the two tables of "How alarm state is evaluated when data is
missing" (checked on the pure evaluation), the reason texts of published notifications, and the
SNS notification JSON. The rest runs through boto3 against the in-process localaws, with the
evaluation interval shortened to 0.5 s and Period 10 (a high-resolution period), each datapoint
timestamped in a complete period so that one round evaluates it.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from datetime import UTC, datetime

import botocore.exceptions
import pytest

from localaws.services import sns
from localaws.services.cloudwatch_alarms import EVALUATOR
from localaws.services.cloudwatch_alarms import evaluation as ev
from tests.localaws.test_server import serve

INTERVAL = 0.5
PERIOD = 10


# -- the documented tables, on the pure evaluation

# "Data points" (oldest first; 0 not breaching, X breaching, - missing) -> state for MISSING,
# IGNORE, BREACHING, NOT BREACHING ("keep": retain current state).
TABLE_3_OF_3 = [
    ("0-X-X", ("OK", "OK", "OK", "OK")),
    ("0----", ("OK", "OK", "OK", "OK")),
    ("-----", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    ("0XX-X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("----X", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    ("X----", ("ALARM", "keep", "ALARM", "OK")),
]
TABLE_2_OF_3 = [
    ("0-X-X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("00X0X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("0-X--", ("OK", "OK", "ALARM", "OK")),
    ("----0", ("OK", "OK", "ALARM", "OK")),
    ("----X", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
]


@pytest.mark.parametrize("m,row,expected", [(3, r, e) for r, e in TABLE_3_OF_3] + [(2, r, e) for r, e in TABLE_2_OF_3])
def test_documented_missing_data_tables(m, row, expected):
    now = 1_800_000_000.0 + 5  # 5 s into a period
    end = math.floor(now / 60) * 60
    periods = {}
    for i, mark in enumerate(row):  # 5 periods, oldest first, ending at the newest complete one
        if mark != "-":
            periods[end - 60 * (5 - i)] = ev.Samples(values=[5.0 if mark == "X" else 0.0])
    for treat, want in zip(("missing", "ignore", "breaching", "notBreaching"), expected):
        spec = ev.Spec(period=60, evaluation_periods=3, datapoints_to_alarm=m, threshold=1.0,
                       operator="GreaterThanThreshold", treat_missing_data=treat, statistic="Maximum")
        assert ev.evaluation_range(spec) == 5
        outcome = ev.decide(spec, periods, now)
        got = outcome.state or "keep"
        assert got == want, f"{row} {m} of 3, TreatMissingData={treat}: {got} ({outcome.reason})"


def test_low_sample_count_percentile():
    """p90 needs 10/(1-0.9) = 100 samples a period; with fewer, ``ignore`` keeps the state."""
    now = 1_800_000_005.0
    periods = {1_800_000_000.0 - 60: ev.Samples(values=[5.0] * 99)}
    spec = ev.Spec(period=60, evaluation_periods=1, datapoints_to_alarm=1, threshold=1.0,
                   operator="GreaterThanThreshold", extended_statistic="p90", low_sample_count="ignore")
    assert ev.decide(spec, periods, now).state is None
    periods[1_800_000_000.0 - 60].values.append(5.0)
    assert ev.decide(spec, periods, now).state == "ALARM"
    spec.low_sample_count = "evaluate"
    periods[1_800_000_000.0 - 60].values[:] = [5.0]
    assert ev.decide(spec, periods, now).state == "ALARM"


def test_statistics_over_values_and_statistic_sets():
    samples = ev.Samples(values=[1.0, 5.0], sets=[(10.0, 0.5, 7.0, 4.0)])  # sum, min, max, count
    got = {s: ev.statistic(ev.Spec(60, 1, 1, 0.0, "GreaterThanThreshold", statistic=s), samples)
           for s in ev.STATISTICS}
    assert got == {"SampleCount": 6.0, "Average": 16.0 / 6, "Sum": 16.0, "Minimum": 0.5, "Maximum": 7.0}
    percentile = ev.Spec(60, 1, 1, 0.0, "GreaterThanThreshold", extended_statistic="p50")
    assert ev.statistic(percentile, ev.Samples(sets=[(10.0, 0.5, 7.0, 4.0)])) is None  # raw values only


def test_numbers_are_written_as_java_doubles():
    assert [ev.number(v) for v in (4000, 0.0, 3.6266666666666665, 0.001, 1e10, 12345678.9, 0.00015, -2.5e-7)] == \
        ["4000.0", "0.0", "3.6266666666666665", "0.001", "1.0E10", "1.23456789E7", "1.5E-4", "-2.5E-7"]


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 11)]
    assert ev.percentile(values, 90) == 9.0
    assert ev.percentile(values, 99.9) == 10.0
    assert ev.percentile(values, 50) == 5.0
    assert ev.percentile([3.0], 10) == 3.0


# -- through boto3

@pytest.fixture
def fast_alarms(localaws):
    """Evaluate every INTERVAL s for one test (the session server's setting is put back after)."""
    from localaws.runtime import RUNTIME

    previous = RUNTIME.alarm_evaluation_seconds
    EVALUATOR.configure(INTERVAL)
    yield
    EVALUATOR.configure(previous)


@pytest.fixture
def cw(aws_client, fast_alarms):
    return aws_client("cloudwatch")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _periods_ago() -> float:
    """The end of the newest complete period, at least 3 s before the next one ends (so a test's
    datapoints stay in the buckets it chose while it runs)."""
    while (time.time() % PERIOD) > PERIOD - 3:
        time.sleep(0.2)
    return math.floor(time.time() / PERIOD) * PERIOD


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _short(ts: float) -> str:
    return _at(ts).strftime("%d/%m/%y %H:%M:%S")


def _put(cw, namespace: str, metric: str, *points: tuple[float, float], dims=None) -> None:
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": metric, "Value": v, "Timestamp": _at(ts), "Dimensions": dims or []} for ts, v in points])


def _wait_state(cw, name: str, state: str, timeout: float = 6.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        if alarm["StateValue"] == state:
            return alarm
        if time.monotonic() > deadline:
            raise AssertionError(f"alarm {name} is {alarm['StateValue']} ({alarm['StateReason']}), not {state}")
        time.sleep(0.05)


def _alarm(cw, name: str, namespace: str, **kwargs) -> None:
    args = {"AlarmName": name, "Namespace": namespace, "MetricName": "Errors", "Statistic": "Maximum",
            "Period": PERIOD, "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"}
    args.update(kwargs)
    if "ExtendedStatistic" in kwargs:
        del args["Statistic"]
    cw.put_metric_alarm(**args)


def _queue(aws_client, topic_arn: str) -> str:
    sqs = aws_client("sqs")
    url = sqs.create_queue(QueueName=_name("alarm-inbox"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws_client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _notifications(aws_client, url: str, expect: int, timeout: float = 5.0) -> list[dict]:
    sqs, got = aws_client("sqs"), []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        for msg in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(json.loads(msg["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    return got


def test_new_alarm_is_insufficient_data_then_ok_alarm_ok_with_the_documented_reasons(cw):
    name, ns = _name("errors"), _name("Lake")
    _alarm(cw, name, ns, AlarmDescription="lake errors")
    first = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert (first["StateValue"], first["StateReason"]) == ("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation")
    end = _periods_ago()
    _put(cw, ns, "Errors", (end - 25, 0.0))
    ok = _wait_state(cw, name, "OK")
    assert ok["StateReason"] == (
        f"Threshold Crossed: 1 out of the last 1 datapoints [0.0 ({_short(end - 30)})] was not greater than the "
        "threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition).")
    _put(cw, ns, "Errors", (end - 15, 5.0), (end - 12, 2.0))  # Maximum of the period: 5.0
    alarm = _wait_state(cw, name, "ALARM")
    assert alarm["StateReason"] == (
        f"Threshold Crossed: 1 out of the last 1 datapoints [5.0 ({_short(end - 20)})] was greater than the "
        "threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition).")
    data = json.loads(alarm["StateReasonData"])
    assert data["version"] == "1.0" and data["statistic"] == "Maximum" and data["period"] == PERIOD
    assert data["threshold"] == 1.0 and data["recentDatapoints"] == [5.0]
    assert data["startDate"] == ev.iso(end - 20)
    assert data["evaluatedDatapoints"] == [{"timestamp": ev.iso(end - 20), "sampleCount": 2.0, "value": 5.0}]
    assert alarm["StateTransitionedTimestamp"] == alarm["StateUpdatedTimestamp"] > ok["StateUpdatedTimestamp"]
    _put(cw, ns, "Errors", (end - 5, 1.0))  # not greater than 1.0
    back = _wait_state(cw, name, "OK")
    assert back["StateReason"] == (
        f"Threshold Crossed: 1 out of the last 1 datapoints [1.0 ({_short(end - 10)})] was not greater than the "
        "threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition).")


def test_m_out_of_n_with_sum_and_dimensions(cw):
    ns, dims = _name("Lake"), [{"Name": "Table", "Value": "flights"}]
    alarming, calm = _name("m-of-n"), _name("m-of-n-calm")
    for name, metric in ((alarming, "Rejected"), (calm, "Late")):
        _alarm(cw, name, ns, MetricName=metric, Statistic="Sum", EvaluationPeriods=3, DatapointsToAlarm=2,
               Threshold=10.0, ComparisonOperator="GreaterThanOrEqualToThreshold", Dimensions=dims)
    end = _periods_ago()
    # Rejected: 12 (6 + 6), 3, 11 -> 2 of 3 breach; another dimension set is another metric.
    _put(cw, ns, "Rejected", (end - 30, 6.0), (end - 28, 6.0), (end - 20, 3.0), (end - 10, 11.0), dims=dims)
    _put(cw, ns, "Rejected", (end - 20, 50.0), dims=[*dims, {"Name": "Day", "Value": "2026-12-01"}])
    _put(cw, ns, "Late", (end - 30, 12.0), (end - 20, 3.0), (end - 10, 4.0), dims=dims)
    alarm = _wait_state(cw, alarming, "ALARM")
    assert alarm["StateReason"] == (
        f"Threshold Crossed: 2 out of the last 3 datapoints [11.0 ({_short(end - 10)}), 12.0 ({_short(end - 30)})] "
        "were greater than or equal to the threshold (10.0) (minimum 2 datapoints for OK -> ALARM transition).")
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [12.0, 3.0, 11.0]
    ok = _wait_state(cw, calm, "OK")
    assert ok["StateReason"] == (
        f"Threshold Crossed: 2 out of the last 3 datapoints [4.0 ({_short(end - 10)}), 3.0 ({_short(end - 20)})] "
        "were not greater than or equal to the threshold (10.0) (minimum 2 datapoints for ALARM -> OK transition).")


def test_treat_missing_data_modes_without_data(cw):
    ns = _name("Quiet")
    names = {treat: _name(f"quiet-{treat.lower()}") for treat in ("missing", "notBreaching", "breaching", "ignore")}
    for treat, name in names.items():
        _alarm(cw, name, ns, TreatMissingData=treat)
    cw.set_alarm_state(AlarmName=names["missing"], StateValue="OK", StateReason="test")
    cw.set_alarm_state(AlarmName=names["ignore"], StateValue="ALARM", StateReason="held by test")
    rounds = EVALUATOR.rounds
    breaching = _wait_state(cw, names["breaching"], "ALARM")
    assert breaching["StateReason"] == ("Threshold Crossed: no datapoints were received for 1 period and 1 missing "
                                        "datapoint was treated as [Breaching].")
    not_breaching = _wait_state(cw, names["notBreaching"], "OK")
    assert not_breaching["StateReason"] == ("Threshold Crossed: no datapoints were received for 1 period and 1 "
                                            "missing datapoint was treated as [NonBreaching].")
    missing = _wait_state(cw, names["missing"], "INSUFFICIENT_DATA")
    assert missing["StateReason"] == "Insufficient Data: 1 datapoint was unknown."
    while EVALUATOR.rounds < rounds + 3:
        time.sleep(0.1)
    ignored = cw.describe_alarms(AlarmNames=[names["ignore"]])["MetricAlarms"][0]
    assert (ignored["StateValue"], ignored["StateReason"]) == ("ALARM", "held by test")


def test_treat_missing_data_with_some_datapoints(cw):
    """Row "0 - X - -" of the 2-of-3 table, through the server: breaching -> ALARM, the others OK."""
    ns = _name("Sparse")
    names = {treat: _name(f"sparse-{treat.lower()}") for treat in ("missing", "notBreaching", "breaching", "ignore")}
    end = _periods_ago()
    _put(cw, ns, "Errors", (end - 50, 0.0), (end - 30, 5.0))  # before the alarms: no round sees them without data
    for treat, name in names.items():
        _alarm(cw, name, ns, TreatMissingData=treat, EvaluationPeriods=3, DatapointsToAlarm=2)
    assert _wait_state(cw, names["breaching"], "ALARM")["StateReason"].startswith(
        f"Threshold Crossed: 2 out of the last 3 datapoints [5.0 ({_short(end - 30)})] were greater than")
    for treat in ("missing", "notBreaching", "ignore"):
        _wait_state(cw, names[treat], "OK")


def test_percentile_alarm(cw):
    ns = _name("Latency")
    high, low = _name("p90-high"), _name("p90-low")
    _alarm(cw, high, ns, MetricName="Seconds", ExtendedStatistic="p90", Threshold=8.5, Unit="Seconds")
    _alarm(cw, low, ns, MetricName="Seconds", ExtendedStatistic="p90", Threshold=9.5, Unit="Seconds")
    end = _periods_ago()
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Seconds", "Values": [float(v) for v in range(1, 11)],
                                                   "Timestamp": _at(end - 5), "Unit": "Seconds"}])
    alarm = _wait_state(cw, high, "ALARM")
    assert alarm["ExtendedStatistic"] == "p90" and "Statistic" not in alarm
    assert f"[9.0 ({_short(end - 10)})] was greater than the threshold (8.5)" in alarm["StateReason"]
    data = json.loads(alarm["StateReasonData"])
    assert data["extendedStatistic"] == "p90" and data["unit"] == "Seconds"
    assert data["evaluatedDatapoints"][0]["sampleCount"] == 10.0
    _wait_state(cw, low, "OK")


def test_sns_actions_reach_an_sqs_subscriber_with_aws_json(cw, aws_client, record_property):
    topic = aws_client("sns").create_topic(Name=_name("lake-alarms"))["TopicArn"]
    url = _queue(aws_client, topic)
    name, ns = _name("notify"), _name("Lake")
    _alarm(cw, name, ns, AlarmDescription="rows rejected", AlarmActions=[topic], OKActions=[topic],
           Dimensions=[{"Name": "Table", "Value": "flights"}])  # missing data: stays INSUFFICIENT_DATA
    end = _periods_ago()
    put_at = time.time()
    _put(cw, ns, "Errors", (end - 15, 7.0), dims=[{"Name": "Table", "Value": "flights"}])
    alarm = _wait_state(cw, name, "ALARM")
    changed_at = alarm["StateTransitionedTimestamp"].timestamp()
    [note] = _notifications(aws_client, url, 1)
    received_at = time.time()
    published = [m for m in sns.published_messages(topic)]
    sent_at = datetime.fromisoformat(published[-1]["time"]).timestamp()
    record_property("alarm_latency_put_to_state_s", round(changed_at - put_at, 3))
    record_property("alarm_latency_state_to_sns_s", round(sent_at - changed_at, 3))
    record_property("alarm_latency_put_to_sqs_s", round(received_at - put_at, 3))
    print(f"alarm latency: put -> state {changed_at - put_at:.3f} s, state -> SNS {sent_at - changed_at:.3f} s, "
          f"put -> received from SQS {received_at - put_at:.3f} s (evaluation every {INTERVAL} s)")
    assert changed_at - put_at < INTERVAL + 1.5
    assert note["Subject"] == f'ALARM: "{name}" in US East (N. Virginia)'
    message = json.loads(note["Message"])
    assert list(message) == ["AlarmName", "AlarmDescription", "AWSAccountId", "AlarmConfigurationUpdatedTimestamp",
                             "NewStateValue", "NewStateReason", "StateChangeTime", "Region", "AlarmArn",
                             "OldStateValue", "OKActions", "AlarmActions", "InsufficientDataActions", "Trigger"]
    assert message["AlarmName"] == name and message["AlarmDescription"] == "rows rejected"
    assert message["AWSAccountId"] == "123456789012" and message["Region"] == "US East (N. Virginia)"
    assert (message["OldStateValue"], message["NewStateValue"]) == ("INSUFFICIENT_DATA", "ALARM")
    assert message["NewStateReason"] == alarm["StateReason"]
    assert message["AlarmArn"] == alarm["AlarmArn"] and message["AlarmActions"] == [topic]
    assert message["StateChangeTime"] == ev.iso(changed_at)
    assert message["Trigger"] == {
        "MetricName": "Errors", "Namespace": ns, "StatisticType": "Statistic", "Statistic": "MAXIMUM", "Unit": None,
        "Dimensions": [{"value": "flights", "name": "Table"}], "Period": PERIOD, "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 1.0,
        "TreatMissingData": "missing", "EvaluateLowSampleCountPercentile": ""}
    _put(cw, ns, "Errors", (end - 5, 0.0), dims=[{"Name": "Table", "Value": "flights"}])  # a newer period: OK
    [back] = _notifications(aws_client, url, 1)
    assert json.loads(back["Message"])["NewStateValue"] == "OK"
    assert back["Subject"] == f'OK: "{name}" in US East (N. Virginia)'


def test_set_alarm_state_runs_actions(cw, aws_client):
    topic = aws_client("sns").create_topic(Name=_name("manual"))["TopicArn"]
    url = _queue(aws_client, topic)
    name = _name("manual")
    _alarm(cw, name, _name("Lake"), AlarmActions=[topic], TreatMissingData="ignore")
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="testing the pager",
                       StateReasonData='{"by": "test"}')
    [note] = _notifications(aws_client, url, 1)
    message = json.loads(note["Message"])
    assert (message["NewStateValue"], message["NewStateReason"]) == ("ALARM", "testing the pager")
    alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert json.loads(alarm["StateReasonData"]) == {"by": "test"}


def test_actions_enabled_false_sends_nothing(cw, aws_client):
    topic = aws_client("sns").create_topic(Name=_name("silent"))["TopicArn"]
    url = _queue(aws_client, topic)
    name, ns = _name("silent"), _name("Lake")
    _alarm(cw, name, ns, AlarmActions=[topic], OKActions=[topic], ActionsEnabled=False)
    end = _periods_ago()
    _put(cw, ns, "Errors", (end - 5, 9.0))
    _wait_state(cw, name, "ALARM")
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="manual")
    assert _notifications(aws_client, url, 1, timeout=1.5) == []
    assert sns.published_messages(topic) == []
    kinds = {h["HistoryItemType"] for h in cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]}
    assert kinds == {"ConfigurationUpdate", "StateUpdate"}
    cw.enable_alarm_actions(AlarmNames=[name])  # DisableAlarmActions / EnableAlarmActions toggle the same flag
    cw.set_alarm_state(AlarmName=name, StateValue="INSUFFICIENT_DATA", StateReason="manual")
    notes = _notifications(aws_client, url, 1)  # the next evaluation: ALARM again, now with its action
    assert [json.loads(n["Message"])["NewStateValue"] for n in notes] == ["ALARM"]


def test_history_items(cw, aws_client):
    topic = aws_client("sns").create_topic(Name=_name("history"))["TopicArn"]
    name, ns = _name("history"), _name("Lake")
    _alarm(cw, name, ns, AlarmActions=[topic])
    end = _periods_ago()
    _put(cw, ns, "Errors", (end - 5, 3.0))
    alarm = _wait_state(cw, name, "ALARM")
    _alarm(cw, name, ns, AlarmActions=[topic], Threshold=2.0)  # an update keeps the state
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "ALARM"
    items = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    assert [i["HistoryItemType"] for i in items] == ["ConfigurationUpdate", "Action", "StateUpdate",
                                                     "ConfigurationUpdate"]  # newest first
    update, action, state, create = items
    assert all(i["AlarmName"] == name and i["AlarmType"] == "MetricAlarm" for i in items)
    assert create["HistorySummary"] == f'Alarm "{name}" created'
    created = json.loads(create["HistoryData"])["createdAlarm"]
    assert (created["threshold"], created["stateValue"], created["okactions"], created["alarmDescription"]) == \
        (1.0, "INSUFFICIENT_DATA", [], "")
    assert update["HistorySummary"] == f'Alarm "{name}" updated'
    changed = json.loads(update["HistoryData"])
    assert (changed["type"], changed["originalAlarm"]["threshold"], changed["updatedAlarm"]["threshold"]) == \
        ("Update", 1.0, 2.0)
    assert state["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    data = json.loads(state["HistoryData"])
    assert data["oldState"] == {"stateValue": "INSUFFICIENT_DATA", "stateReason": "Unchecked: Initial alarm creation"}
    assert data["newState"]["stateReason"] == alarm["StateReason"]
    assert data["newState"]["stateReasonData"] == json.loads(alarm["StateReasonData"])
    assert action["HistorySummary"] == f"Successfully executed action {topic}"
    assert json.loads(json.loads(action["HistoryData"])["publishedMessage"])["NewStateValue"] == "ALARM"
    only = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate", ScanBy="TimestampAscending")
    assert [i["HistorySummary"] for i in only["AlarmHistoryItems"]] == ["Alarm updated from INSUFFICIENT_DATA to ALARM"]
    paged = cw.describe_alarm_history(AlarmName=name, MaxRecords=3)
    assert len(paged["AlarmHistoryItems"]) == 3 and paged["NextToken"]
    rest = cw.describe_alarm_history(AlarmName=name, MaxRecords=3, NextToken=paged["NextToken"])
    assert rest["AlarmHistoryItems"] == [create] and "NextToken" not in rest
    cw.delete_alarms(AlarmNames=[name])
    after = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]  # history outlives the alarm
    assert [i["HistorySummary"] for i in after[:1]] == [f'Alarm "{name}" deleted'] and after[1:] == items
    assert json.loads(after[0]["HistoryData"])["type"] == "Delete"


def test_describe_alarms_combines_filters(cw):
    prefix = _name("filter")
    for suffix in ("a", "b", "c"):
        _alarm(cw, f"{prefix}-{suffix}", _name("Quiet"), TreatMissingData="ignore",
               AlarmActions=[f"arn:aws:sns:us-east-1:123456789012:{prefix}-{suffix}"])
    cw.set_alarm_state(AlarmName=f"{prefix}-b", StateValue="ALARM", StateReason="test")
    both = cw.describe_alarms(AlarmNamePrefix=prefix, StateValue="ALARM")
    assert [a["AlarmName"] for a in both["MetricAlarms"]] == [f"{prefix}-b"] and both["CompositeAlarms"] == []
    by_action = cw.describe_alarms(ActionPrefix=f"arn:aws:sns:us-east-1:123456789012:{prefix}-c",
                                   StateValue="INSUFFICIENT_DATA")
    assert [a["AlarmName"] for a in by_action["MetricAlarms"]] == [f"{prefix}-c"]
    _alarm(cw, f"{prefix}-0", _name("Quiet"))
    listed = [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]]
    assert listed == [f"{prefix}-0", f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]  # by name, not creation
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cw.describe_alarms(AlarmNames=[f"{prefix}-a"], AlarmNamePrefix=prefix)
    assert err.value.response["Error"]["Code"] == "InvalidParameterCombination"


@pytest.mark.parametrize("change,code,words", [
    ({"Metrics": [{"Id": "m1", "Expression": "SUM(METRICS())"}]}, "NotImplemented", "metric-math alarms"),
    ({"ComparisonOperator": "GreaterThanUpperThreshold"}, "NotImplemented", "anomaly-detection alarms"),
    ({"ExtendedStatistic": "tm99"}, "NotImplemented", "ExtendedStatistic tm99"),
    ({"Period": 15}, "ValidationError", "Period 15 is invalid"),
    ({"DatapointsToAlarm": 3}, "ValidationError", "DatapointsToAlarm (3) must be between 1 and EvaluationPeriods (1)"),
    ({"TreatMissingData": "zero"}, "ValidationError", "TreatMissingData 'zero'"),
    ({"Period": 60, "EvaluationPeriods": 1441}, "ValidationError", "exceeds 86400 s"),
    ({"ComparisonOperator": "Above"}, "ValidationError", "Value 'Above' at 'comparisonOperator'"),
])
def test_alarms_localaws_cannot_evaluate_are_refused_clearly(cw, change, code, words):
    name = _name("refused")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        _alarm(cw, name, "Lake", **change)
    error = err.value.response["Error"]
    assert error["Code"] == code and words in error["Message"] and f"alarm '{name}'" in error["Message"]
    status = err.value.response["ResponseMetadata"]
    assert status["HTTPStatusCode"] == (501 if code == "NotImplemented" else 400) and status["RetryAttempts"] == 0
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_composite_alarms_are_refused(cw):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cw.put_composite_alarm(AlarmName="composite", AlarmRule='ALARM("a")')
    assert err.value.response["Error"]["Code"] == "NotImplemented"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert "PutCompositeAlarm" in err.value.response["Error"]["Message"]


@pytest.mark.slow  # restarts a localaws server process (the tier: tests/conftest.py)
def test_state_history_and_metric_data_survive_restart(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALAWS_ALARM_EVALUATION_SECONDS", str(INTERVAL))
    state = tmp_path / "state"
    first = serve(tmp_path, "--state-dir", str(state))
    try:
        cw = first.client("cloudwatch")
        _alarm(cw, "kept", "Lake")
        end = _periods_ago()
        _put(cw, "Lake", "Errors", (end - 15, 4.0))
        before = _wait_state(cw, "kept", "ALARM")
    finally:
        assert first.stop() == 0
    second = serve(tmp_path, "--state-dir", str(state))
    try:
        cw = second.client("cloudwatch")
        after = cw.describe_alarms(AlarmNames=["kept"])["MetricAlarms"][0]
        for key in ("StateValue", "StateReason", "StateReasonData", "StateUpdatedTimestamp",
                    "StateTransitionedTimestamp"):
            assert after[key] == before[key], key
        history = cw.describe_alarm_history(AlarmName="kept")["AlarmHistoryItems"]
        assert [h["HistoryItemType"] for h in history] == ["StateUpdate", "ConfigurationUpdate"]
        stats = cw.get_metric_statistics(Namespace="Lake", MetricName="Errors", StartTime=_at(end - 60),
                                         EndTime=_at(end + 60), Period=PERIOD, Statistics=["Maximum"])
        assert [d["Maximum"] for d in stats["Datapoints"]] == [4.0]
        _put(cw, "Lake", "Errors", (end - 5, 0.0))  # a newer period: evaluation goes on after the restart
        _wait_state(cw, "kept", "OK")
    finally:
        assert second.stop() == 0
