"""The Athena API as localaws answers it: patches of moto's Athena backend and responses.

:func:`install` replaces moto's StartQueryExecution / StopQueryExecution / GetQueryExecution
(queries really run, in :mod:`localaws.services.athena.models`) and answers GetQueryResults,
BatchGetQueryExecution, ListQueryExecutions, the catalog reads (ListDatabases, GetDatabase,
GetTableMetadata, ListTableMetadata; from moto's *Glue* catalog) and UpdateWorkGroup (missing
from moto) as Athena does. The work group's ``ResultConfiguration.OutputLocation`` is used when
the query gives none (or always, when the work group enforces its configuration).
:func:`recover_after_restart` fails the executions a restart cut off.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from moto.athena import models as athena_models
from moto.athena import responses as athena_responses
from moto.athena.exceptions import MetadataException
from moto.core.exceptions import JsonRESTError
from moto.glue.models import GlueBackend, glue_backends

from localaws.runtime import RUNTIME
from localaws.services.athena.exceptions import AthenaQueryError
from localaws.services.athena.models import CATALOG, LocalExecution, _ensure_default_database, _execute, _table_version

NO_OUTPUT = ("No output location provided. An output location is required either through the Workgroup "
             "result configuration setting or as an API input.")


def _merge_update(target: dict[str, Any], updates: dict[str, Any]) -> None:
    """Apply an UpdateWorkGroup ``ConfigurationUpdates`` to a work group configuration (in place).

    ``ResultConfigurationUpdates`` maps onto ``ResultConfiguration``; ``Remove<Field>: true``
    removes ``<Field>``; other keys replace the configuration's value.
    """
    for key, value in updates.items():
        if key == "ResultConfigurationUpdates":
            result = target.setdefault("ResultConfiguration", {})
            for rkey, rvalue in value.items():
                if rkey.startswith("Remove") and rvalue:
                    result.pop(rkey[len("Remove"):], None)
                elif not rkey.startswith("Remove"):
                    result[rkey] = rvalue
        elif key.startswith("Remove") and value is True:
            target.pop(key[len("Remove"):], None)
        else:
            target[key] = value


def _resp_update_work_group(self: athena_responses.AthenaResponse) -> str:
    """UpdateWorkGroup (missing from moto): description, state and configuration updates.

    :raises JsonRESTError: (InvalidRequestException) for an unknown work group, as Athena does.
    """
    name = self._get_param("WorkGroup")
    wg = self.athena_backend.work_groups.get(name)
    if wg is None:
        raise JsonRESTError("InvalidRequestException", f"WorkGroup {name} is not found.")
    if self._get_param("Description") is not None:
        wg.description = self._get_param("Description")
    if self._get_param("State"):
        wg.state = self._get_param("State")
    _merge_update(wg.configuration, self._get_param("ConfigurationUpdates") or {})
    return "{}"


def _output_location(workgroup: athena_models.WorkGroup | None, config: dict[str, Any] | None) -> str:
    conf = workgroup.configuration if workgroup else {}
    wg_location = (conf.get("ResultConfiguration") or {}).get("OutputLocation")
    client = (config or {}).get("OutputLocation")
    if wg_location and conf.get("EnforceWorkGroupConfiguration", True):
        return wg_location
    location = client or wg_location
    if not location:
        raise JsonRESTError("InvalidRequestException", NO_OUTPUT)
    return location


def _start_query_execution(self: athena_models.AthenaBackend, query: str, context: dict[str, Any] | None,
                           config: dict[str, Any] | None, workgroup: str | None,
                           execution_parameters: list[str] | None) -> str:
    """StartQueryExecution: validate, queue, and run on a background thread.

    :raises JsonRESTError: (InvalidRequestException) when no output location is configured.
    """
    wg = self.work_groups.get(workgroup or "primary")
    execution = LocalExecution(query=query, context=context, output_location=_output_location(wg, config),
                               workgroup=wg, execution_parameters=execution_parameters, config=config)
    self.executions[execution.id] = execution
    RUNTIME.spawn(f"athena-{execution.id[:8]}", _execute, self, execution)
    return execution.id


def _get_execution(backend: athena_models.AthenaBackend, exec_id: str) -> LocalExecution:
    execution = backend.executions.get(exec_id)
    if execution is None:
        raise JsonRESTError("InvalidRequestException", f"QueryExecution {exec_id} was not found")
    return execution


def _stop_query_execution(self: athena_models.AthenaBackend, exec_id: str) -> None:
    execution = _get_execution(self, exec_id)
    if execution.finished:
        return
    execution.cancel_requested = True
    RUNTIME.spawn(f"athena-stop-{execution.id[:8]}", _interrupt_until_finished, execution)


def _interrupt_until_finished(execution: LocalExecution, limit_s: float = 60.0) -> None:
    """Interrupt the execution's DuckDB statement until the query ends. One ``interrupt()`` is not
    enough: it is lost when it lands between two statements (or before the first), and the query's
    next statement would run on; the query thread checks ``cancel_requested`` between statements."""
    deadline = time.monotonic() + limit_s
    while not execution.finished and time.monotonic() < deadline:
        con = execution._con
        if con is not None:
            try:
                con.interrupt()
            except Exception:  # noqa: BLE001 - the connection may be closing
                pass
        if RUNTIME.stopping.wait(0.1):
            return


def _resp_get_query_execution(self: athena_responses.AthenaResponse) -> str:
    execution = _get_execution(self.athena_backend, self._get_param("QueryExecutionId"))
    return json.dumps({"QueryExecution": execution.as_dict()})


def _resp_batch_get_query_execution(self: athena_responses.AthenaResponse) -> str:
    found, missing = [], []
    for exec_id in self._get_param("QueryExecutionIds") or []:
        execution = self.athena_backend.executions.get(exec_id)
        if isinstance(execution, LocalExecution):
            found.append(execution.as_dict())
        else:
            missing.append({"QueryExecutionId": exec_id, "ErrorCode": "INVALID_INPUT",
                            "ErrorMessage": "QueryExecution not found"})
    return json.dumps({"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing})


def _resp_get_query_results(self: athena_responses.AthenaResponse) -> str:
    execution = _get_execution(self.athena_backend, self._get_param("QueryExecutionId"))
    if execution.status in ("QUEUED", "RUNNING"):
        raise JsonRESTError("InvalidRequestException",
                            f"Query has not yet finished. Current state: {execution.status}")
    if execution.status != "SUCCEEDED":
        reason = execution.error.reason if execution.error else (execution.cancel_reason or "")
        raise JsonRESTError("InvalidRequestException",
                            f"Query did not finish successfully. Final query state: {execution.status}\n{reason}")
    max_results = int(self._get_param("MaxResults") or 1000)
    if not 1 <= max_results <= 1000:
        raise JsonRESTError("InvalidRequestException", "MaxResults must be between 1 and 1000")
    token = self._get_param("NextToken")
    start = int(token) if token else 0
    rows: list[dict[str, Any]] = []
    if execution.header:
        rows.append({"Data": [{"VarCharValue": c["Name"]} for c in execution.columns]})
    rows += [{"Data": [{"VarCharValue": v} if v is not None else {} for v in row]} for row in execution.rows]
    page = rows[start:start + max_results]
    out: dict[str, Any] = {"ResultSet": {"Rows": page, "ResultSetMetadata": {"ColumnInfo": execution.columns}}}
    if execution.update_count is not None:
        out["UpdateCount"] = execution.update_count
    if start + max_results < len(rows):
        out["NextToken"] = str(start + max_results)
    return json.dumps(out)


def _resp_list_query_executions(self: athena_responses.AthenaResponse) -> str:
    """ListQueryExecutions as Athena answers it (moto returns every id of every work group, oldest
    first, unpaged): the ids of one work group (``primary`` when none is named), newest first,
    ``MaxResults`` (1..50, default 50) a page with a ``NextToken``. Source: the Athena API
    reference, ListQueryExecutions ("If a workgroup is not specified, a list of available query
    execution IDs for the queries in the primary workgroup is returned"; MaxResults 0-50).

    :raises JsonRESTError: (InvalidRequestException) for an unknown work group or a bad MaxResults.
    """
    name = self._get_param("WorkGroup") or "primary"
    if name not in self.athena_backend.work_groups:
        raise JsonRESTError("InvalidRequestException", f"WorkGroup {name} is not found.")
    max_results = int(self._get_param("MaxResults") or 50)
    if not 1 <= max_results <= 50:
        raise JsonRESTError("InvalidRequestException", "MaxResults must be between 1 and 50")
    executions = [e for e in self.athena_backend.executions.values()
                  if (e.workgroup.name if e.workgroup else "primary") == name]
    ids = [e.id for e in sorted(executions, key=lambda e: getattr(e, "submitted", 0.0), reverse=True)]
    token = self._get_param("NextToken")
    start = int(token) if token and token.isdigit() else 0
    out: dict[str, Any] = {"QueryExecutionIds": ids[start:start + max_results]}
    if start + max_results < len(ids):
        out["NextToken"] = str(start + max_results)
    return json.dumps(out)


def _glue(self: athena_responses.AthenaResponse) -> GlueBackend:
    backend = glue_backends[self.current_account][self.region]
    _ensure_default_database(backend)
    return backend


def _check_catalog(name: str | None) -> None:
    if name and name.lower() != CATALOG:
        raise MetadataException(f"Catalog {name} not found")


def _resp_list_databases(self: athena_responses.AthenaResponse) -> str:
    _check_catalog(self._get_param("CatalogName"))
    dbs = sorted(_glue(self).databases.values(), key=lambda d: d.name)
    start = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxResults") or 50)
    out: dict[str, Any] = {"DatabaseList": [
        {"Name": d.name, "Description": d.input.get("Description", ""), "Parameters": d.input.get("Parameters") or {}}
        for d in dbs[start:start + size]]}
    if start + size < len(dbs):
        out["NextToken"] = str(start + size)
    return json.dumps(out)


def _database(self: athena_responses.AthenaResponse):
    """The Glue database named by the request's CatalogName/DatabaseName.

    :raises MetadataException: "Database X not found." when it does not exist.
    """
    _check_catalog(self._get_param("CatalogName"))
    name = (self._get_param("DatabaseName") or "").lower()
    db = _glue(self).databases.get(name)
    if db is None:
        raise MetadataException(f"Database {name} not found.")
    return db


def _resp_get_database(self: athena_responses.AthenaResponse) -> str:
    db = _database(self)
    return json.dumps({"Database": {"Name": db.name, "Description": db.input.get("Description", ""),
                                    "Parameters": db.input.get("Parameters") or {}}})


def _table_metadata(table) -> dict[str, Any]:
    current = _table_version(table)
    sd = current.get("StorageDescriptor") or {}
    params = dict(current.get("Parameters") or {})
    for key in ("InputFormat", "OutputFormat", "Location"):
        if sd.get(key):
            params[{"InputFormat": "inputformat", "OutputFormat": "outputformat", "Location": "location"}[key]] = sd[key]
    serde = sd.get("SerdeInfo") or {}
    if serde.get("SerializationLibrary"):
        params["serde.serialization.lib"] = serde["SerializationLibrary"]
    for k, v in (serde.get("Parameters") or {}).items():
        params[f"serde.param.{k}"] = v
    return {
        "Name": table.name,
        "CreateTime": table.created_time.timestamp(),
        "TableType": current.get("TableType", "EXTERNAL_TABLE"),
        "Columns": [{"Name": c["Name"], "Type": c["Type"], **({"Comment": c["Comment"]} if c.get("Comment") else {})}
                    for c in sd.get("Columns", [])],
        "PartitionKeys": [{"Name": c["Name"], "Type": c["Type"]} for c in current.get("PartitionKeys") or []],
        "Parameters": params,
    }


def _resp_get_table_metadata(self: athena_responses.AthenaResponse) -> str:
    db = _database(self)
    name = (self._get_param("TableName") or "").lower()
    table = db.tables.get(name)
    if table is None:
        raise MetadataException(f"Table {name} not found.")
    return json.dumps({"TableMetadata": _table_metadata(table)})


def _resp_list_table_metadata(self: athena_responses.AthenaResponse) -> str:
    db = _database(self)
    tables = sorted(db.tables.values(), key=lambda t: t.name)
    expression = self._get_param("Expression")
    if expression:
        rx = re.compile("^(" + expression.replace("*", ".*") + ")$", re.I)
        tables = [t for t in tables if rx.match(t.name)]
    start = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxResults") or 50)
    out: dict[str, Any] = {"TableMetadataList": [_table_metadata(t) for t in tables[start:start + size]]}
    if start + size < len(tables):
        out["NextToken"] = str(start + size)
    return json.dumps(out)


def install() -> None:
    """Patch moto's Athena backend and responses so queries really run (idempotent)."""
    backend = athena_models.AthenaBackend
    backend.start_query_execution = _start_query_execution  # type: ignore[method-assign]
    backend.stop_query_execution = _stop_query_execution  # type: ignore[method-assign]
    backend.get_query_execution = _get_execution  # type: ignore[method-assign,assignment]
    responses = athena_responses.AthenaResponse
    responses.get_query_execution = _resp_get_query_execution  # type: ignore[method-assign]
    responses.batch_get_query_execution = _resp_batch_get_query_execution  # type: ignore[attr-defined]
    responses.get_query_results = _resp_get_query_results  # type: ignore[method-assign]
    responses.list_query_executions = _resp_list_query_executions  # type: ignore[method-assign]
    responses.list_databases = _resp_list_databases  # type: ignore[method-assign]
    responses.get_database = _resp_get_database  # type: ignore[method-assign]
    responses.get_table_metadata = _resp_get_table_metadata  # type: ignore[attr-defined]
    responses.list_table_metadata = _resp_list_table_metadata  # type: ignore[attr-defined]
    responses.update_work_group = _resp_update_work_group  # type: ignore[attr-defined]


def recover_after_restart() -> int:
    """Mark executions that were QUEUED or RUNNING at the last snapshot as FAILED; returns how many.

    Their threads died with the previous server, so they can never finish. The reason is an
    internal error (``GENERIC_INTERNAL_ERROR``, as Athena reports its own failures): the client
    runs the query again.
    """
    count = 0
    for account in athena_models.athena_backends.values():
        for backend in account.values():
            for execution in backend.executions.values():
                if isinstance(execution, LocalExecution) and not execution.finished:
                    execution.error = AthenaQueryError(
                        "GENERIC_INTERNAL_ERROR", "localaws restarted while this query was running; run it again",
                        category=1, error_type=200)
                    execution.finish("FAILED")
                    count += 1
    return count
