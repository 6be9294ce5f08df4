"""Dashboards as code: the files check clean, bad ones are refused with file, line and field, and a
visual's SQL (filters bound as parameters) gives DuckDB's own numbers straight over the source CSV."""

from __future__ import annotations

import re

import pytest
import sqlglot

from lake import cli
from lake.dashboards import expr, query, spec
from tests.lake.helpers import GOLD_FLIGHTS_SQL

GOOD = """\
title: T
datasets:
  f:
    lake_dataset: flights
    query: SELECT dt, carrier, origin, arr_delay FROM gold.flights
    calculated:
      late: CASE WHEN arr_delay >= 15 THEN 1 ELSE 0 END
filters:
  origin: {kind: select, column: origin}
visuals:
  n:
    kind: kpi
    value: count(*)
"""


def test_the_projects_dashboards_check_clean():
    assert spec.names() == ["flights", "health", "sales"]
    assert spec.check_all() == []
    flights = spec.load("flights")
    assert flights.datasets["flights"].columns[:3] == ("dt", "carrier", "carrier_name")
    assert {v.kind for v in flights.visuals.values()} == {"kpi", "line", "stacked_bar", "table", "heatmap"}
    sales = spec.load("sales")
    assert sales.datasets["sales"].calculated["profit"] == "revenue - cost"
    assert set(sales.filters) == {"dates", "region"}
    health = spec.load("health")
    assert isinstance(health.datasets["runs"], spec.RunsDataset) and health.visuals["runs"].links == {"state": "run_url"}


@pytest.mark.parametrize("text, message", [
    ("(SELECT 1)", "Subquery"),
    ("carrier; DROP TABLE x", "does not parse|not allowed"),
    ("system.exec(1)", "Dot"),
    ("format_datetime(dt, 'y')", r"function format_datetime\(\) is not allowed"),
    ("nope + 1", "unknown column 'nope'"),
    ("f.carrier", "names a table"),
    ("count(*) + 1", "aggregates"),
    ("*", "only allowed in count"),
])
def test_bad_expressions_are_refused(text, message):
    with pytest.raises(expr.ExpressionError, match=message):
        expr.parse(text, {"carrier", "dt"}, aggregate=False)


def test_measures_must_aggregate_and_transpile_to_duckdb():
    with pytest.raises(expr.ExpressionError, match="not an aggregate"):
        expr.parse("upper(carrier)", {"carrier"}, aggregate=True)
    with pytest.raises(expr.ExpressionError, match="nested aggregate"):
        expr.parse("sum(count(carrier))", {"carrier"}, aggregate=True)
    tree = expr.parse("approx_distinct(carrier) + count_if(day_of_week(dt) = 7)", {"carrier", "dt"}, aggregate=True)
    assert expr.to_duckdb(tree) == "APPROX_COUNT_DISTINCT(carrier) + COUNT_IF(ISODOW(dt) = 7)"
    for fn in set(expr.ALLOWED_FUNCTIONS.values()):  # every allowed name parses to an allowed class
        args = "'month', dt" if fn == "date_trunc" else "dt, 1" if fn in ("substr", "round", "nullif", "greatest", "least") else "dt"
        expr.parse(f"{fn}({args})", {"dt"})


def _problems(text: str) -> list[str]:
    return [str(p) for p in spec.check_text(text, "t.yaml")[1]]


@pytest.mark.parametrize("old, new, expected", [
    ("query: SELECT dt, carrier, origin, arr_delay FROM gold.flights",
     "query: SELECT dt, carrier FROM lake_silver.flights", "t.yaml:5: datasets.f.query: reads lake_silver.flights"),
    ("SELECT dt, carrier, origin", "SELECT *, origin", "t.yaml:5: datasets.f.query: name every output column"),
    ("SELECT dt, carrier, origin", "SELECT carrier, origin", "must output the partition column 'dt'"),
    ("lake_dataset: flights", "lake_dataset: airlines", "t.yaml:4: datasets.f.lake_dataset: no fact dataset"),
    ("THEN 1 ELSE 0 END", "THEN (SELECT 1) ELSE 0 END", "t.yaml:7: datasets.f.calculated.late: Subquery"),
    ("column: origin}", "column: gate}", "t.yaml:9: filters.origin.column: no dataset has column 'gate'"),
    ("    value: count(*)", "    value: sum(late) FROM x", "t.yaml:13: visuals.n.value: does not parse"),
    ("    kind: kpi", "    kind: pie", "t.yaml:11: visuals.n: Input tag 'pie'"),
    ("    value: count(*)", "    values: count(*)", "t.yaml:13: visuals.n.values: Extra inputs"),
    ("    kind: kpi\n    value: count(*)", "    kind: line\n    x: hour\n    y: {m: count(*)}",
     "t.yaml:13: visuals.n.x: unknown column 'hour'"),
    ("    kind: kpi\n    value: count(*)",
     "    kind: table\n    group_by: [origin]\n    measures: {m: count(*)}\n    order_by: [-x]",
     "t.yaml:15: visuals.n.order_by.0: '-x' is not an output"),
    ("    kind: kpi\n    value: count(*)",
     "    kind: table\n    group_by: [origin]\n    measures: {m: count(*)}\n    links: {origin: url}",
     "t.yaml:15: visuals.n.links.origin: 'url' is not in the table's group_by"),
    ("    lake_dataset: flights\n    query: SELECT dt, carrier, origin, arr_delay FROM gold.flights",
     "    source: airflow_runs\n    lake_datasets: [airlines]", "t.yaml:5: datasets.f.lake_datasets.0: no fact dataset"),
    ("    lake_dataset: flights\n", "    source: airflow_runs\n", "t.yaml:5: datasets.f.query: Extra inputs"),
])
def test_bad_files_name_file_line_and_field(old, new, expected):
    assert _problems(GOOD) == []
    assert old in GOOD
    found = _problems(GOOD.replace(old, new))
    assert any(expected in p for p in found), found


def test_lake_dashboards_check_exits_1_with_the_problems(tmp_path, capsys):
    (tmp_path / "ok.yaml").write_text(GOOD)
    assert cli.main(["dashboards", "check", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "ok: ok (1 datasets, 1 filters, 1 visuals)\n"
    (tmp_path / "bad.yaml").write_text(GOOD.replace("count(*)", "evil(carrier)"))
    assert cli.main(["dashboards", "check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert re.search(r"bad\.yaml:13: visuals\.n\.value: function evil\(\) is not allowed", err), err
    assert "ok.yaml" not in err


# --- the reading side's SQL on real data ----------------------------------------------------------

@pytest.fixture(scope="module")
def flights_rows(duck, tmp_path_factory):
    """The flights dashboard's dataset in DuckDB: its own query (transpiled by sqlglot) over a
    ``gold.flights`` view made from the CSV (tests/lake/helpers.py), as one Parquet file."""
    duck.execute("CREATE SCHEMA IF NOT EXISTS gold")
    duck.execute(f"CREATE OR REPLACE VIEW gold.flights AS {GOLD_FLIGHTS_SQL}")
    dash = spec.load("flights")
    ds = dash.datasets["flights"]
    duck.execute("CREATE OR REPLACE TABLE dash_flights_raw AS "
                 + sqlglot.transpile(ds.query, read="trino", write="duckdb")[0])
    cached = tmp_path_factory.mktemp("cache") / "flights.parquet"
    duck.execute(f"COPY dash_flights_raw TO '{cached}' (FORMAT parquet)")
    return dash, f"({query.dataset_sql(ds, [str(cached)])})"


def _run(duck, dash, relation, visual, params):
    values = query.parse_filters(dash, dash.dataset_of(visual), params)
    sql, args = query.visual_sql(dash, visual, relation, values)
    return duck.execute(sql, args).fetchall()


def test_kpis_and_filters_equal_duckdb_over_the_csv(duck, flights_rows):
    dash, rel = flights_rows
    params = {"dates_from": ["2013-01-02"], "dates_to": ["2013-01-04"], "origin": ["JFK", "LGA"]}
    (n,), = _run(duck, dash, rel, "flights", params)
    (rate,), = _run(duck, dash, rel, "on_time_rate", params)
    (cancelled,), = _run(duck, dash, rel, "cancelled", params)
    want = duck.execute("""SELECT count(*), avg(CASE WHEN arr_delay < 15 THEN 1 ELSE 0 END),
                                  count(*) FILTER (WHERE dep_time IS NULL)
                           FROM src_flights WHERE dt BETWEEN '2013-01-02' AND '2013-01-04'
                           AND origin IN ('JFK', 'LGA')""").fetchone()
    assert (n, cancelled) == (want[0], want[2]) and n > 1000
    assert rate == pytest.approx(want[1])
    rows = _run(duck, dash, rel, "on_time_by_carrier", {"dates_to": ["2013-01-01"], "carrier": ["UA"]})
    assert rows == duck.execute("""SELECT dt, carrier, avg(CASE WHEN arr_delay < 15 THEN 1 ELSE 0 END)
                                   FROM src_flights WHERE dt <= '2013-01-01' AND carrier = 'UA'
                                   GROUP BY ALL ORDER BY ALL""").fetchall()
    heat = _run(duck, dash, rel, "departures_by_hour", {"dates_from": ["2013-01-07"], "dates_to": ["2013-01-07"]})
    assert sum(r[2] for r in heat) == duck.execute("SELECT count(*) FROM src_flights WHERE dt = '2013-01-07'").fetchone()[0]
    assert {r[1] for r in heat} == {1}  # 2013-01-07 was a Monday (ISO day 1)


@pytest.mark.parametrize("evil", ["JFK' OR '1'='1", "JFK'); DROP TABLE dash_flights_raw; --", "\"origin\""])
def test_a_filter_value_with_sql_is_only_a_value(duck, flights_rows, evil):
    dash, rel = flights_rows
    assert _run(duck, dash, rel, "flights", {"origin": [evil]}) == [(0,)]
    assert duck.execute("SELECT count(*) > 0 FROM dash_flights_raw").fetchone() == (True,)
    with pytest.raises(query.FilterError, match="dates_from: \"2013-01-01' OR 1=1\" is not a date"):
        query.parse_filters(dash, "flights", {"dates_from": ["2013-01-01' OR 1=1"]})


def test_worst_routes_table_orders_limits_and_applies_having(duck, flights_rows):
    dash, rel = flights_rows
    rows = _run(duck, dash, rel, "worst_routes", {"dates_from": ["2013-01-01"], "dates_to": ["2013-01-07"]})
    want = duck.execute("""SELECT f.origin, f.dest, p.name, count(*), count(arr_delay), round(avg(arr_delay), 1)
                           FROM src_flights f LEFT JOIN src_airports p ON p.faa = f.dest WHERE dt <= '2013-01-07'
                           GROUP BY ALL HAVING count(arr_delay) >= 20
                           ORDER BY 6 DESC NULLS LAST, 1, 2 LIMIT 10""").fetchall()
    assert rows == want and len(rows) == 10


def test_an_empty_cache_is_refused():
    with pytest.raises(ValueError, match="no cached Parquet"):
        query.dataset_sql(spec.load("sales").datasets["sales"], [])
