"""Fixtures of the lake's tests: the extractor handler imported by path, fresh buckets on localaws.

The shared ones (``source_csv``, ``duck``, ``tpch_db``) are in tests/conftest.py, the constants and plain
helpers in tests/helpers.py and tests/lake/helpers.py.
"""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import HANDLER, import_path


@pytest.fixture(scope="session")
def handler_mod():
    return import_path("extractor_handler", HANDLER)


@pytest.fixture
def buckets(aws_client):
    """Fresh bronze and silver buckets on localaws: ``{"bronze": name, "silver": name}``."""
    s3 = aws_client("s3")
    names = {"bronze": f"bronze-{uuid.uuid4().hex[:10]}", "silver": f"silver-{uuid.uuid4().hex[:10]}"}
    for name in names.values():
        s3.create_bucket(Bucket=name)
    return names


# --- TPC-H (the sales dataset) ------------------------------------------------------------------


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
