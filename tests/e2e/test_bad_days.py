"""Bad days through the real DAG (``dag.test()`` against localaws): a late file, a corrupt zip and
a duplicate delivery. Each ends either in a clean run or in a failed run whose SNS alert names the
task, the file and the problem, with the bronze object kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from datetime import date

import pyarrow.parquet as pq

from lake import contracts, source
from tests.e2e.helpers import day_alerts, run_day
from tests.helpers import REPO, list_keys

DAG_FILE = REPO / "dags" / "lake_daily.py"


def test_late_file_fails_the_sensor_and_alerts(lake, run_dag, fail_fast):
    s, _ = lake
    ds = "2013-04-01"  # nothing delivered
    run = run_day(run_dag, ds)
    assert run.state == "failed"
    alerts = day_alerts(s, ds)
    assert [a["subject"] for a in alerts] == [f"lake {ds}: wait_for_bronze FAILED"]
    assert "wait_for_bronze" in alerts[0]["message"] and ds in alerts[0]["message"]


def test_corrupt_zip_fails_extract_names_the_file_and_keeps_it(lake, run_dag, fail_fast):
    s, aws = lake
    s3 = aws("s3")
    ds = "2013-04-02"
    flights = contracts.load("flights")
    day = date.fromisoformat(ds)
    key = flights.source.prefix.replace("{date}", ds) + flights.source.file_name.replace("{yyyymmdd}", "20130402")
    garbage = b"PK\x03\x04 this is not a zip archive " * 100
    manifest = {"file": key.rsplit("/", 1)[-1], "rows": 900, "sha256": hashlib.sha256(garbage).hexdigest(),
                "bytes": len(garbage), "exported_at": f"{day}T06:00:00Z"}
    s3.put_object(Bucket=s.bronze_bucket, Key=key, Body=garbage)
    s3.put_object(Bucket=s.bronze_bucket, Key=key.replace(".csv.zip", ".manifest.json"),
                  Body=json.dumps(manifest).encode())
    run = run_day(run_dag, ds)
    assert run.state == "failed"
    alerts = day_alerts(s, ds)
    assert [a["subject"] for a in alerts] == [f"lake {ds}: extract FAILED"]
    assert f"s3://{s.bronze_bucket}/{key}" in alerts[0]["message"]
    assert s3.get_object(Bucket=s.bronze_bucket, Key=key)["Body"].read() == garbage  # kept, unchanged
    assert list_keys(s3, s.silver_bucket, f"flights/dt={ds}/") == []


def test_duplicate_delivery_leaves_one_copy(lake, run_dag, duck, monkeypatch):
    s, aws = lake
    s3 = aws("s3")
    ds = "2013-04-03"
    flights = contracts.load("flights")
    day = date.fromisoformat(ds)
    for _ in range(2):  # the same day delivered twice (bronze is versioned: two versions)
        source.replay(flights, day, day, bucket=s.bronze_bucket, s3=s3)
        assert run_day(run_dag, ds).state == "success"
    versions = s3.list_object_versions(Bucket=s.bronze_bucket, Prefix=f"flights/ingest_date={ds}/")["Versions"]
    assert len([v for v in versions if v["Key"].endswith(".zip")]) == 2
    rows = duck.execute(f"SELECT count(*) FROM src_flights WHERE dt = '{ds}'").fetchone()[0]
    silver = [k for k in list_keys(s3, s.silver_bucket, f"flights/dt={ds}/") if k.endswith(".parquet")]
    assert len(silver) == 1
    gold = [k for k in list_keys(s3, s.gold_bucket, f"flights/dt={ds}/") if k.endswith(".parquet")]
    got = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=s.gold_bucket, Key=k)["Body"].read())).num_rows
              for k in gold)
    assert got == rows
    summaries = [json.loads(m["message"]) for m in day_alerts(s, ds) if "FAILED" not in m["subject"]]
    assert [m["rows_read"] for m in summaries] == [rows, rows]
    assert os.environ.get("LAKE_RETRIES") is None  # this one runs with the real retry settings
