"""flights_gold.py as a real Glue job on localaws for the blizzard day, checked against DuckDB over the CSV."""

from __future__ import annotations

import io
import time
from datetime import date

import pyarrow.parquet as pq
import pytest

from lake import contracts, source
from tests.helpers import BLIZZARD, GLUE_SCRIPT, list_keys, src_count
from tests.lake.helpers import extractor_event

pytestmark = pytest.mark.spark


def _run(glue, job: str, timeout_s: float = 240) -> dict:
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] in ("SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"):
            return run
        time.sleep(1)
    raise AssertionError(f"job run {run_id} still {run['JobRunState']} after {timeout_s} s")


def _gold(s3, bucket: str, table: str):
    keys = [k for k in list_keys(s3, bucket, f"gold/{table}/dt={BLIZZARD}/") if k.endswith(".parquet")]
    return keys, pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())) if keys else None


def test_glue_job_builds_gold_for_the_blizzard_day(buckets, aws_client, duck, handler_mod):
    s3, glue, logs = aws_client("s3"), aws_client("glue"), aws_client("logs")
    d = date.fromisoformat(BLIZZARD)
    source.replay(contracts.load("flights"), d, d, bucket=buckets["bronze"], s3=s3)
    handler_mod.handler(extractor_event(buckets, BLIZZARD))
    source.load_dimensions([contracts.load(n) for n in ("airlines", "airports")], bucket=buckets["silver"], s3=s3)
    # Another day's gold partition, which the run must leave alone.
    s3.put_object(Bucket=buckets["silver"], Key="gold/flights/dt=2013-02-07/part-0.parquet", Body=b"keep me")
    s3.put_object(Bucket=buckets["silver"], Key="scripts/flights_gold.py", Body=GLUE_SCRIPT.read_bytes())
    job = f"flights-gold-{buckets['silver']}"
    glue.create_job(
        Name=job, Role="r", GlueVersion="5.0", ExecutionProperty={"MaxConcurrentRuns": 4},
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{buckets['silver']}/scripts/flights_gold.py"},
        DefaultArguments={"--ds": BLIZZARD, "--silver_path": f"s3://{buckets['silver']}/silver/flights",
                          "--dimensions_path": f"s3://{buckets['silver']}/reference",
                          "--gold_path": f"s3://{buckets['silver']}/gold",
                          "--lease_path": f"s3://{buckets['silver']}/leases/{job}",
                          "--partition_name": "dt", "--gold_tables": "flights,carrier_daily"},
    )
    started = time.monotonic()
    run = _run(glue, job)
    first_seconds = time.monotonic() - started
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    out = logs.get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run["Id"])["events"]
    rows = src_count(duck, f"dt = '{BLIZZARD}'")
    assert any(f"wrote {rows} rows" in e["message"] for e in out)

    assert list_keys(s3, buckets["silver"], "leases/") == [], "the run did not release the day's lease"
    keys, flights = _gold(s3, buckets["silver"], "flights")
    assert len(keys) == 1 and flights.num_rows == rows
    assert sum(flights["is_cancelled"].to_pylist()) == src_count(duck, f"dt = '{BLIZZARD}' AND dep_time IS NULL")
    _, daily = _gold(s3, buckets["silver"], "carrier_daily")
    expected = duck.execute(f"""
        SELECT carrier, count(*), count(*) FILTER (WHERE dep_time IS NULL), count(*) FILTER (WHERE arr_delay < 15),
               count(*) FILTER (WHERE arr_delay < 15) / count(*), quantile_cont(arr_delay, 0.95)
        FROM src_flights WHERE dt = '{BLIZZARD}' GROUP BY carrier ORDER BY carrier""").fetchall()
    got = sorted((r["carrier"], r["flights"], r["cancelled"], r["on_time"], r["on_time_rate"], r["p95_arr_delay"])
                 for r in daily.to_pylist())
    assert [g[:4] for g in got] == [e[:4] for e in expected]
    for g, e in zip(got, expected):
        assert g[4] == pytest.approx(e[4]) and (g[5] == pytest.approx(e[5]) if e[5] is not None else g[5] is None)

    # A rerun of the day replaces its partitions: same rows, one file each, other days untouched.
    started = time.monotonic()
    run = _run(glue, job)
    second_seconds = time.monotonic() - started
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    keys, again = _gold(s3, buckets["silver"], "flights")
    assert len(keys) == 1 and again.num_rows == rows
    daily_keys, daily_again = _gold(s3, buckets["silver"], "carrier_daily")
    assert len(daily_keys) == 1 and daily_again.num_rows == len(expected)
    assert s3.get_object(Bucket=buckets["silver"], Key="gold/flights/dt=2013-02-07/part-0.parquet")["Body"].read() \
        == b"keep me"
    print(f"\nGlue job flights_gold on {BLIZZARD}: {first_seconds:.1f} s, rerun {second_seconds:.1f} s")
