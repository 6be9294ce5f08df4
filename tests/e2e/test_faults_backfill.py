"""Transient faults: a seven-day backfill (real scheduler) while localaws fails 20% of the calls to
every service (10% throttling + 10% HTTP 500) and 20% of the Lambda and Glue runs. Every run must
still succeed through retries, with the same gold rows per day as the source (what a fault-free
run gives, see test_flights_lake_daily) and no duplicates. Prints the figures for
docs/reliability.md.
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta

import pytest

from lake.dev import demo
from tests.e2e.helpers import gold_against_source, stack_faults, task_retries

# Real scheduler runs: minutes on two cores, more on a loaded machine.
pytestmark = pytest.mark.timeout(2400)

START, END = date(2013, 3, 1), date(2013, 3, 7)
FAULTS = {
    "seed": 20131,
    "rules": [{"operation": "*", "throttle_rate": 0.1, "error_rate": 0.1}],
    "runs": {"lambda": {"fail_rate": 0.2}, "glue": {"fail_rate": 0.2}},
}



def test_seven_day_backfill_through_transient_faults(stack, duck):
    os.environ["LAKE_RETRY_DELAY"] = "5"  # seconds, doubling per retry (the stack fixture restores the env)
    os.environ["LAKE_RETRIES"] = "4"
    started = time.monotonic()
    states = demo.run_pipeline(stack, START, END, before_airflow=lambda: stack_faults(stack, "POST", FAULTS),
                               backfill_timeout_s=3000)
    faults = stack_faults(stack, "GET")
    stack_faults(stack, "DELETE")  # check the results without faults
    wall = time.monotonic() - started
    days = [(START + timedelta(days=i)).isoformat() for i in range((END - START).days + 1)]
    assert states == {ds: "success" for ds in days}, f"runs {states}; logs under {stack.airflow_home / 'logs'}"

    lost, duplicated = gold_against_source(stack, duck, days)
    retries = task_retries(stack)
    t = faults["counters"]["totals"]
    print(f"\nfault backfill {START}..{END}: {len(days)} runs succeeded of {len(days)} in {wall:.0f} s; "
          f"task retries {len(retries)}; calls {t['calls']}, throttled {t['throttled']}, 500s {t['errors']}, "
          f"Lambda/Glue runs {t['runs']} of which failed {t['runs_failed']}; rows lost {lost}, duplicated {duplicated}")
    assert t["throttled"] > 0 and t["errors"] > 0 and t["runs_failed"] > 0 and retries
    assert lost == 0 and duplicated == 0
