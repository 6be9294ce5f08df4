"""Evaluating parsed DQDL rules on DuckDB over a relation named ``primary`` (the Glue table's data).

Sources: AWS's DQDL reference (<https://docs.aws.amazon.com/glue/latest/dg/dqdl.html> and its
per-rule pages ``dqdl-rule-types-<Type>.html``). What localaws decided, rule by rule:

* **RowCount**: ``count(*)``; metric ``Dataset.*.RowCount``.
* **Completeness** / **IsComplete**: the fraction of rows whose value is not NULL (AWS's
  Completeness page: the percentage of complete, non-null values); IsComplete passes when it is 1.0. Metric
  ``Column.<col>.Completeness``.
* **Uniqueness** / **IsUnique**: rows whose value occurs exactly once, divided by *all* rows (NULLs
  count in the denominator, never as unique). AWS's page says only "the percentage of unique values
  ... Unique values occur exactly once"; the denominator is Deequ's (the library Glue Data Quality
  is built on: ``Uniqueness`` = unique values / number of rows). Several columns: the combination of
  their values. IsUnique passes at 1.0. Metric ``Column.<col>.Uniqueness`` (several columns:
  ``Multicolumn.<a>,<b>.Uniqueness``).
* **IsPrimaryKey**: every listed column complete and their combination unique; metrics
  ``Column.<col>.Completeness`` and the Uniqueness metric above.
* **ColumnValues** / **ColumnLength** (``length(col)``): a per-row predicate. Without
  ``with threshold`` every row must satisfy it; with ``with threshold <expr>`` the fraction of rows
  that satisfy it is compared with the threshold expression. NULL rows fail every expression except
  ``!=`` and ``not in`` (AWS's ColumnValues page, "Null behavior"); ``= NULL`` / ``in [NULL]``
  accept them, ``EMPTY`` is ``''`` and ``WHITESPACES_ONLY`` a non-empty string of spaces only.
  ``matches`` is a full match of the regex (Java's ``String.matches``, which Glue's Spark uses).
  Metric ``Column.<col>.ColumnValues.Compliance`` (the fraction), for ColumnLength also
  ``Column.<col>.MinimumLength`` / ``MaximumLength``.
* **between a and b** is exclusive of a and b, also ``not between`` (the DQDL reference's
  "Expressions" table describes between as a range that is exclusive; recalled, not re-read from a
  stored copy when this was written: check it before relying on a boundary value).
* **ColumnExists**: the column is in the table's schema (catalog columns and partition keys).
* **DistinctValuesCount** (``count(DISTINCT col)``, NULL not counted), **Mean** (``avg``),
  **Sum**, **StandardDeviation** (population standard deviation, ``stddev_pop``, as Deequ):
  metrics ``Column.<col>.DistinctValuesCount``, ``.Mean``, ``.Sum``, ``.StandardDeviation``.
* **CustomSql** ``"SQL over primary"``: the single value the statement returns is compared with
  the expression. The SQL is Spark SQL, as Glue runs it, transpiled to DuckDB with sqlglot (as
  localaws's Athena does for Trino); metric ``Dataset.*.CustomSQL``.
* **ReferentialIntegrity** ``"a,b" "ref.{x,y}"`` (or ``"a" "ref.x"``): the fraction of rows whose
  values of the primary columns occur among the values of the reference columns of the run's
  ``AdditionalDataSources`` entry ``ref`` (AWS: "to what extent the values of a set of columns in
  the primary dataset are a subset of the values of a set of columns in a reference dataset"). A
  row with a NULL in those columns is not contained (localaws's choice). Metric
  ``Column.<ref>.ReferentialIntegrity``.
* **Dates in ColumnValues** (``ColumnValues "Load_Date" > (now() - 3 days)``, ``<= now()``,
  ``in [...]`` of dates; AWS's ColumnValues page, "Example: Date values"): ``now()`` is the time
  the run started (UTC), ``(now() - N days|hours)`` that time minus N days or hours; the column is
  compared as a timestamp (``TRY_CAST(col AS TIMESTAMP)``: a DATE is its midnight, a string that is
  no date is NULL and fails). A date literal ``"2024-01-31"`` is a string DuckDB casts to the
  column's type, as before.
* **DataFreshness** ``"col" <= 24 hours`` / ``between 2 days and 5 days`` (AWS's DataFreshness page:
  "the difference between the current time and the values of a date column"): per row, the age
  ``now() - col`` in hours is compared with the duration; NULL rows fail ("The DataFreshness rules
  will fail for rows with NULL values"). Without ``with threshold`` every row must pass; a failure
  reads as AWS's page shows it: ``80.00 % of rows passed the threshold``. Metric
  ``Column.<col>.DataFreshness.Compliance`` (localaws's guess at the name).
* ``where "<SQL condition>"`` (Spark SQL, transpiled likewise) filters ``primary`` before the rule is evaluated.
* **Composite rules**: ``and`` passes when every part passes, ``or`` when one does.
* Every other AWS rule type (Entropy, RowCountMatch, FileFreshness, ...) is answered
  ``ERROR`` with "localaws does not evaluate rule type X": it never passes, and a composite rule
  that contains one is ``ERROR`` too.

Metric names other than ``Dataset.*.RowCount`` and ``Column.<col>.Completeness`` / ``.Uniqueness`` /
``.Mean`` ... (``ColumnValues.Compliance``, ``Multicolumn.*``, ``ReferentialIntegrity``) are localaws's
best guess at AWS's, not checked against a real result.

Failures read as AWS words them for aggregate rules: ``Value: 0.98 does not meet the constraint
requirement!``. A rule whose SQL fails (a missing column, a type error) is ``ERROR`` with DuckDB's
message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from localaws.services.glue_dq.dqdl import SIGNATURES, Duration, Expression, Keyword, Now, Rule


@dataclass
class RuleOutcome:
    """One rule's ``Result`` (PASS/FAIL/ERROR), ``message`` (FAIL/ERROR) and ``metrics``."""

    result: str
    message: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class _Unsupported(Exception):
    pass


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _number(value: float) -> str:
    """A metric as AWS prints it in messages (``0.98``, ``336776.0``)."""
    return repr(float(value))


def compare(value: float | None, expr: Expression) -> bool:
    """Whether an aggregate ``value`` satisfies ``expr`` (NULL satisfies nothing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if any(isinstance(v, str) for v in expr.values) and expr.op != "in":
        raise ValueError(f"expression {expr.op} needs numbers for this rule")
    ops = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
           "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
    if expr.op in ops:
        ok = ops[expr.op](value, expr.values[0])
    elif expr.op == "between":
        ok = expr.values[0] < value < expr.values[1]
    elif expr.op == "in":
        ok = value in [v for v in expr.values if isinstance(v, float)]
    else:
        raise ValueError(f"'{expr.op}' does not apply to this rule")
    return not ok if expr.negated else ok


def row_predicate(column_sql: str, expr: Expression) -> str:
    """A DuckDB predicate, never NULL, that a row's ``column_sql`` satisfies ``expr``."""
    col = column_sql
    v = expr.values
    if expr.op == "=" and isinstance(v[0], Keyword) and v[0] == "NULL":
        return f"({col} IS NULL)"
    if expr.op == "!=":
        if isinstance(v[0], Keyword) and v[0] == "NULL":
            return f"({col} IS NOT NULL)"
        return f"({col} IS DISTINCT FROM {_literal(v[0])})"
    if expr.op in ("=", ">", ">=", "<", "<="):
        return f"coalesce({col} {expr.op} {_literal(v[0])}, false)"
    if expr.op == "between":
        inside = f"coalesce({col} > {_literal(v[0])} AND {col} < {_literal(v[1])}, false)"
        return f"({col} IS NOT NULL AND NOT {inside})" if expr.negated else inside
    if expr.op == "in":
        plain = [_literal(x) for x in v if not isinstance(x, Keyword)]
        parts = [f"coalesce({col} IN ({', '.join(plain)}), false)"] if plain else []
        if "NULL" in v:
            parts.append(f"({col} IS NULL)")
        if "EMPTY" in v:
            parts.append(f"coalesce(CAST({col} AS VARCHAR) = '', false)")
        if "WHITESPACES_ONLY" in v:
            parts.append(f"coalesce(CAST({col} AS VARCHAR) <> '' AND trim(CAST({col} AS VARCHAR)) = '', false)")
        inside = "(" + " OR ".join(parts or ["false"]) + ")"
        return f"(NOT {inside})" if expr.negated else inside
    if expr.op == "matches":
        inside = f"coalesce(regexp_full_match(CAST({col} AS VARCHAR), {_literal(v[0])}), false)"
        return f"({col} IS NOT NULL AND NOT {inside})" if expr.negated else inside
    raise ValueError(f"unknown operator {expr.op}")


#: The DuckDB view of the data source (``primary`` is a reserved word in DuckDB).
PRIMARY = "__dq_primary"


def spark_to_duckdb(sql: str, *, condition: bool = False) -> str:
    """CustomSql / ``where`` text (Spark SQL, as Glue runs it) as DuckDB SQL, table ``primary`` -> :data:`PRIMARY`.

    :raises ValueError: text sqlglot cannot parse.
    """
    try:
        tree = sqlglot.parse_one(sql, read="spark", into=exp.Condition if condition else None)
    except sqlglot.errors.SqlglotError as exc:
        raise ValueError(f"cannot parse SQL {sql!r}: {str(exc).splitlines()[0]}") from None
    for table in tree.find_all(exp.Table):
        if table.name.lower() == "primary" and not table.db:
            table.set("this", exp.to_identifier(PRIMARY))
    return tree.sql("duckdb")


class Evaluator:
    """Evaluates rules on ``con``, where view :data:`PRIMARY` is the data and ``columns`` its column names."""

    def __init__(self, con: duckdb.DuckDBPyConnection, columns: list[str],
                 references: dict[str, tuple[str, list[str]]] | None = None, now: datetime | None = None) -> None:
        """``references``: ``AdditionalDataSources`` alias -> (DuckDB view, its column names);
        ``now``: what DQDL's ``now()`` is (the run's start; default the current time), in UTC."""
        self.con = con
        self.columns = columns
        self.references = references or {}
        at = now or datetime.now(UTC)
        self.now = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at

    def evaluate(self, rule: Rule) -> RuleOutcome:
        """The outcome of one top-level rule (composite or not)."""
        try:
            return self._evaluate(rule)
        except _Unsupported as exc:
            return RuleOutcome("ERROR", f"localaws does not evaluate rule type {exc}: the rule cannot pass here")

    def _evaluate(self, rule: Rule) -> RuleOutcome:
        if rule.composite:
            parts = [self._evaluate(child) for child in rule.children]
            metrics = {k: v for p in parts for k, v in p.metrics.items()}
            results = [p.result for p in parts]
            if "ERROR" in results:
                first = next(p for p in parts if p.result == "ERROR")
                return RuleOutcome("ERROR", first.message, metrics)
            ok = all(r == "PASS" for r in results) if rule.rule_type == "and" else "PASS" in results
            if ok:
                return RuleOutcome("PASS", None, metrics)
            failed = [f"{c.text}: {p.message}" for c, p in zip(rule.children, parts) if p.result != "PASS"]
            return RuleOutcome("FAIL", "; ".join(failed), metrics)
        if rule.rule_type not in SIGNATURES:
            raise _Unsupported(rule.rule_type)
        try:
            return getattr(self, f"_rule_{rule.rule_type}")(rule, self._source(rule))
        except (duckdb.Error, ValueError) as exc:
            return RuleOutcome("ERROR", f"{type(exc).__name__}: {exc}".splitlines()[0])

    # -- helpers
    @staticmethod
    def _source(rule: Rule) -> str:
        if not rule.where:
            return PRIMARY
        return f"(SELECT * FROM {PRIMARY} WHERE {spark_to_duckdb(rule.where, condition=True)})"

    def _scalar(self, sql: str) -> Any:
        row = self.con.execute(sql).fetchone()
        return row[0] if row else None

    def _column(self, name: str) -> str:
        if name.lower() not in {c.lower() for c in self.columns}:
            raise ValueError(f"column {name} does not exist in the data source")
        return _ident(name)

    @staticmethod
    def _aggregate(value: float | None, expr: Expression, metrics: dict[str, float]) -> RuleOutcome:
        if compare(value, expr):
            return RuleOutcome("PASS", None, metrics)
        shown = "NULL" if value is None else _number(value)
        return RuleOutcome("FAIL", f"Value: {shown} does not meet the constraint requirement!", metrics)

    def _fraction(self, source: str, predicate: str) -> tuple[float, int, int]:
        total, passed = self.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {predicate}) FROM {source}").fetchone()
        return (passed / total if total else 1.0), passed, total

    # -- rule types
    def _rule_RowCount(self, rule: Rule, src: str) -> RuleOutcome:
        n = self._scalar(f"SELECT count(*) FROM {src}")
        return self._aggregate(float(n), rule.expression, {"Dataset.*.RowCount": float(n)})

    def _completeness(self, rule: Rule, src: str) -> float:
        col = self._column(rule.params[0])
        value, _, _ = self._fraction(src, f"{col} IS NOT NULL")
        return value

    def _rule_Completeness(self, rule: Rule, src: str) -> RuleOutcome:
        value = self._completeness(rule, src)
        return self._aggregate(value, rule.expression, {f"Column.{rule.params[0]}.Completeness": value})

    def _rule_IsComplete(self, rule: Rule, src: str) -> RuleOutcome:
        value = self._completeness(rule, src)
        return self._aggregate(value, Expression("=", (1.0,)), {f"Column.{rule.params[0]}.Completeness": value})

    def _uniqueness(self, columns: list[str], src: str) -> tuple[str, float]:
        cols = ", ".join(self._column(c) for c in columns)
        not_null = " AND ".join(f"{self._column(c)} IS NOT NULL" for c in columns)
        total = self._scalar(f"SELECT count(*) FROM {src}")
        unique = self._scalar(f"SELECT count(*) FROM (SELECT {cols} FROM {src} WHERE {not_null} GROUP BY {cols} "
                              f"HAVING count(*) = 1)")
        name = f"Column.{columns[0]}.Uniqueness" if len(columns) == 1 else f"Multicolumn.{','.join(columns)}.Uniqueness"
        return name, (unique / total if total else 1.0)

    def _rule_Uniqueness(self, rule: Rule, src: str) -> RuleOutcome:
        name, value = self._uniqueness(rule.params, src)
        return self._aggregate(value, rule.expression, {name: value})

    def _rule_IsUnique(self, rule: Rule, src: str) -> RuleOutcome:
        name, value = self._uniqueness(rule.params, src)
        return self._aggregate(value, Expression("=", (1.0,)), {name: value})

    def _rule_IsPrimaryKey(self, rule: Rule, src: str) -> RuleOutcome:
        metrics: dict[str, float] = {}
        for col in rule.params:
            metrics[f"Column.{col}.Completeness"], _, _ = self._fraction(src, f"{self._column(col)} IS NOT NULL")
        name, unique = self._uniqueness(rule.params, src)
        metrics[name] = unique
        bad = [k for k, v in metrics.items() if v != 1.0]
        if not bad:
            return RuleOutcome("PASS", None, metrics)
        return RuleOutcome("FAIL", "; ".join(f"{k}: Value: {_number(metrics[k])} does not meet the constraint "
                                             f"requirement!" for k in bad), metrics)

    def _row_rule(self, rule: Rule, src: str, value_sql: str, metrics: dict[str, float]) -> RuleOutcome:
        name = rule.params[0]
        fraction, passed, total = self._fraction(src, row_predicate(value_sql, rule.expression))
        metrics[f"Column.{name}.ColumnValues.Compliance"] = fraction
        if rule.threshold is not None:
            if compare(fraction, rule.threshold):
                return RuleOutcome("PASS", None, metrics)
            return RuleOutcome("FAIL", f"Value: {_number(fraction)} does not meet the constraint requirement! "
                                       f"({passed} of {total} rows satisfy the expression)", metrics)
        if passed == total:
            return RuleOutcome("PASS", None, metrics)
        return RuleOutcome("FAIL", f"{total - passed} of {total} rows do not meet the constraint requirement!",
                           metrics)

    def _date(self, value: Now) -> datetime:
        return self.now + timedelta(hours=value.hours)

    def _rule_ColumnValues(self, rule: Rule, src: str) -> RuleOutcome:
        col = self._column(rule.params[0])
        expr = rule.expression
        if any(isinstance(v, Now) for v in expr.values):
            values = tuple(self._date(v) if isinstance(v, Now) else v for v in expr.values)
            rule = Rule(rule.rule_type, rule.text, rule.params, Expression(expr.op, values, expr.negated),
                        rule.threshold, rule.where)
            col = f"TRY_CAST({col} AS TIMESTAMP)"
        return self._row_rule(rule, src, col, {})

    def _rule_DataFreshness(self, rule: Rule, src: str) -> RuleOutcome:
        name = rule.params[0]
        age = (f"((epoch({_literal(self.now)}) - epoch(TRY_CAST({self._column(name)} AS TIMESTAMP))) / 3600.0)")
        expr = rule.expression
        hours = Expression(expr.op, tuple(v.hours if isinstance(v, Duration) else v for v in expr.values), expr.negated)
        fraction, passed, total = self._fraction(src, row_predicate(age, hours))
        metrics = {f"Column.{name}.DataFreshness.Compliance": fraction}
        ok = compare(fraction, rule.threshold) if rule.threshold is not None else passed == total
        if ok:
            return RuleOutcome("PASS", None, metrics)
        return RuleOutcome("FAIL", f"{fraction * 100:.2f} % of rows passed the threshold", metrics)

    def _rule_ColumnLength(self, rule: Rule, src: str) -> RuleOutcome:
        col = self._column(rule.params[0])
        length = f"length(CAST({col} AS VARCHAR))"
        low, high = self.con.execute(f"SELECT min({length}), max({length}) FROM {src}").fetchone()
        metrics = {}
        if low is not None:
            metrics = {f"Column.{rule.params[0]}.MinimumLength": float(low),
                       f"Column.{rule.params[0]}.MaximumLength": float(high)}
        return self._row_rule(rule, src, length, metrics)

    def _rule_ColumnExists(self, rule: Rule, src: str) -> RuleOutcome:
        if rule.params[0].lower() in {c.lower() for c in self.columns}:
            return RuleOutcome("PASS")
        return RuleOutcome("FAIL", f"Column {rule.params[0]} does not exist")

    def _column_aggregate(self, rule: Rule, src: str, sql: str, metric: str) -> RuleOutcome:
        col = self._column(rule.params[0])
        value = self._scalar(f"SELECT {sql.format(col=col)} FROM {src}")
        value = None if value is None else float(value)
        metrics = {} if value is None else {f"Column.{rule.params[0]}.{metric}": value}
        return self._aggregate(value, rule.expression, metrics)

    def _rule_DistinctValuesCount(self, rule: Rule, src: str) -> RuleOutcome:
        return self._column_aggregate(rule, src, "count(DISTINCT {col})", "DistinctValuesCount")

    def _rule_Mean(self, rule: Rule, src: str) -> RuleOutcome:
        return self._column_aggregate(rule, src, "avg({col})", "Mean")

    def _rule_Sum(self, rule: Rule, src: str) -> RuleOutcome:
        return self._column_aggregate(rule, src, "sum({col})", "Sum")

    def _rule_StandardDeviation(self, rule: Rule, src: str) -> RuleOutcome:
        return self._column_aggregate(rule, src, "stddev_pop({col})", "StandardDeviation")

    def _rule_CustomSql(self, rule: Rule, src: str) -> RuleOutcome:
        if rule.where:
            raise ValueError("CustomSql takes no 'where': put the condition in its SQL")
        sql = spark_to_duckdb(rule.params[0])
        rows = self.con.execute(sql).fetchmany(2)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise ValueError("CustomSql must return exactly one value (one row of one column)")
        value = None if rows[0][0] is None else float(rows[0][0])
        return self._aggregate(value, rule.expression, {} if value is None else {"Dataset.*.CustomSQL": value})

    def _rule_ReferentialIntegrity(self, rule: Rule, src: str) -> RuleOutcome:
        mine = [c.strip() for c in rule.params[0].split(",")]
        alias, _, rest = rule.params[1].partition(".")
        theirs = [c.strip() for c in rest.strip("{}").split(",")]
        if alias not in self.references:
            raise ValueError(f"no additional data source named {alias!r} in this run (AdditionalDataSources)")
        if len(mine) != len(theirs) or not rest:
            raise ValueError(f"ReferentialIntegrity needs as many reference columns as primary columns: {rule.text}")
        view, ref_columns = self.references[alias]
        for c in theirs:
            if c.lower() not in {r.lower() for r in ref_columns}:
                raise ValueError(f"column {c} does not exist in data source {alias}")
        cols = [self._column(c) for c in mine]
        match = " AND ".join(f"r.{_ident(t)} = p.{c}" for t, c in zip(theirs, cols))
        predicate = f"EXISTS (SELECT 1 FROM {_ident(view)} AS r WHERE {match})"
        total, passed = self.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {predicate}) FROM {src} AS p").fetchone()
        value = passed / total if total else 1.0
        return self._aggregate(value, rule.expression, {f"Column.{alias}.ReferentialIntegrity": value})
