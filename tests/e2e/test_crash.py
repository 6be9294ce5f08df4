"""Crash: localaws is killed with SIGKILL in the middle of a backfill (twice: while a Glue job run
is RUNNING, then while an Athena query is: localaws's fault injection holds each query of the lake's
work group RUNNING for a few seconds before the second kill, so the kill does not race a query
that lasts 0.1 s on an idle machine), and restarted from its state directory on
the same port. The DAG's task retries finish every day; nothing localaws acknowledged before a kill
is lost; gold rows per day equal the source with no duplicates. Prints the figures for
docs/reliability.md.

"Acknowledged" is checked strictly on what no pipeline task changes while it runs: objects the
test itself writes right up to the kill (a canary written in parallel, each PUT answered), the
bronze objects with all their versions, and the ids of the Glue job runs and Athena queries
started so far (each must still be known after the restart; the ones that were in flight are
FAILED with a reason naming the restart). The pipeline's own silver and gold are checked by the
end result against DuckDB straight over the source CSV.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import boto3
import pytest

from lake import settings
from lake.dev import demo
from tests.e2e.helpers import gold_against_source, task_retries

pytestmark = pytest.mark.timeout(2400)

START, END = date(2013, 8, 5), date(2013, 8, 9)
CANARY_BUCKET = "crash-canary"


def _client(stack, service: str):
    return boto3.client(service, endpoint_url=stack.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")


def _up(stack) -> bool:
    try:
        with urllib.request.urlopen(f"{stack.endpoint_url}/_localaws/health", timeout=2):  # noqa: S310 (loopback)
            return True
    except OSError:
        return False


def _in_flight(stack, kind: str) -> bool:
    """Whether a Glue job run (``glue``) or an Athena query / crawl (``athena``) is running now."""
    s = settings.get()
    try:
        if kind == "glue":
            runs = _client(stack, "glue").get_job_runs(JobName=s.glue_job)["JobRuns"]
            return any(r["JobRunState"] == "RUNNING" for r in runs)
        athena = _client(stack, "athena")
        ids = athena.list_query_executions(WorkGroup=s.workgroup).get("QueryExecutionIds", [])[:20]
        if ids and any(q["Status"]["State"] == "RUNNING" for q in
                       athena.batch_get_query_execution(QueryExecutionIds=ids)["QueryExecutions"]):
            return True
        crawlers = _client(stack, "glue").get_crawlers()["Crawlers"]
        return any(c["State"] == "RUNNING" for c in crawlers)
    except Exception:  # noqa: BLE001 - localaws restarting or not provisioned yet
        return False


#: How long each lake query stays RUNNING before the second kill (the restart clears the setting).
#: On an idle machine a DQ query lasts ~0.1 s, shorter than the 0.5 s poll: without the hold the
#: poll could miss every query of the backfill (issue 17).
ATHENA_HOLD_MS = 4000


def _hold_athena_queries(stack) -> None:
    """Make every query of the lake's work group stay RUNNING for ATHENA_HOLD_MS, through
    localaws's own fault injection (``runs.athena``), so the poll below sees one for sure."""
    body = json.dumps({"runs": {"athena": {"latency_ms": ATHENA_HOLD_MS,
                                           "workgroups": [settings.get().workgroup]}}}).encode()
    request = urllib.request.Request(f"{stack.endpoint_url}/_localaws/faults", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (loopback)
        assert json.load(resp)["active"]


def _acknowledged(stack) -> dict:
    """What localaws has answered for so far and the pipeline never changes (see the module doc)."""
    s = settings.get()
    s3, glue, athena = _client(stack, "s3"), _client(stack, "glue"), _client(stack, "athena")
    bronze = sorted((v["Key"], v["VersionId"], v["ETag"]) for page in
                    s3.get_paginator("list_object_versions").paginate(Bucket=s.bronze_bucket)
                    for v in page.get("Versions", []))
    runs = {r["Id"] for r in glue.get_job_runs(JobName=s.glue_job)["JobRuns"]}
    queries = {q for page in athena.get_paginator("list_query_executions").paginate(WorkGroup=s.workgroup)
               for q in page.get("QueryExecutionIds", [])}
    return {"bronze": bronze, "glue_runs": runs, "queries": queries}


def _kill_while_writing_canary(stack, round_no: int) -> tuple[dict[str, str], float]:
    """Write canary objects from 4 threads and SIGKILL localaws while they write; returns the
    objects whose PUT was answered (key -> ETag) and the time of the kill (``time.monotonic()``)."""
    s3 = _client(stack, "s3")
    acked: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        client = _client(stack, "s3")
        for i in range(10_000):
            if stop.is_set():
                return
            key = f"round={round_no}/w{worker}/{i:05d}"
            try:
                body = f"{key} {os.urandom(8).hex()}".encode()
                etag = client.put_object(Bucket=CANARY_BUCKET, Key=key, Body=body)["ETag"]
            except Exception:  # noqa: BLE001 - the server died under this PUT: not acknowledged
                return
            with lock:
                acked[key] = etag

    s3.head_bucket(Bucket=CANARY_BUCKET)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer, w) for w in range(4)]
        time.sleep(1.0)
        pid = stack.started["localaws"]
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        os.waitpid(pid, 0)
        stop.set()
        for f in futures:
            f.result()
    return acked, killed_at


def test_sigkill_of_localaws_mid_backfill(stack, duck):
    os.environ["LAKE_RETRY_DELAY"] = "5"  # seconds, doubling per retry (the stack fixture restores the env)
    os.environ["LAKE_RETRIES"] = "4"
    outcome: dict = {}
    started = time.monotonic()

    def pipeline() -> None:
        try:
            outcome["states"] = demo.run_pipeline(
                stack, START, END, before_airflow=lambda: _client(stack, "s3").create_bucket(Bucket=CANARY_BUCKET),
                backfill_timeout_s=2000)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=pipeline, name="backfill", daemon=True)
    thread.start()
    kills = []
    for round_no, kind in enumerate(("glue", "athena"), start=1):
        if kind == "athena":
            _hold_athena_queries(stack)
        deadline = time.monotonic() + 1200
        while not _in_flight(stack, kind):
            assert thread.is_alive(), f"the backfill ended before a {kind} step could be interrupted: {outcome}"
            assert time.monotonic() < deadline, f"no {kind} step seen running"
            time.sleep(0.5)
        before = _acknowledged(stack)
        canary, killed_at = _kill_while_writing_canary(stack, round_no)
        time.sleep(max(0.0, killed_at + 3 - time.monotonic()))  # tasks polling localaws fail meanwhile
        demo.start_localaws(stack)
        restart_s = time.monotonic() - killed_at
        after = _acknowledged(stack)
        s3 = _client(stack, "s3")
        restored = {o["Key"]: o["ETag"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=CANARY_BUCKET, Prefix=f"round={round_no}/") for o in page.get("Contents", [])}
        lost_canary = sorted(set(canary) - set(restored))
        assert not lost_canary, f"{len(lost_canary)} acknowledged canary objects lost, e.g. {lost_canary[:3]}"
        assert all(restored[k] == etag for k, etag in canary.items())
        assert set(before["bronze"]) <= set(after["bronze"]), "bronze objects or versions lost"
        assert before["glue_runs"] <= after["glue_runs"], "Glue job runs forgotten"
        assert before["queries"] <= after["queries"], "Athena queries forgotten"
        log = (stack.home / "localaws.log").read_text()
        kills.append({"kind": kind, "canary_acked": len(canary), "restart_s": round(restart_s, 1),
                      "bronze_versions": len(before["bronze"]), "glue_runs": len(before["glue_runs"]),
                      "queries": len(before["queries"])})
        print(f"kill {round_no} during {kind}: {len(canary)} canary PUTs acknowledged, all restored; "
              f"{len(before['bronze'])} bronze versions, {len(before['glue_runs'])} Glue runs, "
              f"{len(before['queries'])} queries known before and after; localaws down {restart_s:.1f} s "
              "(3 s pause + restart)")
    assert "were in progress at the last snapshot; marked FAILED" in log
    thread.join(timeout=2000)
    assert "error" not in outcome, outcome.get("error")
    states = outcome["states"]
    days = [(START + timedelta(days=i)).isoformat() for i in range((END - START).days + 1)]
    assert states == {ds: "success" for ds in days}, f"runs {states}; logs under {stack.airflow_home / 'logs'}"

    lost, duplicated = gold_against_source(stack, duck, days)
    s = settings.get()
    retries = task_retries(stack)
    glue_runs = _client(stack, "glue").get_job_runs(JobName=s.glue_job)["JobRuns"]
    failed_by_restart = [r["Id"] for r in glue_runs if "localaws restarted" in (r.get("ErrorMessage") or "")]
    output = _client(stack, "logs").filter_log_events(logGroupName="/aws-glue/jobs/output")["events"]
    takeovers = sum("took over the lease of run" in e["message"] for e in output)
    print(f"\ncrash backfill {START}..{END}: {len(days)} of {len(days)} runs succeeded in "
          f"{time.monotonic() - started:.0f} s; 2 SIGKILLs; task retries {len(retries)}; "
          f"Glue runs failed by the restart {len(failed_by_restart)}, their day leases taken over {takeovers}; "
          f"rows lost {lost}, duplicated {duplicated}; "
          f"kills {kills}")
    assert retries, "no task was retried: the kills did not interrupt anything"
    assert lost == 0 and duplicated == 0
