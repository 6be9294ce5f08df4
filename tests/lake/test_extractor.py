"""The extractor, called in-process against localaws S3 with plain boto3, on real days and real bad bytes."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import zipfile
from datetime import date

import pyarrow.parquet as pq
import pytest

from lake import contracts, source
from lake.layout import Layout
from lake.settings import Settings
from tests.lake.conftest import BLIZZARD, REQUIRED, list_keys, src_count


def _replay(s3, bucket, day: str):
    flights = contracts.load("flights")
    d = date.fromisoformat(day)
    return source.replay(flights, d, d, bucket=bucket, s3=s3)[0]


def _event(buckets, ds, **extra):
    """The extractor's event for ``ds`` from the layout (silver under ``silver/``, rejects under ``quarantine/``)."""
    s = Settings(bronze_bucket=buckets["bronze"], silver_bucket=buckets["silver"], silver_prefix="silver",
                 quarantine_prefix="quarantine")
    return {**Layout(s, contracts.load("flights")).lambda_event(ds), **extra}


def _read_parquet(s3, bucket, key):
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


@pytest.mark.parametrize("ds", ["2013-01-01", BLIZZARD])
def test_real_day_counts_match_duckdb(ds, buckets, aws_client, duck, handler_mod):
    s3 = aws_client("s3")
    _replay(s3, buckets["bronze"], ds)
    out = handler_mod.handler(_event(buckets, ds))
    day_rows = src_count(duck, f"dt = '{ds}'")
    null_required = src_count(duck, f"dt = '{ds}' AND ({' OR '.join(c + ' IS NULL' for c in REQUIRED)})")
    assert out["rows_read"] == day_rows
    assert out["rows_rejected"] == null_required
    assert out["rows_written"] == day_rows - null_required
    assert out["rows_read"] == out["rows_written"] + out["rows_rejected"]
    assert out["silver_path"] == f"s3://{buckets['silver']}/silver/flights/dt={ds}/"
    key = f"silver/flights/dt={ds}/part-00000.parquet"
    silver = _read_parquet(s3, buckets["silver"], key)
    assert silver.num_rows == out["rows_written"]
    assert silver.column_names == contracts.load("flights").column_names
    cancelled = src_count(duck, f"dt = '{ds}' AND dep_time IS NULL")
    assert silver["dep_time"].null_count == cancelled
    assert silver["tailnum"].null_count == src_count(duck, f"dt = '{ds}' AND tailnum IS NULL")
    # Values survive typing: sums per column equal DuckDB's.
    sums = duck.execute(f"SELECT sum(dep_delay), sum(arr_delay), sum(distance), min(time_hour) FROM src_flights "
                        f"WHERE dt = '{ds}'").fetchone()
    import pyarrow.compute as pc

    assert pc.sum(silver["dep_delay"]).as_py() == sums[0]
    assert pc.sum(silver["arr_delay"]).as_py() == sums[1]
    assert pc.sum(silver["distance"]).as_py() == sums[2]
    assert pc.min(silver["time_hour"]).as_py() == sums[3]
    assert out["bytes_in"] == s3.head_object(Bucket=buckets["bronze"],
                                             Key=contracts.load("flights").source_key(ds))["ContentLength"]
    assert out["bytes_out"] == s3.head_object(Bucket=buckets["silver"], Key=key)["ContentLength"]
    if ds == BLIZZARD:
        assert cancelled > 400 and silver.num_rows == day_rows  # cancelled flights reach silver


def test_rerun_leaves_one_copy(buckets, aws_client, handler_mod):
    s3 = aws_client("s3")
    _replay(s3, buckets["bronze"], "2013-01-02")
    # A stale object from an earlier, different run of the day must disappear too.
    s3.put_object(Bucket=buckets["silver"], Key="silver/flights/dt=2013-01-02/part-old.parquet", Body=b"x")
    first = handler_mod.handler(_event(buckets, "2013-01-02"))
    second = handler_mod.handler(_event(buckets, "2013-01-02"))
    assert first["rows_written"] == second["rows_written"]
    assert list_keys(s3, buckets["silver"], "silver/flights/dt=2013-01-02/") == [
        "silver/flights/dt=2013-01-02/part-00000.parquet"]


def _put_day(s3, bucket, ds, csv_bytes: bytes | None = None, *, zip_bytes: bytes | None = None, rows=None,
             member=None):
    """Put a bronze file and a manifest that describes it (as the exporter would)."""
    flights = contracts.load("flights")
    if zip_bytes is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(member or flights.member_name(ds), csv_bytes)
        zip_bytes = buf.getvalue()
    if rows is None:
        rows = max(0, len(csv_bytes.strip().splitlines()) - 1) if csv_bytes else 0
    s3.put_object(Bucket=bucket, Key=flights.source_key(ds), Body=zip_bytes)
    manifest = {"rows": rows, "sha256": hashlib.sha256(zip_bytes).hexdigest(), "bytes": len(zip_bytes)}
    s3.put_object(Bucket=bucket, Key=flights.manifest_key(ds), Body=json.dumps(manifest).encode())
    return flights.source_key(ds)


def _day_csv(source_csv, day: str) -> list[str]:
    y, m, d = (int(x) for x in day.split("-"))
    lines = source_csv.read_text().splitlines()
    return [lines[0]] + [line for line in lines[1:] if line.startswith(f"{y},{m},{d},")]


def test_bad_rows_go_to_quarantine_with_line_and_reason(buckets, aws_client, handler_mod, source_csv):
    s3 = aws_client("s3")
    lines = _day_csv(source_csv, BLIZZARD)
    total = len(lines) - 1
    fields = lines[10].split(",")
    fields[9] = "NA"  # carrier is required
    lines[10] = ",".join(fields)
    fields = lines[20].split(",")
    fields[4] = "5pm"  # sched_dep_time is an integer
    lines[20] = ",".join(fields)
    fields = lines[30].split(",")
    fields[1] = "13"  # month above its max
    lines[30] = ",".join(fields)
    lines[40] = lines[40].replace("2013,2,8,", "2013,2,9,", 1)  # another day's row
    lines[50] = "2013,2,8,garbage"  # too few fields
    fields = lines[60].split(",")
    fields[18] = "yesterday"  # time_hour
    lines[60] = ",".join(fields)
    _put_day(s3, buckets["bronze"], BLIZZARD, ("\n".join(lines) + "\n").encode())
    out = handler_mod.handler(_event(buckets, BLIZZARD))
    assert out["rows_read"] == total
    assert out["rejected_by_reason"] == {"missing_required:carrier": 1, "unparseable:sched_dep_time": 1,
                                         "out_of_range:month": 1, "wrong_day": 1, "wrong_field_count": 1,
                                         "unparseable:time_hour": 1}
    assert out["rows_written"] == total - 6
    q = _read_parquet(s3, buckets["silver"], f"quarantine/flights/dt={BLIZZARD}/part-00000.parquet").to_pylist()
    by_line = {r["line_number"]: r for r in q}
    # Physical line numbers: the header is line 1, so list index i is line i + 1.
    assert sorted(by_line) == [11, 21, 31, 41, 51, 61]
    assert by_line[11]["reason"] == "missing_required:carrier" and by_line[11]["carrier"] is None
    assert by_line[21]["sched_dep_time"] == "5pm"
    assert by_line[51]["raw_line"] == "2013,2,8,garbage"
    assert by_line[61]["time_hour"] == "yesterday"
    # A clean rerun clears the day's quarantine.
    _replay(s3, buckets["bronze"], BLIZZARD)
    again = handler_mod.handler(_event(buckets, BLIZZARD))
    assert again["rows_rejected"] == 0
    assert list_keys(s3, buckets["silver"], f"quarantine/flights/dt={BLIZZARD}/") == []


def _zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _assert_fails_with(handler_mod, buckets, s3, ds, csv_bytes, reason):
    return _assert_fails(handler_mod, buckets, s3, _put_day(s3, buckets["bronze"], ds, csv_bytes), reason)


def _assert_fails(handler_mod, buckets, s3, key, reason):
    good_silver = list_keys(s3, buckets["silver"])
    with pytest.raises(handler_mod.BronzeFileError) as err:
        handler_mod.handler(_event(buckets, "2013-01-03"))
    assert f"s3://{buckets['bronze']}/{key}" in str(err.value)
    assert err.value.reason == reason and reason in str(err.value)
    # The bad bronze object is kept, and silver is untouched.
    assert s3.head_object(Bucket=buckets["bronze"], Key=key)["ContentLength"] >= 0
    assert list_keys(s3, buckets["silver"]) == good_silver
    return str(err.value)


def test_bad_files_raise_naming_file_and_reason(buckets, aws_client, handler_mod, source_csv):
    s3 = aws_client("s3")
    ds = "2013-01-03"
    _replay(s3, buckets["bronze"], ds)
    handler_mod.handler(_event(buckets, ds))  # a good partition exists before each bad file
    good = ("\n".join(_day_csv(source_csv, ds)) + "\n").encode()
    key = contracts.load("flights").source_key(ds)

    # Corrupt zip: the real zip with its middle overwritten (the manifest describes these bytes).
    real = s3.get_object(Bucket=buckets["bronze"], Key=key)["Body"].read()
    corrupt = real[:200] + bytes(len(real) // 2) + real[200 + len(real) // 2:]
    _put_day(s3, buckets["bronze"], ds, zip_bytes=corrupt, rows=len(good.splitlines()) - 1)
    _assert_fails(handler_mod, buckets, s3, key, "corrupt zip")
    _put_day(s3, buckets["bronze"], ds, zip_bytes=b"this is not a zip file", rows=1)
    _assert_fails(handler_mod, buckets, s3, key, "corrupt zip")

    # Wrong header: a column missing, one the contract does not know (schema drift), one twice.
    # (Reordered columns are matched by name: test_reordered_columns_load_as_the_contract_order.)
    header, rest = good.split(b"\n", 1)
    _put_day(s3, buckets["bronze"], ds, header.replace(b",time_hour", b"") + b"\n" + rest)
    assert "missing ['time_hour']" in _assert_fails(handler_mod, buckets, s3, key, "wrong header")
    extra = b"\n".join(line + b",x" for line in good.rstrip(b"\n").split(b"\n"))
    extra = extra.replace(header + b",x", header + b",remarks", 1) + b"\n"
    msg = _assert_fails_with(handler_mod, buckets, s3, ds, extra, "wrong header")
    assert "unexpected ['remarks']" in msg and "missing" not in msg and "contract flights" in msg
    twice = header.replace(b",time_hour", b",year") + b"\n" + rest
    assert "repeated ['year']" in _assert_fails_with(handler_mod, buckets, s3, ds, twice, "wrong header")

    # Empty files: a 0-byte CSV, and a header without rows (the manifest says 0 rows: still an
    # error, a day without flights is not a day the source delivers).
    _put_day(s3, buckets["bronze"], ds, b"")
    _assert_fails(handler_mod, buckets, s3, key, "empty file")
    _put_day(s3, buckets["bronze"], ds, header + b"\n", rows=0)
    assert "no data rows" in _assert_fails(handler_mod, buckets, s3, key, "no data rows")

    # Wrong member name inside the zip; a zip without any file; a zip with a second file.
    _put_day(s3, buckets["bronze"], ds, good, member="export.csv")
    _assert_fails(handler_mod, buckets, s3, key, "missing member")
    _put_day(s3, buckets["bronze"], ds, zip_bytes=_zip_of({}), rows=0)
    assert "holds no file" in _assert_fails(handler_mod, buckets, s3, key, "missing member")
    member = contracts.load("flights").member_name(ds)
    two = _zip_of({member: good, "flights_20130103_part2.csv": good})
    _put_day(s3, buckets["bronze"], ds, zip_bytes=two, rows=len(good.splitlines()) - 1)
    msg = _assert_fails(handler_mod, buckets, s3, key, "unexpected member")
    assert "flights_20130103_part2.csv" in msg

    # Manifest mismatch: rows, then sha256.
    _put_day(s3, buckets["bronze"], ds, good, rows=len(good.splitlines()))
    assert "rows read" in _assert_fails(handler_mod, buckets, s3, key, "manifest mismatch")
    _put_day(s3, buckets["bronze"], ds, good)
    manifest_key = contracts.load("flights").manifest_key(ds)
    manifest = json.loads(s3.get_object(Bucket=buckets["bronze"], Key=manifest_key)["Body"].read())
    manifest["sha256"] = "0" * 64
    s3.put_object(Bucket=buckets["bronze"], Key=manifest_key, Body=json.dumps(manifest).encode())
    assert "sha256" in _assert_fails(handler_mod, buckets, s3, key, "manifest mismatch")

    # No manifest at all.
    s3.delete_object(Bucket=buckets["bronze"], Key=manifest_key)
    with pytest.raises(handler_mod.BronzeFileError, match="missing manifest"):
        handler_mod.handler(_event(buckets, ds))


def test_reordered_columns_load_as_the_contract_order(buckets, aws_client, handler_mod, source_csv):
    """Columns are matched by header name: the same day with its columns in another order gives
    the same silver table (contract order, types, values) and the same quarantine."""
    s3 = aws_client("s3")
    ds = "2013-01-04"
    lines = _day_csv(source_csv, ds)
    fields = lines[5].split(",")
    fields[4] = "5pm"  # one bad row, so the quarantine is compared too
    lines[5] = ",".join(fields)
    rows = list(csv.reader(lines))
    _put_day(s3, buckets["bronze"], ds, ("\n".join(lines) + "\n").encode())
    normal = handler_mod.handler(_event(buckets, ds))
    silver_key = f"silver/flights/dt={ds}/part-00000.parquet"
    quarantine_key = f"quarantine/flights/dt={ds}/part-00000.parquet"
    expected = _read_parquet(s3, buckets["silver"], silver_key)
    expected_q = _read_parquet(s3, buckets["silver"], quarantine_key)
    order = list(reversed(range(len(rows[0]))))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[row[i] for i in order] for row in rows])
    assert buf.getvalue().split("\n", 1)[0].startswith("time_hour,minute,hour,distance")
    _put_day(s3, buckets["bronze"], ds, buf.getvalue().encode())
    reordered = handler_mod.handler(_event(buckets, ds))
    assert (reordered["rows_read"], reordered["rows_written"], reordered["rows_rejected"]) == (
        len(lines) - 1, len(lines) - 2, 1)
    assert reordered["rejected_by_reason"] == normal["rejected_by_reason"] == {"unparseable:sched_dep_time": 1}
    assert _read_parquet(s3, buckets["silver"], silver_key).equals(expected)
    assert _read_parquet(s3, buckets["silver"], quarantine_key).equals(expected_q)


def test_streaming_reads_in_bounded_blocks(handler_mod, tmp_path):
    """The line-numbering stream never hands pyarrow more than it asks for and numbers lines exactly."""
    data = b"a,b\n1,2\n\n3,4\r\n5,6"
    stream = handler_mod.NumberedLines(io.BytesIO(data), ",", chunk=3)
    out = b""
    while chunk := stream.read(5):
        assert len(chunk) <= 5
        out += chunk
    assert out == (handler_mod.LINE_COLUMN.encode() + b",a,b\n2,1,2\n4,3,4\r\n5,5,6\n")
    assert stream.bytes_read == len(data)

    # Quoted line breaks: a record is numbered by the line it starts on, its inner line breaks
    # (and a blank line inside quotes) are data; a record still open at the end is passed on, or
    # with hold_open kept back for the next chunk.
    data = b'a,b\n1,"x\n\ny"\n\n3,"say ""hi"""\n4,x"y\n5,"open\n'
    for hold_open in (False, True):
        stream = handler_mod.NumberedLines(io.BytesIO(data), ",", chunk=3, hold_open=hold_open)
        out = b"".join(iter(functools.partial(stream.read, 5), b""))
        head = handler_mod.LINE_COLUMN.encode() + b',a,b\n2,1,"x\n\ny"\n6,3,"say ""hi"""\n7,4,x"y\n'
        if hold_open:
            assert (out, stream.rest, stream.rest_line) == (head, b'5,"open\n', 8)
        else:
            assert (out, stream.rest, stream.rest_line) == (head + b'8,5,"open\n', b"", None)
