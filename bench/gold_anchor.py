"""The flights gold transformation in DuckDB SQL: the anchor the Glue job's speed is compared with.

Written from what the gold tables mean (the column list of include/glue_scripts/flights_gold.py's
docstring, the keys of include/datasets/flights.json), not from the Spark code, so that
tests/lake/test_gold_and_sql.py can hold the two against each other row by row and bench/big_day.py
can time the same work in both engines.

Inputs: one day of silver flights (Parquet, the extractor's columns), the silver reference tables
``airlines`` (``carrier``, ``name``) and ``airports`` (``faa``, ``name``, ``tz`` hours,
``tzone`` IANA name or null), and the day ``ds`` (``YYYY-MM-DD``). Outputs, with the Glue job's
columns, column order (as the tables read: the partition column ``dt`` last) and types (DuckDB names: SMALLINT = Spark short, TIMESTAMP = timestamp_ntz,
TIMESTAMP WITH TIME ZONE = Spark timestamp, an instant):

* gold ``flights``: every silver column, the carrier's and both airports' names (left joins),
  ``origin_tzone`` (the origin's IANA zone, else its fixed ``tz`` offset as ``+HH:00``), the
  scheduled and actual departure on the origin's clock and as UTC instants (actual = scheduled +
  ``dep_delay`` minutes, null when cancelled), the flags (cancelled: no ``dep_time``; diverted:
  departed without ``arr_delay``; delayed 15: ``arr_delay`` >= 15; on time: ``arr_delay`` < 15),
  the delay buckets, ``made_up_minutes`` = dep_delay - arr_delay, ``speed_mph`` = distance per
  hour of air time, and ``dt``;
* gold ``carrier_daily``: per carrier, the counts of flights, cancelled, diverted, delayed 15 and
  on time, on_time_rate = on time / flights, the mean and the 50th and 95th percentiles (linear
  interpolation, ``quantile_cont``) of ``arr_delay`` in minutes.

Local times become instants with DuckDB's ``timezone(zone, timestamp)`` (ICU; a fixed offset is
spelled ``GMT+HH:00`` there).
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

#: Gold ``flights`` over views ``silver``, ``airlines``, ``airports``; ``$ds`` is the day,
#: ``$silver_columns`` the silver columns in their order.
FLIGHTS_SQL = """
WITH f AS (
  SELECT s.*,
         a.name AS carrier_name,
         o.name AS origin_name,
         d.name AS dest_name,
         coalesce(o.tzone, printf('%+03d:00', o.tz::INTEGER)) AS origin_tzone,
         CASE WHEN o.tzone IS NOT NULL THEN o.tzone ELSE 'GMT' || printf('%+03d:00', o.tz::INTEGER) END AS icu_zone,
         make_date(s.year, s.month, s.day)::TIMESTAMP
           + to_minutes((s.sched_dep_time // 100) * 60 + s.sched_dep_time % 100) AS sched_dep_local
  FROM silver s
  LEFT JOIN airlines a ON a.carrier = s.carrier
  LEFT JOIN airports o ON o.faa = s.origin
  LEFT JOIN airports d ON d.faa = s.dest
), g AS (
  SELECT *, CASE WHEN dep_time IS NOT NULL THEN sched_dep_local + to_minutes(dep_delay) END AS dep_local
  FROM f
)
SELECT $silver_columns,
       carrier_name, origin_name, dest_name, origin_tzone, sched_dep_local,
       timezone(icu_zone, sched_dep_local) AS sched_dep_utc,
       dep_local,
       timezone(icu_zone, dep_local) AS dep_utc,
       dep_time IS NULL AS is_cancelled,
       dep_time IS NOT NULL AND arr_delay IS NULL AS is_diverted,
       coalesce(arr_delay >= 15, false) AS is_delayed_15,
       coalesce(arr_delay < 15, false) AS is_on_time,
       CASE WHEN dep_delay IS NULL THEN 'cancelled' WHEN dep_delay < 0 THEN 'early'
            WHEN dep_delay < 15 THEN 'on_time' WHEN dep_delay < 60 THEN 'late_15_59'
            WHEN dep_delay < 180 THEN 'late_60_179' ELSE 'late_180_plus' END AS dep_delay_bucket,
       CASE WHEN dep_time IS NULL THEN 'cancelled' WHEN arr_delay IS NULL THEN 'diverted'
            WHEN arr_delay < 0 THEN 'early' WHEN arr_delay < 15 THEN 'on_time'
            WHEN arr_delay < 60 THEN 'late_15_59' WHEN arr_delay < 180 THEN 'late_60_179'
            ELSE 'late_180_plus' END AS arr_delay_bucket,
       dep_delay - arr_delay AS made_up_minutes,
       CASE WHEN air_time > 0 THEN distance::DOUBLE / (air_time::DOUBLE / 60.0) END AS speed_mph,
       $ds AS dt
FROM g
"""

#: Gold ``carrier_daily`` over views ``silver`` and ``airlines``; ``$ds`` is the day.
CARRIER_DAILY_SQL = """
WITH per AS (
  SELECT carrier,
         count(*) AS flights,
         count(*) FILTER (WHERE dep_time IS NULL) AS cancelled,
         count(*) FILTER (WHERE dep_time IS NOT NULL AND arr_delay IS NULL) AS diverted,
         count(*) FILTER (WHERE arr_delay >= 15) AS delayed_15,
         count(*) FILTER (WHERE arr_delay < 15) AS on_time,
         avg(arr_delay)::DOUBLE AS avg_arr_delay,
         quantile_cont(arr_delay, 0.5)::DOUBLE AS p50_arr_delay,
         quantile_cont(arr_delay, 0.95)::DOUBLE AS p95_arr_delay
  FROM silver GROUP BY carrier
)
SELECT per.carrier, a.name AS carrier_name, flights, cancelled, diverted, delayed_15, on_time,
       on_time::DOUBLE / flights AS on_time_rate, avg_arr_delay, p50_arr_delay, p95_arr_delay, $ds AS dt
FROM per LEFT JOIN airlines a ON a.carrier = per.carrier
"""

TABLES = {"flights": FLIGHTS_SQL, "carrier_daily": CARRIER_DAILY_SQL}


def connect(silver: str | Path, reference: str | Path, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB (session time zone UTC) with views ``silver`` over ``silver`` (a Parquet file or
    glob: one day) and ``airlines`` / ``airports`` over ``<reference>/<name>/*.parquet``."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(f"CREATE VIEW silver AS SELECT * FROM read_parquet('{silver}', hive_partitioning = false)")
    for name in ("airlines", "airports"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{Path(reference) / name}/*.parquet')")
    return con


def relation(con: duckdb.DuckDBPyConnection, table: str, ds: str) -> duckdb.DuckDBPyRelation:
    """Gold ``table`` (``flights`` or ``carrier_daily``) of day ``ds`` as a DuckDB relation (not run)."""
    silver_columns = ", ".join(f'"{row[0]}"' for row in con.execute("DESCRIBE silver").fetchall())
    sql = TABLES[table].replace("$silver_columns", silver_columns)
    return con.query(sql.replace("$ds", "'" + ds.replace("'", "''") + "'"))


def write(con: duckdb.DuckDBPyConnection, ds: str, out: Path) -> dict[str, dict[str, float]]:
    """Write both gold tables of ``ds`` as Spark lays them out (``<out>/<table>/dt=<ds>/``, snappy
    Parquet, ``dt`` in the path only); returns ``{table: {"rows": n, "seconds": s}}``."""
    figures = {}
    for table in TABLES:
        started = time.monotonic()
        sql = relation(con, table, ds).sql_query()
        dest = Path(out) / table
        dest.parent.mkdir(parents=True, exist_ok=True)
        rows = con.execute(f"COPY ({sql}) TO '{dest}' (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (dt), "
                           f"OVERWRITE_OR_IGNORE)").fetchone()[0]
        figures[table] = {"rows": rows, "seconds": time.monotonic() - started}
    return figures
