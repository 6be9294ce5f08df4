"""A backfill with the real scheduler: ``airflow standalone`` (scheduler, dag-processor, triggerer,
API server, LocalExecutor) + ``localaws serve`` as processes, ``airflow backfill create`` for three
real days of flights and, side by side in the same scheduler, three days of sales (TPC-H at
``LAKE_TPCH_SCALE``, tests/conftest.py); every run must succeed and each day's partitions must
exist exactly once, with the rows DuckDB counts straight over the sources.

This is ``lake demo --no-ui`` on other ports and a temporary home (the same code path).
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import boto3
import pyarrow.parquet as pq
import pytest

from lake import contracts, settings
from lake.dev import demo
from lake.layout import Layout, split_uri
from tests.helpers import REQUIRED, list_keys

# Real scheduler runs: minutes on two cores, more on a loaded machine.
pytestmark = pytest.mark.timeout(1800)

START, END = date(2013, 1, 1), date(2013, 1, 3)
SALES_START, SALES_END = date(1995, 3, 1), date(1995, 3, 3)


def test_backfill_three_days_of_each_dataset_with_the_real_scheduler(stack, duck, tpch_db):
    runs = demo.run_pipelines(stack, {"flights": (START, END), "sales": (SALES_START, SALES_END)})
    states = runs["flights"]
    days = [(START + timedelta(days=i)).isoformat() for i in range((END - START).days + 1)]
    assert states == {ds: "success" for ds in days}, (
        f"runs {states}; logs under {stack.airflow_home / 'logs'}")

    s = settings.get()
    s3 = boto3.client("s3", endpoint_url=stack.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
    null_required = " OR ".join(f"{c} IS NULL" for c in REQUIRED)
    for ds in days:
        rows, bad = duck.execute(f"SELECT count(*), count(*) FILTER (WHERE {null_required}) FROM src_flights "
                                 f"WHERE dt = '{ds}'").fetchone()
        for bucket, prefix, expected in ((s.silver_bucket, f"flights/dt={ds}/", rows - bad),
                                         (s.gold_bucket, f"flights/dt={ds}/", rows - bad)):
            keys = [k for k in list_keys(s3, bucket, prefix) if k.endswith(".parquet")]
            got = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows
                      for k in keys)
            assert got == expected, f"s3://{bucket}/{prefix}: {got} rows, expected {expected}"
            assert len(keys) == 1 or bucket == s.gold_bucket, keys
    # One run summary per day reached SNS.
    sums = demo.summaries(stack, s.sns_topic, "flights")
    assert sorted(sums) == days
    for ds in days:
        rows = duck.execute(f"SELECT count(*) FROM src_flights WHERE dt = '{ds}'").fetchone()[0]
        assert sums[ds]["rows_read"] == rows

    # Sales, backfilled by the same scheduler: every day once, gold rows = the day's order lines.
    sales_days = [(SALES_START + timedelta(days=i)).isoformat() for i in range((SALES_END - SALES_START).days + 1)]
    assert runs["sales"] == {ds: "success" for ds in sales_days}, (
        f"sales runs {runs['sales']}; logs under {stack.airflow_home / 'logs'}")
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
