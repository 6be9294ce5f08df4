"""A backfill of both daily datasets side by side in one real scheduler (``airflow standalone`` +
``localaws serve`` as processes: ``lake demo --no-ui`` on other ports, the same code path), two
real days of flights and two days of sales (TPC-H at ``LAKE_TPCH_SCALE``, tests/conftest.py),
while localaws fails 20% of the calls to every service (10% throttling + 10% HTTP 500) and 20%
of the Lambda and Glue runs.

Every run must still succeed through retries, each day's partitions must exist exactly once,
with the rows DuckDB counts straight over the sources (what a fault-free run gives, see
test_flights_lake_daily / test_sales_lake_daily), no duplicates, and one run summary per day on
SNS. Prints the figures for docs/reliability.md.
"""

from __future__ import annotations

import io
import os
import time
from datetime import date, timedelta

import boto3
import pyarrow.parquet as pq
import pytest

from lake import contracts, settings
from lake.dev import demo
from lake.layout import Layout, split_uri
from tests.e2e.helpers import gold_against_source, stack_faults, task_retries
from tests.helpers import list_keys

# Real scheduler runs: minutes on two cores, more on a loaded machine.
pytestmark = pytest.mark.timeout(2400)

START, END = date(2013, 3, 1), date(2013, 3, 2)
SALES_START, SALES_END = date(1995, 3, 1), date(1995, 3, 2)
#: Random streams are per operation and per function / job (localaws/faults.py), so which runs fail does
#: not depend on the timing: with this seed the first extractor invocation (draw 0.03) and the second
#: run of the flights Glue job (0.14) fail whatever the number of days.
FAULTS = {
    "seed": 20131,
    "rules": [{"operation": "*", "throttle_rate": 0.1, "error_rate": 0.1}],
    "runs": {"lambda": {"fail_rate": 0.2}, "glue": {"fail_rate": 0.2}},
}


def _days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def test_backfill_of_both_datasets_through_transient_faults(stack, duck, tpch_db):
    os.environ["LAKE_RETRY_DELAY"] = "5"  # seconds, doubling per retry (the stack fixture restores the env)
    os.environ["LAKE_RETRIES"] = "4"
    started = time.monotonic()
    runs = demo.run_pipelines(stack, {"flights": (START, END), "sales": (SALES_START, SALES_END)},
                              before_airflow=lambda: stack_faults(stack, "POST", FAULTS), backfill_timeout_s=3000)
    faults = stack_faults(stack, "GET")
    stack_faults(stack, "DELETE")  # check the results without faults
    wall = time.monotonic() - started
    days, sales_days = _days(START, END), _days(SALES_START, SALES_END)
    logs = f"logs under {stack.airflow_home / 'logs'}"
    assert runs["flights"] == {ds: "success" for ds in days}, f"flights runs {runs['flights']}; {logs}"
    assert runs["sales"] == {ds: "success" for ds in sales_days}, f"sales runs {runs['sales']}; {logs}"

    # Flights: one silver object per day, gold = source rows without a null required column, by key.
    lost, duplicated = gold_against_source(stack, duck, days)
    s = settings.get()
    sums = demo.summaries(stack, s.sns_topic, "flights")
    assert sorted(sums) == days
    for ds in days:
        rows = duck.execute(f"SELECT count(*) FROM src_flights WHERE dt = '{ds}'").fetchone()[0]
        assert sums[ds]["rows_read"] == rows

    # Sales: every day once, silver and gold rows = the day's order lines (tpchgen-cli's CSV).
    s3 = boto3.client("s3", endpoint_url=stack.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
    lay = Layout(s, contracts.load("sales"))
    sales_sums = demo.summaries(stack, s.sns_topic, "sales")
    assert sorted(sales_sums) == sales_days
    for ds in sales_days:
        lines = tpch_db.execute(f"SELECT count(*) FROM src_sales WHERE o_orderdate = DATE '{ds}'").fetchone()[0]
        for uri, one_file in ((lay.silver_path(ds), True), (lay.gold_path("sales", ds), False)):
            bucket, prefix = split_uri(uri)
            keys = [k for k in list_keys(s3, bucket, prefix) if k.endswith(".parquet")]
            got = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows
                      for k in keys)
            assert got == lines, f"{uri}: {got} rows, expected {lines}"
            assert len(keys) == 1 or not one_file, keys
        assert (sales_sums[ds]["rows_read"], sales_sums[ds]["gold_rows"]) == (lines, lines)

    retries = task_retries(stack)
    t = faults["counters"]["totals"]
    print(f"\nfault backfill flights {START}..{END} + sales {SALES_START}..{SALES_END}: "
          f"{len(days) + len(sales_days)} runs succeeded of {len(days) + len(sales_days)} in {wall:.0f} s; "
          f"task retries {len(retries)}; calls {t['calls']}, throttled {t['throttled']}, 500s {t['errors']}, "
          f"Lambda/Glue runs {t['runs']} of which failed {t['runs_failed']}; flights rows lost {lost}, "
          f"duplicated {duplicated}")
    assert t["throttled"] > 0 and t["errors"] > 0 and t["runs_failed"] > 0 and retries
    assert lost == 0 and duplicated == 0
