"""Glue job runs: a run really runs the job's script, in a child process.

A run of a ``glueetl`` job runs the script from ``Command.ScriptLocation`` under local PySpark 3.5
(Glue 5.0's Spark line) in a subprocess; a ``pythonshell`` job runs it under plain Python. The
subprocess sees the local ``awsglue`` compatibility package (``compat/``, next to this module)
and an S3 bridge that stages s3:// reads and writes through a local directory. The API patches
(StartJobRun, UpdateJob, BatchStopJobRun) are in :mod:`localaws.services.glue_jobs.responses`.

Arguments are passed as Glue passes them: ``--JOB_ID``, ``--JOB_RUN_ID``, ``--JOB_NAME`` and the
job's ``DefaultArguments`` merged with the run's ``Arguments`` (then ``NonOverridableArguments``).

States: STARTING -> RUNNING -> SUCCEEDED | FAILED | TIMEOUT | STOPPED (via STOPPING). A failed
run's ``ErrorMessage`` is the last line of the script's exception ("ValueError: ..."). ``Timeout``
is in minutes (one minute = ``Runtime.glue_minute_seconds`` seconds). ``MaxRetries`` starts new
attempts named ``<run id>_attempt_<n>``, as AWS does. Driver stdout goes to CloudWatch Logs
``/aws-glue/jobs/output`` and stderr to ``/aws-glue/jobs/error``, stream name = JobRunId.

Fault injection (``runs.glue`` in the fault config, see :mod:`localaws.faults`) can end a run
FAILED (``ErrorMessage`` "localaws injected fault: ...") or TIMEOUT as soon as it starts.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from moto.glue import models as glue_models
from moto.glue.exceptions import EntityNotFoundException
from moto.logs.models import logs_backends

from localaws import faults
from localaws.runtime import CHILD_CREDENTIALS, RUNTIME, log
from localaws.services import s3memory
from localaws.services.glue_jobs import pool

GLUE_COMPAT = Path(__file__).resolve().parent / "compat"
RUNNER = GLUE_COMPAT / "localaws_glue_runner.py"
LOG_GROUP = "/aws-glue/jobs"
OUTPUT_GROUP = "/aws-glue/jobs/output"
ERROR_GROUP = "/aws-glue/jobs/error"
ACTIVE_STATES = ("STARTING", "RUNNING", "STOPPING", "WAITING")
#: Glue's default job Timeout, minutes (https://docs.aws.amazon.com/glue/latest/dg/add-job.html).
DEFAULT_TIMEOUT_MINUTES = 2880


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LocalJobRun:
    """A Glue job run whose state is driven by a real process.

    Shapes follow ``GetJobRun`` (https://docs.aws.amazon.com/glue/latest/webapi/API_JobRun.html).
    ``execution_time`` is in seconds, ``timeout`` in minutes.
    """

    def __init__(self, job: glue_models.FakeJob, run_id: str, arguments: dict[str, str], *,
                 attempt: int = 0, previous_run_id: str | None = None, timeout: int | None = None,
                 worker_type: str | None = None, number_of_workers: int | None = None,
                 max_capacity: float | None = None) -> None:
        self.job_name = job.name
        self.job_run_id = run_id
        self.previous_run_id = previous_run_id
        self.arguments = arguments
        self.attempt = attempt
        self.timeout = timeout or job.timeout or DEFAULT_TIMEOUT_MINUTES
        self.worker_type = worker_type or job.worker_type
        self.number_of_workers = number_of_workers or job.number_of_workers
        self.max_capacity = max_capacity or job.max_capacity
        self.glue_version = job.glue_version or "5.0"
        self.state = "STARTING"
        self.started_on = _now()
        self.modified_on = self.started_on
        self.completed_on: datetime | None = None
        self.execution_time = 0
        self.error_message: str | None = None
        self.stop_requested = False
        self._proc: subprocess.Popen | None = None

    # moto's FakeJob calls these.
    @property
    def status(self) -> str:
        return self.state

    def advance(self) -> None:
        """State is driven by the executor thread; nothing to do on read."""

    def get_name(self) -> str:
        return self.job_name

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_proc"] = None
        return state

    def set_state(self, state: str, error: str | None = None) -> None:
        self.state = state
        self.modified_on = _now()
        if error is not None:
            self.error_message = error
        if state in ("SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"):
            self.completed_on = self.modified_on
            self.execution_time = int(round((self.completed_on - self.started_on).total_seconds()))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": self.job_run_id,
            "Attempt": self.attempt,
            "JobName": self.job_name,
            "JobMode": "SCRIPT",
            "StartedOn": self.started_on,
            "LastModifiedOn": self.modified_on,
            "JobRunState": self.state,
            "Arguments": self.arguments,
            "PredecessorRuns": [],
            "ExecutionTime": self.execution_time
            if self.completed_on
            else int((_now() - self.started_on).total_seconds()),
            "Timeout": self.timeout,
            "LogGroupName": LOG_GROUP,
            "GlueVersion": self.glue_version,
        }
        if self.completed_on:
            out["CompletedOn"] = self.completed_on
        if self.error_message:
            out["ErrorMessage"] = self.error_message
        if self.previous_run_id:
            out["PreviousRunId"] = self.previous_run_id
        if self.worker_type:
            out["WorkerType"] = self.worker_type
        if self.number_of_workers:
            out["NumberOfWorkers"] = self.number_of_workers
        if self.max_capacity:
            out["MaxCapacity"] = self.max_capacity
        return out


def read_s3_object(account_id: str, url: str) -> bytes:
    """Read ``s3://bucket/key`` from moto's in-memory S3 (never over HTTP inside the server).

    :raises EntityNotFoundException: when the URL is not s3:// or the bucket or key does not exist.
    """
    try:
        bucket, key = s3memory.split_url(url)
        return s3memory.read_object(account_id, bucket, key)
    except (s3memory.S3PathError, KeyError) as exc:
        raise EntityNotFoundException(f"script {url} not found: {exc}") from exc


def _terminate(run: LocalJobRun) -> None:
    proc = run._proc
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    def _hard_kill() -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    threading.Timer(10, _hard_kill).start()


class _LogPump(threading.Thread):
    """Copies a child's stream (or an iterable of its lines, as ``bytes``) to a CloudWatch Logs
    stream, flushing about once a second."""

    def __init__(self, stream: IO[bytes] | Iterable[bytes], account_id: str, region: str, group: str, name: str) -> None:
        super().__init__(daemon=True, name=f"glue-log-{group}")
        self.stream = stream
        self.logs = logs_backends[account_id][region]
        self.group = group
        self.name_ = name
        self.tail: list[str] = []
        self.logs.ensure_log_group(group)
        try:
            self.logs.create_log_stream(group, name)
        except Exception:  # noqa: BLE001 - stream exists already (a retry of the same id)
            pass

    def run(self) -> None:
        batch: list[dict[str, Any]] = []
        last = time.monotonic()
        lines = iter(self.stream.readline, b"") if hasattr(self.stream, "readline") else self.stream
        for raw in lines:
            if raw == pool.RUN_STARTS:  # a pooled driver's warm-up ends (see pool.py)
                self.tail = []
                continue
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.tail = (self.tail + [line])[-200:]
            batch.append({"timestamp": int(time.time() * 1000), "message": line or " "})
            if time.monotonic() - last > 1.0 or len(batch) >= 500:
                self._flush(batch)
                batch, last = [], time.monotonic()
        self._flush(batch)

    def _flush(self, batch: list[dict[str, Any]]) -> None:
        if batch:
            self.logs.put_log_events(self.group, self.name_, batch)


def driver_env(run_dir: Path, kind: str) -> dict[str, str]:
    """The environment of a run's process that does not depend on the run: interpreter, paths and,
    for ``glueetl``, the Spark settings read at JVM start (``PYSPARK_SUBMIT_ARGS``). A pooled
    driver starts with exactly this (its directory is its run's ``run_dir``).

    Spark settings, for a 2-core local driver (docs/localaws.md, "Glue job runs: pre-started
    drivers"): ``local[Runtime.spark_cores]``, ``Runtime.spark_driver_memory``, no UI, UTC
    session time zone, 4 shuffle partitions (two tasks per core instead of Spark's 200) with
    adaptive query execution on (Spark 3.5's default, stated so it stays so) to coalesce small
    shuffle partitions further; the driver's JVM options are ``Runtime.glue_jvm_options``
    (``LOCALAWS_GLUE_JVM_OPTIONS``) after its ``java.io.tmpdir``.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", str(run_dir)),
        "PYTHONPATH": str(GLUE_COMPAT),
        "PYTHONUNBUFFERED": "1",
        "LOCALAWS_JOB_KIND": kind,
    }
    for key in ("JAVA_HOME", "TZ", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    if kind == "glueetl":
        env["PYSPARK_PYTHON"] = sys.executable
        env["PYSPARK_DRIVER_PYTHON"] = sys.executable
        env["SPARK_LOCAL_DIRS"] = str(run_dir / "spark-local")
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
        env["PYSPARK_SUBMIT_ARGS"] = " ".join(
            [
                f"--master local[{RUNTIME.spark_cores}]",
                f"--driver-memory {RUNTIME.spark_driver_memory}",
                "--conf spark.ui.enabled=false",
                "--conf spark.ui.showConsoleProgress=false",
                "--conf spark.sql.session.timeZone=UTC",
                # Local runs are small; Spark's default of 200 shuffle partitions only adds overhead.
                "--conf spark.sql.shuffle.partitions=4",
                "--conf spark.sql.adaptive.enabled=true",
                "--conf " + shlex.quote("spark.driver.extraJavaOptions=" + " ".join(
                    [f"-Djava.io.tmpdir={run_dir / 'java-tmp'}", *shlex.split(RUNTIME.glue_jvm_options)])),
                "pyspark-shell",
            ]
        )
    return env


def _child_env(job: glue_models.FakeJob, run: LocalJobRun, run_dir: Path, kind: str) -> dict[str, str]:
    """:func:`driver_env` plus what belongs to the run: region, endpoint, credentials, staging dir
    and result file."""
    region = job.backend.region_name
    return {
        **driver_env(run_dir, kind),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": RUNTIME.endpoint_url,
        "LOCALAWS_STAGING_DIR": str(run_dir / "staging"),
        "LOCALAWS_RESULT_FILE": str(run_dir / "result.json"),
        **CHILD_CREDENTIALS,
    }


def _execute(job: glue_models.FakeJob, run: LocalJobRun) -> None:
    """Run one job run to completion and set its final state (runs on its own thread)."""
    account_id, region = job.backend.account_id, job.backend.region_name
    run_dir = RUNTIME.work_dir / "glue" / run.job_run_id
    started = time.monotonic()
    driver: pool.PooledDriver | None = None
    try:
        fault = faults.run_fault("glue", job.name)
        if fault is not None:
            _inject_fault(job, run, fault)
            return
        command = job.command or {}
        kind = command.get("Name", "glueetl")
        if kind not in ("glueetl", "pythonshell"):
            run.set_state("FAILED", f"NotImplementedError: localaws runs glueetl and pythonshell jobs, not {kind}")
            return
        script = read_s3_object(account_id, command.get("ScriptLocation", ""))
        if kind == "glueetl" and not run.stop_requested:
            driver = pool.POOL.take(run.arguments)
            if driver is not None:
                run_dir = driver.dir  # its JVM's tmp and local dirs are there already
        (run_dir / "staging").mkdir(parents=True, exist_ok=True)
        (run_dir / "java-tmp").mkdir(parents=True, exist_ok=True)
        script_path = run_dir / Path(command["ScriptLocation"]).name
        script_path.write_bytes(script)
        argv = ["--JOB_ID", f"j_{job.name}", "--JOB_RUN_ID", run.job_run_id, "--JOB_NAME", job.name]
        for key, value in run.arguments.items():
            argv += [key if key.startswith("--") else f"--{key}", str(value)]
        if run.stop_requested:
            return
        env = _child_env(job, run, run_dir, kind)
        if driver is not None:
            proc = driver.proc
            driver.hand_over([str(script_path), *argv], {k: v for k, v in env.items() if driver.env.get(k) != v})
            out, err = driver.stdout, driver.stderr
        else:
            proc = subprocess.Popen(
                [sys.executable, "-u", str(RUNNER), str(script_path), *argv],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(run_dir),
                start_new_session=True,
            )
            out, err = proc.stdout, proc.stderr
        run._proc = proc
        run.set_state("RUNNING")
        pumps = [
            _LogPump(out, account_id, region, OUTPUT_GROUP, run.job_run_id),
            _LogPump(err, account_id, region, ERROR_GROUP, run.job_run_id),
        ]
        for pump in pumps:
            pump.start()
        timed_out = threading.Event()

        def _on_timeout() -> None:
            timed_out.set()
            _terminate(run)

        timer = threading.Timer(run.timeout * RUNTIME.glue_minute_seconds, _on_timeout)
        timer.start()
        try:
            code = proc.wait()
        finally:
            timer.cancel()
        for pump in pumps:
            pump.join(timeout=30)
        if run.stop_requested:
            run.set_state("STOPPED")
        elif timed_out.is_set():
            run.set_state("TIMEOUT", f"Job run timed out: it ran longer than its Timeout of {run.timeout} minutes")
        elif code == 0:
            run.set_state("SUCCEEDED")
        else:
            run.set_state("FAILED", _error_message(run_dir, pumps[1].tail, code))
    except Exception as exc:  # noqa: BLE001 - any failure to launch is the run's failure
        log.exception("glue job %s run %s could not run", job.name, run.job_run_id)
        run.set_state("FAILED", f"{type(exc).__name__}: {exc}")
    finally:
        run._proc = None
        if driver is not None and driver.proc.poll() is None:
            driver.kill()  # taken but never handed a run (the script was missing, a stop came first)
        shutil.rmtree(run_dir, ignore_errors=True)
        log.info(
            "glue job %s run %s (attempt %d): %s in %.1f s%s%s",
            job.name,
            run.job_run_id,
            run.attempt,
            run.state,
            time.monotonic() - started,
            " (pre-started driver)" if driver is not None else "",
            f" - {run.error_message}" if run.error_message else "",
        )
        _maybe_retry(job, run)


def _inject_fault(job: glue_models.FakeJob, run: LocalJobRun, fault: str) -> None:
    """End ``run`` as an injected failure or timeout, without running the script."""
    run.set_state("RUNNING")
    if fault == "timeout":
        run.set_state("TIMEOUT", f"Job run timed out: it ran longer than its Timeout of {run.timeout} minutes "
                                 f"{faults.MARK}")
    else:
        run.set_state("FAILED", "localaws injected fault: the job run failed (runs.glue.fail_rate)")
    logs = logs_backends[job.backend.account_id][job.backend.region_name]
    logs.ensure_log_group(ERROR_GROUP)
    try:
        logs.create_log_stream(ERROR_GROUP, run.job_run_id)
    except Exception:  # noqa: BLE001 - stream exists already
        pass
    logs.put_log_events(ERROR_GROUP, run.job_run_id,
                        [{"timestamp": int(time.time() * 1000), "message": run.error_message or fault}])


def _error_message(run_dir: Path, stderr_tail: list[str], code: int) -> str:
    result = run_dir / "result.json"
    if result.exists():
        try:
            return json.loads(result.read_text())["error"]
        except (ValueError, KeyError):
            pass
    lines = [line for line in stderr_tail if line.strip()]
    return lines[-1].strip() if lines else f"the job's process exited with status {code}"


def _maybe_retry(job: glue_models.FakeJob, run: LocalJobRun) -> None:
    if run.state not in ("FAILED", "TIMEOUT") or RUNTIME.stopping.is_set():
        return
    if run.attempt >= int(job.max_retries or 0):
        return
    base_id = run.job_run_id.split("_attempt_")[0]
    retry = LocalJobRun(job, f"{base_id}_attempt_{run.attempt + 1}", run.arguments, attempt=run.attempt + 1,
                        previous_run_id=run.job_run_id, timeout=run.timeout, worker_type=run.worker_type,
                        number_of_workers=run.number_of_workers, max_capacity=run.max_capacity)
    job.job_runs.append(retry)
    RUNTIME.spawn(f"glue-{job.name}-{retry.job_run_id[:12]}", _execute, job, retry)
