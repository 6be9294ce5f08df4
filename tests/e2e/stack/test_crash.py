"""Crash: localaws is killed with SIGKILL in the middle of a backfill (twice: while a Glue job run
is RUNNING, then while an Athena query is), and restarted from its state directory on the same
port; then Airflow's scheduler exits (SIGTERM) and the demo's watch starts it again
(demo.keep_scheduler). localaws's own fault injection holds each step RUNNING until the kill (a lease
release of the Glue script, then every query of the lake's work group), so the kill never races a step
that lasts 0.1 s on an idle machine, and the test checks that the held runs and queries were the ones the
restart marked FAILED. The DAG's task retries finish every day; nothing localaws acknowledged before a kill
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

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import boto3
import pytest

from lake import settings
from lake.dev import demo
from tests.e2e.helpers import gold_against_source, stack_faults, task_retries

pytestmark = pytest.mark.timeout(2400)

START, END = date(2013, 8, 5), date(2013, 8, 6)
CANARY_BUCKET = "crash-canary"


def _client(stack, service: str):
    return boto3.client(service, endpoint_url=stack.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")


#: The longest a held call waits (seconds). The kill ends the hold long before: a held Glue run or
#: query stays RUNNING until localaws dies, so the kill cannot race a step that lasts 0.1 s on an
#: idle machine (issue 17: a 0.5 s poll for a RUNNING query missed them all). The restart clears
#: the fault config, so nothing is held after it.
HOLD_S = 900


def _hold(stack, kind: str) -> None:
    """Hold the lake's next step of ``kind`` RUNNING through localaws's own fault injection:
    ``glue``, every lease release (the Glue script's s3:DeleteObject, the last call of a run);
    ``athena``, every query of the lake's work group (``runs.athena``, held before it runs)."""
    if kind == "glue":
        config = {"rules": [{"operation": "s3:DeleteObject", "latency_ms": HOLD_S * 1000}]}
    else:
        config = {"runs": {"athena": {"latency_ms": HOLD_S * 1000, "workgroups": [settings.get().workgroup]}}}
    assert stack_faults(stack, "POST", config)["active"]


def _held(stack, kind: str) -> set[str]:
    """Ids of the Glue job runs / Athena queries RUNNING now while a step of ``kind`` is held
    (empty until one is): a held step cannot end before the kill."""
    s = settings.get()
    try:
        if kind == "glue":
            ops = stack_faults(stack, "GET")["counters"]["operations"]
            if not any(op.lower() == "s3:deleteobject" and c["delayed"] for op, c in ops.items()):
                return set()
            runs = _client(stack, "glue").get_job_runs(JobName=s.glue_job)["JobRuns"]
            return {r["Id"] for r in runs if r["JobRunState"] == "RUNNING"}
        athena = _client(stack, "athena")
        ids = athena.list_query_executions(WorkGroup=s.workgroup).get("QueryExecutionIds", [])[:50]
        if not ids:
            return set()
        return {q["QueryExecutionId"] for q in athena.batch_get_query_execution(QueryExecutionIds=ids)["QueryExecutions"]
                if q["Status"]["State"] == "RUNNING"}
    except Exception:  # noqa: BLE001 - localaws restarting or not provisioned yet
        return set()


def _failed_by_restart(stack, kind: str, ids: set[str]) -> set[str]:
    """Which of ``ids`` (Glue run / query ids) localaws marked FAILED with a reason naming its restart."""
    s = settings.get()
    if kind == "glue":
        runs = _client(stack, "glue").get_job_runs(JobName=s.glue_job)["JobRuns"]
        return {r["Id"] for r in runs if r["Id"] in ids and r["JobRunState"] == "FAILED"
                and "localaws restarted" in (r.get("ErrorMessage") or "")}
    queries = _client(stack, "athena").batch_get_query_execution(QueryExecutionIds=sorted(ids))["QueryExecutions"]
    return {q["QueryExecutionId"] for q in queries if q["Status"]["State"] == "FAILED"
            and "localaws restarted" in q["Status"].get("StateChangeReason", "")}


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


def _scheduler_pid(stack) -> int:
    """The pid of the ``airflow scheduler`` that ``airflow standalone`` (the stack's process) started."""
    parent = stack.started["airflow"]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == parent and b"scheduler" in argv:
            return int(entry.name)
    raise AssertionError(f"no airflow scheduler process under airflow standalone (pid {parent})")


def test_sigkill_of_localaws_mid_backfill(stack, duck):
    os.environ["LAKE_RETRY_DELAY"] = "5"  # seconds, doubling per retry (the stack fixture restores the env)
    os.environ["LAKE_RETRIES"] = "4"
    outcome: dict = {}
    started = time.monotonic()

    def before_airflow() -> None:
        _client(stack, "s3").create_bucket(Bucket=CANARY_BUCKET)
        _hold(stack, "glue")

    def pipeline() -> None:
        try:
            outcome["states"] = demo.run_pipeline(
                stack, START, END, before_airflow=before_airflow,
                backfill_timeout_s=2000)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=pipeline, name="backfill", daemon=True)
    thread.start()
    kills = []
    for round_no, kind in enumerate(("glue", "athena"), start=1):
        if kind == "athena":  # the Glue hold is set before Airflow starts (run_pipeline's before_airflow)
            _hold(stack, kind)
        deadline = time.monotonic() + 1200
        while not (held := _held(stack, kind)):
            assert thread.is_alive(), f"the backfill ended before a {kind} step could be interrupted: {outcome}"
            assert time.monotonic() < deadline, f"no {kind} step held RUNNING"
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
        interrupted = _failed_by_restart(stack, kind, held)
        if kind == "athena":  # every lake query was held: none could finish before the kill
            assert interrupted == held, f"queries RUNNING at the kill not FAILED by the restart: {held - interrupted}"
        else:  # the held run could not finish; another day's run might have, in the second before the kill
            assert interrupted, f"none of the Glue runs RUNNING at the kill {held} was FAILED by the restart"
        log = (stack.home / "localaws.log").read_text()
        kills.append({"kind": kind, "interrupted": len(interrupted), "canary_acked": len(canary),
                      "restart_s": round(restart_s, 1),
                      "bronze_versions": len(before["bronze"]), "glue_runs": len(before["glue_runs"]),
                      "queries": len(before["queries"])})
        print(f"kill {round_no} during {kind}: {len(interrupted)} {kind} steps interrupted and FAILED by the restart; "
              f"{len(canary)} canary PUTs acknowledged, all restored; "
              f"{len(before['bronze'])} bronze versions, {len(before['glue_runs'])} Glue runs, "
              f"{len(before['queries'])} queries known before and after; localaws down {restart_s:.1f} s "
              "(3 s pause + restart)")
    assert "were in progress at the last snapshot; marked FAILED" in log
    # Then the scheduler exits (SIGTERM: its job ends, as after an exception in its loop). airflow standalone
    # does not restart it; the demo's backfill wait starts `airflow scheduler` again (demo.keep_scheduler).
    os.kill(_scheduler_pid(stack), signal.SIGTERM)
    thread.join(timeout=2000)
    assert stack.scheduler_restarts == 1, "the scheduler that exited was not started again"
    assert (stack.home / "scheduler.log").exists()
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
          f"rows lost {lost}, duplicated {duplicated}; scheduler restarted {stack.scheduler_restarts}; "
          f"kills {kills}")
    assert retries, "no task was retried: the kills did not interrupt anything"
    assert lost == 0 and duplicated == 0
