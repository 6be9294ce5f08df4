"""The sales daily DAG (``sales_lake_daily``, the same factory and tasks as flights), end to end with
``dag.test()`` against localaws, on two real days of TPC-H orders.

Provision (both daily datasets, TPC-H dimensions at ``LAKE_TPCH_SCALE`` = :data:`SALES_SCALE`, set
in tests/conftest.py), replay 1995-03-01..02 into bronze, run ``sales_lake_daily`` once per day,
then check silver, gold ``sales`` and ``sales_region_daily``, the catalog (Athena) and the SNS
summaries against DuckDB straight over tpchgen-cli's own CSV tables (the ``tpch_db`` fixture);
finally rerun a day and check that no count changes.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import pyarrow.parquet as pq
import pytest

from lake import contracts, source
from lake.deploy import provision
from lake.layout import Layout, split_uri
from tests.helpers import REPO, SALES_SCALE, list_keys

DAG_FILE = REPO / "dags" / "lake_daily.py"
DAG_ID = "sales_lake_daily"
DAYS = ["1995-03-01", "1995-03-02"]
#: TPC-H query 9's money per line (spec clause 2.4.9), by the customer's region, over the oracle's tables.
ORACLE = """
    SELECT r_name AS region, count(DISTINCT o_orderkey) AS orders, count(*) AS lines,
           sum(l_extendedprice * (1 - l_discount)) AS revenue, sum(ps_supplycost * l_quantity) AS cost,
           sum(l_extendedprice * (1 - l_discount) - ps_supplycost * l_quantity) AS profit
    FROM src_sales
    JOIN customer ON c_custkey = o_custkey JOIN nation ON n_nationkey = c_nationkey
    JOIN region ON r_regionkey = n_regionkey
    JOIN partsupp ON ps_partkey = l_partkey AND ps_suppkey = l_suppkey
    WHERE o_orderdate = DATE '{ds}'
    GROUP BY r_name ORDER BY r_name"""


@pytest.fixture(scope="module")
def sales(lake):
    """The provisioned lake (tests/e2e/conftest.py) with the two sales days in bronze:
    ``(settings, clients, layout)``."""
    s, aws = lake
    lay = Layout(s, contracts.load("sales"))
    assert s.tpch_scale == SALES_SCALE
    source.replay(lay.contract, date.fromisoformat(DAYS[0]), date.fromisoformat(DAYS[-1]),
                  bucket=s.bronze_bucket, s3=aws("s3"))
    return s, aws, lay


def _rows(s3, uri: str) -> tuple[int, list[dict]]:
    """(number of Parquet objects, their rows) under an ``s3://`` folder."""
    bucket, prefix = split_uri(uri)
    keys = [k for k in list_keys(s3, bucket, prefix) if k.endswith(".parquet")]
    rows = [r for k in keys for r in pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
            .to_pylist()]
    return len(keys), rows


def _counts(aws, lay: Layout, ds: str) -> dict[str, tuple[int, int]]:
    s3 = aws("s3")
    out = {"silver": lay.silver_path(ds), "quarantine": lay.quarantine_path(ds),
           **{t: lay.gold_path(t, ds) for t in lay.gold_tables}}
    counts = {}
    for name, uri in out.items():
        files, rows = _rows(s3, uri)
        counts[name] = (files, len(rows))
    return counts


def _athena_count(s, aws, table: str, ds: str) -> int:
    qid = provision.run_query(aws, s, f"SELECT count(*) FROM {table} WHERE dt = '{ds}'")
    rows = aws("athena").get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return int(rows[1]["Data"][0]["VarCharValue"])


def _summaries(s, aws) -> dict[str, tuple[str, dict]]:
    """The sales run summaries in the SNS inbox (ds -> (subject, message)); drains the queue."""
    sqs = aws("sqs")
    url = sqs.get_queue_url(QueueName=s.inbox_queue)["QueueUrl"]
    out = {}
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        for m in got:
            body = json.loads(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            try:
                msg = json.loads(body.get("Message", ""))
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("dataset") == "sales" and msg.get("status") == "success":
                out[msg["ds"]] = (body["Subject"], msg)


def test_two_sales_days_end_to_end_then_a_rerun(sales, run_dag, tpch_db):
    s, aws, lay = sales
    for ds in DAYS:
        run = run_dag(DAG_FILE, DAG_ID, logical_date=datetime.fromisoformat(ds).replace(tzinfo=UTC))
        assert run.state == "success", f"run for {ds} ended {run.state}"
    summaries = _summaries(s, aws)
    assert sorted(summaries) == DAYS

    for ds in DAYS:
        lines = tpch_db.execute(f"SELECT count(*) FROM src_sales WHERE o_orderdate = DATE '{ds}'").fetchone()[0]
        assert lines > 0, f"no orders on {ds} at scale {SALES_SCALE}: pick other days"
        counts = _counts(aws, lay, ds)
        assert counts["silver"] == (1, lines) and counts["quarantine"][1] == 0
        # Gold sales: one row per line of the day's orders.
        assert counts["sales"][1] == lines
        assert _athena_count(s, aws, f"{s.gold_database}.sales", ds) == lines
        assert _athena_count(s, aws, f"{s.silver_database}.sales", ds) == lines

        # Gold sales_region_daily against DuckDB over tpchgen-cli's CSV: TPC-H query 9's money per region.
        _, got_rows = _rows(aws("s3"), lay.gold_path("sales_region_daily", ds))
        got = {r["region"]: r for r in got_rows}
        expected = tpch_db.execute(ORACLE.format(ds=ds)).fetchall()
        assert sorted(got) == [e[0] for e in expected]
        for region, orders, n_lines, revenue, cost, profit in expected:
            g = got[region]
            assert (g["orders"], g["lines"]) == (orders, n_lines), region
            assert g["revenue"] == pytest.approx(revenue, rel=1e-6), region
            assert g["cost"] == pytest.approx(cost, rel=1e-6), region
            assert g["profit"] == pytest.approx(profit, rel=1e-6), region
            assert g["profit_margin"] == pytest.approx(profit / revenue, rel=1e-6), region

        # The SNS summary: counts, DQ, the headline (revenue_by_region rounds to cents per region).
        subject, msg = summaries[ds]
        assert (msg["rows_read"], msg["rows_written"], msg["rows_rejected"]) == (lines, lines, 0)
        assert msg["gold_rows"] == lines and set(msg["data_quality"].values()) == {0}
        assert len(msg["data_quality"]) >= 9  # the shared checks and sales' own
        revenue = sum(e[3] for e in expected)
        profit = sum(e[5] for e in expected)
        head = msg["report"]
        assert head["lines"] == lines and head["orders"] == sum(e[1] for e in expected)
        assert head["revenue"] == pytest.approx(revenue, abs=0.01 * len(expected))
        assert head["profit"] == pytest.approx(profit, abs=0.01 * len(expected))
        assert head["profit_margin"] == pytest.approx(profit / revenue, rel=1e-4)
        assert f"margin {head['profit_margin']:.1%}" in subject

    # Rerun the middle day: every count stays the same, one copy of each partition.
    before = {ds: _counts(aws, lay, ds) for ds in DAYS}
    run = run_dag(DAG_FILE, DAG_ID, logical_date=datetime(1995, 3, 2, tzinfo=UTC))
    assert run.state == "success"
    assert {ds: _counts(aws, lay, ds) for ds in DAYS} == before
    assert _athena_count(s, aws, f"{s.gold_database}.sales", DAYS[1]) == before[DAYS[1]]["sales"][1]
