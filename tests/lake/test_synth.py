"""lake/dev/synth.py: big days from the real flights, in the source's format, checked by DuckDB.

A few source days around 2013-05-25 (the day of the excluded 703 mph row) are copied into a
file of about 1 MB: the same code path as the 2 GB file (tests/e2e/test_big_file.py), small.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import date

import duckdb
import pytest

from lake import contracts, source
from lake.dev import synth
from tests.helpers import REQUIRED

DAYS = (date(2013, 5, 24), date(2013, 5, 26))
DAY = date(2013, 6, 15)
TARGET = 1_000_000


@pytest.fixture(scope="module")
def flights():
    return contracts.load("flights")


@pytest.fixture(scope="module")
def big(flights, tmp_path_factory):
    return synth.write_big_day(flights, tmp_path_factory.mktemp("synth"), day=DAY, target_bytes=TARGET,
                               source_days=DAYS)


@pytest.fixture(scope="module")
def con(big):
    con = duckdb.connect()
    con.execute(f"CREATE VIEW big AS SELECT * FROM read_csv('{big.csv_path}', nullstr='NA', header=true)")
    return con


def test_zip_and_manifest_are_what_build_day_makes_of_the_same_lines(big, flights):
    data = big.csv_path.read_bytes()
    header, _, body = data.partition(b"\n")
    lines = body.split(b"\n")
    assert lines.pop() == b""  # every line ends in \n
    ref = source.build_day(flights, DAY, header, lines)
    zipped = big.zip_path.read_bytes()
    assert zipped == ref.zip_bytes
    assert (big.key, big.manifest_key) == (ref.key, ref.manifest_key)
    assert {**big.manifest, "source": ref.manifest["source"]} == ref.manifest
    assert big.manifest["source"].startswith(ref.manifest["source"] + " (lake.dev.synth: ")
    assert json.loads(big.manifest_path.read_text()) == big.manifest
    assert big.manifest["sha256"] == hashlib.sha256(zipped).hexdigest() and big.zip_bytes == len(zipped)
    with zipfile.ZipFile(big.zip_path) as zf:
        assert zf.read(flights.member_name(DAY)) == data


def test_whole_copies_until_the_target(big, con, duck):
    src = duck.execute(f"SELECT count(*) FROM src_flights WHERE dt BETWEEN '{DAYS[0]}' AND '{DAYS[1]}'").fetchone()[0]
    assert big.excluded == 1 and big.rows_per_copy == src - 1
    assert big.rows == big.copies * big.rows_per_copy == con.execute("SELECT count(*) FROM big").fetchone()[0]
    copy_bytes = (big.csv_bytes - big.csv_path.read_bytes().index(b"\n") - 1) / big.copies
    assert TARGET <= big.csv_bytes == big.csv_path.stat().st_size < TARGET + 1.1 * copy_bytes


def test_every_row_is_the_day_unique_and_plausible(big, con):
    null_required = " OR ".join(f"{c} IS NULL" for c in REQUIRED)
    rows, other_day, nulls, keys, too_fast, local_hour_differs = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE make_date(year, month, day) <> DATE '{DAY}'),
               count(*) FILTER (WHERE {null_required}),
               count(DISTINCT (carrier, flight, origin, sched_dep_time)),
               count(*) FILTER (WHERE air_time > 0 AND distance / (air_time / 60.0) > 700),
               count(*) FILTER (WHERE hour(timezone('America/New_York', time_hour)) <> hour
                                   OR CAST(timezone('America/New_York', time_hour) AS DATE) <> DATE '{DAY}')
        FROM big""").fetchone()
    assert (rows, other_day, nulls, keys, too_fast, local_hour_differs) == (big.rows, 0, 0, big.rows, 0, 0)


def test_each_copy_is_the_source_renumbered(big, con, duck):
    """Per copy and source day, the rows are the source's (flight % stride = the original number)."""
    stride, days = synth.FLIGHT_STRIDE, (DAYS[1] - DAYS[0]).days + 1
    got = con.execute(f"""
        SELECT (flight // {stride}) // {days} AS copy, (flight // {stride}) % {days} AS d, carrier,
               flight % {stride} AS flight, origin, dest, sched_dep_time, dep_delay, arr_delay, tailnum
        FROM big ORDER BY ALL""").fetchall()
    src = duck.execute(f"""
        SELECT date_diff('day', DATE '{DAYS[0]}', make_date(year, month, day)) AS d, carrier, flight, origin, dest,
               sched_dep_time, dep_delay, arr_delay, tailnum
        FROM src_flights WHERE dt BETWEEN '{DAYS[0]}' AND '{DAYS[1]}'
          AND NOT (carrier = 'DL' AND flight = 1499 AND dt = '2013-05-25')""").fetchall()
    want = sorted((c, *row) for c in range(big.copies) for row in src)
    assert got == want


def test_the_extractor_loads_every_row(big, flights, handler_mod, tmp_path):
    result = handler_mod.extract_file(big.zip_path, flights, DAY, tmp_path / "s.parquet", tmp_path / "q.parquet")
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (big.rows, big.rows, 0)
    assert result.bytes_uncompressed == big.csv_bytes


def test_chunks_that_do_not_add_up_are_refused(flights, tmp_path):
    with pytest.raises(ValueError, match="5 were announced"):
        synth.write_day(flights, DAY, b"a,b", iter([b"1,2\n"]), size=5, rows=1, folder=tmp_path)
    assert list(tmp_path.glob("*.zip")) == []


GOOD = "2013,6,15,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-06-15T09:00:00Z"
#: One line per rule (and a few values both sides must accept): (line, bad?).
CASES = [
    (GOOD, False),
    (GOOD.replace(",UA,", ",NA,"), True),  # a required column is null
    (GOOD.replace(",1545,", ",x,"), True),  # unparseable int
    (GOOD.replace(",517,", ",1e3,"), True),  # an exponent is not an integer (DuckDB alone would cast it)
    (GOOD.replace(",5,15,", ",5,1.5,"), True),  # nor is a fraction
    (GOOD.replace(",5,15,", ",5,75,"), True),  # minute above its max
    (GOOD.replace("2013,6,15,", "2013,6,16,"), True),  # another day
    (GOOD.replace("T09:00:00Z", " 09:00"), True),  # timestamp not in the contract's format
    (GOOD.replace(",517,", ", 517 ,"), False),  # blanks around a number are allowed
    (GOOD.replace(",2,830,", ",+2,830,"), False),  # so is a sign
    ("2013,6,15,NA,515,NA,NA,819,NA,UA,1545,,EWR,IAH,NA,1400,5,15,2013-06-15T09:00:00Z", False),  # cancelled
]


def test_expected_counts_agree_with_the_extractor(flights, handler_mod, tmp_path):
    header = ",".join(flights.column_names).encode()
    lines = [line.encode() for line, _ in CASES]
    csv_path = tmp_path / "day.csv"
    csv_path.write_bytes(header + b"\n" + b"\n".join(lines) + b"\n")
    want_bad = sum(bad for _, bad in CASES)
    counts = synth.expected_counts(flights, csv_path, DAY)
    assert counts == {"rows": len(CASES), "rejected": want_bad, "good": len(CASES) - want_bad, "carriers": 1}
    day_file = source.build_day(flights, DAY, header, lines)
    zip_path = tmp_path / "day.zip"
    zip_path.write_bytes(day_file.zip_bytes)
    result = handler_mod.extract_file(zip_path, flights, DAY, tmp_path / "s.parquet", tmp_path / "q.parquet")
    assert (result.rows_read, result.rows_rejected) == (counts["rows"], counts["rejected"])
