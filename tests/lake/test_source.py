"""Source replay and dimension loading, against localaws S3, checked against DuckDB over the package CSV."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import date

import pyarrow.parquet as pq

from lake import cli, contracts, source
from tests.helpers import BLIZZARD, list_keys, src_count


def _csv_lines(s3, bucket, key, member):
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data, zipfile.ZipFile(io.BytesIO(data)).read(member).decode().splitlines()


def test_replay_writes_one_zip_and_manifest_per_day(buckets, aws_client, duck, source_csv):
    s3 = aws_client("s3")
    flights = contracts.load("flights")
    seen = []
    manifests = source.replay(flights, date(2013, 2, 7), date(2013, 2, 8), bucket=buckets["bronze"], s3=s3,
                              progress=lambda f: seen.append(f.day))
    assert seen == [date(2013, 2, 7), date(2013, 2, 8)]
    assert sorted(list_keys(s3, buckets["bronze"])) == [
        "flights/ingest_date=2013-02-07/flights_20130207.csv.zip",
        "flights/ingest_date=2013-02-07/flights_20130207.manifest.json",
        "flights/ingest_date=2013-02-08/flights_20130208.csv.zip",
        "flights/ingest_date=2013-02-08/flights_20130208.manifest.json",
    ]
    all_lines = source_csv.read_text().splitlines()
    for manifest, ds in zip(manifests, ["2013-02-07", BLIZZARD]):
        yyyymmdd = ds.replace("-", "")
        key = f"flights/ingest_date={ds}/flights_{yyyymmdd}.csv.zip"
        stored = json.loads(s3.get_object(Bucket=buckets["bronze"],
                                          Key=key.replace(".csv.zip", ".manifest.json"))["Body"].read())
        assert stored == manifest
        data, lines = _csv_lines(s3, buckets["bronze"], key, f"flights_{yyyymmdd}.csv")
        expected_rows = src_count(duck, f"dt = '{ds}'")
        assert manifest["rows"] == expected_rows == len(lines) - 1
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and manifest["bytes"] == len(data)
        assert lines[0] == all_lines[0]
        y, m, d = (int(x) for x in ds.split("-"))
        # Byte for byte the package's lines of that day, in the package's order.
        assert lines[1:] == [line for line in all_lines[1:] if line.startswith(f"{y},{m},{d},")]
        assert manifest["exported_at"] == f"{ds[:8]}{d + 1:02d}T02:00:00Z"
    assert src_count(duck, f"dt = '{BLIZZARD}' AND dep_time IS NULL") > 400  # the blizzard's cancellations


def test_replay_is_reproducible():
    flights = contracts.load("flights")
    a = list(source.iter_day_files(flights, date(2013, 1, 1), date(2013, 1, 1)))
    b = list(source.iter_day_files(flights, date(2013, 1, 1), date(2013, 1, 1)))
    assert a[0].zip_bytes == b[0].zip_bytes and a[0].manifest == b[0].manifest


def test_shift_moves_dates_and_keeps_local_clock(duck):
    """2013-03-09/10 (the spring DST change in New York) shifted to 2024-11-02/03 (the fall change)."""
    flights = contracts.load("flights")
    files = list(source.iter_day_files(flights, date(2013, 3, 9), date(2013, 3, 10), shift_to=date(2024, 11, 2)))
    assert [f.day for f in files] == [date(2024, 11, 2), date(2024, 11, 3)]
    assert files[1].key == "flights/ingest_date=2024-11-03/flights_20241103.csv.zip"
    assert files[1].rows == src_count(duck, "dt = '2013-03-10'")
    text = zipfile.ZipFile(io.BytesIO(files[1].zip_bytes)).read("flights_20241103.csv").decode()
    shifted = duck.execute(
        "SELECT count(*), count(DISTINCT (year, month, day)), min(year), min(month), min(day), "
        "count(*) FILTER (WHERE hour(timezone('America/New_York', time_hour)) <> hour) "
        "FROM read_csv(?, nullstr='NA', header=true)", [_tmp(text)]
    ).fetchone()
    assert shifted == (files[1].rows, 1, 2024, 11, 3, 0)
    # The same local hours as in the source; the UTC offset changed from -4 (EDT) to -5 (EST).
    src_hours = duck.execute("SELECT list(hour ORDER BY hour) FROM src_flights WHERE dt = '2013-03-10'").fetchone()[0]
    new_hours = duck.execute(
        "SELECT list(hour(timezone('America/New_York', time_hour)) ORDER BY 1) FROM read_csv(?, nullstr='NA')",
        [_tmp(text)]).fetchone()[0]
    assert sorted(new_hours) == sorted(src_hours)


def _tmp(text: str) -> str:
    import tempfile

    fh = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
    fh.write(text)
    fh.close()
    return fh.name


def test_load_dimensions(buckets, aws_client, duck):
    s3 = aws_client("s3")
    all_ = contracts.load_all()
    dims = [all_[name] for name in sorted({d.dataset for d in all_["flights"].dimensions})]
    out = source.load_dimensions(dims, bucket=buckets["silver"], s3=s3)
    assert {o["dataset"] for o in out} == {"airlines", "airports", "planes"}
    for item in out:
        name = item["dataset"]
        body = s3.get_object(Bucket=buckets["silver"], Key=f"reference/{name}/{name}.parquet")["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        assert table.num_rows == item["rows"] == duck.execute(f"SELECT count(*) FROM src_{name}").fetchone()[0]
    airports = pq.read_table(io.BytesIO(
        s3.get_object(Bucket=buckets["silver"], Key="reference/airports/airports.parquet")["Body"].read()))
    assert airports["tzone"].null_count == duck.execute("SELECT count(*) FROM src_airports WHERE tzone IS NULL").fetchone()[0]
    assert str(airports.schema.field("tz").type) == "int16"


def test_cli_replay_and_load_dimensions(buckets, aws_client, localaws, capsys, duck):
    rc = cli.main(["source", "replay", "--dataset", "flights", "--start", "2013-12-31", "--end", "2013-12-31",
                   "--shift-to", "2014-01-01", "--bucket", buckets["bronze"], "--endpoint-url", localaws.endpoint_url,
                   "--json", "--quiet"])
    assert rc == 0
    manifests = json.loads(capsys.readouterr().out)
    assert manifests[0]["ingest_date"] == "2014-01-01"
    assert manifests[0]["rows"] == src_count(duck, "dt = '2013-12-31'")
    assert list_keys(aws_client("s3"), buckets["bronze"], "flights/ingest_date=2014-01-01/")
    rc = cli.main(["source", "load-dimensions", "--dataset", "airlines", "--bucket", buckets["silver"],
                   "--endpoint-url", localaws.endpoint_url])
    assert rc == 0
    assert list_keys(aws_client("s3"), buckets["silver"]) == ["reference/airlines/airlines.parquet"]
    # A day outside the source is an error, reported without a traceback.
    rc = cli.main(["source", "replay", "--start", "2014-01-01", "--end", "2014-01-01", "--bucket", buckets["bronze"],
                   "--endpoint-url", localaws.endpoint_url, "--quiet"])
    assert rc == 2 and "no rows for 2014-01-01" in capsys.readouterr().err
