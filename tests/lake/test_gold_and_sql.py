"""The Glue transform functions on a local SparkSession, then the Athena dq/report SQL run in DuckDB
over the gold Parquet they wrote; everything is checked against DuckDB over the package CSV."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlglot

from lake import contracts, source, sql
from tests.helpers import BLIZZARD, GLUE_SCRIPT, REPO, import_path, src_count

# 2013-01-09 is just outside the 30-day window ending 2013-02-08; 2013-01-10 is its first day.
DAYS = ["2013-01-09", "2013-01-10", "2013-02-07", BLIZZARD]


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory, handler_mod) -> Path:
    """silver/, reference/ and gold/ on local disk: silver by the extractor, gold by the Glue functions."""
    root = tmp_path_factory.mktemp("lake")
    flights = contracts.load("flights")
    for ds in DAYS:
        d = date.fromisoformat(ds)
        day_file = next(source.iter_day_files(flights, d, d))
        zip_path = root / f"{ds}.zip"
        zip_path.write_bytes(day_file.zip_bytes)
        out = root / "silver" / "flights" / f"dt={ds}"
        out.mkdir(parents=True)
        handler_mod.extract_file(zip_path, flights, ds, out / "part-00000.parquet", root / "q.parquet")
    for name in ("airlines", "airports", "planes"):
        out = root / "reference" / name
        out.mkdir(parents=True)
        pq.write_table(source.read_dimension(contracts.load(name)), out / f"{name}.parquet")

    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("lake-tests")
             .config("spark.sql.session.timeZone", "UTC").config("spark.sql.shuffle.partitions", "4")
             .config("spark.ui.enabled", "false").config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
             .getOrCreate())
    glue = import_path("flights_gold", GLUE_SCRIPT)
    try:
        for ds in DAYS + [BLIZZARD]:  # the blizzard day twice: a rerun must not duplicate it
            tables = glue.transform(spark, ds, str(root / "silver" / "flights"), str(root / "reference"))
            for name in glue.GOLD_TABLES:
                glue.write_partition(tables[name], str(root / "gold" / name))
    finally:
        spark.stop()
    return root


@pytest.fixture(scope="module")
def lake_db(lake_dir) -> duckdb.DuckDBPyConnection:
    """DuckDB with the Athena databases as schemas: lake_silver (flights, airlines, airports) and
    lake_gold (flights, carrier_daily), over the local Parquet; dt typed VARCHAR as the crawler does."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA lake_silver; CREATE SCHEMA lake_gold")
    hive = "hive_partitioning=true, hive_types={'dt': VARCHAR}"
    con.execute(f"CREATE VIEW lake_silver.flights AS SELECT * FROM read_parquet('{lake_dir}/silver/flights/*/*.parquet', {hive})")
    for name in ("airlines", "airports"):
        con.execute(f"CREATE VIEW lake_silver.{name} AS SELECT * FROM read_parquet('{lake_dir}/reference/{name}/*.parquet')")
    for name in ("flights", "carrier_daily"):
        con.execute(f"CREATE VIEW lake_gold.{name} AS SELECT * FROM read_parquet('{lake_dir}/gold/{name}/*/*.parquet', {hive})")
    return con


def run_sql(con, template: str, ds: str, **overrides) -> list[tuple]:
    all_ = contracts.load_all()
    params = {**sql.params_for(all_["flights"], all_), **overrides}
    rendered = sql.render(template, ds, params)
    sqlglot.parse_one(rendered, read="trino")  # valid Trino/Athena
    return con.execute(sqlglot.transpile(rendered, read="trino", write="duckdb")[0]).fetchall()


def test_gold_rows_per_day_match_the_source(lake_dir, lake_db, duck):
    for ds in DAYS:
        files = list((lake_dir / "gold" / "flights" / f"dt={ds}").glob("*.parquet"))
        assert len(files) == 1  # one file per partition, the rerun replaced it
        gold = lake_db.execute(f"SELECT count(*), count(*) FILTER (WHERE is_cancelled), "
                               f"count(*) FILTER (WHERE is_diverted) FROM lake_gold.flights WHERE dt = '{ds}'").fetchone()
        assert gold == (src_count(duck, f"dt = '{ds}'"), src_count(duck, f"dt = '{ds}' AND dep_time IS NULL"),
                        src_count(duck, f"dt = '{ds}' AND dep_time IS NOT NULL AND arr_delay IS NULL"))


def test_gold_columns_against_the_source(lake_dir, duck):
    """Row by row against the CSV: times, names, derived minutes and speed."""
    duck.execute(f"CREATE OR REPLACE VIEW gold_flights AS SELECT * FROM read_parquet("
                 f"'{lake_dir}/gold/flights/*/*.parquet', hive_partitioning=true, hive_types={{'dt': VARCHAR}})")
    mismatches = duck.execute(f"""
        SELECT
          count(*) AS joined,
          count(*) FILTER (WHERE g.sched_dep_utc <> s.time_hour + to_minutes(s.minute)) AS bad_utc,
          count(*) FILTER (WHERE g.sched_dep_local <> make_timestamp(s.year, s.month, s.day, s.hour, s.minute, 0)) AS bad_local,
          count(*) FILTER (WHERE g.dep_utc IS DISTINCT FROM s.time_hour + to_minutes(s.minute + s.dep_delay)) AS bad_dep,
          count(*) FILTER (WHERE g.made_up_minutes IS DISTINCT FROM s.dep_delay - s.arr_delay) AS bad_made_up,
          count(*) FILTER (WHERE abs(coalesce(g.speed_mph, -1) - coalesce(s.distance / (s.air_time / 60.0), -1)) > 1e-9) AS bad_speed,
          count(*) FILTER (WHERE g.carrier_name IS DISTINCT FROM a.name) AS bad_carrier_name,
          count(*) FILTER (WHERE g.dest_name IS DISTINCT FROM p.name) AS bad_dest_name,
          count(*) FILTER (WHERE g.arr_delay_bucket <> CASE WHEN s.dep_time IS NULL THEN 'cancelled'
               WHEN s.arr_delay IS NULL THEN 'diverted' WHEN s.arr_delay < 0 THEN 'early'
               WHEN s.arr_delay < 15 THEN 'on_time' WHEN s.arr_delay < 60 THEN 'late_15_59'
               WHEN s.arr_delay < 180 THEN 'late_60_179' ELSE 'late_180_plus' END) AS bad_bucket
        FROM gold_flights g
        JOIN src_flights s ON g.dt = s.dt AND g.carrier = s.carrier AND g.flight = s.flight
             AND g.origin = s.origin AND g.sched_dep_time = s.sched_dep_time
        LEFT JOIN src_airlines a ON a.carrier = s.carrier
        LEFT JOIN src_airports p ON p.faa = s.dest
    """).fetchone()
    total = sum(src_count(duck, f"dt = '{ds}'") for ds in DAYS)
    assert mismatches == (total, 0, 0, 0, 0, 0, 0, 0, 0)


def _src_carrier_daily(duck, days: list[str]):
    return duck.execute(f"""
        SELECT carrier, count(*) AS flights, count(*) FILTER (WHERE dep_time IS NULL) AS cancelled,
               count(*) FILTER (WHERE arr_delay >= 15) AS delayed_15,
               count(*) FILTER (WHERE arr_delay < 15) AS on_time,
               count(*) FILTER (WHERE arr_delay < 15) / count(*) AS on_time_rate,
               avg(arr_delay), quantile_cont(arr_delay, 0.5), quantile_cont(arr_delay, 0.95)
        FROM src_flights WHERE dt IN ({', '.join(repr(d) for d in days)})
        GROUP BY carrier ORDER BY carrier""").fetchall()


def test_carrier_daily_matches_the_source(lake_db, duck):
    for ds in (BLIZZARD, "2013-01-10"):
        gold = lake_db.execute(f"SELECT carrier, flights, cancelled, delayed_15, on_time, on_time_rate, avg_arr_delay, "
                               f"p50_arr_delay, p95_arr_delay FROM lake_gold.carrier_daily WHERE dt = '{ds}' "
                               f"ORDER BY carrier").fetchall()
        expected = _src_carrier_daily(duck, [ds])
        assert [g[:5] for g in gold] == [e[:5] for e in expected]
        for g, e in zip(gold, expected):
            for got, want in zip(g[5:], e[5:]):
                assert got == pytest.approx(want, abs=1e-9) if want is not None else got is None


def test_gold_equals_duckdb_over_the_same_silver(lake_dir):
    """Every row, column and type of both gold tables, day by day, equals DuckDB's gold over the
    same silver file (bench/gold_anchor.py, written from the tables' meaning: the anchor of
    bench/big_day.py, so that figure compares the same work)."""
    gold_anchor = import_path("gold_anchor", REPO / "bench" / "gold_anchor.py")
    hive = "hive_partitioning = true, hive_types = {'dt': VARCHAR}"
    for ds in DAYS:
        con = gold_anchor.connect(lake_dir / "silver" / "flights" / f"dt={ds}" / "*.parquet", lake_dir / "reference")
        for table in glue_tables():
            want = gold_anchor.relation(con, table, ds)
            got = con.query(f"SELECT * FROM read_parquet('{lake_dir}/gold/{table}/dt={ds}/*.parquet', {hive})")
            assert list(zip(got.columns, map(str, got.types))) == list(zip(want.columns, map(str, want.types))), table
            con.register("want_rel", want)
            con.register("got_rel", got)
            counts = con.execute("SELECT (SELECT count(*) FROM got_rel), (SELECT count(*) FROM want_rel)").fetchall()
            assert counts[0][0] == counts[0][1] > 0, (table, ds, counts)
            doubles = [c for c, t in zip(want.columns, want.types) if str(t) == "DOUBLE"]
            # Doubles to 1e-9 (sums and percentiles may round differently), everything else exactly.
            cols = ", ".join(f"round({c}, 9) AS {c}" if c in doubles else f'"{c}"' for c in want.columns)
            diff = con.execute(f"SELECT count(*) FROM ((SELECT {cols} FROM got_rel EXCEPT ALL SELECT {cols} FROM want_rel) "
                               f"UNION ALL (SELECT {cols} FROM want_rel EXCEPT ALL SELECT {cols} FROM got_rel))").fetchone()[0]
            assert diff == 0, f"gold {table} {ds}: {diff} rows differ from DuckDB's"


def glue_tables() -> tuple[str, ...]:
    return import_path("flights_gold", GLUE_SCRIPT).GOLD_TABLES


def test_dq_checks_pass_on_real_days(lake_db):
    for ds in DAYS:
        for template in sql.templates("dq"):
            assert run_sql(lake_db, template, ds) == [], f"{template} fails on {ds}"


def test_dq_checks_catch_bad_gold(lake_db):
    """A gold table with a duplicated flight and an unknown carrier with an absurd delay and no origin."""
    lake_db.execute("CREATE SCHEMA IF NOT EXISTS bad_gold")
    lake_db.execute(f"""CREATE OR REPLACE VIEW bad_gold.flights AS
        SELECT * FROM lake_gold.flights
        UNION ALL (SELECT * FROM lake_gold.flights WHERE dt = '{BLIZZARD}' AND NOT is_cancelled ORDER BY flight LIMIT 1)
        UNION ALL (SELECT * REPLACE ('ZZ' AS carrier, 5000 AS dep_delay, NULL AS origin)
                   FROM lake_gold.flights WHERE dt = '{BLIZZARD}' ORDER BY flight LIMIT 1)""")
    bad = {"gold_database": "bad_gold"}
    silver_rows = src_count_rows(lake_db, BLIZZARD)
    assert run_sql(lake_db, "dq/gold_matches_silver.sql", BLIZZARD, **bad) == [(BLIZZARD, silver_rows, silver_rows + 2)]
    assert len(run_sql(lake_db, "dq/unique_key.sql", BLIZZARD, **bad)) == 1
    assert run_sql(lake_db, "dq/not_null.sql", BLIZZARD, **bad) == [("origin", 1)]
    assert run_sql(lake_db, "dq/known_dimensions.sql", BLIZZARD, **bad) == [("carrier", "ZZ", 1)]
    bounds = run_sql(lake_db, "dq/plausible_bounds.sql", BLIZZARD, **bad)
    assert [(b[0], b[1], b[3]) for b in bounds] == [("dep_delay", 1, 5000)]
    assert run_sql(lake_db, "dq/unique_key.sql", "2013-02-07", **bad) == []  # other days untouched


def src_count_rows(con, ds: str) -> int:
    return con.execute(f"SELECT count(*) FROM lake_silver.flights WHERE dt = '{ds}'").fetchone()[0]


def test_report_on_time_by_carrier(lake_db, duck):
    got = run_sql(lake_db, "flights/reports/on_time_by_carrier.sql", BLIZZARD)
    expected = {e[0]: e for e in _src_carrier_daily(duck, [BLIZZARD])}
    assert sorted(g[0] for g in got) == sorted(expected)
    rates = [g[7] for g in got]
    assert rates == sorted(rates, reverse=True)
    for g in got:
        e = expected[g[0]]
        assert (g[2], g[3], g[6]) == (e[1], e[2], e[4])  # flights, cancelled, on_time
        assert g[7] == pytest.approx(round(e[5], 4), abs=1e-12)


def test_report_worst_routes(lake_db, duck):
    got = run_sql(lake_db, "flights/reports/worst_routes.sql", BLIZZARD, min_route_flights=3, top_n=10)
    expected = duck.execute(f"""
        SELECT origin, dest, count(*), count(arr_delay), avg(arr_delay)
        FROM src_flights WHERE dt = '{BLIZZARD}' GROUP BY origin, dest HAVING count(arr_delay) >= 3
        ORDER BY avg(arr_delay) DESC, origin, dest LIMIT 10""").fetchall()
    assert [(g[0], g[1], g[3], g[4], g[5]) for g in got] == expected


def test_report_trailing_on_time(lake_db, duck):
    got = run_sql(lake_db, "flights/reports/trailing_on_time.sql", BLIZZARD)
    window = ["2013-01-10", "2013-02-07", BLIZZARD]  # the days present in gold within ds-29 .. ds
    expected = {e[0]: e for e in duck.execute(f"""
        SELECT carrier, count(DISTINCT dt), count(*), count(*) FILTER (WHERE arr_delay < 15)
        FROM src_flights WHERE dt IN ({', '.join(repr(d) for d in window)}) GROUP BY carrier""").fetchall()}
    assert {g[0] for g in got} == set(expected)
    for g in got:
        e = expected[g[0]]
        assert (g[2], g[3], g[4]) == (e[1], e[2], e[3])
        assert g[5] == pytest.approx(e[3] / e[2])


def test_ddl_renders_and_parses():
    all_ = contracts.load_all()
    params = sql.params_for(all_["flights"], all_, reference_location="s3://lake-silver/reference")
    for database in ("lake_silver", "lake_gold"):
        stmt = sqlglot.parse_one(sql.render("ddl/create_database.sql", BLIZZARD, {"database": database}),
                                 read="athena")
        assert stmt.this.name == database
    for name, dim_params in params["dimension_tables"].items():
        rendered = sql.render("ddl/create_dimension_table.sql", BLIZZARD, dim_params)
        stmt = sqlglot.parse_one(rendered, read="athena")  # Athena DDL is Hive DDL
        cols = [c.name for c in stmt.this.expressions]
        assert cols == all_[name].column_names
        assert f"LOCATION 's3://lake-silver/reference/{name}/'" in rendered

