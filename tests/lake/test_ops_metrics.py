"""Operating the lake: the cost formula (lake/cost.py), the run's metric data (lake/metrics.py) and
the provisioned CloudWatch alarms (lake/deploy/provision.py, step ``alarms``), each made to fire and
clear on the in-process localaws.

The alarms are evaluated every 0.5 s (``EVALUATOR.configure``, as tests/localaws/test_cloudwatch_alarms.py
does); their periods are the provisioned ones (an hour), so each datum is timestamped inside a
complete hour that the next evaluation covers.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from datetime import UTC, datetime

import pytest

from lake import cost, metrics
from lake.deploy import provision
from lake.layout import for_dataset
from lake.settings import Settings
from tests.helpers import REQUIRED

MB = 2**20


# -- cost: the published billing rules, computed by hand

def test_athena_bills_whole_megabytes_with_a_10_mb_minimum():
    assert cost.athena_billed_bytes(0) == 10 * MB
    assert cost.athena_billed_bytes(10 * MB) == 10 * MB
    assert cost.athena_billed_bytes(10 * MB + 1) == 11 * MB
    assert cost.athena_billed_bytes(3 * 2**30 + 5) == 3 * 2**30 + MB
    # Three small queries and one of a TB: 3 x 10 MB + 1 TB at $5 per TB.
    assert cost.athena_usd([1, 2, 3, 2**40]) == pytest.approx(5.0 * (30 * MB + 2**40) / 2**40)
    with pytest.raises(ValueError, match="bytes scanned must be >= 0"):
        cost.athena_billed_bytes(-1)


def test_glue_bills_dpu_seconds_with_a_1_minute_minimum():
    # 2 G.1X workers (1 DPU each) for 30 s: billed as 60 s = 2/60 DPU-hour at $0.44.
    assert cost.glue_dpu_hours(30, 2) == pytest.approx(2 * 60 / 3600)
    assert cost.glue_usd(30, 2) == pytest.approx(0.44 * 2 / 60)
    # Per second above the minimum (a started second counts), G.2X = 2 DPU per worker.
    assert cost.glue_dpu_hours(90.2, 10, "G.2X") == pytest.approx(10 * 2 * 91 / 3600)
    with pytest.raises(ValueError, match="unknown Glue worker type 'Z.9X'"):
        cost.glue_dpu_hours(10, 2, "Z.9X")


def test_lambda_bills_gb_seconds_by_the_millisecond_and_requests():
    assert cost.lambda_gb_seconds(1.0004, 1024) == pytest.approx(1.001)
    assert cost.lambda_gb_seconds(2.0, 512) == pytest.approx(1.0)
    assert cost.lambda_usd(2.0, 512) == pytest.approx(0.0000166667 + 0.20 / 1e6)


def test_estimate_adds_the_parts_and_the_line_names_them():
    est = cost.estimate([1_000, 20 * MB], glue_seconds=42, glue_workers=2, glue_worker_type="G.1X",
                        lambda_seconds=3.5, lambda_memory_mb=1024)
    assert est["athena_queries"] == 2 and est["athena_bytes_scanned"] == 1_000 + 20 * MB
    assert est["athena_bytes_billed"] == 30 * MB
    assert est["total_usd"] == pytest.approx(5 * 30 * MB / 2**40 + 0.44 * 2 / 60 + 3.5 * 0.0000166667 + 0.2e-6)
    line = cost.line(est)
    assert line.startswith(f"estimated cost ${est['total_usd']:.4f}: Athena 2 queries") and "30 MB billed" in line
    none = cost.estimate([], None, 2, "G.1X", None, 1024)
    assert none["total_usd"] == 0.0 and none["glue_dpu_hours"] == 0.0


# -- metric data

def test_metric_data_of_a_real_day(duck):
    """The counts of 2013-02-08 (the blizzard) computed by DuckDB over the source become the datums."""
    null_required = " OR ".join(f"{c} IS NULL" for c in REQUIRED)
    read, rejected = duck.execute(f"SELECT count(*), count(*) FILTER (WHERE {null_required}) FROM src_flights "
                                  "WHERE dt = '2013-02-08'").fetchone()
    at = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    data = metrics.build("flights", at, extract={"rows_read": read, "rows_written": read - rejected,
                                                 "rows_rejected": rejected},
                         gold_rows={"flights": read - rejected, "carrier_daily": 15}, dq={"a": 0, "b": 3, "c": 1},
                         athena_bytes=123, cost_usd=0.02, run_seconds=80.5, freshness_seconds=3600)
    by = {(d["MetricName"], tuple((x["Name"], x["Value"]) for x in d["Dimensions"])): d for d in data}
    ds = (("Dataset", "flights"),)
    assert by[("RowsRead", ds)]["Value"] == read and by[("RowsRejected", ds)]["Value"] == rejected
    assert by[("RejectRate", ds)]["Value"] == pytest.approx(100 * rejected / read)
    assert by[("RejectRate", ds)]["Unit"] == "Percent"
    assert by[("GoldRows", (*ds, ("Table", "carrier_daily")))]["Value"] == 15
    assert by[("DQFailedChecks", ds)]["Value"] == 2  # checks with violating rows, not rows
    assert {d["Unit"] for d in data} == {"Count", "Percent", "Bytes", "None", "Seconds"}
    assert all(d["Timestamp"] == at for d in data) and len(data) == 11
    # What a run never reached is not published (no false zero for an alarm).
    assert [d["MetricName"] for d in metrics.build("flights", at, cost_usd=0.0)] == ["EstimatedCostUSD"]


def test_gold_rows_from_the_glue_scripts_log_lines():
    """The line both Glue scripts log per table written (include/glue_scripts/*_gold.py)."""
    ds, part, gold = "2013-02-08", "dt", "s3://lake-gold"
    lines = [f"2026-12-01 22:00:01 INFO GlueLogger: flights_gold {ds}: wrote {n} rows to {gold}/{t}/{part}={ds}/"
             for t, n in (("flights", 12), ("carrier_daily", 3))]
    lines.append(f"flights_gold 2013-02-07: wrote 99 rows to {gold}/flights/dt=2013-02-07/")  # another day
    assert metrics.gold_rows_from_log(lines, ds, part) == {"flights": 12, "carrier_daily": 3}
    for script in ("flights_gold.py", "sales_gold.py"):
        text = (provision.GLUE_SCRIPTS / script).read_text()
        assert 'wrote {rows} rows to {gold}/{name}/{part}={ds}/' in text, script


# -- the provisioned alarms fire and clear

@pytest.fixture
def fast_alarms(localaws):
    from localaws.runtime import RUNTIME
    from localaws.services.cloudwatch_alarms import EVALUATOR

    previous = RUNTIME.alarm_evaluation_seconds
    EVALUATOR.configure(0.5)
    yield
    EVALUATOR.configure(previous)


def _wait(cw, name: str, state: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        if alarm["StateValue"] == state:
            return alarm
        assert time.monotonic() < deadline, f"{name} still {alarm['StateValue']} ({alarm['StateReason']})"
        time.sleep(0.1)


def _notes(sqs, url: str, n: int, timeout: float = 10) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
            out.append(json.loads(json.loads(m["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        time.sleep(0.1)
    return out


def test_each_provisioned_alarm_fires_and_clears(localaws, aws_client, fast_alarms):
    uid = uuid.uuid4().hex[:8]
    s = Settings(daily_datasets="flights", gold_database=f"lake_gold_{uid}", sns_topic=f"lake-events-{uid}",
                 inbox_queue=f"lake-events-inbox-{uid}")
    aws = provision.Clients(s.region, localaws.endpoint_url)
    cw, sqs = aws("cloudwatch"), aws("sqs")
    lay = for_dataset(s, "flights")
    names = {kind: lay.alarm(kind) for kind in lay.ALARM_KINDS}
    provision.run_step("notifications", s, aws, inbox=True)
    url = sqs.get_queue_url(QueueName=s.inbox_queue)["QueueUrl"]
    try:
        created_at = time.time()
        assert [r["action"] for r in provision.run_step("alarms", s, aws)] == ["created"] * 3
        assert [r["action"] for r in provision.run_step("alarms", s, aws)] == ["unchanged"] * 3
        described = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=list(names.values()))["MetricAlarms"]}
        for a in described.values():
            assert a["AlarmActions"] == a["OKActions"] == [s.topic_arn]
        assert described[names["reject-rate"]]["Threshold"] == 100 * s.max_reject_rate

        # No file yet: every hour of the window is breaching.
        missing = _wait(cw, names["bronze-missing"], "ALARM")
        latency = {"bronze-missing ALARM": missing["StateTransitionedTimestamp"].timestamp() - created_at}
        assert missing["StateReason"] == ("Threshold Crossed: no datapoints were received for 30 periods and "
                                          "30 missing datapoints were treated as [Breaching].")

        end = math.floor(time.time() / 3600) * 3600  # the newest complete hour ends here
        older, newer = (datetime.fromtimestamp(end - k, UTC) for k in (5400, 1800))
        bad = metrics.build("flights", older, extract={"rows_read": 1000, "rows_written": 900, "rows_rejected": 100},
                            dq={"unique_key": 4, "not_null": 0})
        put_at = time.time()
        metrics.put(cw, bad + metrics.bronze_file("flights", newer))
        for kind, state in (("reject-rate", "ALARM"), ("dq-failures", "ALARM"), ("bronze-missing", "OK")):
            alarm = _wait(cw, names[kind], state)
            latency[f"{kind} {state}"] = alarm["StateTransitionedTimestamp"].timestamp() - put_at
        reasons = {k: cw.describe_alarms(AlarmNames=[n])["MetricAlarms"][0]["StateReason"] for k, n in names.items()}
        assert reasons["reject-rate"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [10.0 (") and \
            "was greater than the threshold (5.0)" in reasons["reject-rate"]
        assert "[1.0 (" in reasons["dq-failures"] and "greater than the threshold (0.0)" in reasons["dq-failures"]
        assert "not less than the threshold (1.0)" in reasons["bronze-missing"]

        good = metrics.build("flights", newer, extract={"rows_read": 1000, "rows_written": 1000, "rows_rejected": 0},
                             dq={"unique_key": 0, "not_null": 0})
        put_at = time.time()
        metrics.put(cw, good)
        for kind in ("reject-rate", "dq-failures"):
            alarm = _wait(cw, names[kind], "OK")
            latency[f"{kind} OK"] = alarm["StateTransitionedTimestamp"].timestamp() - put_at

        # Every transition reached the topic's SQS subscriber, in AWS's notification JSON.
        notes = _notes(sqs, url, 6)
        got = sorted((n["AlarmName"], n["OldStateValue"], n["NewStateValue"]) for n in notes)
        assert got == sorted([
            (names["bronze-missing"], "INSUFFICIENT_DATA", "ALARM"), (names["bronze-missing"], "ALARM", "OK"),
            (names["reject-rate"], "INSUFFICIENT_DATA", "ALARM"), (names["reject-rate"], "ALARM", "OK"),
            (names["dq-failures"], "INSUFFICIENT_DATA", "ALARM"), (names["dq-failures"], "ALARM", "OK")])
        assert all(n["NewStateReason"] for n in notes)
        print("alarm latencies (s, evaluation every 0.5 s):", {k: round(v, 2) for k, v in latency.items()})
        assert all(v < 5 for v in latency.values()), latency
    finally:
        cw.delete_alarms(AlarmNames=list(names.values()))
