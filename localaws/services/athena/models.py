"""The Athena engine: query executions and how one runs (Trino SQL on DuckDB over the Glue catalog).

:class:`LocalExecution` is one execution's state; ``_execute`` runs it on a background thread
(RUNNING -> SUCCEEDED | FAILED | CANCELLED); at most :data:`MAX_CONCURRENT_QUERIES` run at once,
later ones stay QUEUED. ``_Query`` runs one statement:

* SELECT (Athena's Trino dialect) is transpiled with sqlglot to DuckDB. Each referenced table is
  looked up in moto's *Glue* catalog (the one crawlers and ``glue.create_table`` write; moto's own
  Athena database list is bypassed) and registered as a DuckDB view over the table's objects,
  copied from moto's in-memory S3 to a scratch directory (never read over HTTP). Partition keys
  take their types from the Glue ``PartitionKeys``; ``WHERE`` conjuncts that reference only
  partition keys are evaluated against the catalog's partition values first, so only matching
  partitions' objects are read. ``DataScannedInBytes`` = bytes of the objects read. A table's
  LOCATION is read with empty path segments dropped (``s3://b//t/`` = ``s3://b/t/``, as Athena
  does: :func:`localaws.services.s3memory.normalize_location`). A query that would read more than
  its work group's ``BytesScannedCutoffPerQuery`` is CANCELLED with StateChangeReason
  :data:`~localaws.services.athena.exceptions.BYTES_CUTOFF_REASON`.
* DDL: CREATE/DROP DATABASE|SCHEMA, CREATE EXTERNAL TABLE, DROP TABLE, MSCK REPAIR TABLE,
  ALTER TABLE ADD/DROP PARTITION, SHOW TABLES/DATABASES/PARTITIONS/COLUMNS/CREATE TABLE,
  DESCRIBE; CTAS ``WITH (format, external_location, partitioned_by, write_compression)`` and
  INSERT INTO write Parquet (or JSON/TEXTFILE) into moto's S3 and register partitions.
* Results are written as Athena writes them: ``<OutputLocation>/<QueryExecutionId>.csv`` (header
  row, every value quoted) plus ``.csv.metadata``; DDL/utility statements write ``.txt``.
  (Which OutputLocation an execution gets is decided in :mod:`localaws.services.athena.responses`.)
* Failures carry ``StateChangeReason`` and ``AthenaError`` in Athena's words
  (``TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.t' does not exist``).

The SQL helpers (types, statement regexes, error wording) are in :mod:`localaws.services.athena.sql`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from moto.athena import models as athena_models
from moto.glue.exceptions import EntityNotFoundException
from moto.glue.models import GlueBackend, glue_backends
from moto.moto_api._internal import mock_random
from sqlglot import exp

from localaws import faults
from localaws.runtime import RUNTIME, log
from localaws.services import s3memory
from localaws.services.athena.exceptions import (BYTES_CUTOFF_REASON, AthenaQueryError, BytesCutoffExceeded, QueryCancelled,
                                                 ddl_error)
from localaws.services.athena.sql import (
    RE_ALTER_PART, RE_CREATE_DB, RE_DESCRIBE, RE_DROP_DB, RE_MSCK, RE_SHOW_COLUMNS, RE_SHOW_CREATE, RE_SHOW_DBS,
    RE_SHOW_PARTITIONS, RE_SHOW_TABLES, csv_cell, duckdb_to_athena, duckdb_to_glue, engine_error, format_value,
    glue_to_duckdb, parse_error, partition_specs, split_qname, statement_kind, strip_comments, substitute_parameters,
    unquote_ident,
)

#: Queries that run at once; later ones wait in state QUEUED.
MAX_CONCURRENT_QUERIES = 2
#: DuckDB threads per query.
DUCKDB_THREADS = 2
CATALOG = "awsdatacatalog"
PARQUET_SD = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                  "Parameters": {"serialization.format": "1"}},
}
TEXT_IO = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
}
_slots = threading.BoundedSemaphore(MAX_CONCURRENT_QUERIES)
_catalog_lock = threading.RLock()


class LocalExecution:
    """One query execution, shaped for GetQueryExecution / GetQueryResults.

    Times are epoch seconds; ``rows`` hold Athena's text form of each value (None = NULL);
    ``columns`` are ``ColumnInfo`` dicts; ``header`` says whether results start with a header row.
    """

    def __init__(self, *, query: str, context: dict[str, Any] | None, output_location: str,
                 workgroup: athena_models.WorkGroup | None, execution_parameters: list[str] | None,
                 config: dict[str, Any] | None) -> None:
        self.id = str(mock_random.uuid4())
        self.query = query
        self.context = context or {}
        self.workgroup = workgroup
        self.execution_parameters = execution_parameters
        self.statement_type, self.substatement_type = statement_kind(strip_comments(query))
        ext = "txt" if self.statement_type in ("DDL", "UTILITY") else "csv"
        self.output_location = f"{output_location.rstrip('/')}/{self.id}.{ext}"
        self.config = dict(config or {})
        self.config["OutputLocation"] = self.output_location
        self.status = "QUEUED"
        self.submitted = time.time()
        self.started: float | None = None
        self.completed: float | None = None
        self.start_time = self.submitted  # moto's names
        self.end_time = self.submitted
        self.error: AthenaQueryError | None = None
        self.cancel_reason: str | None = None
        self.cancel_requested = False
        self.scanned_bytes = 0
        self.planning_ms = 0
        self.processing_ms = 0
        self.columns: list[dict[str, Any]] = []
        self.rows: list[list[str | None]] = []
        self.header = True
        self.update_count: int | None = None
        self.manifest_location: str | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_con"] = None
        return state

    def advance(self) -> None:
        """States are driven by the query thread."""

    @property
    def finished(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "CANCELLED")

    def finish(self, status: str) -> None:
        self.completed = time.time()
        self.end_time = self.completed
        self.status = status

    def as_dict(self) -> dict[str, Any]:
        """The ``QueryExecution`` structure (timestamps as epoch seconds)."""
        now = time.time()
        end = self.completed or now
        started = self.started or end
        status: dict[str, Any] = {"State": self.status, "SubmissionDateTime": self.submitted}
        if self.completed:
            status["CompletionDateTime"] = self.completed
        if self.error is not None:
            status["StateChangeReason"] = self.error.reason
            status["AthenaError"] = {"ErrorCategory": self.error.category, "ErrorType": self.error.error_type,
                                     "Retryable": False, "ErrorMessage": self.error.reason}
        elif self.cancel_reason:
            status["StateChangeReason"] = self.cancel_reason
        stats = {
            "EngineExecutionTimeInMillis": int((end - started) * 1000) if self.started else 0,
            "DataScannedInBytes": self.scanned_bytes,
            "TotalExecutionTimeInMillis": int((end - self.submitted) * 1000),
            "QueryQueueTimeInMillis": int((started - self.submitted) * 1000),
            "ServicePreProcessingTimeInMillis": 0,
            "QueryPlanningTimeInMillis": self.planning_ms,
            "ServiceProcessingTimeInMillis": self.processing_ms,
            "ResultReuseInformation": {"ReusedPreviousResult": False},
        }
        if getattr(self, "manifest_location", None):  # getattr: executions pickled before it existed
            stats["DataManifestLocation"] = self.manifest_location
        out = {
            "QueryExecutionId": self.id,
            "Query": self.query,
            "StatementType": self.statement_type,
            "SubstatementType": self.substatement_type,
            "ResultConfiguration": self.config,
            "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
            "QueryExecutionContext": self.context,
            "Status": status,
            "Statistics": stats,
            "WorkGroup": self.workgroup.name if self.workgroup else "primary",
            "EngineVersion": {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"},
        }
        if self.execution_parameters is not None:
            out["ExecutionParameters"] = self.execution_parameters
        return out


class _Reading:
    """What :class:`_Query`'s table reading needs of an execution, for reads outside a query."""

    cancel_requested = False
    workgroup = None

    def __init__(self) -> None:
        self.scanned_bytes = 0
        self.planning_ms = 0


def register_glue_table(con: duckdb.DuckDBPyConnection, view: str, table, *, account_id: str, scratch: Path) -> dict[str, str]:
    """Create DuckDB view ``view`` on ``con`` over all the data of Glue catalog table ``table``
    (every partition), read exactly as an Athena query reads it; returns column -> DuckDB type
    (data columns, then partition keys). The objects are copied from moto's S3 under ``scratch``,
    which the caller deletes.

    :raises AthenaQueryError: a table stored in a format localaws cannot read, an unreadable location.
    """
    reader = _Query.__new__(_Query)
    reader.execution = _Reading()  # type: ignore[assignment]
    reader.account_id = account_id
    reader.con = con
    reader.tmp = scratch
    return reader._register_table(view, table, [exp.Table(this=exp.to_identifier(view))])


# --- the engine --------------------------------------------------------------------------------


def _table_version(table) -> dict[str, Any]:
    return table.get_version(str(table._current_version))


def _hidden(rel: str) -> bool:
    return any(seg.startswith(("_", ".")) for seg in rel.split("/") if seg)


def _table_format(table: dict[str, Any]) -> str:
    sd = table.get("StorageDescriptor") or {}
    serde = ((sd.get("SerdeInfo") or {}).get("SerializationLibrary") or "").lower()
    fmt = (sd.get("InputFormat") or "").lower()
    classification = ((table.get("Parameters") or {}).get("classification") or "").lower()
    if "parquet" in serde or "parquet" in fmt or classification == "parquet":
        return "parquet"
    if "json" in serde or classification == "json":
        return "json"
    if "opencsv" in serde:
        return "csv"
    if "lazysimpleserde" in serde or "textinputformat" in fmt or classification in ("csv", "tsv"):
        return "text"
    raise AthenaQueryError("NOT_SUPPORTED", f"localaws cannot read tables stored with {serde or fmt or 'no SerDe'}")


def _glue_type_sql(kind: exp.DataType) -> str:
    text = kind.sql("hive").lower()
    return re.sub(r"\s*([:,])\s*", r"\1", text)


class _Query:
    """Runs one statement for a :class:`LocalExecution` (on the execution's thread)."""

    def __init__(self, backend: athena_models.AthenaBackend, execution: LocalExecution) -> None:
        self.execution = execution
        self.account_id = backend.account_id
        self.glue: GlueBackend = glue_backends[backend.account_id][backend.region_name]
        self.default_db = unquote_ident(execution.context.get("Database") or "default")
        catalog = (execution.context.get("Catalog") or CATALOG).lower()
        if catalog != CATALOG:
            raise AthenaQueryError("CATALOG_NOT_FOUND", f"line 1:1: Catalog '{catalog}' does not exist")
        self.sql = strip_comments(substitute_parameters(execution.query, execution.execution_parameters))
        self.tmp = RUNTIME.work_dir / "athena" / execution.id
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(":memory:")
        self.con.execute(f"SET threads={DUCKDB_THREADS}")
        self.con.execute("SET enable_progress_bar=false")
        execution._con = self.con
        self.views = 0
        self.result_names: list[str] = []
        self.result_types: list[str] = []
        self.result_rows: list[tuple] = []
        self.text_rows: list[str] | None = None
        self.text_column = "result"
        #: s3:// URIs of the data files a CTAS or INSERT INTO wrote (listed in its data manifest).
        self.written_files: list[str] | None = None

    def close(self) -> None:
        self.execution._con = None
        try:
            self.con.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def check_cancel(self) -> None:
        if self.execution.cancel_requested:
            raise QueryCancelled()

    # -- dispatch
    def run(self) -> None:
        sql = self.sql
        if not sql:
            raise AthenaQueryError("SYNTAX_ERROR", "line 1:1: mismatched input '<EOF>'. Expecting: <statement>")
        _ensure_default_database(self.glue)
        for regex, handler in (
            (RE_CREATE_DB, self.create_database), (RE_DROP_DB, self.drop_database), (RE_MSCK, self.msck),
            (RE_SHOW_TABLES, self.show_tables), (RE_SHOW_DBS, self.show_databases),
            (RE_SHOW_PARTITIONS, self.show_partitions), (RE_SHOW_CREATE, self.show_create),
            (RE_SHOW_COLUMNS, self.show_columns), (RE_DESCRIBE, self.describe), (RE_ALTER_PART, self.alter_partitions),
        ):
            m = regex.match(sql)
            if m:
                handler(m)
                return
        try:
            ast = sqlglot.parse_one(sql, read="athena")
        except sqlglot.errors.ParseError as exc:
            raise parse_error(exc) from exc
        if isinstance(ast, exp.Create) and ast.args.get("kind", "").upper() == "TABLE":
            if ast.expression is not None:
                self.ctas(ast)
            else:
                self.create_table(ast)
        elif isinstance(ast, exp.Drop) and (ast.args.get("kind") or "").upper() == "TABLE":
            self.drop_table(ast)
        elif isinstance(ast, exp.Insert):
            self.insert(ast)
        elif isinstance(ast, exp.Query):
            self.select(ast)
        else:
            raise AthenaQueryError("NOT_SUPPORTED", f"line 1:1: localaws does not support this statement: "
                                                    f"{sql.split(None, 1)[0].upper()}")

    # -- catalog helpers
    def database(self, name: str, *, ddl: bool = False):
        try:
            return self.glue.get_database(name)
        except EntityNotFoundException:
            if ddl:
                raise ddl_error(f"NoSuchObjectException(message:Database {name} not found)") from None
            line, col = _pos(self.sql, name)
            raise AthenaQueryError("SCHEMA_NOT_FOUND", f"line {line}:{col}: Schema '{name}' does not exist") from None

    def table(self, db: str, name: str, *, ddl: bool = False):
        database = self.database(db, ddl=ddl)
        table = database.tables.get(name)
        if table is None:
            if ddl:
                raise AthenaQueryError(None, f"FAILED: SemanticException [Error 10001]: Table not found {db}.{name}")
            line, col = _pos(self.sql, name)
            raise AthenaQueryError("TABLE_NOT_FOUND",
                                   f"line {line}:{col}: Table '{CATALOG}.{db}.{name}' does not exist")
        return table

    # -- DDL
    def create_database(self, m: re.Match) -> None:
        name = unquote_ident(m.group(2))
        rest = m.group(3) or ""
        db_input: dict[str, Any] = {"Name": name}
        if c := re.search(r"COMMENT\s+'((?:[^']|'')*)'", rest, re.I):
            db_input["Description"] = c.group(1)
        if loc := re.search(r"LOCATION\s+'([^']*)'", rest, re.I):
            db_input["LocationUri"] = loc.group(1)
        with _catalog_lock:
            if name in self.glue.databases:
                if m.group(1):
                    return
                raise ddl_error(f"AlreadyExistsException(message:Database {name} already exists)")
            self.glue.create_database(name, db_input)

    def drop_database(self, m: re.Match) -> None:
        name = unquote_ident(m.group(2))
        with _catalog_lock:
            db = self.glue.databases.get(name)
            if db is None:
                if m.group(1):
                    return
                raise ddl_error(f"NoSuchObjectException(message:Database {name} not found)")
            if db.tables and (m.group(3) or "").upper() != "CASCADE":
                raise ddl_error(f"InvalidOperationException(message:Database {name} is not empty. "
                                "One or more tables exist.)")
            self.glue.delete_database(name)

    def drop_table(self, ast: exp.Drop) -> None:
        for ref in ast.args.get("tables") or [ast.this]:
            db = unquote_ident(ref.db) if ref.db else self.default_db
            name = unquote_ident(ref.name)
            with _catalog_lock:
                database = self.database(db, ddl=True)
                if name not in database.tables:
                    if ast.args.get("exists"):
                        continue
                    raise AthenaQueryError(None, f"FAILED: SemanticException [Error 10001]: Table not found {db}.{name}")
                self.glue.delete_table(db, name)

    def create_table(self, ast: exp.Create) -> None:
        schema = ast.this
        if not isinstance(schema, exp.Schema):
            raise AthenaQueryError("SYNTAX_ERROR", "line 1:1: CREATE TABLE needs a column list or AS SELECT")
        ref = schema.this
        db = unquote_ident(ref.db) if ref.db else self.default_db
        name = unquote_ident(ref.name)
        columns = [{"Name": unquote_ident(cd.name), "Type": _glue_type_sql(cd.args["kind"]),
                    **({"Comment": c.this.this} if (c := cd.find(exp.CommentColumnConstraint)) else {})}
                   for cd in schema.expressions if isinstance(cd, exp.ColumnDef)]
        partition_keys: list[dict[str, str]] = []
        location = None
        serde: dict[str, Any] | None = None
        io_formats = dict(TEXT_IO)
        stored = "TEXTFILE"
        delimiter = None
        params: dict[str, str] = {"EXTERNAL": "TRUE"}
        props = ast.args.get("properties")
        for prop in (props.expressions if props else []):
            if isinstance(prop, exp.PartitionedByProperty):
                partition_keys = [{"Name": unquote_ident(cd.name), "Type": _glue_type_sql(cd.args["kind"])}
                                  for cd in prop.this.expressions if isinstance(cd, exp.ColumnDef)]
            elif isinstance(prop, exp.LocationProperty):
                location = prop.this.name
            elif isinstance(prop, exp.RowFormatSerdeProperty):
                serde_params = {}
                if prop.args.get("serde_properties"):
                    for p in prop.args["serde_properties"].expressions:
                        serde_params[p.this.name] = p.args["value"].name
                serde = {"SerializationLibrary": prop.this.name, "Parameters": serde_params}
            elif isinstance(prop, exp.RowFormatDelimitedProperty):
                if prop.args.get("fields") is not None:
                    delimiter = prop.args["fields"].name
            elif isinstance(prop, exp.FileFormatProperty):
                fmt = prop.this
                if isinstance(fmt, exp.InputOutputFormat):
                    io_formats = {"InputFormat": fmt.args["input_format"].name,
                                  "OutputFormat": fmt.args["output_format"].name}
                    stored = "CUSTOM"
                else:
                    stored = fmt.name.upper()
            elif isinstance(prop, exp.Property) and not isinstance(prop, exp.ExternalProperty):
                params[prop.this.name] = prop.args["value"].name
        if location is None:
            raise AthenaQueryError(None, "FAILED: SemanticException External tables require a LOCATION")
        if stored == "PARQUET":
            sd_extra: dict[str, Any] = {k: v for k, v in PARQUET_SD.items()}
            params.setdefault("classification", "parquet")
        else:
            if stored == "JSONFILE" and serde is None:
                serde = {"SerializationLibrary": "org.apache.hive.hcatalog.data.JsonSerDe", "Parameters": {}}
            if serde is None:
                delim = delimiter if delimiter is not None else "\x01"
                serde = {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                         "Parameters": {"field.delim": delim, "serialization.format": delim}}
            sd_extra = {**io_formats, "SerdeInfo": serde}
            lib = serde["SerializationLibrary"].lower()
            params.setdefault("classification", "json" if "json" in lib else "csv")
        table_input = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": params,
            "PartitionKeys": partition_keys,
            "StorageDescriptor": {"Columns": columns, "Location": location, "Compressed": False,
                                  "NumberOfBuckets": -1, "BucketColumns": [], "SortColumns": [],
                                  "StoredAsSubDirectories": False, "Parameters": {}, **sd_extra},
        }
        with _catalog_lock:
            database = self.database(db, ddl=True)
            if name in database.tables:
                if ast.args.get("exists"):
                    return
                raise ddl_error(f"AlreadyExistsException(message:Table {name} already exists)")
            self.glue.create_table(db, name, table_input)

    def msck(self, m: re.Match) -> None:
        db, name = split_qname(m.group(1), self.default_db)
        with _catalog_lock:
            table = self.table(db, name, ddl=True)
            current = _table_version(table)
            keys = [k["Name"].lower() for k in current.get("PartitionKeys") or []]
            location = s3memory.normalize_location(current["StorageDescriptor"]["Location"]).rstrip("/") + "/"
            found: dict[tuple[str, ...], str] = {}
            for obj in s3memory.list_objects(self.account_id, location):
                rel = obj.url[len(location):]
                segs = rel.split("/")[:-1]
                if len(segs) < len(keys) or _hidden(rel):
                    continue
                kv = [s.split("=", 1) for s in segs[:len(keys)]]
                if any(len(p) != 2 or p[0].lower() != k for p, k in zip(kv, keys)):
                    continue
                values = tuple(_unescape(v) for _, v in kv)
                found[values] = location + "".join(s + "/" for s in segs[:len(keys)])
            missing = [(v, loc) for v, loc in sorted(found.items()) if str(list(v)) not in table.partitions]
            for values, loc in missing:
                self._add_partition(table, current, list(values), loc)
        spec = [f"{name}:" + "/".join(f"{k}={v}" for k, v in zip(keys, values)) for values, _ in missing]
        lines = []
        if spec:
            lines.append("Partitions not in metastore:\t" + "\t".join(spec))
            lines += [f"Repair: Added partition to metastore {s}" for s in spec]
        self.text_rows = lines

    def _add_partition(self, table, current: dict[str, Any], values: list[str], location: str) -> None:
        sd = json.loads(json.dumps(current["StorageDescriptor"], default=str))
        sd["Location"] = location
        table.create_partition({"Values": values, "StorageDescriptor": sd, "Parameters": {}})

    def alter_partitions(self, m: re.Match) -> None:
        db, name = split_qname(m.group(1), self.default_db)
        action, if_clause = m.group(2).upper(), m.group(3)
        specs = partition_specs(m.group(4))
        if not specs:
            raise AthenaQueryError("SYNTAX_ERROR", "line 1:1: mismatched input. Expecting: PARTITION (key=value, ...)")
        with _catalog_lock:
            table = self.table(db, name, ddl=True)
            current = _table_version(table)
            keys = [k["Name"].lower() for k in current.get("PartitionKeys") or []]
            base = current["StorageDescriptor"]["Location"].rstrip("/") + "/"
            for values, location in specs:
                if sorted(values) != sorted(keys):
                    raise AthenaQueryError(None, "FAILED: SemanticException [Error 10098]: Non-Partition column "
                                                 f"appears in the partition specification: {sorted(values)} vs "
                                                 f"partition keys {keys}")
                vals = [values[k] for k in keys]
                exists = str(vals) in table.partitions
                if action == "ADD":
                    if exists:
                        if if_clause:
                            continue
                        raise ddl_error(f"AlreadyExistsException(message:Partition already exists: {vals})")
                    loc = location or base + "".join(f"{k}={values[k]}/" for k in keys)
                    self._add_partition(table, current, vals, loc)
                else:
                    if not exists:
                        if if_clause:
                            continue
                        raise AthenaQueryError(None, "FAILED: SemanticException [Error 10006]: Partition not found "
                                                     f"{dict(zip(keys, vals))}")
                    table.delete_partition(vals)

    def show_tables(self, m: re.Match) -> None:
        db = unquote_ident(m.group(1)) if m.group(1) else self.default_db
        names = sorted(self.database(db, ddl=True).tables)
        if m.group(2):
            rx = re.compile("^(" + m.group(2).replace("*", ".*") + ")$", re.I)
            names = [n for n in names if rx.match(n)]
        self.text_rows, self.text_column = names, "tab_name"

    def show_databases(self, m: re.Match) -> None:
        names = sorted(self.glue.databases)
        if m.group(1):
            rx = re.compile("^(" + m.group(1).replace("*", ".*") + ")$", re.I)
            names = [n for n in names if rx.match(n)]
        self.text_rows, self.text_column = names, "database_name"

    def show_partitions(self, m: re.Match) -> None:
        db, name = split_qname(m.group(1), self.default_db)
        table = self.table(db, name, ddl=True)
        keys = [k["Name"] for k in _table_version(table).get("PartitionKeys") or []]
        if not keys:
            raise AthenaQueryError(None, f"FAILED: SemanticException Table {name} is not a partitioned table")
        self.text_rows = sorted("/".join(f"{k}={v}" for k, v in zip(keys, p.values)) for p in table.partitions.values())
        self.text_column = "partition"

    def show_columns(self, m: re.Match) -> None:
        db, name = split_qname(m.group(1), self.default_db)
        current = _table_version(self.table(db, name, ddl=True))
        cols = current["StorageDescriptor"].get("Columns", []) + (current.get("PartitionKeys") or [])
        self.text_rows, self.text_column = [c["Name"] for c in cols], "field"

    def describe(self, m: re.Match) -> None:
        db, name = split_qname(m.group(1), self.default_db)
        current = _table_version(self.table(db, name, ddl=True))
        cols = current["StorageDescriptor"].get("Columns", [])
        keys = current.get("PartitionKeys") or []

        def line(c: dict[str, Any]) -> str:
            return f"{c['Name']:<20}\t{c['Type']:<20}\t{c.get('Comment', '')}"

        lines = [line(c) for c in cols + keys]
        if keys:
            lines += ["", "# Partition Information", f"{'# col_name':<20}\t{'data_type':<20}\tcomment", ""]
            lines += [line(k) for k in keys]
        self.text_rows, self.text_column = lines, "col_name"

    def show_create(self, m: re.Match) -> None:
        db, name = split_qname(m.group(1), self.default_db)
        current = _table_version(self.table(db, name, ddl=True))
        sd = current["StorageDescriptor"]
        cols = ",\n".join(f"  `{c['Name']}` {c['Type']}" for c in sd.get("Columns", []))
        lines = [f"CREATE EXTERNAL TABLE `{db}`.`{name}`("] + cols.split("\n") + [")"]
        if current.get("PartitionKeys"):
            lines += ["PARTITIONED BY ( "] + [f"  `{k['Name']}` {k['Type']}" + ("," if i < len(current["PartitionKeys"]) - 1 else "")
                                             for i, k in enumerate(current["PartitionKeys"])] + [")"]
        serde = sd.get("SerdeInfo") or {}
        lines += ["ROW FORMAT SERDE ", f"  '{serde.get('SerializationLibrary', '')}' "]
        if serde.get("Parameters"):
            lines += ["WITH SERDEPROPERTIES ( "] + [f"  '{k}'='{v}'," for k, v in serde["Parameters"].items()]
            lines[-1] = lines[-1].rstrip(",") + ") "
        lines += ["STORED AS INPUTFORMAT ", f"  '{sd.get('InputFormat', '')}' ", "OUTPUTFORMAT ",
                  f"  '{sd.get('OutputFormat', '')}'", "LOCATION", f"  '{sd.get('Location', '')}'"]
        params = current.get("Parameters") or {}
        if params:
            lines += ["TBLPROPERTIES ("] + [f"  '{k}'='{v}'," for k, v in params.items()]
            lines[-1] = lines[-1].rstrip(",") + ")"
        self.text_rows, self.text_column = lines, "createtab_stmt"

    # -- reading tables
    def _partition_filter(self, ref: exp.Table, keys: list[str]) -> list[exp.Expression] | None:
        """WHERE conjuncts of ``ref``'s SELECT that reference only ``ref``'s partition keys."""
        select = ref.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        if where is None:
            return None
        sources = [t for t in select.find_all(exp.Table) if t.find_ancestor(exp.Select) is select]
        alias = ref.alias_or_name.lower()
        cond = where.this
        conjuncts = list(cond.flatten()) if isinstance(cond, exp.And) else [cond]
        usable = []
        for c in conjuncts:
            if c.find(exp.Select, exp.Subquery):
                continue
            cols = list(c.find_all(exp.Column))
            if cols and all(col.name.lower() in keys and (col.table.lower() == alias if col.table else len(sources) == 1)
                            for col in cols):
                usable.append(c)
        return usable or None

    def _matching(self, partitions: list, key_types: list[tuple[str, str]], conds: list[exp.Expression]) -> set[int]:
        """Indexes of ``partitions`` whose values satisfy ``conds`` (all of them on error)."""
        pred = exp.and_(*[c.copy() for c in conds])
        for col in pred.find_all(exp.Column):
            col.set("table", None)
            col.set("db", None)
        # One scratch table per call: a query can filter partitions of several tables.
        self.part_filters = getattr(self, "part_filters", 0) + 1
        name = f"__parts{self.part_filters}"
        self.con.execute(f"CREATE TEMP TABLE {name}_raw (i INTEGER, "
                         + ", ".join(f'"{k}" VARCHAR' for k, _ in key_types) + ")")
        self.con.executemany(f"INSERT INTO {name}_raw VALUES ({', '.join('?' * (len(key_types) + 1))})",
                             [[i, *[None if v == "__HIVE_DEFAULT_PARTITION__" else v for v in p.values]]
                              for i, p in enumerate(partitions)])
        casts = ", ".join(f'TRY_CAST("{k}" AS {glue_to_duckdb(t)}) AS "{k}"' for k, t in key_types)
        try:
            sql = pred.sql("duckdb")
            rows = self.con.execute(f"SELECT i FROM (SELECT i, {casts} FROM {name}_raw) WHERE {sql}").fetchall()
            return {r[0] for r in rows}
        except (duckdb.Error, sqlglot.errors.SqlglotError) as exc:
            log.debug("athena: partition predicate not evaluable (%s); reading all partitions", exc)
            return set(range(len(partitions)))

    def _materialize(self, objects: list[s3memory.S3Object], folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, obj in enumerate(objects):
            self.check_cancel()
            self._check_cutoff(obj.size)
            data = s3memory.read_object(self.account_id, obj.bucket, obj.key)
            base = re.sub(r"[^\w.=-]", "_", obj.key.rsplit("/", 1)[-1])
            if data[:2] == b"\x1f\x8b" and not base.endswith(".gz"):
                base += ".gz"
            path = folder / f"{i:06d}_{base}"
            path.write_bytes(data)
            self.execution.scanned_bytes += obj.size
            paths.append(str(path))
        return paths

    def _check_cutoff(self, size: int) -> None:
        """Cancel the query (:class:`BytesCutoffExceeded`) when reading ``size`` more bytes would
        pass its work group's ``BytesScannedCutoffPerQuery``; ``DataScannedInBytes`` then reports
        the cutoff, as Athena does (it stops at the limit and bills up to it)."""
        wg = self.execution.workgroup
        cutoff = (wg.configuration or {}).get("BytesScannedCutoffPerQuery") if wg is not None else None
        if cutoff is not None and self.execution.scanned_bytes + size > int(cutoff):
            self.execution.scanned_bytes = int(cutoff)
            raise BytesCutoffExceeded()

    def _objects_under(self, location: str) -> list[s3memory.S3Object]:
        location = s3memory.normalize_location(location).rstrip("/") + "/"
        try:
            objs = s3memory.list_objects(self.account_id, location)
        except s3memory.S3PathError as exc:
            raise AthenaQueryError("HIVE_PATH_ERROR" if "s3" in location else "HIVE_INVALID_METADATA",
                                   f"{exc}") from exc
        return [o for o in objs if not _hidden(o.url[len(location):])]

    def _register_table(self, view: str, table, refs: list[exp.Table]) -> dict[str, str]:
        """Create DuckDB view ``view`` over the Glue table; returns its column -> DuckDB type."""
        current = _table_version(table)
        sd = current.get("StorageDescriptor") or {}
        columns = [(c["Name"].lower(), c["Type"]) for c in sd.get("Columns", [])]
        keys = [(k["Name"].lower(), k["Type"]) for k in current.get("PartitionKeys") or []]
        fmt = _table_format(current)
        schema = {n: glue_to_duckdb(t) for n, t in columns + keys}
        # which objects to read
        groups: list[tuple[tuple[str, ...], str]] = []
        if keys:
            partitions = list(table.partitions.values())
            selected: set[int] = set()
            for ref in refs:
                conds = self._partition_filter(ref, [k for k, _ in keys])
                selected |= self._matching(partitions, keys, conds) if conds else set(range(len(partitions)))
            for i in sorted(selected):
                p = partitions[i]
                loc = ((p.partition_input.get("StorageDescriptor") or {}).get("Location")
                       or sd["Location"].rstrip("/") + "/" + "/".join(f"{k}={v}" for (k, _), v in zip(keys, p.values)))
                groups.append((tuple(p.values), loc))
        else:
            groups.append(((), sd.get("Location", "")))
        files: list[tuple[str, tuple[str, ...]]] = []
        for n, (values, loc) in enumerate(groups):
            objs = self._objects_under(loc)
            for path in self._materialize(objs, self.tmp / view / str(n)):
                files.append((path, values))
        self.check_cancel()
        empty = "SELECT " + ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in schema.items()) + " WHERE false"
        if not files:
            self.con.execute(f'CREATE VIEW "{view}" AS {empty}')
            return schema
        file_list = "[" + ", ".join(_sql_str(p) for p, _ in files) + "]"
        data_cols = [(c, schema[c]) for c, _ in columns]
        if fmt == "parquet":
            reader = f"read_parquet({file_list}, union_by_name=true, filename=true)"
            present = {r[0].lower(): r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
            proj = [f'CAST(d."{present[c]}" AS {t}) AS "{c}"' if c in present else f'CAST(NULL AS {t}) AS "{c}"'
                    for c, t in data_cols]
        elif fmt == "json":
            cols = "{" + ", ".join(f"{_sql_str(c)}: {_sql_str(t)}" for c, t in data_cols) + "}"
            reader = f"read_json({file_list}, format='newline_delimited', columns={cols}, filename=true)"
            proj = [f'd."{c}" AS "{c}"' for c, _ in data_cols]
        else:
            serde = sd.get("SerdeInfo") or {}
            sp = serde.get("Parameters") or {}
            if fmt == "csv":
                delim, quote, escape = sp.get("separatorChar", ","), sp.get("quoteChar", '"'), sp.get("escapeChar", "\\")
                nullstr = ""
            else:
                delim = sp.get("field.delim", sp.get("serialization.format", "\x01"))
                quote, escape, nullstr = "", "", "\\N"
            skip = int((current.get("Parameters") or {}).get("skip.header.line.count", "0") or 0)
            cols = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c, _ in data_cols) + "}"
            reader = (f"read_csv({file_list}, delim={_sql_str(delim)}, quote={_sql_str(quote)}, "
                      f"escape={_sql_str(escape)}, header={'true' if skip >= 1 else 'false'}, skip={max(skip - 1, 0)}, "
                      f"columns={cols}, auto_detect=false, null_padding=true, strict_mode=false, "
                      f"nullstr={_sql_str(nullstr)}, filename=true)")
            proj = [f'd."{c}" AS "{c}"' if t == "VARCHAR" else f'TRY_CAST(d."{c}" AS {t}) AS "{c}"'
                    for c, t in data_cols]
        if keys:
            mapping = f"__map_{view}"
            self.con.execute(f'CREATE TEMP TABLE "{mapping}" (f VARCHAR, '
                             + ", ".join(f'"{k}" VARCHAR' for k, _ in keys) + ")")
            self.con.executemany(f'INSERT INTO "{mapping}" VALUES ({", ".join("?" * (len(keys) + 1))})',
                                 [[p, *[None if v == "__HIVE_DEFAULT_PARTITION__" else v for v in vals]]
                                  for p, vals in files])
            proj += [f'CAST(m."{k}" AS {schema[k]}) AS "{k}"' for k, _ in keys]
            body = f'SELECT {", ".join(proj)} FROM {reader} AS d JOIN "{mapping}" AS m ON d.filename = m.f'
        else:
            body = f"SELECT {', '.join(proj) if proj else '1 AS __empty'} FROM {reader} AS d"
        self.con.execute(f'CREATE VIEW "{view}" AS {body}')
        return schema

    def prepare(self, query: exp.Expression) -> str:
        """Register the tables ``query`` reads and return it as DuckDB SQL."""
        planning = time.monotonic()
        cte_names = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
        groups: dict[tuple[str, str], list[exp.Table]] = {}
        for ref in list(query.find_all(exp.Table)):
            if not ref.name or isinstance(ref.this, exp.Func):
                continue
            name = ref.name.lower()
            if not ref.args.get("db") and name in cte_names:
                continue
            db = unquote_ident(ref.db) if ref.db else self.default_db
            if ref.catalog and ref.catalog.lower() != CATALOG:
                raise AthenaQueryError("CATALOG_NOT_FOUND", f"line 1:1: Catalog '{ref.catalog}' does not exist")
            groups.setdefault((db, name), []).append(ref)
        mapping: dict[str, dict[str, str]] = {}
        for (db, name), refs in groups.items():
            table = self.table(db, name)
            self.views += 1
            view = f"__t{self.views}"
            mapping[view] = self._register_table(view, table, refs)
            for ref in refs:
                alias = ref.args.get("alias") or exp.TableAlias(this=exp.to_identifier(ref.name))
                ref.replace(exp.Table(this=exp.to_identifier(view), alias=alias))
        self.execution.planning_ms += int((time.monotonic() - planning) * 1000)
        return _to_duckdb(query, mapping)

    # -- queries
    def select(self, ast: exp.Expression) -> None:
        _name_columns(ast)
        sql = self.prepare(ast)
        self.check_cancel()
        rel = self._run(sql)
        self.result_names = [_column_name(c) for c in rel.columns]
        self.result_types = [str(t) for t in rel.types]
        self.result_rows = rel.fetchall()

    def _run(self, sql: str):
        try:
            return self.con.sql(sql)
        except duckdb.InterruptException:
            raise QueryCancelled() from None
        except duckdb.Error as exc:
            raise engine_error(exc, self.sql) from exc

    def _materialize_result(self, sql: str, name: str) -> tuple[list[str], list[str], int]:
        try:
            self.con.execute(f'CREATE TEMP TABLE "{name}" AS {sql}')
            for raw in self.con.sql(f'SELECT * FROM "{name}"').columns:
                if _column_name(raw) != raw:
                    self.con.execute(f'ALTER TABLE "{name}" RENAME COLUMN "{raw}" TO "{_column_name(raw)}"')
            rel = self.con.sql(f'SELECT * FROM "{name}"')
            count = self.con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        except duckdb.InterruptException:
            raise QueryCancelled() from None
        except duckdb.Error as exc:
            raise engine_error(exc, self.sql) from exc
        return [_column_name(c) for c in rel.columns], [str(t) for t in rel.types], count

    def _write(self, source: str, columns: list[tuple[str, str]], partition_cols: list[str], location: str,
               fmt: str, compression: str, delimiter: str) -> list[tuple[list[str], str]]:
        """Write table ``source`` (DuckDB) under ``location``; returns the partitions written as
        (values, location). ``columns`` are (name, DuckDB type) in output order."""
        out = self.tmp / f"write_{self.views}"
        self.views += 1
        select = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in columns)
        codec = {"GZIP": "gzip", "SNAPPY": "snappy", "ZSTD": "zstd", "NONE": "uncompressed",
                 "UNCOMPRESSED": "uncompressed", "LZ4": "lz4"}.get(compression.upper(), "gzip")
        if fmt == "PARQUET":
            options = f"FORMAT PARQUET, COMPRESSION {codec}"
            ext = ""
        elif fmt == "JSON":
            options = f"FORMAT JSON, COMPRESSION {'gzip' if codec == 'gzip' else 'none'}"
            ext = ".gz" if codec == "gzip" else ""
        else:
            options = (f"FORMAT CSV, DELIMITER {_sql_str(delimiter)}, HEADER false, QUOTE '', ESCAPE '', "
                       f"NULLSTR '\\N', COMPRESSION {'gzip' if codec == 'gzip' else 'none'}")
            ext = ".gz" if codec == "gzip" else ""
        qid = self.execution.id
        if partition_cols:
            options += ", PARTITION_BY (" + ", ".join(f'"{c}"' for c in partition_cols) + f"), FILENAME_PATTERN '{qid}_{{i}}'"
            target = out
        else:
            out.mkdir(parents=True, exist_ok=True)
            target = out / f"{qid}_0{'.parquet' if fmt == 'PARQUET' else '.txt'}"
        try:
            self.con.execute(f"COPY (SELECT {select} FROM {source}) TO {_sql_str(str(target))} ({options})")
        except duckdb.InterruptException:
            raise QueryCancelled() from None
        except duckdb.Error as exc:
            raise engine_error(exc, self.sql) from exc
        bucket, prefix = s3memory.split_url(location.rstrip("/") + "/")
        partitions: dict[str, list[str]] = {}
        for root, _, names in os.walk(out):
            for fname in sorted(names):
                rel_dir = os.path.relpath(root, out)
                rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
                key_name = fname.rsplit(".", 1)[0] + ext
                s3memory.put_object(self.account_id, bucket, f"{prefix}{rel_dir}{key_name}",
                                    (Path(root) / fname).read_bytes())
                self.written_files = [*(self.written_files or []), f"s3://{bucket}/{prefix}{rel_dir}{key_name}"]
                if partition_cols:
                    values = [_unescape(seg.split("=", 1)[1]) for seg in rel_dir.rstrip("/").split("/")]
                    partitions[f"s3://{bucket}/{prefix}{rel_dir}"] = values
        return [(v, loc) for loc, v in sorted(partitions.items())]

    def ctas(self, ast: exp.Create) -> None:
        ref = ast.this.this if isinstance(ast.this, exp.Schema) else ast.this
        db = unquote_ident(ref.db) if ref.db else self.default_db
        name = unquote_ident(ref.name)
        options: dict[str, Any] = {}
        props = ast.args.get("properties")
        for prop in (props.expressions if props else []):
            if isinstance(prop, exp.FileFormatProperty):
                options["format"] = prop.this.name.upper()
            elif isinstance(prop, exp.PartitionedByProperty):
                options["partitioned_by"] = [unquote_ident(e.name) for e in prop.this.expressions]
            elif isinstance(prop, exp.LocationProperty):
                options["external_location"] = prop.this.name
            elif isinstance(prop, exp.Property):
                value = prop.args["value"]
                options[prop.this.name.lower()] = ([e.name for e in value.expressions]
                                                   if isinstance(value, exp.Array) else value.name)
        fmt = options.get("format", "PARQUET").upper()
        if fmt not in ("PARQUET", "JSON", "TEXTFILE"):
            raise AthenaQueryError("NOT_SUPPORTED", f"localaws writes PARQUET, JSON and TEXTFILE, not {fmt}")
        with _catalog_lock:
            database = self.database(db)
            if name in database.tables:
                if ast.args.get("exists"):
                    return
                raise AthenaQueryError("TABLE_ALREADY_EXISTS",
                                       f"line 1:1: Destination table '{CATALOG}.{db}.{name}' already exists")
        location = options.get("external_location") or (
            self.execution.output_location.rsplit("/", 1)[0] + f"/tables/{self.execution.id}/")
        location = s3memory.normalize_location(location).rstrip("/") + "/"
        if s3memory.list_objects(self.account_id, location):
            raise AthenaQueryError("HIVE_PATH_ALREADY_EXISTS",
                                   f"Target directory for table '{db}.{name}' already exists: {location}. You may "
                                   "need to manually clean the data at location before retrying.")
        sql = self.prepare(ast.expression)
        names, types, count = self._materialize_result(sql, "__ctas")
        parts = [p.lower() for p in options.get("partitioned_by", [])]
        if parts and names[-len(parts):] != parts:
            raise AthenaQueryError("HIVE_COLUMN_ORDER_MISMATCH", "Partition keys must be the last columns in the "
                                   f"table and in the same order as the table properties: {parts}")
        duck_cols = [(n, _writable(t)) for n, t in zip(names, types)]
        delimiter = options.get("field_delimiter", "\x01")
        written = self._write('"__ctas"', duck_cols, parts, location, fmt, options.get("write_compression", "GZIP"),
                              delimiter)
        data_cols = [{"Name": n, "Type": duckdb_to_glue(t)} for n, t in duck_cols if n not in parts]
        pkeys = [{"Name": n, "Type": duckdb_to_glue(t)} for n, t in duck_cols if n in parts]
        if fmt == "PARQUET":
            sd_extra: dict[str, Any] = dict(PARQUET_SD)
        elif fmt == "JSON":
            sd_extra = {**TEXT_IO, "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                                                 "Parameters": {}}}
        else:
            sd_extra = {**TEXT_IO, "SerdeInfo": {"SerializationLibrary":
                                                 "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                                                 "Parameters": {"field.delim": delimiter}}}
        table_input = {
            "Name": name, "TableType": "EXTERNAL_TABLE", "PartitionKeys": pkeys,
            "Parameters": {"EXTERNAL": "TRUE", "classification": fmt.lower().replace("textfile", "csv"),
                           "has_encrypted_data": "false"},
            "StorageDescriptor": {"Columns": data_cols, "Location": location, "Compressed": False,
                                  "NumberOfBuckets": -1, "BucketColumns": [], "SortColumns": [],
                                  "StoredAsSubDirectories": False, "Parameters": {}, **sd_extra},
        }
        with _catalog_lock:
            self.glue.create_table(db, name, table_input)
            table = self.glue.databases[db].tables[name]
            current = _table_version(table)
            for values, loc in written:
                self._add_partition(table, current, values, loc)
        self._rows_result(count)

    def insert(self, ast: exp.Insert) -> None:
        target = ast.this
        explicit = None
        if isinstance(target, exp.Schema):
            explicit = [unquote_ident(e.name) for e in target.expressions]
            target = target.this
        db = unquote_ident(target.db) if target.db else self.default_db
        name = unquote_ident(target.name)
        table = self.table(db, name)
        current = _table_version(table)
        sd = current["StorageDescriptor"]
        data_cols = [(c["Name"].lower(), glue_to_duckdb(c["Type"])) for c in sd.get("Columns", [])]
        keys = [(k["Name"].lower(), glue_to_duckdb(k["Type"])) for k in current.get("PartitionKeys") or []]
        all_cols = data_cols + keys
        fmt = _table_format(current)
        sql = self.prepare(ast.expression)
        names, types, count = self._materialize_result(sql, "__insert")
        wanted = explicit or [c for c, _ in all_cols]
        if len(names) != len(wanted):
            raise AthenaQueryError("TYPE_MISMATCH", f"line 1:1: Insert query has mismatched column types: Table: "
                                   f"[{', '.join(t.lower() for _, t in all_cols)}], Query: "
                                   f"[{', '.join(duckdb_to_athena(t)[0] for t in types)}]")
        by_target = dict(zip(wanted, names))
        proj = ", ".join(f'CAST("{by_target[c]}" AS {t}) AS "{c}"' if c in by_target else f'CAST(NULL AS {t}) AS "{c}"'
                         for c, t in all_cols)
        self.con.execute(f'CREATE TEMP TABLE "__insert2" AS SELECT {proj} FROM "__insert"')
        out_fmt = {"parquet": "PARQUET", "json": "JSON"}.get(fmt, "TEXTFILE")
        if fmt == "csv":
            raise AthenaQueryError("NOT_SUPPORTED", "Inserting into OpenCSVSerDe tables is not supported")
        delimiter = (sd.get("SerdeInfo") or {}).get("Parameters", {}).get("field.delim", "\x01")
        written = self._write('"__insert2"', all_cols, [k for k, _ in keys], sd["Location"], out_fmt,
                              "GZIP", delimiter)
        with _catalog_lock:
            for values, loc in written:
                if str(values) not in table.partitions:
                    self._add_partition(table, current, values, loc)
        self.execution.update_count = count
        self._rows_result(count)

    def _rows_result(self, count: int) -> None:
        self.execution.update_count = count
        self.result_names, self.result_types, self.result_rows = ["rows"], ["BIGINT"], [(count,)]


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _unescape(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value)


def _pos(sql: str, word: str) -> tuple[int, int]:
    from localaws.services.athena.sql import position_of

    return position_of(sql, word)


def _column_name(name: str) -> str:
    m = re.match(r"^_col_(\d+)$", name)
    return f"_col{m.group(1)}" if m else name.lower()


def _name_columns(query: exp.Expression) -> None:
    """Name unnamed output expressions ``_col<i>`` as Trino does (DuckDB would use their text)."""
    select = query
    while isinstance(select, exp.SetOperation):
        select = select.this
    if isinstance(select, exp.Subquery):
        select = select.unnest()
    if not isinstance(select, exp.Select):
        return
    for i, e in enumerate(select.expressions):
        if not isinstance(e, (exp.Alias, exp.Column, exp.Star)) and not (isinstance(e, exp.Dot)):
            e.replace(exp.alias_(e.copy(), f"_col{i}"))


def _writable(duck_type: str) -> str:
    """Types DuckDB can produce but Athena tables cannot hold -> their Athena equivalents."""
    t = duck_type.upper()
    if t in ("HUGEINT", "UBIGINT", "UINTEGER"):
        return "BIGINT"
    if t in ("USMALLINT",):
        return "INTEGER"
    if t.startswith("TIMESTAMP"):
        return "TIMESTAMP"
    if t == '"NULL"' or t == "NULL":
        return "VARCHAR"
    return duck_type


def _to_duckdb(query: exp.Expression, mapping: dict[str, dict[str, str]]) -> str:
    """Trino AST -> DuckDB SQL, with types annotated so integer division stays integer."""
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.schema import MappingSchema

    try:
        schema = MappingSchema(mapping, dialect="duckdb")
        typed = qualify(query.copy(), schema=schema, dialect="trino", quote_identifiers=True,
                        validate_qualify_columns=False, expand_stars=False)
        typed = annotate_types(typed, schema=schema, dialect="trino")
        return typed.sql("duckdb")
    except Exception as exc:  # noqa: BLE001 - fall back to a plain transpile
        log.debug("athena: type annotation failed (%s); plain transpile", exc)
        return query.sql("duckdb")


def _ensure_default_database(glue: GlueBackend) -> None:
    with _catalog_lock:
        if "default" not in glue.databases:
            glue.create_database("default", {"Name": "default", "Description": "Default Hive database"})


def _execute(backend: athena_models.AthenaBackend, execution: LocalExecution) -> None:
    """Run one execution to a final state (on its own thread)."""
    with _slots:
        if execution.cancel_requested:
            execution.cancel_reason = "Query cancelled by user"
            execution.finish("CANCELLED")
            return
        execution.started = time.time()
        execution.status = "RUNNING"
        query: _Query | None = None
        try:
            _hold(execution)
            query = _Query(backend, execution)
            query.run()
            done = time.monotonic()
            _store_results(backend, execution, query)
            execution.processing_ms = int((time.monotonic() - done) * 1000)
            execution.finish("SUCCEEDED")
        except BytesCutoffExceeded:
            execution.cancel_reason = BYTES_CUTOFF_REASON
            execution.finish("CANCELLED")
        except (QueryCancelled, duckdb.InterruptException):
            execution.cancel_reason = "Query cancelled by user"
            execution.finish("CANCELLED")
        except AthenaQueryError as exc:
            if execution.cancel_requested:
                execution.cancel_reason = "Query cancelled by user"
                execution.finish("CANCELLED")
            else:
                execution.error = exc
                execution.finish("FAILED")
        except Exception as exc:  # noqa: BLE001 - any other failure is an internal error
            log.exception("athena query %s failed", execution.id)
            execution.error = AthenaQueryError("GENERIC_INTERNAL_ERROR", f"{type(exc).__name__}: {exc}",
                                               category=1, error_type=200)
            execution.finish("FAILED")
        finally:
            if query is not None:
                query.close()
            log.info("athena query %s: %s in %.2f s, %d bytes scanned%s", execution.id, execution.status,
                     (execution.completed or time.time()) - execution.submitted, execution.scanned_bytes,
                     f" - {execution.error.reason}" if execution.error else "")


def _hold(execution: LocalExecution) -> None:
    """Keep a RUNNING query waiting as long as fault injection says (``runs.athena``); a cancel or
    a server shutdown ends the wait (the query is then cancelled)."""
    hold = faults.query_hold(execution.workgroup.name if execution.workgroup else "primary")
    deadline = time.monotonic() + hold
    while (left := deadline - time.monotonic()) > 0:
        if execution.cancel_requested or RUNTIME.stopping.wait(min(left, 0.05)):
            raise QueryCancelled()


def _store_results(backend: athena_models.AthenaBackend, execution: LocalExecution, query: _Query) -> None:
    bucket, key = s3memory.split_url(execution.output_location)
    if not s3memory.bucket_exists(backend.account_id, bucket):
        raise AthenaQueryError(None, f"Unable to verify/create output bucket {bucket}")
    if query.text_rows is not None:
        execution.header = False
        execution.columns = [_column_info(query.text_column, "string", 0, 0)]
        execution.rows = [[line] for line in query.text_rows]
        body = "".join(line + "\n" for line in query.text_rows).encode()
        s3memory.put_object(backend.account_id, bucket, key, body)
        return
    infos = [duckdb_to_athena(t) for t in query.result_types]
    execution.columns = [_column_info(n, a, p, s) for n, (a, p, s) in zip(query.result_names, infos)]
    execution.rows = [[format_value(v, a) for v, (a, _, _) in zip(row, infos)] for row in query.result_rows]
    lines = [",".join(f'"{n}"' for n in query.result_names)]
    lines += [",".join(csv_cell(v) for v in row) for row in execution.rows]
    s3memory.put_object(backend.account_id, bucket, key, ("\n".join(lines) + "\n").encode())
    s3memory.put_object(backend.account_id, bucket, key + ".metadata",
                        json.dumps({"ColumnInfo": execution.columns}).encode())
    if query.written_files is not None:
        # Athena's data manifest of a CTAS / INSERT INTO: the files it wrote, one s3:// URI a line, at
        # <results folder>/tables/<query id>-manifest.csv, named by Statistics.DataManifestLocation
        # (Athena User Guide, "Find query output files in Amazon S3"; QueryExecutionStatistics).
        folder = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
        manifest = f"{folder}tables/{execution.id}-manifest.csv"
        s3memory.put_object(backend.account_id, bucket, manifest,
                            "".join(uri + "\n" for uri in query.written_files).encode())
        execution.manifest_location = f"s3://{bucket}/{manifest}"


def _column_info(name: str, athena_type: str, precision: int, scale: int) -> dict[str, Any]:
    return {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
            "Type": athena_type, "Precision": precision, "Scale": scale, "Nullable": "UNKNOWN",
            "CaseSensitive": athena_type in ("varchar", "string", "char")}
