"""The sales source (lake/tpch.py): a day's order export and the TPC-H dimensions, against localaws S3,
checked against DuckDB over tpchgen-cli's own CSV tables (the ``tpch_db`` fixture), never against lake.tpch."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import date

import pyarrow.parquet as pq
import pytest

from lake import cli, contracts, source
from tests.helpers import SALES_DIMENSIONS, SALES_SCALE, list_keys

DAYS = [date(1995, 3, 1), date(1995, 3, 2)]


def _day_csv(tmp_path, zip_bytes: bytes, member: str):
    """The zip's only member, written to a file for DuckDB; and the zip's member names."""
    zf = zipfile.ZipFile(io.BytesIO(zip_bytes))
    path = tmp_path / member
    path.write_bytes(zf.read(member))
    return path, zf.namelist()


def _same_rows(tpch_db, csv_path, day: date) -> tuple[int, int, int]:
    """(rows in the file, file rows not in the oracle, oracle rows not in the file), every column compared."""
    cols = ", ".join(contracts.load("sales").column_names)
    tpch_db.execute(f"CREATE OR REPLACE TEMP VIEW day_file AS SELECT {cols} FROM read_csv('{csv_path}', header=true)")
    oracle = f"SELECT {cols} FROM src_sales WHERE o_orderdate = DATE '{day}'"
    return tpch_db.execute(f"""SELECT (SELECT count(*) FROM day_file),
        (SELECT count(*) FROM (SELECT * FROM day_file EXCEPT ALL {oracle})),
        (SELECT count(*) FROM ({oracle} EXCEPT ALL SELECT * FROM day_file))""").fetchone()


def test_replay_writes_one_zip_and_manifest_per_day(buckets, aws_client, tpch_db, tpch_cache, tmp_path):
    s3 = aws_client("s3")
    sales = contracts.load("sales")
    manifests = source.replay(sales, DAYS[0], DAYS[-1], bucket=buckets["bronze"], s3=s3, scale=SALES_SCALE)
    assert sorted(list_keys(s3, buckets["bronze"])) == [
        "sales/ingest_date=1995-03-01/sales_19950301.csv.zip",
        "sales/ingest_date=1995-03-01/sales_19950301.manifest.json",
        "sales/ingest_date=1995-03-02/sales_19950302.csv.zip",
        "sales/ingest_date=1995-03-02/sales_19950302.manifest.json",
    ]
    for manifest, day in zip(manifests, DAYS):
        ymd = day.strftime("%Y%m%d")
        key = f"sales/ingest_date={day}/sales_{ymd}.csv.zip"
        stored = json.loads(s3.get_object(Bucket=buckets["bronze"],
                                          Key=key.replace(".csv.zip", ".manifest.json"))["Body"].read())
        assert stored == manifest
        data = s3.get_object(Bucket=buckets["bronze"], Key=key)["Body"].read()
        csv_path, members = _day_csv(tmp_path, data, f"sales_{ymd}.csv")
        assert members == [f"sales_{ymd}.csv"]
        expected = tpch_db.execute(f"SELECT count(*) FROM src_sales WHERE o_orderdate = DATE '{day}'").fetchone()[0]
        assert expected > 0
        assert manifest["rows"] == expected and manifest["ingest_date"] == day.isoformat()
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and manifest["bytes"] == len(data)
        assert manifest["exported_at"] == f"1995-03-{day.day + 1:02d}T02:00:00Z"
        assert manifest["file"] == f"sales_{ymd}.csv.zip" and manifest["member"] == f"sales_{ymd}.csv"
        assert f"scale {SALES_SCALE:g}" in manifest["source"]
        header = csv_path.read_text().split("\n", 1)[0].split(",")
        assert header == sales.column_names
        # Every row of the day's orders, every column, and nothing else.
        assert _same_rows(tpch_db, csv_path, day) == (expected, 0, 0)


def test_the_export_passes_the_extractor(tpch_db, tpch_cache, tmp_path, handler_mod):
    """Every line of a day is loaded: the contract's types and TPC-H bounds fit the real data."""
    sales = contracts.load("sales")
    for day_file in source.iter_day_files(sales, DAYS[0], DAYS[-1], scale=SALES_SCALE):
        zip_path = tmp_path / "day.zip"
        zip_path.write_bytes(day_file.zip_bytes)
        result = handler_mod.extract_file(zip_path, sales, day_file.day, tmp_path / "s.parquet", tmp_path / "q.parquet")
        assert (result.rows_read, result.rows_written, result.rows_rejected) == (day_file.rows, day_file.rows, 0)
        silver = pq.read_table(tmp_path / "s.parquet")
        assert silver.column_names == sales.column_names
        sums = tpch_db.execute(f"SELECT sum(l_quantity), sum(l_extendedprice), count(DISTINCT o_orderkey) "
                            f"FROM src_sales WHERE o_orderdate = DATE '{day_file.day}'").fetchone()
        got = (sum(silver["l_quantity"].to_pylist()), sum(silver["l_extendedprice"].to_pylist()),
               len(set(silver["o_orderkey"].to_pylist())))
        assert got[0] == pytest.approx(sums[0]) and got[1] == pytest.approx(sums[1], rel=1e-12) and got[2] == sums[2]


def test_replay_is_reproducible(tpch_cache):
    sales = contracts.load("sales")
    a = list(source.iter_day_files(sales, DAYS[0], DAYS[0], scale=SALES_SCALE))
    b = list(source.iter_day_files(sales, DAYS[0], DAYS[0], scale=SALES_SCALE))
    assert a[0].zip_bytes == b[0].zip_bytes and a[0].manifest == b[0].manifest


def test_a_day_without_orders_is_an_empty_file_and_outside_the_window_an_error(tpch_db, tpch_cache, tmp_path,
                                                                              handler_mod):
    sales = contracts.load("sales")
    empty = tpch_db.execute("""SELECT min(d)::DATE FROM range(DATE '1992-01-01', DATE '1998-08-03', INTERVAL 1 DAY) t(d)
                            WHERE d::DATE NOT IN (SELECT o_orderdate FROM orders)""").fetchone()[0]
    assert empty is not None  # at scale 0.01, 15,000 orders leave a few of the 2,406 days without one
    (day_file,) = source.iter_day_files(sales, empty, empty, scale=SALES_SCALE)
    assert day_file.rows == 0
    zip_path = tmp_path / "empty.zip"
    zip_path.write_bytes(day_file.zip_bytes)
    result = handler_mod.extract_file(zip_path, sales, empty, tmp_path / "s.parquet", tmp_path / "q.parquet")
    assert (result.rows_read, result.rows_written) == (0, 0)  # the contract allows an empty day
    for day in (date(1991, 12, 31), date(1998, 8, 3)):
        with pytest.raises(ValueError, match=f"no rows for {day}"):
            list(source.iter_day_files(sales, day, day, scale=SALES_SCALE))
    with pytest.raises(ValueError, match="cannot be shifted"):
        list(source.iter_day_files(sales, DAYS[0], DAYS[0], shift_to=date(2024, 1, 1), scale=SALES_SCALE))


def test_contracts_hold_over_the_whole_generated_data(tpch_db):
    """Every TPC-H row meets its contract: the columns are tpchgen-cli's, required columns are never
    null, numbers lie within min/max, the gold code and date rules hold (the spec's clause 4.2.3)."""
    all_ = contracts.load_all()
    tables = {name: name for name in SALES_DIMENSIONS}
    tables["sales"] = "src_sales"
    for name, view in tables.items():
        contract = all_[name]
        have = [r[0] for r in tpch_db.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()]
        assert set(contract.column_names) <= set(have), name
        if name != "sales":
            assert have == contract.column_names  # the dimension is the whole TPC-H table
        for col in contract.columns:
            checks = [f"{col.name} IS NULL"] if col.required else []
            if col.min is not None:
                checks.append(f"{col.name} < {col.min}")
            if col.max is not None:
                checks.append(f"{col.name} > {col.max}")
            if checks:
                bad = tpch_db.execute(f"SELECT count(*) FROM {view} WHERE {' OR '.join(checks)}").fetchone()[0]
                assert bad == 0, f"{name}.{col.name}: {bad} rows break {checks}"
    sales = all_["sales"]
    for col, values in sales.gold["allowed_values"].items():
        seen = {r[0] for r in tpch_db.execute(f"SELECT DISTINCT {col} FROM src_sales").fetchall()}
        assert seen == set(values), col
    for col, bounds in sales.gold["date_bounds"].items():
        low, high = tpch_db.execute(f"SELECT min({col}), max({col}) FROM src_sales").fetchone()
        assert date.fromisoformat(bounds["min"]) <= low and high <= date.fromisoformat(bounds["max"]), col
    assert {d.dataset for d in sales.dimensions} == set(SALES_DIMENSIONS)


def test_load_dimensions_for_sales_by_the_cli(buckets, aws_client, localaws, tpch_db, tpch_cache, capsys):
    rc = cli.main(["source", "load-dimensions", "--dataset", "sales", "--scale", str(SALES_SCALE),
                   "--bucket", buckets["silver"], "--endpoint-url", localaws.endpoint_url])
    assert rc == 0
    s3 = aws_client("s3")
    assert sorted(list_keys(s3, buckets["silver"])) == sorted(f"reference/{n}/{n}.parquet" for n in SALES_DIMENSIONS)
    printed = capsys.readouterr().out
    for name in SALES_DIMENSIONS:
        contract = contracts.load(name)
        body = s3.get_object(Bucket=buckets["silver"], Key=f"reference/{name}/{name}.parquet")["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        assert table.column_names == contract.column_names
        assert [str(t) for t in table.schema.types] == [
            {"int64": "int64", "int32": "int32", "float64": "double", "string": "string"}[c.type]
            for c in contract.columns]
        expected = tpch_db.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
        assert table.num_rows == expected and f"{name}: {expected} rows" in printed
        # The same rows as tpchgen-cli's CSV, every column.
        tpch_db.register("loaded", table)
        assert tpch_db.execute(f"SELECT count(*) FROM (SELECT * FROM loaded EXCEPT ALL SELECT * FROM {name})"
                               ).fetchall() == [(0,)]
        tpch_db.unregister("loaded")


def test_cli_replay_sales(buckets, aws_client, localaws, tpch_db, tpch_cache, capsys):
    rc = cli.main(["source", "replay", "--dataset", "sales", "--start", "1995-03-07", "--end", "1995-03-07",
                   "--scale", str(SALES_SCALE), "--bucket", buckets["bronze"], "--endpoint-url",
                   localaws.endpoint_url, "--json", "--quiet"])
    assert rc == 0
    (manifest,) = json.loads(capsys.readouterr().out)
    assert manifest["rows"] == tpch_db.execute(
        "SELECT count(*) FROM src_sales WHERE o_orderdate = DATE '1995-03-07'").fetchone()[0]
    assert list_keys(aws_client("s3"), buckets["bronze"], "sales/ingest_date=1995-03-07/")
    rc = cli.main(["source", "replay", "--dataset", "sales", "--start", "1998-08-03", "--end", "1998-08-03",
                   "--scale", str(SALES_SCALE), "--bucket", buckets["bronze"], "--endpoint-url",
                   localaws.endpoint_url, "--quiet"])
    assert rc == 2 and "no rows for 1998-08-03" in capsys.readouterr().err


def test_via_dimensions_are_checked(tmp_path):
    """nation is reached via customer/supplier, region via nation: their keys are those dimensions' columns."""
    src = contracts.default_directory()
    sales = contracts.load("sales")
    assert [(d.dataset, d.via) for d in sales.dimensions if d.via] == [
        ("nation", "customer"), ("nation", "supplier"), ("region", "nation")]
    doc = json.loads((src / "sales.json").read_text())
    bad = json.loads(json.dumps(doc))
    bad["dimensions"][-1]["enforce"] = True
    with pytest.raises(contracts.ContractError, match="cannot be enforced"):
        contracts.parse(bad)
    bad = json.loads(json.dumps(doc))
    bad["dimensions"] = bad["dimensions"][-1:]  # region via nation, nation not listed
    with pytest.raises(contracts.ContractError, match="via 'nation', which is not listed before it"):
        contracts.parse(bad)
    for name in ("sales",) + SALES_DIMENSIONS:
        (tmp_path / f"{name}.json").write_text((src / f"{name}.json").read_text())
    assert set(contracts.load_all(tmp_path)) == {"sales", *SALES_DIMENSIONS}
    doc["dimensions"][-1]["on"] = {"n_region": "r_regionkey"}
    (tmp_path / "sales.json").write_text(json.dumps(doc))
    with pytest.raises(contracts.ContractError, match="nation has no column 'n_region'"):
        contracts.load_all(tmp_path)
