"""The extractor's two chunk paths agree, its cheap parse agrees with the rules, and TPC-H lineitem loads.

``extract_file`` parses most chunks on a fast path (line numbers from row counts, column-wide
checks) and falls back to the exact path (every line prefixed with its number, every row
checked) when a chunk is not provably simple. These tests run both paths, with chunk sizes
small enough to put boundaries everywhere, on a file full of defects, and compare every output.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake import contracts
from tests.helpers import BLIZZARD

TPCHGEN = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")


def _zip(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return path


def _extract(handler_mod, monkeypatch, tmp_path, zip_path, contract, day, *, fast: bool, chunk: int):
    monkeypatch.setattr(handler_mod.validate, "FAST_PATH", fast)
    monkeypatch.setattr(handler_mod.chunks, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(handler_mod.chunks, "PIECE_BYTES", min(chunk, 1 << 20))
    out = tmp_path / f"out-{fast}-{chunk}"
    out.mkdir()
    result = handler_mod.extract_file(zip_path, contract, day, out / "silver.parquet", out / "q.parquet")
    silver = pq.read_table(out / "silver.parquet")
    quarantine = pq.read_table(out / "q.parquet").to_pylist() if result.rows_rejected else []
    return result, silver, quarantine


def _set(lines: list[bytes], i: int, field: int, value: bytes) -> None:
    fields = lines[i].split(b",")
    fields[field] = value
    lines[i] = b",".join(fields)


def test_fast_and_exact_paths_give_the_same_rows_rejects_and_lines(handler_mod, monkeypatch, tmp_path, source_csv):
    flights = contracts.load("flights")
    text = source_csv.read_bytes().split(b"\n")
    lines = [text[0]] + [line for line in text[1:] if line.startswith(b"2013,2,8,")][:400]
    _set(lines, 10, 9, b"NA")  # missing_required:carrier
    _set(lines, 20, 4, b"5pm")  # unparseable:sched_dep_time
    _set(lines, 30, 4, b"+1700")  # a leading + is allowed (Arrow's parser alone refuses it)
    _set(lines, 40, 10, b"0x10")  # hex: unparseable, although Arrow's parser takes it
    _set(lines, 50, 10, b"0000000000000000042")  # 19 digits: unparseable
    _set(lines, 60, 5, b" -5 ")  # white space is trimmed
    _set(lines, 70, 16, b"300")  # beyond int8: unparseable:hour
    _set(lines, 80, 1, b"13")  # out_of_range:month
    _set(lines, 90, 2, b"9")  # wrong_day
    _set(lines, 100, 3, b'"NA"')  # quoted NA is text, not null: unparseable:dep_time
    _set(lines, 110, 18, b"yesterday")  # unparseable:time_hour
    lines[120] = b"2013,2,8,garbage"  # wrong_field_count
    lines[130] = lines[130] + b",extra"  # wrong_field_count
    lines[140:140] = [b"", b"  \t", b"\r"]  # blank lines: skipped, still counted
    lines[200] = lines[200] + b"\r"  # one CRLF line
    lines[250] = lines[250] + b"\r" + lines[251]  # a lone CR splits a line for the parser
    data = b"\xef\xbb\xbf" + b"\n".join(lines)  # a BOM, and no final line break
    zip_path = _zip(tmp_path / "day.zip", flights.member_name(BLIZZARD), data)

    runs = {(fast, chunk): _extract(handler_mod, monkeypatch, tmp_path, zip_path, flights, BLIZZARD,
                                    fast=fast, chunk=chunk)
            for fast in (True, False) for chunk in (1 << 20, 4096, 200)}
    result, silver, quarantine = runs[(False, 1 << 20)]
    counts = lambda r: (r.rows_read, r.rows_written, r.rows_rejected, r.rejected_by_reason, r.bytes_uncompressed)
    for key, (other, other_silver, other_quarantine) in runs.items():
        assert counts(other) == counts(result), key  # (Parquet sizes vary with the number of writes)
        assert other_silver.equals(silver), key
        assert other_quarantine == quarantine, key
    by_line = {r["line_number"]: r["reason"] for r in quarantine}
    # Physical line numbers: the header is line 1, list index i is line i + 1 (until the blank lines).
    assert by_line == {11: "missing_required:carrier", 21: "unparseable:sched_dep_time", 41: "unparseable:flight",
                       51: "unparseable:flight", 71: "unparseable:hour", 81: "out_of_range:month", 91: "wrong_day",
                       101: "unparseable:dep_time", 111: "unparseable:time_hour", 121: "wrong_field_count",
                       131: "wrong_field_count", 2013: "wrong_field_count"}
    # (2013: the part after the lone CR is a row of its own for the parser, whose first field,
    # the year, stands where the line number would be; the extractor always did this.)
    assert [r["line_number"] for r in quarantine] == sorted(by_line)  # in line order
    assert result.rows_read == len(lines) - 1 - 3 + 1  # minus header and blank lines, plus the CR split
    assert result.rows_written == result.rows_read - len(by_line)
    rows = silver.to_pylist()
    assert {r["sched_dep_time"] for r in rows} >= {1700} and -5 in {r["dep_delay"] for r in rows}


def test_clean_parse_agrees_with_the_rules(handler_mod):
    """``_parse_clean`` gives ``_parse``'s values when no value is bad, and None when one is."""
    rng = random.Random(7)
    alphabet = "0123456789+-.eExX :T"
    samples = ["", "0", "-0", "+5", "-", "+", "007", "0x1F", "1e5", "1E+05", ".5", "5.", "-.5e-3", "inf", "nan",
               "Infinity", "1e999", "1.5 ", " 7", "9" * 18, "9" * 19, "0" * 19, "--5", "+-5", "1_0",
               "2013-02-08", "2013-2-8", "2013-02-30", "0000-01-01", "2013-02-08T05:00:00Z", "99999-01-01",
               "127", "128", "-128", "-129", "32767", "2147483648"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(1000)]
    columns = [contracts.Column("c", t, format=f) for t, f in
               [("int8", None), ("int16", None), ("int32", None), ("int64", None), ("float64", None),
                ("date", "%Y-%m-%d"), ("timestamp", "%Y-%m-%dT%H:%M:%SZ"), ("boolean", None), ("string", None)]]
    for col in columns:
        for value in samples:
            raw = pa.array([value, None, "1"])
            values, bad = handler_mod.validate._parse(raw, col)
            clean = handler_mod.validate._parse_clean(raw, col)
            if any(bad.to_pylist()):
                assert clean is None, (col.type, value)
            else:
                assert clean is not None and clean.equals(values), (col.type, value)


def test_chunks_hold_whole_lines_and_every_byte(handler_mod, tmp_path, monkeypatch):
    monkeypatch.setattr(handler_mod.chunks, "PIECE_BYTES", 7)
    data = b"".join(b"line %d %s\n" % (i, b"x" * (i % 23)) for i in range(500)) + b"tail without newline"
    with zipfile.ZipFile(_zip(tmp_path / "c.zip", "c.csv", data)) as zf, zf.open("c.csv") as member:
        reader = handler_mod.chunks.Chunks(member, size=100, ahead=1)
        chunks = list(reader)
        reader.close()
    assert b"".join(c for c, _ in chunks) == data and reader.bytes_read == len(data)
    assert all(c.endswith(b"\n") and n == c.count(b"\n") for c, n in chunks[:-1])
    assert all(len(c) <= 100 + 7 + 40 for c, _ in chunks)  # size + one read + one line


@pytest.mark.skipif(not Path(TPCHGEN).exists(), reason="tpchgen-cli is not installed")
def test_tpch_lineitem_loads_whole_and_typed(handler_mod, tmp_path):
    """TPC-H lineitem from tpchgen-cli (scale 0.01, 60,175 rows): every row is good, values survive."""
    subprocess.run([TPCHGEN, "csv", "-s", "0.01", "-T", "lineitem", "-o", str(tmp_path), "--quiet"], check=True)
    csv = tmp_path / "lineitem.csv"
    lineitem = contracts.load("lineitem")
    assert csv.read_text().split("\n", 1)[0].split(",") == lineitem.column_names
    day = "2024-01-02"
    zip_path = tmp_path / "lineitem.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv, lineitem.member_name(day))
    small = dataclasses.replace(lineitem, silver={**lineitem.silver, "row_group_rows": 25000})
    result = handler_mod.extract_file(zip_path, small, day, tmp_path / "s.parquet", tmp_path / "q.parquet")
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (60175, 60175, 0)
    assert result.bytes_uncompressed == csv.stat().st_size
    meta = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [25000, 25000, 10175]
    silver = pq.read_table(tmp_path / "s.parquet")
    assert silver.schema == handler_mod.validate.silver_schema(lineitem)
    con = duckdb.connect()
    expected = con.execute(f"SELECT sum(l_orderkey), sum(l_extendedprice::DECIMAL(15, 2)), min(l_shipdate), "
                          f"max(l_receiptdate), count(DISTINCT l_comment) FROM read_csv('{csv}', header=true)").fetchone()
    got = con.execute(f"SELECT sum(l_orderkey), sum(l_extendedprice::DECIMAL(15, 2)), min(l_shipdate), max(l_receiptdate), "
                     f"count(DISTINCT l_comment) FROM read_parquet('{tmp_path / 's.parquet'}')").fetchone()
    assert got == expected


def _feb8(source_csv, n: int = 400) -> list[bytes]:
    text = source_csv.read_bytes().split(b"\n")
    return [text[0]] + [line for line in text[1:] if line.startswith(b"2013,2,8,")][:n]


def _all_paths(handler_mod, monkeypatch, tmp_path, zip_path, contract, day, chunks=(1 << 20, 4096, 200, 97)):
    """Extract with both paths and several chunk sizes; assert every run gives the same output."""
    runs = {(fast, chunk): _extract(handler_mod, monkeypatch, tmp_path, zip_path, contract, day, fast=fast, chunk=chunk)
            for fast in (True, False) for chunk in chunks}
    result, silver, quarantine = runs[(False, 1 << 20)]
    counts = lambda r: (r.rows_read, r.rows_written, r.rows_rejected, r.rejected_by_reason, r.bytes_uncompressed)
    for key, (other, other_silver, other_quarantine) in runs.items():
        assert counts(other) == counts(result), key
        assert other_silver.equals(silver), key
        assert other_quarantine == quarantine, key
    return result, silver, quarantine


def test_quoted_line_breaks_are_one_record_numbered_by_its_first_line(handler_mod, monkeypatch, tmp_path,
                                                                     source_csv):
    """RFC 4180: a quoted field may hold line breaks, delimiters and "" quotes. Such a record is
    one row, whatever chunk boundaries fall inside it, and every row's line number is the physical
    line its record starts on. The reference is Python's csv module over the same bytes."""
    flights = contracts.load("flights")
    lines = _feb8(source_csv)
    _set(lines, 10, 11, b'"N1\n23"')  # a line break in tailnum
    _set(lines, 20, 11, b'"N5""X"')  # escaped quotes
    _set(lines, 30, 12, b'"EWR"')  # quoted, nothing special
    _set(lines, 40, 11, b'"A\r\n\r\nB,C"')  # CRLF, a blank line and a delimiter inside quotes
    _set(lines, 50, 4, b'"5\npm"')  # a bad value over two lines: unparseable:sched_dep_time
    _set(lines, 60, 11, b'"' + b"x\n" * 60 + b'"')  # 61 lines: longer than the small chunks
    lines[70] = b'2013,2,8,"garbage\nmore"'  # malformed over two lines: wrong_field_count
    _set(lines, 80, 18, b'"2013-02-08T17:00:00Z\n"')  # the last column ends with a line break (trimmed)
    _set(lines, 90, 11, b'N12"')  # a quote inside an unquoted field is a character
    _set(lines, 100, 5, b'"-5"')  # a quoted number is a number
    _set(lines, len(lines) - 1, 11, b'"LAST\nONE"')  # the file ends inside a multi-line record ...
    data = b"\n".join(lines)  # ... with no final line break
    zip_path = _zip(tmp_path / "day.zip", flights.member_name(BLIZZARD), data)
    result, silver, quarantine = _all_paths(handler_mod, monkeypatch, tmp_path, zip_path, flights, BLIZZARD)

    reader = csv.reader(io.StringIO(data.decode(), newline=""))
    records = []  # (first line, fields) of every data record
    header = next(reader)
    while True:
        first = reader.line_num + 1
        fields = next(reader, None)
        if fields is None:
            break
        records.append((first, fields))
    assert len(records) == len(lines) - 1 and data.count(b"\n") == len(lines) - 1 + 1 + 2 + 1 + 60 + 1 + 1 + 1
    bad = {records[49][0]: "unparseable:sched_dep_time", records[69][0]: "wrong_field_count"}
    assert {r["line_number"]: r["reason"] for r in quarantine} == bad
    assert [r["line_number"] for r in quarantine] == sorted(bad)
    assert records[49][0] == 51 + 1 + 2  # lines[50], after the line breaks in lines[10] and lines[40]
    assert [r["raw_line"] for r in quarantine if r["reason"] == "wrong_field_count"] == ['2013,2,8,"garbage\nmore"']
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (len(records), len(records) - 2, 2)
    good = [fields for first, fields in records if first not in bad]
    col = header.index("tailnum")
    assert silver["tailnum"].to_pylist() == [None if f[col] in ("NA", "") else f[col] for f in good]
    assert {"N1\n23", 'N5"X', "A\r\n\r\nB,C", "x\n" * 60, 'N12"', "LAST\nONE"} <= set(silver["tailnum"].to_pylist())
    assert silver["dep_delay"].to_pylist() == [None if f[5] == "NA" else int(f[5]) for f in good]
    assert silver["origin"].to_pylist() == [f[header.index("origin")] for f in good]


def test_rows_with_invalid_utf8_are_quarantined_with_their_bytes_shown(handler_mod, monkeypatch, tmp_path,
                                                                     source_csv):
    """Bytes that are not UTF-8 (here Latin-1 ``é`` = 0xE9) reject their row as
    ``invalid_utf8:<first such column>``; the quarantine keeps the text with each invalid byte
    as ``\\xNN``, from which the bytes come back. The other rows load; valid UTF-8 loads."""
    flights = contracts.load("flights")
    lines = _feb8(source_csv)
    _set(lines, 10, 11, b"N3\xe9")  # tailnum
    _set(lines, 20, 9, b"U\xe9")  # carrier (required): still invalid_utf8, not another reason
    _set(lines, 30, 11, b'"N\xff\n1"')  # inside a multi-line quoted field
    lines[40] = lines[40] + b",d\xe9j\xe0"  # beyond the last column (and a field too many)
    _set(lines, 50, 11, "Né".encode())  # valid UTF-8: loaded
    data = b"\n".join(lines) + b"\n"
    zip_path = _zip(tmp_path / "day.zip", flights.member_name(BLIZZARD), data)
    result, silver, quarantine = _all_paths(handler_mod, monkeypatch, tmp_path, zip_path, flights, BLIZZARD)
    by_line = {r["line_number"]: r for r in quarantine}
    # Independently: which physical lines do not decode (the multi-line record counts once).
    undecodable = [n for n, line in enumerate(data.split(b"\n"), 1) if not _decodes(line)]
    assert undecodable == [11, 21, 31, 42]  # lines[30] spans lines 31-32, so lines[40] is line 42
    assert {n: r["reason"] for n, r in by_line.items()} == {
        11: "invalid_utf8:tailnum", 21: "invalid_utf8:carrier", 31: "invalid_utf8:tailnum", 42: "invalid_utf8"}
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (len(lines) - 1, len(lines) - 5, 4)
    assert by_line[11]["tailnum"] == "N3\\xe9" and by_line[21]["carrier"] == "U\\xe9"
    assert by_line[31]["tailnum"] == "N\\xff\n1"
    assert by_line[42]["raw_line"].endswith(",d\\xe9j\\xe0")
    # Nothing is lost: the \xNN text gives the original bytes back.
    assert by_line[11]["tailnum"].encode().decode("unicode_escape").encode("latin-1") == b"N3\xe9"
    assert by_line[21]["carrier"].encode().decode("unicode_escape").encode("latin-1") == b"U\xe9"
    assert "Né" in silver["tailnum"].to_pylist()


def _decodes(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_a_quote_never_closed(handler_mod, monkeypatch, tmp_path, source_csv):
    """A quoted field left open swallows the lines after it: near the end of the file that is one
    malformed row (pyarrow reads the field to the end); further than MAX_RECORD_BYTES it makes the
    file unreadable, naming the line the record starts on, instead of holding the rest in memory."""
    flights = contracts.load("flights")
    lines = _feb8(source_csv)
    _set(lines, len(lines) - 3, 11, b'"N1')
    zip_path = _zip(tmp_path / "end.zip", flights.member_name(BLIZZARD), b"\n".join(lines) + b"\n")
    result, _, quarantine = _all_paths(handler_mod, monkeypatch, tmp_path, zip_path, flights, BLIZZARD)
    assert [(r["line_number"], r["reason"]) for r in quarantine] == [(len(lines) - 2, "wrong_field_count")]
    assert result.rows_read == len(lines) - 1 - 2  # the last two lines are inside the open field

    lines = _feb8(source_csv)
    _set(lines, 10, 11, b'"N1')
    zip_path = _zip(tmp_path / "early.zip", flights.member_name(BLIZZARD), b"\n".join(lines) + b"\n")
    monkeypatch.setattr(handler_mod.validate, "MAX_RECORD_BYTES", 2000)
    for fast in (True, False):
        with pytest.raises(handler_mod.BronzeFileError, match="record starting on line 11 is still open") as err:
            _extract(handler_mod, monkeypatch, tmp_path, zip_path, flights, BLIZZARD, fast=fast, chunk=500)
        assert err.value.reason == "unreadable csv"
