"""The Glue job's per-day lease (include/glue_scripts/flights_gold.py ``acquire_lease`` /
``release_lease``) against localaws: real Glue job runs as holders, S3 conditional writes."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import GLUE_SCRIPT, import_path

DS = "2013-06-01"


@pytest.fixture(scope="module")
def gold_script():
    return import_path("flights_gold_script", GLUE_SCRIPT)


@pytest.fixture
def lease_env(aws_client):
    """A bucket for leases and a pythonshell job whose runs sleep (``--seconds``)."""
    s3, glue = aws_client("s3"), aws_client("glue")
    bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    script = b"import sys, time\ntime.sleep(float(sys.argv[sys.argv.index('--seconds') + 1]))\n"
    s3.put_object(Bucket=bucket, Key="sleep.py", Body=script)
    job = f"gold-{uuid.uuid4().hex[:8]}"
    glue.create_job(Name=job, Role="r", ExecutionProperty={"MaxConcurrentRuns": 10},
                    Command={"Name": "pythonshell", "ScriptLocation": f"s3://{bucket}/sleep.py"})
    return s3, glue, f"s3://{bucket}/leases/{job}", job, bucket


def _start(glue, job: str, seconds: float) -> str:
    return glue.start_job_run(JobName=job, Arguments={"--seconds": str(seconds)})["JobRunId"]


def _wait_state(glue, job: str, run_id: str, states: tuple[str, ...], timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"]
        if state in states:
            return state
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {state}")


def test_one_of_many_concurrent_runs_gets_the_day(gold_script, lease_env, aws_client):
    s3, glue, lease_path, job, bucket = lease_env
    runs = [_start(glue, job, 60) for _ in range(6)]
    for run in runs:
        _wait_state(glue, job, run, ("RUNNING",))
    start = threading.Barrier(len(runs))

    def take(run_id: str):
        client_s3, client_glue = aws_client("s3"), aws_client("glue")
        start.wait()
        try:
            return gold_script.acquire_lease(client_s3, client_glue, lease_path, DS, job, run_id)
        except gold_script.PartitionBusyError as exc:
            return exc

    with ThreadPoolExecutor(len(runs)) as pool:
        results = list(pool.map(take, runs))
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1, results
    holder = winners[0]["run_id"]
    for busy in (r for r in results if not isinstance(r, dict)):
        assert f"partition dt={DS} is being written by Glue run {holder} of job {job} (state RUNNING" in str(busy)
        assert "stopped before writing anything" in str(busy)
    stored = json.loads(s3.get_object(Bucket=bucket, Key=f"leases/{job}/dt={DS}.json")["Body"].read())
    assert stored["run_id"] == holder and stored["took_over"] is None
    # Another day is independent of this one.
    other = [r for r in runs if r != holder][0]
    assert gold_script.acquire_lease(s3, glue, lease_path, "2013-06-02", job, other)["run_id"] == other
    # Only the holder releases; then the day is free again.
    assert gold_script.release_lease(s3, lease_path, DS, other) is False
    assert gold_script.release_lease(s3, lease_path, DS, holder) is True
    assert gold_script.acquire_lease(s3, glue, lease_path, DS, job, other)["took_over"] is None
    glue.batch_stop_job_run(JobName=job, JobRunIds=runs)


def test_a_lease_left_by_a_finished_or_unknown_run_is_taken_over(gold_script, lease_env):
    s3, glue, lease_path, job, _ = lease_env
    dead = _start(glue, job, 0)
    assert _wait_state(glue, job, dead, ("SUCCEEDED", "FAILED")) == "SUCCEEDED"
    gold_script.acquire_lease(s3, glue, lease_path, DS, job, dead)  # ... and it never released it
    taker = _start(glue, job, 30)
    lease = gold_script.acquire_lease(s3, glue, lease_path, DS, job, taker)
    assert lease["run_id"] == taker and lease["took_over"] == dead
    # The same run asking again keeps it (a Glue retry of the script in the same run).
    assert gold_script.acquire_lease(s3, glue, lease_path, DS, job, taker)["run_id"] == taker
    # A holder Glue has never heard of (e.g. a deleted job's run) cannot be writing.
    gold_script.release_lease(s3, lease_path, DS, taker)
    gold_script.acquire_lease(s3, glue, lease_path, DS, job, "jr_gone")
    with pytest.raises(Exception) as exc:  # noqa: PT011 - the exact boto3 error class is dynamic
        glue.get_job_run(JobName=job, RunId="jr_gone")
    assert "EntityNotFound" in str(exc.value)
    assert gold_script.acquire_lease(s3, glue, lease_path, DS, job, taker)["took_over"] == "jr_gone"
    glue.batch_stop_job_run(JobName=job, JobRunIds=[taker])
