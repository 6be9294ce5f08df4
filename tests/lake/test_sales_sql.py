"""The shared dq SQL with sales' parameters, in DuckDB over hand-made tables (no Spark): a composite
dimension key matched as a whole, an empty day where the contract allows one, and the sales headline
of the run summary. The real days are in tests/lake/test_sales_glue_job.py (spark)."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot

from lake import contracts, pipeline, sql

DS = "1995-03-01"


def _run(con, template: str, params: dict) -> list[tuple]:
    rendered = sql.render(template, DS, params)
    sqlglot.parse_one(rendered, read="trino")  # valid Trino/Athena
    return con.execute(sqlglot.transpile(rendered, read="trino", write="duckdb")[0]).fetchall()


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA lake_silver; CREATE SCHEMA lake_gold")
    for table, cols in (("customer", "c_custkey BIGINT"), ("part", "p_partkey BIGINT"),
                        ("supplier", "s_suppkey BIGINT"), ("partsupp", "ps_partkey BIGINT, ps_suppkey BIGINT")):
        con.execute(f"CREATE TABLE lake_silver.{table} ({cols})")
    con.execute("INSERT INTO lake_silver.customer VALUES (1); INSERT INTO lake_silver.part VALUES (10), (11)")
    con.execute("INSERT INTO lake_silver.supplier VALUES (20), (21)")
    con.execute("INSERT INTO lake_silver.partsupp VALUES (10, 20), (11, 21)")
    con.execute("CREATE TABLE lake_silver.sales (dt VARCHAR, o_orderkey BIGINT)")
    con.execute("CREATE TABLE lake_gold.sales (dt VARCHAR, o_orderkey BIGINT, l_linenumber INT, o_custkey BIGINT, "
                "l_partkey BIGINT, l_suppkey BIGINT)")
    return con


def test_params_for_sales_has_one_check_per_enforced_dimension():
    params = sql.params_for(contracts.load("sales"), {})
    checks = {c["table"]: c for c in params["dimension_checks"]}
    assert sorted(checks) == ["customer", "part", "partsupp", "supplier"]  # no `via` dimension
    assert checks["partsupp"]["on"] == [{"column": "l_partkey", "key": "ps_partkey"},
                                        {"column": "l_suppkey", "key": "ps_suppkey"}]
    assert params["fact_table"] == "sales" and params["allow_empty"] is True
    assert params["gold_tables"] == {"sales": "sales", "sales_region_daily": "sales_region_daily"}
    assert set(params["allowed_values"]) >= {"o_orderstatus", "l_shipmode"} and "o_orderdate" in params["date_bounds"]
    # Flights' checks keep their single-column shape.
    flights = sql.params_for(contracts.load("flights"), {})
    assert [(c["column"], c["table"], c["key"]) for c in flights["dimension_checks"]] == [
        ("carrier", "airlines", "carrier"), ("origin", "airports", "faa")]
    assert flights["allow_empty"] is False


def test_a_composite_dimension_key_is_matched_as_a_whole(con):
    # Part 10 and supplier 21 both exist, but 21 does not supply part 10.
    con.execute(f"INSERT INTO lake_gold.sales VALUES ('{DS}', 1, 1, 1, 10, 20), ('{DS}', 1, 2, 1, 10, 21), "
                f"('{DS}', 1, 3, 1, 10, 21)")
    params = sql.params_for(contracts.load("sales"), {})
    assert _run(con, "dq/known_dimensions.sql", params) == [("l_partkey, l_suppkey", "10, 21", 2)]


def test_an_empty_day_passes_where_the_contract_allows_it(con):
    sales = sql.params_for(contracts.load("sales"), {})
    assert _run(con, "dq/gold_matches_silver.sql", sales) == []
    # The same empty tables under flights' rule (allow_empty false) fail.
    assert _run(con, "dq/gold_matches_silver.sql", {**sales, "allow_empty": False}) == [(DS, 0, 0)]


def test_the_sales_headline_sums_money_and_ranks_regions():
    reports = {
        "revenue_by_region": [
            {"region": "ASIA", "orders": "3", "lines": "9", "revenue": "1000.25", "cost": "600.0", "profit": "400.25",
             "profit_margin": "0.4002"},
            {"region": "EUROPE", "orders": "2", "lines": "4", "revenue": "500.5", "cost": "450.0", "profit": "50.5",
             "profit_margin": "0.1009"},
        ],
        "profit_by_supplier_nation": [{"supplier_nation": "CHINA", "profit": "300.0"}],
    }
    head = pipeline.headline_for(contracts.load("sales"), reports)
    assert (head["orders"], head["lines"]) == (5, 13)
    assert head["revenue"] == pytest.approx(1500.75) and head["profit"] == pytest.approx(450.75)
    assert head["profit_margin"] == pytest.approx(450.75 / 1500.75)
    assert (head["best_region"], head["worst_region"]) == ("ASIA", "EUROPE")
    assert (head["top_supplier_nation"], head["top_supplier_nation_profit"]) == ("CHINA", 300.0)
