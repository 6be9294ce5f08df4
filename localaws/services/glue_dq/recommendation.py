"""Glue Data Quality rule recommendation runs: a DuckDB profile of the table as a DQDL ruleset.

AWS documents what a recommendation run does ("Getting started with AWS Glue Data Quality for the
Data Catalog": it profiles the table and recommends rules such as RowCount between, IsComplete,
Uniqueness, ColumnValues in [...], ColumnLength between, StandardDeviation / Mean between) but not
how it picks them or their bounds. The heuristics below are localaws's own; what they guarantee is
that the recommended ruleset is valid DQDL that passes on the table it was made from:

* ``RowCount between a and b``: a = floor(0.8 n), b = ceil(1.2 n) + 1 (n > 0; DQDL's ``between``
  excludes its ends, so n itself is inside).
* Every column: ``IsComplete`` when it has no NULL, else ``Completeness >= c`` with c its
  completeness rounded down to 2 decimals (skipped when the column is all NULL).
* ``IsUnique`` for a complete column whose values all differ (at 2 rows or more).
* ``ColumnValues in [...]`` for a string or integer column with 2 to 10 distinct values, listed in
  sorted order (``NULL`` added when the column has NULLs).
* Complete string columns: ``ColumnLength between lo - 1 and hi + 1`` (shortest, longest value).
* Complete numeric columns with 2 or more distinct values: ``Mean between`` and
  ``StandardDeviation between`` (population) the value minus / plus 5 % of its size, widened by
  0.01 and rounded outwards to 2 decimals.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
from moto.glue import models as glue_models

from localaws.runtime import RUNTIME, log
from localaws.services.athena.exceptions import AthenaQueryError
from localaws.services.athena.models import DUCKDB_THREADS, register_glue_table
from localaws.services.glue_dq import dqdl, models
from localaws.services.glue_dq.evaluation import PRIMARY, _ident
from localaws.services.glue_dq.models import Ruleset, _table, glue_table, now, state

NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "UTINYINT",
           "USMALLINT", "UINTEGER", "UBIGINT")
INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


@dataclass
class RecommendationRun:
    """One StartDataQualityRuleRecommendationRun; ``status`` is Glue's TaskStatusType."""

    run_id: str
    data_source: dict[str, Any]
    role: str
    created_ruleset_name: str | None = None
    number_of_workers: int | None = None
    timeout: int | None = None
    status: str = "STARTING"
    error: str | None = None
    recommended_ruleset: str | None = None
    started_on: datetime = field(default_factory=now)
    last_modified_on: datetime = field(default_factory=now)
    completed_on: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT")

    def set_status(self, status: str, error: str | None = None) -> None:
        self.status, self.error, self.last_modified_on = status, error, now()
        if self.finished:
            self.completed_on = self.last_modified_on

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "RunId": self.run_id, "DataSource": self.data_source, "Role": self.role, "Status": self.status,
            "StartedOn": self.started_on, "LastModifiedOn": self.last_modified_on,
            "ExecutionTime": int(((self.completed_on or now()) - self.started_on).total_seconds()),
        }
        for key, value in (("NumberOfWorkers", self.number_of_workers), ("Timeout", self.timeout),
                           ("CompletedOn", self.completed_on), ("ErrorString", self.error),
                           ("RecommendedRuleset", self.recommended_ruleset),
                           ("CreatedRulesetName", self.created_ruleset_name)):
            if value is not None:
                out[key] = value
        return out

    def summary(self) -> dict[str, Any]:
        return {"RunId": self.run_id, "Status": self.status, "StartedOn": self.started_on,
                "DataSource": self.data_source}


def runs(backend: glue_models.GlueBackend) -> dict[str, RecommendationRun]:
    """The backend's recommendation runs by id (on the backend, so snapshotted with Glue)."""
    return backend.__dict__.setdefault("dq_recommendation_runs", {})


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(float(value), 2))


def _around(value: float) -> tuple[str, str]:
    spread = 0.05 * abs(value) + 0.01
    return _num(math.floor((value - spread) * 100) / 100), _num(math.ceil((value + spread) * 100) / 100)


def recommend(con: duckdb.DuckDBPyConnection, schema: dict[str, str], view: str = PRIMARY) -> list[str]:
    """The recommended rules (DQDL text each) for ``view`` with column -> DuckDB type ``schema``."""
    n = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
    rules = [f"RowCount between {math.floor(0.8 * n)} and {math.ceil(1.2 * n) + 1}"] if n else []
    if not n:
        return ["RowCount = 0"]
    for col, kind in schema.items():
        c, base = _ident(col), kind.split("(")[0].upper()
        non_null, distinct = con.execute(f"SELECT count({c}), count(DISTINCT {c}) FROM {view}").fetchone()
        if non_null == 0:
            continue
        complete = non_null == n
        if complete:
            rules.append(f"IsComplete {_q(col)}")
        else:
            rules.append(f"Completeness {_q(col)} >= {_num(math.floor(non_null / n * 100) / 100)}")
        if complete and distinct == n and n >= 2:
            rules.append(f"IsUnique {_q(col)}")
        if (base == "VARCHAR" or base in INTEGER) and 2 <= distinct <= 10:
            values = [v for (v,) in con.execute(f"SELECT DISTINCT {c} FROM {view} WHERE {c} IS NOT NULL ORDER BY 1")
                      .fetchall()]
            listed = [_q(str(v)) if base == "VARCHAR" else str(int(v)) for v in values] + ([] if complete else ["NULL"])
            rules.append(f"ColumnValues {_q(col)} in [{', '.join(listed)}]")
        if complete and base == "VARCHAR":
            lo, hi = con.execute(f"SELECT min(length({c})), max(length({c})) FROM {view}").fetchone()
            rules.append(f"ColumnLength {_q(col)} between {lo - 1} and {hi + 1}")
        if complete and base in NUMERIC and distinct >= 2:
            mean, std = con.execute(f"SELECT avg({c}), stddev_pop({c}) FROM {view}").fetchone()
            rules.append(f"Mean {_q(col)} between {' and '.join(_around(float(mean)))}")
            rules.append(f"StandardDeviation {_q(col)} between {' and '.join(_around(float(std)))}")
    return rules


def run_recommendation(backend: glue_models.GlueBackend, run: RecommendationRun) -> None:
    """Profile ``run``'s table (on its own thread), store the ruleset, create ``CreatedRulesetName``."""
    run.set_status("RUNNING")
    scratch = RUNTIME.work_dir / "glue-dq" / run.run_id
    con = duckdb.connect(":memory:")
    deadline = time.monotonic() + models.MIN_RUN_SECONDS
    try:
        con.execute(f"SET threads={DUCKDB_THREADS}")
        schema = register_glue_table(con, PRIMARY, _table(backend, run.data_source), account_id=backend.account_id,
                                     scratch=scratch)
        text = "Rules = [\n" + ",\n".join(f"    {r}" for r in recommend(con, schema)) + "\n]"
        dqdl.parse(text)  # what localaws recommends, localaws accepts
        run.recommended_ruleset = text
        if run.created_ruleset_name:
            rulesets = state(backend)[0]
            table = glue_table(run.data_source)
            rulesets[run.created_ruleset_name] = Ruleset(
                run.created_ruleset_name, text, f"Recommended by localaws recommendation run {run.run_id}",
                {"DatabaseName": table.get("DatabaseName", ""), "TableName": table.get("TableName", "")})
        while (left := deadline - time.monotonic()) > 0 and not RUNTIME.stopping.wait(min(left, 0.05)):
            pass
        run.set_status("SUCCEEDED")
    except (AthenaQueryError, RuntimeError, duckdb.Error) as exc:
        run.set_status("FAILED", str(getattr(exc, "reason", None) or exc))
    except Exception as exc:  # noqa: BLE001 - any other failure fails the run, with its cause
        log.exception("glue data quality recommendation run %s failed", run.run_id)
        run.set_status("FAILED", f"{type(exc).__name__}: {exc}")
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
        log.info("glue data quality recommendation run %s on %s: %s%s", run.run_id,
                 glue_table(run.data_source).get("TableName"), run.status, f" - {run.error}" if run.error else "")
