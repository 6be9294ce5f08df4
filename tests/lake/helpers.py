"""Helpers of the lake tests: a real day replayed into bronze, the extractor's event for it."""

from __future__ import annotations

from datetime import date

from lake import contracts, source
from lake.layout import Layout
from lake.settings import Settings


def replay_day(s3, bucket: str, day: str) -> dict:
    """Replay the real flights of ``day`` (``YYYY-MM-DD``) into ``bucket``; returns its manifest."""
    flights = contracts.load("flights")
    d = date.fromisoformat(day)
    return source.replay(flights, d, d, bucket=bucket, s3=s3)[0]


def extractor_event(buckets: dict[str, str], ds: str, **extra) -> dict:
    """The extractor's event for day ``ds`` on the ``buckets`` fixture's buckets (silver under
    ``silver/``, quarantine under ``quarantine/``) from the layout, plus ``extra`` keys."""
    s = Settings(bronze_bucket=buckets["bronze"], silver_bucket=buckets["silver"], silver_prefix="silver",
                 quarantine_prefix="quarantine")
    return {**Layout(s, contracts.load("flights")).lambda_event(ds), **extra}


#: Gold ``flights``' columns the flights dashboard reads, made here in DuckDB straight from the
#: package CSV by the rules in include/glue_scripts/flights_gold.py's docstring (the tests' own
#: gold, independent of the Glue script): views ``src_flights``, ``src_airlines``, ``src_airports``
#: of the ``duck`` fixture.
GOLD_FLIGHTS_SQL = """
    SELECT f.carrier, a.name AS carrier_name, f.origin, f.dest, p.name AS dest_name,
           coalesce(f.arr_delay < 15, false) AS is_on_time, f.dep_time IS NULL AS is_cancelled,
           f.arr_delay,
           CASE WHEN f.dep_time IS NULL THEN 'cancelled' WHEN f.arr_delay IS NULL THEN 'diverted'
                WHEN f.arr_delay < 0 THEN 'early' WHEN f.arr_delay < 15 THEN 'on_time'
                WHEN f.arr_delay < 60 THEN 'late_15_59' WHEN f.arr_delay < 180 THEN 'late_60_179'
                ELSE 'late_180_plus' END AS arr_delay_bucket,
           make_timestamp(f.year, f.month, f.day, f.sched_dep_time // 100, f.sched_dep_time % 100, 0)
               AS sched_dep_local,
           f.dt
    FROM src_flights f LEFT JOIN src_airlines a USING (carrier) LEFT JOIN src_airports p ON p.faa = f.dest"""
