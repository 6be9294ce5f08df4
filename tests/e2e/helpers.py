"""Checks shared by the end-to-end tests."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC


def gold_against_source(stack, con, days: list[str]) -> tuple[int, int]:
    """Check each day's lake output on the stack's localaws against DuckDB straight over the source
    CSV (``con``: the ``duck`` fixture's connection, table ``src_flights``): one silver object,
    and gold ``flights`` rows = source rows without a null required column.

    :returns: (rows lost, rows duplicated) over all days, by the key (carrier, flight, origin,
        sched_dep_local); the per-day row count is asserted too.
    """
    import io

    import boto3
    import pyarrow.parquet as pq

    from lake import settings
    from tests.helpers import REQUIRED, list_keys

    s = settings.get()
    s3 = boto3.client("s3", endpoint_url=stack.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
    null_required = " OR ".join(f"{c} IS NULL" for c in REQUIRED)
    lost = duplicated = 0
    for ds in days:
        expected = con.execute(f"SELECT count(*) FILTER (WHERE NOT ({null_required})) FROM src_flights "
                                f"WHERE dt = '{ds}'").fetchone()[0]
        silver_keys = [k for k in list_keys(s3, s.silver_bucket, f"flights/dt={ds}/") if k.endswith(".parquet")]
        assert len(silver_keys) == 1, silver_keys
        gold = [pq.read_table(io.BytesIO(s3.get_object(Bucket=s.gold_bucket, Key=k)["Body"].read()))
                for k in list_keys(s3, s.gold_bucket, f"flights/dt={ds}/") if k.endswith(".parquet")]
        rows = [r for t in gold for r in t.select(["carrier", "flight", "origin", "sched_dep_local"]).to_pylist()]
        keys = {tuple(r.values()) for r in rows}
        lost += max(expected - len(keys), 0)
        duplicated += len(rows) - len(keys)
        assert len(rows) == expected, f"{ds}: gold has {len(rows)} rows, the source {expected}"
    return lost, duplicated


def task_retries(stack) -> list:
    """Task log files of the backfill's retried attempts (``attempt=N.log``, N > 1; trigger logs are
    not counted)."""
    import re

    logs = (stack.airflow_home / "logs").rglob("attempt=*.log")
    return sorted(p for p in logs if "backfill__" in str(p)
                  and (m := re.fullmatch(r"attempt=(\d+)\.log", p.name)) and m.group(1) != "1")


def day_alerts(s, ds: str) -> list[dict]:
    """SNS messages of day ``ds`` (subject ``lake <ds>: ...``) published on the in-process localaws."""
    from localaws.services.sns import published_messages

    return [m for m in published_messages(s.sns_topic) if (m["subject"] or "").startswith(f"lake {ds}: ")]


def run_day(run_dag, ds: str):
    """``dag.test()`` of flights_lake_daily for day ``ds`` (the ``run_dag`` fixture)."""
    from datetime import datetime

    from tests.helpers import REPO

    return run_dag(REPO / "dags" / "lake_daily.py", "flights_lake_daily",
                   logical_date=datetime.fromisoformat(ds).replace(tzinfo=UTC))


def task_instances(run) -> dict:
    """The finished DagRun's task instances by task id (``.state``, ``.try_number``)."""
    return {ti.task_id: ti for ti in run.get_task_instances()}


def stack_faults(stack, method: str, body: dict | None = None) -> dict:
    """``GET`` / ``POST`` (``body``: a fault config) / ``DELETE`` the fault injection of the stack's
    ``localaws serve`` (``/_localaws/faults``, docs/localaws.md); returns the JSON answer."""
    request = urllib.request.Request(f"{stack.endpoint_url}/_localaws/faults", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")
