"""The Glue Data Quality API as localaws answers it: operations moto lacks, added to its Glue responses.

:func:`install` adds Create/Get/Update/Delete/ListDataQualityRuleset(s),
StartDataQualityRulesetEvaluationRun, GetDataQualityRulesetEvaluationRun,
ListDataQualityRulesetEvaluationRuns, GetDataQualityResult, BatchGetDataQualityResult and
ListDataQualityResults, Start/Get/ListDataQualityRuleRecommendationRun(s)
(localaws/services/glue_dq/recommendation.py), in Glue's JSON protocol with the shapes of botocore's Glue model.
:func:`recover_after_restart` fails the runs a restart cut off.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from moto.glue.exceptions import AlreadyExistsException, EntityNotFoundException, GlueClientError

from localaws.runtime import RUNTIME
from localaws.services.glue_dq import dqdl, recommendation
from localaws.services.glue_dq.models import (
    RESTART_ERROR,
    EvaluationRun,
    Ruleset,
    glue_table,
    new_id,
    now,
    run_evaluation,
    state,
)


class InvalidInputException(GlueClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidInputException", message)


def _parse(text: str) -> None:
    try:
        dqdl.parse(text)
    except dqdl.DQDLError as exc:
        raise InvalidInputException(f"Ruleset is invalid: {exc}") from None


def _ruleset(backend: glue_models.GlueBackend, name: str) -> Ruleset:
    rulesets, _, _ = state(backend)
    if name not in rulesets:
        raise EntityNotFoundException(f"Cannot find Data Quality Ruleset in account {backend.account_id} with "
                                      f"name {name}")
    return rulesets[name]


def _arn(backend: glue_models.GlueBackend, name: str) -> str:
    return f"arn:aws:glue:{backend.region_name}:{backend.account_id}:dataQualityRuleset/{name}"


def _when(value: Any) -> datetime:
    """A timestamp from a request (boto3 sends epoch seconds)."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value))


def _page(items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
    size = int(params.get("MaxResults") or 100)
    start = int(params.get("NextToken") or 0)
    out: dict[str, Any] = {key: items[start:start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out


def _create(self: glue_responses.GlueResponse) -> ActionResult:
    p, backend = self.parameters, self.glue_backend
    rulesets, _, _ = state(backend)
    name = p["Name"]
    if name in rulesets:
        raise AlreadyExistsException(f"Data Quality Ruleset {name}")
    _parse(p["Ruleset"])
    target = p.get("TargetTable")
    if target:
        backend.get_table(target["DatabaseName"], target["TableName"])  # EntityNotFoundException if absent
    rulesets[name] = Ruleset(name, p["Ruleset"], p.get("Description"), target)
    if p.get("Tags"):
        backend.tag_resource(_arn(backend, name), p["Tags"])
    return ActionResult({"Name": name})


def _get(self: glue_responses.GlueResponse) -> ActionResult:
    return ActionResult(_ruleset(self.glue_backend, self.parameters["Name"]).as_dict())


def _update(self: glue_responses.GlueResponse) -> ActionResult:
    p = self.parameters
    ruleset = _ruleset(self.glue_backend, p["Name"])
    if "Ruleset" in p:
        _parse(p["Ruleset"])
        ruleset.ruleset = p["Ruleset"]
    if "Description" in p:
        ruleset.description = p["Description"]
    ruleset.last_modified_on = now()
    out = {"Name": ruleset.name, "Ruleset": ruleset.ruleset}
    if ruleset.description is not None:
        out["Description"] = ruleset.description
    return ActionResult(out)


def _delete(self: glue_responses.GlueResponse) -> ActionResult:
    backend = self.glue_backend
    name = self.parameters["Name"]
    _ruleset(backend, name)
    state(backend)[0].pop(name)
    backend.tagger.delete_all_tags_for_resource(_arn(backend, name))
    return ActionResult({})


def _list(self: glue_responses.GlueResponse) -> ActionResult:
    p, backend = self.parameters, self.glue_backend
    f = p.get("Filter") or {}
    out = []
    for ruleset in state(backend)[0].values():
        if f.get("Name") and ruleset.name != f["Name"]:
            continue
        if f.get("Description") and ruleset.description != f["Description"]:
            continue
        target = f.get("TargetTable")
        if target and (ruleset.target_table or {}).get("TableName") != target.get("TableName"):
            continue
        if target and (ruleset.target_table or {}).get("DatabaseName") != target.get("DatabaseName"):
            continue
        if f.get("CreatedAfter") and not ruleset.created_on > _when(f["CreatedAfter"]):
            continue
        if f.get("CreatedBefore") and not ruleset.created_on < _when(f["CreatedBefore"]):
            continue
        if f.get("LastModifiedAfter") and not ruleset.last_modified_on > _when(f["LastModifiedAfter"]):
            continue
        if f.get("LastModifiedBefore") and not ruleset.last_modified_on < _when(f["LastModifiedBefore"]):
            continue
        if p.get("Tags"):
            tags = backend.tagger.get_tag_dict_for_resource(_arn(backend, ruleset.name))
            if any(tags.get(k) != v for k, v in p["Tags"].items()):
                continue
        out.append(ruleset.summary())
    return ActionResult(_page(out, p, "Rulesets"))


def _start_run(self: glue_responses.GlueResponse) -> ActionResult:
    p, backend = self.parameters, self.glue_backend
    table = glue_table(p.get("DataSource") or {})
    if not table.get("DatabaseName") or not table.get("TableName"):
        raise InvalidInputException("DataSource must name a GlueTable (DatabaseName, TableName)")
    names = p.get("RulesetNames") or []
    if not names:
        raise InvalidInputException("RulesetNames must name at least one ruleset")
    for name in names:
        _ruleset(backend, name)
    backend.get_table(table["DatabaseName"], table["TableName"])  # EntityNotFoundException if absent
    additional = p.get("AdditionalDataSources") or {}
    for alias, source in additional.items():
        ref = glue_table(source)
        if not ref.get("DatabaseName") or not ref.get("TableName"):
            raise InvalidInputException(f"AdditionalDataSources {alias} must name a GlueTable")
        backend.get_table(ref["DatabaseName"], ref["TableName"])
    run = EvaluationRun(new_id("dqrun"), p["DataSource"], p["Role"], list(names), p.get("AdditionalRunOptions") or {},
                        number_of_workers=p.get("NumberOfWorkers"), timeout=p.get("Timeout"),
                        additional_sources=additional)
    state(backend)[1][run.run_id] = run
    RUNTIME.spawn(f"glue-dq-{run.run_id}", run_evaluation, backend, run)
    return ActionResult({"RunId": run.run_id})


def _get_run(self: glue_responses.GlueResponse) -> ActionResult:
    backend, run_id = self.glue_backend, self.parameters["RunId"]
    run = state(backend)[1].get(run_id)
    if run is None:
        raise EntityNotFoundException(f"Cannot find Data Quality Ruleset Evaluation Run {run_id}")
    return ActionResult(run.as_dict())


def _list_runs(self: glue_responses.GlueResponse) -> ActionResult:
    p, backend = self.parameters, self.glue_backend
    f = p.get("Filter") or {}
    want = glue_table(f.get("DataSource") or {})
    out = []
    for run in sorted(state(backend)[1].values(), key=lambda r: r.started_on, reverse=True):
        have = glue_table(run.data_source)
        if want and (have.get("DatabaseName"), have.get("TableName")) != (want.get("DatabaseName"),
                                                                         want.get("TableName")):
            continue
        if f.get("RulesetName") and f["RulesetName"] not in run.ruleset_names:
            continue
        if f.get("StartedAfter") and not run.started_on > _when(f["StartedAfter"]):
            continue
        if f.get("StartedBefore") and not run.started_on < _when(f["StartedBefore"]):
            continue
        out.append({"RunId": run.run_id, "Status": run.status, "StartedOn": run.started_on,
                    "DataSource": run.data_source})
    return ActionResult(_page(out, p, "Runs"))


def _get_result(self: glue_responses.GlueResponse) -> ActionResult:
    backend, result_id = self.glue_backend, self.parameters["ResultId"]
    result = state(backend)[2].get(result_id)
    if result is None:
        raise EntityNotFoundException(f"Cannot find Data Quality Result {result_id}")
    return ActionResult(result.as_dict())


def _batch_get_result(self: glue_responses.GlueResponse) -> ActionResult:
    results = state(self.glue_backend)[2]
    ids = self.parameters["ResultIds"]
    return ActionResult({"Results": [results[i].as_dict() for i in ids if i in results],
                         "ResultsNotFound": [i for i in ids if i not in results]})


def _list_results(self: glue_responses.GlueResponse) -> ActionResult:
    p, backend = self.parameters, self.glue_backend
    f = p.get("Filter") or {}
    want = glue_table(f.get("DataSource") or {})
    out = []
    for result in sorted(state(backend)[2].values(), key=lambda r: r.started_on, reverse=True):
        have = glue_table(result.data_source)
        if want and (have.get("DatabaseName"), have.get("TableName")) != (want.get("DatabaseName"),
                                                                         want.get("TableName")):
            continue
        if f.get("JobName") or f.get("JobRunId"):
            continue  # localaws's results come from evaluation runs, never from Glue jobs
        if f.get("StartedAfter") and not result.started_on > _when(f["StartedAfter"]):
            continue
        if f.get("StartedBefore") and not result.started_on < _when(f["StartedBefore"]):
            continue
        out.append(result.description())
    return ActionResult(_page(out, p, "Results"))


def _start_recommendation(self: glue_responses.GlueResponse) -> ActionResult:
    p, backend = self.parameters, self.glue_backend
    table = glue_table(p.get("DataSource") or {})
    if not table.get("DatabaseName") or not table.get("TableName"):
        raise InvalidInputException("DataSource must name a GlueTable (DatabaseName, TableName)")
    backend.get_table(table["DatabaseName"], table["TableName"])  # EntityNotFoundException if absent
    created = p.get("CreatedRulesetName")
    if created and created in state(backend)[0]:
        raise AlreadyExistsException(f"Data Quality Ruleset {created}")
    run = recommendation.RecommendationRun(new_id("dqrun"), p["DataSource"], p["Role"], created,
                                           p.get("NumberOfWorkers"), p.get("Timeout"))
    recommendation.runs(backend)[run.run_id] = run
    RUNTIME.spawn(f"glue-dq-{run.run_id}", recommendation.run_recommendation, backend, run)
    return ActionResult({"RunId": run.run_id})


def _get_recommendation(self: glue_responses.GlueResponse) -> ActionResult:
    backend, run_id = self.glue_backend, self.parameters["RunId"]
    run = recommendation.runs(backend).get(run_id)
    if run is None:
        raise EntityNotFoundException(f"Cannot find Data Quality Rule Recommendation Run {run_id}")
    return ActionResult(run.as_dict())


def _list_recommendations(self: glue_responses.GlueResponse) -> ActionResult:
    p, backend = self.parameters, self.glue_backend
    f = p.get("Filter") or {}
    want = glue_table(f.get("DataSource") or {})
    out = []
    for run in sorted(recommendation.runs(backend).values(), key=lambda r: r.started_on, reverse=True):
        have = glue_table(run.data_source)
        if want and (have.get("DatabaseName"), have.get("TableName")) != (want.get("DatabaseName"),
                                                                         want.get("TableName")):
            continue
        if f.get("StartedAfter") and not run.started_on > _when(f["StartedAfter"]):
            continue
        if f.get("StartedBefore") and not run.started_on < _when(f["StartedBefore"]):
            continue
        out.append(run.summary())
    return ActionResult(_page(out, p, "Runs"))


_OPERATIONS = {
    "create_data_quality_ruleset": _create,
    "get_data_quality_ruleset": _get,
    "update_data_quality_ruleset": _update,
    "delete_data_quality_ruleset": _delete,
    "list_data_quality_rulesets": _list,
    "start_data_quality_ruleset_evaluation_run": _start_run,
    "get_data_quality_ruleset_evaluation_run": _get_run,
    "list_data_quality_ruleset_evaluation_runs": _list_runs,
    "get_data_quality_result": _get_result,
    "batch_get_data_quality_result": _batch_get_result,
    "list_data_quality_results": _list_results,
    "start_data_quality_rule_recommendation_run": _start_recommendation,
    "get_data_quality_rule_recommendation_run": _get_recommendation,
    "list_data_quality_rule_recommendation_runs": _list_recommendations,
}


def install() -> None:
    """Add the Data Quality operations to moto's Glue responses (idempotent)."""
    for name, handler in _OPERATIONS.items():
        setattr(glue_responses.GlueResponse, name, handler)


def recover_after_restart() -> int:
    """Mark evaluation runs that were STARTING or RUNNING at the last snapshot as FAILED; returns how many."""
    count = 0
    for account in glue_models.glue_backends.values():
        for backend in account.values():
            for run in [*backend.__dict__.get("dq_runs", {}).values(),
                        *backend.__dict__.get("dq_recommendation_runs", {}).values()]:
                if not run.finished:
                    run.set_status("FAILED", RESTART_ERROR)
                    count += 1
    return count
