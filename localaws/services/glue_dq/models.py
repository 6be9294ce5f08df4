"""Glue Data Quality state (rulesets, evaluation runs, results) and how a run evaluates.

State lives on moto's Glue backend object (``dq_rulesets``, ``dq_runs``, ``dq_results``: dicts
by name or id), so it is snapshotted with the rest of Glue (localaws/persistence.py). A run is
evaluated on a background thread (``RUNTIME.spawn``): STARTING -> RUNNING -> SUCCEEDED, or FAILED
with ``ErrorString`` when the data source cannot be read. The table's data is read through the
mapping Athena queries use (:func:`localaws.services.athena.models.register_glue_table`), and
each ruleset is evaluated by :mod:`localaws.services.glue_dq.evaluation`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
from moto.glue import models as glue_models
from moto.moto_api._internal import mock_random

from localaws.runtime import RUNTIME, log
from localaws.services.athena.exceptions import AthenaQueryError
from localaws.services.athena.models import DUCKDB_THREADS, register_glue_table
from localaws.services.glue_dq import dqdl
from localaws.services.glue_dq.evaluation import PRIMARY, Evaluator

#: A run stays RUNNING at least this many seconds (tests raise it to watch the states).
MIN_RUN_SECONDS = 0.0
#: Runs still STARTING or RUNNING at the last snapshot are failed with this after a restart.
RESTART_ERROR = "localaws restarted while this evaluation run was in progress"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Ruleset:
    """One CreateDataQualityRuleset; ``ruleset`` is the DQDL text (re-parsed when evaluated)."""

    name: str
    ruleset: str
    description: str | None
    target_table: dict[str, str] | None
    created_on: datetime = field(default_factory=now)
    last_modified_on: datetime = field(default_factory=now)

    @property
    def rule_count(self) -> int:
        return len(dqdl.parse(self.ruleset))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": self.name, "Ruleset": self.ruleset, "CreatedOn": self.created_on,
                               "LastModifiedOn": self.last_modified_on}
        if self.description is not None:
            out["Description"] = self.description
        if self.target_table:
            out["TargetTable"] = self.target_table
        return out

    def summary(self) -> dict[str, Any]:
        out = self.as_dict()
        out.pop("Ruleset")
        out["RuleCount"] = self.rule_count
        return out


@dataclass
class EvaluationRun:
    """One StartDataQualityRulesetEvaluationRun; ``status`` is Glue's TaskStatusType."""

    run_id: str
    data_source: dict[str, Any]
    role: str
    ruleset_names: list[str]
    options: dict[str, Any]
    number_of_workers: int | None = None
    timeout: int | None = None
    status: str = "STARTING"
    error: str | None = None
    started_on: datetime = field(default_factory=now)
    last_modified_on: datetime = field(default_factory=now)
    completed_on: datetime | None = None
    result_ids: list[str] = field(default_factory=list)
    #: ``AdditionalDataSources``: alias -> DataSource.
    additional_sources: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT")

    def set_status(self, status: str, error: str | None = None) -> None:
        self.status = status
        self.error = error
        self.last_modified_on = now()
        if self.finished:
            self.completed_on = self.last_modified_on

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "RunId": self.run_id, "DataSource": self.data_source, "Role": self.role, "Status": self.status,
            "StartedOn": self.started_on, "LastModifiedOn": self.last_modified_on,
            "RulesetNames": self.ruleset_names, "ResultIds": self.result_ids,
            "AdditionalRunOptions": self.options,
            "ExecutionTime": int(((self.completed_on or now()) - self.started_on).total_seconds()),
        }
        if self.number_of_workers is not None:
            out["NumberOfWorkers"] = self.number_of_workers
        if self.timeout is not None:
            out["Timeout"] = self.timeout
        if self.completed_on is not None:
            out["CompletedOn"] = self.completed_on
        if self.error:
            out["ErrorString"] = self.error
        if self.additional_sources:
            out["AdditionalDataSources"] = self.additional_sources
        return out


@dataclass
class Result:
    """One ruleset's result of a run (GetDataQualityResult)."""

    result_id: str
    run_id: str
    ruleset_name: str
    data_source: dict[str, Any]
    evaluation_context: str
    started_on: datetime
    completed_on: datetime
    rule_results: list[dict[str, Any]]

    @property
    def score(self) -> float:
        passed = sum(1 for r in self.rule_results if r["Result"] == "PASS")
        return passed / len(self.rule_results) if self.rule_results else 0.0

    def as_dict(self) -> dict[str, Any]:
        passed = sum(1 for r in self.rule_results if r["Result"] == "PASS")
        return {
            "ResultId": self.result_id, "Score": self.score, "DataSource": self.data_source,
            "RulesetName": self.ruleset_name, "EvaluationContext": self.evaluation_context,
            "StartedOn": self.started_on, "CompletedOn": self.completed_on,
            "RulesetEvaluationRunId": self.run_id, "RuleResults": self.rule_results,
            "AggregatedMetrics": {"TotalRulesProcessed": float(len(self.rule_results)),
                                  "TotalRulesPassed": float(passed),
                                  "TotalRulesFailed": float(len(self.rule_results) - passed)},
        }

    def description(self) -> dict[str, Any]:
        return {"ResultId": self.result_id, "DataSource": self.data_source, "StartedOn": self.started_on}


def state(backend: glue_models.GlueBackend) -> tuple[dict[str, Ruleset], dict[str, EvaluationRun], dict[str, Result]]:
    """The backend's rulesets (by name), runs and results (by id), created on first use."""
    d = backend.__dict__
    return d.setdefault("dq_rulesets", {}), d.setdefault("dq_runs", {}), d.setdefault("dq_results", {})


def new_id(prefix: str) -> str:
    return f"{prefix}-{mock_random.get_random_hex(40)}"


def glue_table(data_source: dict[str, Any]) -> dict[str, Any]:
    """``DataSource.GlueTable`` (or ``DataQualityGlueTable``) of a run."""
    return data_source.get("GlueTable") or data_source.get("DataQualityGlueTable") or {}


def _rule_result(index: int, rule: dqdl.Rule, evaluator: Evaluator) -> dict[str, Any]:
    outcome = evaluator.evaluate(rule)
    out: dict[str, Any] = {"Name": f"Rule_{index}", "Description": rule.text, "Result": outcome.result,
                           "EvaluatedMetrics": outcome.metrics, "EvaluatedRule": rule.text}
    if outcome.message:
        out["EvaluationMessage"] = outcome.message
    return out


def _table(backend: glue_models.GlueBackend, data_source: dict[str, Any]):
    ref = glue_table(data_source)
    try:
        return backend.get_table(ref.get("DatabaseName", ""), ref.get("TableName", ""))
    except Exception as exc:  # noqa: BLE001 - moto's not-found errors
        raise RuntimeError(f"EntityNotFoundException: {getattr(exc, 'message', exc)}") from None


def run_evaluation(backend: glue_models.GlueBackend, run: EvaluationRun) -> None:
    """Evaluate ``run``'s rulesets (on its own thread) and store one :class:`Result` per ruleset."""
    rulesets, _, results = state(backend)
    run.set_status("RUNNING")
    scratch = RUNTIME.work_dir / "glue-dq" / run.run_id
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET threads={DUCKDB_THREADS}")
        schema = register_glue_table(con, PRIMARY, _table(backend, run.data_source), account_id=backend.account_id,
                                     scratch=scratch / "primary")
        references = {}
        for i, (alias, source) in enumerate(sorted(run.additional_sources.items())):
            view = f"__dq_reference_{i}"
            columns = register_glue_table(con, view, _table(backend, source), account_id=backend.account_id,
                                          scratch=scratch / view)
            references[alias] = (view, list(columns))
        evaluator = Evaluator(con, list(schema), references, now=run.started_on)
        started = run.started_on
        deadline = time.monotonic() + MIN_RUN_SECONDS
        for name in run.ruleset_names:
            rules = dqdl.parse(rulesets[name].ruleset)
            rule_results = [_rule_result(i, rule, evaluator) for i, rule in enumerate(rules, 1)]
            result = Result(new_id("dqresult"), run.run_id, name, run.data_source, name, started, now(), rule_results)
            results[result.result_id] = result
            run.result_ids.append(result.result_id)
        while (left := deadline - time.monotonic()) > 0 and not RUNTIME.stopping.wait(min(left, 0.05)):
            pass
        run.set_status("SUCCEEDED")
    except (AthenaQueryError, RuntimeError, duckdb.Error) as exc:
        run.set_status("FAILED", str(getattr(exc, "reason", None) or exc))
    except Exception as exc:  # noqa: BLE001 - any other failure fails the run, with its cause
        log.exception("glue data quality run %s failed", run.run_id)
        run.set_status("FAILED", f"{type(exc).__name__}: {exc}")
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
        log.info("glue data quality run %s on %s: %s%s", run.run_id, glue_table(run.data_source).get("TableName"),
                 run.status, f" - {run.error}" if run.error else "")
