"""sales_gold.py as a real Glue job on localaws for two days of TPC-H orders (scale 0.01), then the
sales dq/report SQL in DuckDB over what it wrote; everything checked against DuckDB over tpchgen-cli's
own CSV tables (the ``tpch_db`` fixture)."""

from __future__ import annotations

import time
import uuid
from datetime import date

import boto3
import duckdb
import pytest
import sqlglot

from lake import contracts, source, sql
from lake.layout import Layout
from lake.settings import Settings
from tests.helpers import REPO, SALES_DIMENSIONS, SALES_SCALE, list_keys

pytestmark = pytest.mark.spark

GLUE_SCRIPT = REPO / "include" / "glue_scripts" / "sales_gold.py"
DAYS = ["1995-03-01", "1995-03-02"]
#: What TPC-H query 9 computes per line (spec clause 2.4.9), over the oracle's tables.
ORACLE = """
    SELECT r_name AS region, count(DISTINCT o_orderkey) AS orders, count(*) AS lines, sum(l_quantity) AS quantity,
           sum(l_extendedprice * (1 - l_discount)) AS revenue, sum(ps_supplycost * l_quantity) AS cost,
           sum(l_extendedprice * (1 - l_discount) - ps_supplycost * l_quantity) AS profit
    FROM src_sales
    JOIN customer ON c_custkey = o_custkey JOIN nation ON n_nationkey = c_nationkey
    JOIN region ON r_regionkey = n_regionkey
    JOIN partsupp ON ps_partkey = l_partkey AND ps_suppkey = l_suppkey
    WHERE o_orderdate = DATE '{ds}'
    GROUP BY r_name ORDER BY r_name"""


def _run(glue, job: str, ds: str, timeout_s: float = 300) -> tuple[dict, float]:
    started = time.monotonic()
    run_id = glue.start_job_run(JobName=job, Arguments={"--ds": ds})["JobRunId"]
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] in ("SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"):
            return run, time.monotonic() - started
        time.sleep(1)
    raise AssertionError(f"job run {run_id} still {run['JobRunState']} after {timeout_s} s")


@pytest.fixture(scope="module")
def sales_lake(localaws, tpch_cache, handler_mod, tmp_path_factory):
    """Two days replayed, extracted by the Lambda handler, dimensions loaded, the Glue job run for
    both days and the first day again; then the bucket copied to local disk for DuckDB.

    :returns: ``{"bucket", "runs": [(ds, run, seconds)], "logs": {run id: [messages]}, "root": Path,
        "before_rerun": {key: bytes}}``.
    """
    s3 = boto3.client("s3", endpoint_url=localaws.endpoint_url, region_name="us-east-1")
    glue = boto3.client("glue", endpoint_url=localaws.endpoint_url, region_name="us-east-1")
    logs = boto3.client("logs", endpoint_url=localaws.endpoint_url, region_name="us-east-1")
    bucket = f"sales-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    sales = contracts.load("sales")
    source.replay(sales, date.fromisoformat(DAYS[0]), date.fromisoformat(DAYS[-1]), bucket=bucket, s3=s3,
                  scale=SALES_SCALE)
    # The Lambda's event as the DAG sends it (the layout's), with this test's bucket for every layer.
    lay = Layout(Settings(bronze_bucket=bucket, silver_bucket=bucket, silver_prefix="silver"), sales)
    for ds in DAYS:
        out = handler_mod.handler(lay.lambda_event(ds))
        assert out["rows_rejected"] == 0 and out["rows_written"] > 0
    source.load_dimensions([contracts.load(n) for n in SALES_DIMENSIONS], bucket=bucket, s3=s3, scale=SALES_SCALE)
    s3.put_object(Bucket=bucket, Key="scripts/sales_gold.py", Body=GLUE_SCRIPT.read_bytes())
    job = f"sales-gold-{bucket}"
    glue.create_job(
        Name=job, Role="r", GlueVersion="5.0", ExecutionProperty={"MaxConcurrentRuns": 2},
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/scripts/sales_gold.py"},
        DefaultArguments={"--silver_path": f"s3://{bucket}/silver/sales", "--dimensions_path": f"s3://{bucket}/reference",
                          "--gold_path": f"s3://{bucket}/gold", "--lease_path": f"s3://{bucket}/leases/{job}",
                          # The names that come from the contract, as the layout passes them.
                          **{k: v for k, v in lay.glue_arguments().items()
                             if k in ("--partition_name", "--gold_tables")}},
    )
    runs, messages, before_rerun = [], {}, {}
    for ds in DAYS + DAYS[:1]:  # the first day twice: the rerun must replace it, not add to it
        if len(runs) == len(DAYS):
            before_rerun = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read()
                            for k in list_keys(s3, bucket, "gold/") if f"dt={DAYS[1]}" in k}
        run, seconds = _run(glue, job, ds)
        assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
        runs.append((ds, run, seconds))
        messages[run["Id"]] = [e["message"] for e in logs.get_log_events(
            logGroupName="/aws-glue/jobs/output", logStreamName=run["Id"])["events"]]
    root = tmp_path_factory.mktemp("sales-lake")
    for key in list_keys(s3, bucket):
        if key.endswith(".parquet"):
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    after = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read()
             for k in list_keys(s3, bucket, "gold/") if f"dt={DAYS[1]}" in k}
    print("\nGlue job sales_gold: " + ", ".join(f"{ds} {seconds:.1f} s" for ds, _, seconds in runs))
    return {"bucket": bucket, "runs": runs, "logs": messages, "root": root, "before_rerun": before_rerun,
            "after_rerun": after, "leases": list_keys(s3, bucket, "leases/")}


@pytest.fixture(scope="module")
def lake_db(sales_lake) -> duckdb.DuckDBPyConnection:
    """DuckDB with the Athena databases as schemas over the job's output: lake_silver (sales and
    the dimensions) and lake_gold (sales, sales_region_daily); dt typed VARCHAR as the crawler does."""
    root = sales_lake["root"]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE SCHEMA lake_silver; CREATE SCHEMA lake_gold")
    hive = "hive_partitioning=true, hive_types={'dt': VARCHAR}"
    con.execute(f"CREATE VIEW lake_silver.sales AS SELECT * FROM read_parquet('{root}/silver/sales/*/*.parquet', {hive})")
    for name in SALES_DIMENSIONS:
        con.execute(f"CREATE VIEW lake_silver.{name} AS SELECT * FROM read_parquet('{root}/reference/{name}/*.parquet')")
    for name in ("sales", "sales_region_daily"):
        con.execute(f"CREATE VIEW lake_gold.{name} AS SELECT * FROM read_parquet('{root}/gold/{name}/*/*.parquet', {hive})")
    return con


def _lines(tpch_db, ds: str) -> int:
    return tpch_db.execute(f"SELECT count(*) FROM src_sales WHERE o_orderdate = DATE '{ds}'").fetchall()[0][0]


def test_runs_write_each_day_once_and_release_the_lease(sales_lake, tpch_db):
    for ds, run, _ in sales_lake["runs"]:
        assert any(f"sales_gold {ds}: wrote {_lines(tpch_db, ds)} rows" in m for m in sales_lake["logs"][run["Id"]])
    assert sales_lake["leases"] == [], "a run did not release its day's lease"
    root = sales_lake["root"]
    for ds in DAYS:
        for table in ("sales", "sales_region_daily"):
            assert len(list((root / "gold" / table / f"dt={ds}").glob("*.parquet"))) == 1, (table, ds)
    # The rerun of the first day left the second day's partitions byte for byte as they were.
    assert sales_lake["after_rerun"] == sales_lake["before_rerun"] and sales_lake["after_rerun"]


def test_gold_sales_is_one_row_per_line_of_the_days_orders(lake_db, tpch_db, sales_lake):
    for ds in DAYS:
        got = lake_db.execute(f"SELECT count(*), count(DISTINCT (o_orderkey, l_linenumber)) FROM lake_gold.sales "
                              f"WHERE dt = '{ds}'").fetchall()[0]
        assert got == (_lines(tpch_db, ds), _lines(tpch_db, ds))
    # Row by row against the oracle: names through customer -> nation -> region and supplier -> nation,
    # and the money of TPC-H query 9.
    tpch_db.execute(f"CREATE OR REPLACE VIEW gold_sales AS SELECT * FROM read_parquet("
                    f"'{sales_lake['root']}/gold/sales/*/*.parquet', hive_partitioning=true, hive_types={{'dt': VARCHAR}})")
    mismatches = tpch_db.execute("""
        SELECT count(*),
          count(*) FILTER (WHERE g.dt <> strftime(s.o_orderdate, '%Y-%m-%d') OR g.o_orderdate <> s.o_orderdate),
          count(*) FILTER (WHERE g.customer_nation <> cn.n_name OR g.customer_region <> r.r_name),
          count(*) FILTER (WHERE g.supplier_nation <> sn.n_name),
          count(*) FILTER (WHERE abs(g.revenue - s.l_extendedprice * (1 - s.l_discount)) > 1e-6),
          count(*) FILTER (WHERE abs(g.cost - ps.ps_supplycost * s.l_quantity) > 1e-6),
          count(*) FILTER (WHERE abs(g.profit - (g.revenue - g.cost)) > 1e-9)
        FROM gold_sales g
        JOIN src_sales s ON s.o_orderkey = g.o_orderkey AND s.l_linenumber = g.l_linenumber
        JOIN customer c ON c.c_custkey = s.o_custkey JOIN nation cn ON cn.n_nationkey = c.c_nationkey
        JOIN region r ON r.r_regionkey = cn.n_regionkey
        JOIN supplier su ON su.s_suppkey = s.l_suppkey JOIN nation sn ON sn.n_nationkey = su.s_nationkey
        JOIN partsupp ps ON ps.ps_partkey = s.l_partkey AND ps.ps_suppkey = s.l_suppkey""").fetchall()[0]
    assert mismatches == (sum(_lines(tpch_db, ds) for ds in DAYS), 0, 0, 0, 0, 0, 0)


def test_region_daily_matches_duckdb_over_tpch(lake_db, tpch_db):
    for ds in DAYS:
        got = lake_db.execute(f"SELECT region, orders, lines, quantity, revenue, cost, profit, profit_margin "
                              f"FROM lake_gold.sales_region_daily WHERE dt = '{ds}' ORDER BY region").fetchall()
        expected = tpch_db.execute(ORACLE.format(ds=ds)).fetchall()
        assert [g[:3] for g in got] == [e[:3] for e in expected]  # region, orders, lines
        for g, e in zip(got, expected):
            assert g[3] == pytest.approx(e[3], rel=1e-9)  # quantity
            for value, want in zip(g[4:7], e[4:7]):  # revenue, cost, profit
                assert value == pytest.approx(want, rel=1e-6)
            assert g[7] == pytest.approx(e[6] / e[4], rel=1e-6)


def run_sql(con, template: str, ds: str, **overrides) -> list[tuple]:
    params = {**sql.params_for(contracts.load("sales"), {}), **overrides}
    rendered = sql.render(template, ds, params)
    sqlglot.parse_one(rendered, read="trino")  # valid Trino/Athena
    return con.execute(sqlglot.transpile(rendered, read="trino", write="duckdb")[0]).fetchall()


def test_sales_dq_checks_pass_on_real_days(lake_db):
    templates = sql.templates("dq", "sales")  # the shared checks and sales' own
    assert len(templates) >= 9
    for ds in DAYS:
        for template in templates:
            assert run_sql(lake_db, template, ds) == [], f"{template} fails on {ds}"


def test_sales_dq_checks_catch_bad_gold(lake_db):
    """Gold sales with a duplicated line, a line of an unknown customer (no nation), a negative revenue,
    another day's order and an unknown order status."""
    ds = DAYS[0]
    lake_db.execute("CREATE SCHEMA IF NOT EXISTS bad_gold")
    lake_db.execute(f"""CREATE OR REPLACE VIEW bad_gold.sales AS
        SELECT * FROM lake_gold.sales
        UNION ALL (SELECT * FROM lake_gold.sales WHERE dt = '{ds}' ORDER BY o_orderkey, l_linenumber LIMIT 1)
        UNION ALL (SELECT * REPLACE (999999999 AS o_custkey, NULL AS customer_nation, NULL AS customer_region,
                                     -1.0 AS revenue, 'X' AS o_orderstatus, DATE '1995-02-28' AS o_orderdate,
                                     99 AS l_linenumber)
                   FROM lake_gold.sales WHERE dt = '{ds}' ORDER BY o_orderkey, l_linenumber LIMIT 1)""")
    lake_db.execute("CREATE OR REPLACE VIEW bad_gold.sales_region_daily AS SELECT * FROM lake_gold.sales_region_daily")
    bad = {"gold_database": "bad_gold"}
    silver = lake_db.execute(f"SELECT count(*) FROM lake_silver.sales WHERE dt = '{ds}'").fetchall()[0][0]
    first = lake_db.execute(f"SELECT o_orderkey, l_linenumber FROM lake_gold.sales WHERE dt = '{ds}' "
                            f"ORDER BY o_orderkey, l_linenumber LIMIT 1").fetchall()[0]
    assert run_sql(lake_db, "dq/gold_matches_silver.sql", ds, **bad) == [(ds, silver, silver + 2)]
    assert run_sql(lake_db, "dq/unique_key.sql", ds, **bad) == [(*first, 2)]  # one key, one extra copy
    assert sorted(run_sql(lake_db, "dq/not_null.sql", ds, **bad)) == [("customer_nation", 1), ("customer_region", 1)]
    assert run_sql(lake_db, "dq/known_dimensions.sql", ds, **bad) == [("o_custkey", "999999999", 1)]
    assert [r[:3] for r in run_sql(lake_db, "dq/plausible_bounds.sql", ds, **bad)] == [("revenue", 1, -1.0)]
    assert run_sql(lake_db, "sales/dq/allowed_values.sql", ds, **bad) == [("o_orderstatus", "X", 1)]
    assert run_sql(lake_db, "sales/dq/order_date_is_partition.sql", ds, **bad) == [(date(1995, 2, 28), 1)]
    first_region = lake_db.execute(f"SELECT customer_region FROM lake_gold.sales WHERE dt = '{ds}' "
                                   f"ORDER BY o_orderkey, l_linenumber LIMIT 1").fetchall()[0][0]
    # The duplicated line's region has one line too many; the unknown customer's line has no region.
    assert {r[0] for r in run_sql(lake_db, "sales/dq/region_daily_matches_sales.sql", ds, **bad)} == {first_region, None}
    assert run_sql(lake_db, "dq/unique_key.sql", DAYS[1], **bad) == []  # other days untouched


def test_sales_reports(lake_db, tpch_db):
    ds = DAYS[0]
    got = run_sql(lake_db, "sales/reports/revenue_by_region.sql", ds)
    expected = {e[0]: e for e in tpch_db.execute(ORACLE.format(ds=ds)).fetchall()}
    assert sorted(g[0] for g in got) == sorted(expected)
    assert [g[4] for g in got] == sorted((g[4] for g in got), reverse=True)
    for g in got:
        e = expected[g[0]]
        assert (g[1], g[2]) == (e[1], e[2])
        assert g[4] == pytest.approx(round(e[4], 2), abs=0.011) and g[6] == pytest.approx(round(e[6], 2), abs=0.011)
    nations = run_sql(lake_db, "sales/reports/profit_by_supplier_nation.sql", ds, top_n=3)
    want = tpch_db.execute(f"""
        SELECT n_name, count(*), sum(l_extendedprice * (1 - l_discount) - ps_supplycost * l_quantity) AS profit
        FROM src_sales JOIN supplier ON s_suppkey = l_suppkey JOIN nation ON n_nationkey = s_nationkey
        JOIN partsupp ON ps_partkey = l_partkey AND ps_suppkey = l_suppkey
        WHERE o_orderdate = DATE '{ds}' GROUP BY n_name ORDER BY profit DESC, n_name LIMIT 3""").fetchall()
    assert [(n[0], n[1]) for n in nations] == [(w[0], w[1]) for w in want]
    for n, w in zip(nations, want):
        assert n[4] == pytest.approx(round(w[2], 2), abs=0.011)
