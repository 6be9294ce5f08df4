"""The Glue jobs API as localaws answers it: patches of moto's Glue job model and responses.

:func:`install` makes StartJobRun start a real run (:mod:`localaws.services.glue_jobs.models`),
enforcing ``MaxConcurrentRuns``, and adds UpdateJob and BatchStopJobRun (missing from moto);
the first CreateJob or StartJobRun of a ``glueetl`` job starts the pre-started driver pool
(:mod:`localaws.services.glue_jobs.pool`).
:func:`recover_after_restart` fails the runs a restart cut off.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from moto.glue.exceptions import ConcurrentRunsExceededException, InvalidInputException
from moto.moto_api._internal import mock_random

from localaws.runtime import RUNTIME
from localaws.services.glue_jobs import pool
from localaws.services.glue_jobs.models import ACTIVE_STATES, LocalJobRun, _execute, _now, _terminate

_orig_create_job = glue_models.GlueBackend.create_job


def _is_glueetl(command: dict[str, Any] | None) -> bool:
    return (command or {}).get("Name", "glueetl") == "glueetl"


def _create_job(self: glue_models.GlueBackend, name: str, *args: Any, **kwargs: Any) -> str:
    """CreateJob as moto does it; the first ``glueetl`` job starts the driver pool (:mod:`.pool`)."""
    result = _orig_create_job(self, name, *args, **kwargs)
    if _is_glueetl(self.jobs[name].command):
        pool.POOL.ensure_started()
    return result


def _start_job_run(self: glue_models.FakeJob, allocated_capacity=None, max_capacity=None, timeout=None,
                   worker_type=None, security_configuration=None, number_of_workers=None,
                   notification_property=None, previous_run_id=None, arguments=None) -> str:
    """Replacement for ``FakeJob.start_job_run``: enforce MaxConcurrentRuns and start the process."""
    max_runs = int((self.execution_property or {}).get("MaxConcurrentRuns", 1))
    running = [jr for jr in self.job_runs if jr.status in ACTIVE_STATES]
    if len(running) >= max_runs:
        raise ConcurrentRunsExceededException(
            f"Concurrent runs exceeded for {self.name}: {len(running)} running, MaxConcurrentRuns={max_runs}"
        )
    args = dict(self.default_arguments or {})
    args.update(arguments or {})
    args.update(self.non_overridable_arguments or {})
    run = LocalJobRun(
        self,
        f"jr_{mock_random.get_random_hex(64)}",
        args,
        previous_run_id=previous_run_id,
        timeout=timeout,
        worker_type=worker_type,
        number_of_workers=number_of_workers,
        max_capacity=max_capacity,
    )
    self.job_runs.append(run)
    if _is_glueetl(self.command):
        pool.POOL.ensure_started()
    RUNTIME.spawn(f"glue-{self.name}-{run.job_run_id[:12]}", _execute, self, run)
    return run.job_run_id


def _update_job(self: glue_models.GlueBackend, name: str, job_update: dict[str, Any]) -> str:
    """UpdateJob: overwrites the job definition with ``JobUpdate`` (AWS replaces it whole)."""
    job = self.get_job(name)
    if "Command" not in job_update or "Role" not in job_update:
        raise InvalidInputException("UpdateJob", "JobUpdate must include Role and Command")
    fields = {
        "Description": ("description", ""),
        "LogUri": ("log_uri", None),
        "Role": ("role", None),
        "ExecutionProperty": ("execution_property", {}),
        "Command": ("command", None),
        "DefaultArguments": ("default_arguments", {}),
        "NonOverridableArguments": ("non_overridable_arguments", None),
        "Connections": ("connections", None),
        "MaxRetries": ("max_retries", None),
        "AllocatedCapacity": ("allocated_capacity", None),
        "Timeout": ("timeout", None),
        "MaxCapacity": ("max_capacity", None),
        "WorkerType": ("worker_type", None),
        "NumberOfWorkers": ("number_of_workers", None),
        "SecurityConfiguration": ("security_configuration", None),
        "NotificationProperty": ("notification_property", None),
        "GlueVersion": ("glue_version", None),
        "CodeGenConfigurationNodes": ("code_gen_configuration_nodes", None),
        "ExecutionClass": ("execution_class", "STANDARD"),
        "SourceControlDetails": ("source_control_details", None),
    }
    for key, (attr, default) in fields.items():
        setattr(job, attr, job_update.get(key, default))
    job.execution_property = job.execution_property or {}
    job.default_arguments = job.default_arguments or {}
    job.last_modified_on = _now()
    return name


def _batch_stop_job_run(self: glue_models.GlueBackend, job_name: str, run_ids: list[str]) -> dict[str, Any]:
    ok, errors = [], []
    job = self.jobs.get(job_name)
    for run_id in run_ids:
        run = next((r for r in job.job_runs if r.job_run_id == run_id), None) if job else None
        if run is None:
            errors.append({"JobName": job_name, "JobRunId": run_id,
                           "ErrorDetail": {"ErrorCode": "EntityNotFoundException",
                                           "ErrorMessage": f"Job run {run_id} not found"}})
            continue
        if run.state not in ACTIVE_STATES:
            errors.append({"JobName": job_name, "JobRunId": run_id,
                           "ErrorDetail": {"ErrorCode": "InvalidInputException",
                                           "ErrorMessage": f"Job run {run_id} is already {run.state}"}})
            continue
        run.stop_requested = True
        run.set_state("STOPPING")
        _terminate(run)
        ok.append({"JobName": job_name, "JobRunId": run_id})
    return {"SuccessfulSubmissions": ok, "Errors": errors}


def _resp_update_job(self: glue_responses.GlueResponse) -> ActionResult:
    name = self._get_param("JobName")
    return ActionResult({"JobName": self.glue_backend.update_job(name, self._get_param("JobUpdate") or {})})


def _resp_batch_stop_job_run(self: glue_responses.GlueResponse) -> ActionResult:
    return ActionResult(
        self.glue_backend.batch_stop_job_run(self._get_param("JobName"), self._get_param("JobRunIds") or [])
    )


def install() -> None:
    """Patch moto's Glue models and responses (idempotent)."""
    glue_models.FakeJob.start_job_run = _start_job_run  # type: ignore[method-assign]
    glue_models.GlueBackend.create_job = _create_job  # type: ignore[method-assign]
    glue_models.GlueBackend.update_job = _update_job  # type: ignore[attr-defined]
    glue_models.GlueBackend.batch_stop_job_run = _batch_stop_job_run  # type: ignore[attr-defined]
    glue_responses.GlueResponse.update_job = _resp_update_job  # type: ignore[attr-defined]
    glue_responses.GlueResponse.batch_stop_job_run = _resp_batch_stop_job_run  # type: ignore[attr-defined]


def recover_after_restart() -> int:
    """Mark runs that were active when a snapshot was taken as FAILED; returns how many.

    Their processes died with the previous server, so they can never finish.
    """
    count = 0
    for account in glue_models.glue_backends.values():
        for backend in account.values():
            for job in backend.jobs.values():
                for run in job.job_runs:
                    if isinstance(run, LocalJobRun) and run.state in ACTIVE_STATES:
                        run.set_state("FAILED", "localaws restarted while this run was in progress")
                        count += 1
    return count
