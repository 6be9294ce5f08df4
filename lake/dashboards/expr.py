"""Dashboard expressions: parsed with sqlglot (Trino dialect), allowed only over known columns and
an allow-list of functions.

A calculated field, a visual's dimension or measure and a ``having`` condition are each one SQL
expression in Athena's dialect (Trino), e.g. ``revenue - cost`` or ``avg(on_time_flag)``. They are
authored in the YAML files (code), yet checked as if they were input: an expression is parsed into
a sqlglot tree and every node must be of an allowed kind (:data:`ALLOWED_NODES`), every function of
:data:`ALLOWED_FUNCTIONS` (shown by their Trino names), every column one of the dataset's. A
subquery, a table, ``*`` outside ``count(*)``, an unknown function (sqlglot's ``Anonymous``) or a
column not in the dataset is an :class:`ExpressionError`. Filter values never reach an expression:
they are bound as query parameters (:mod:`lake.dashboards.query`).

Trino functions: https://trino.io/docs/current/functions.html (Athena engine 3 runs Trino).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

#: The dialect the YAML files are written in (Athena engine version 3 is Trino).
DIALECT = "trino"

#: Aggregate functions (sqlglot classes) with their Trino names; a measure must use one.
AGGREGATES: dict[type[exp.Expression], str] = {
    exp.Count: "count", exp.Sum: "sum", exp.Avg: "avg", exp.Min: "min", exp.Max: "max",
    exp.CountIf: "count_if", exp.ApproxDistinct: "approx_distinct",
}
#: Scalar functions allowed (sqlglot classes) with their Trino names.
SCALARS: dict[type[exp.Expression], str] = {
    exp.Round: "round", exp.Floor: "floor", exp.Ceil: "ceil", exp.Abs: "abs",
    exp.Coalesce: "coalesce", exp.Nullif: "nullif", exp.Greatest: "greatest", exp.Least: "least",
    exp.Upper: "upper", exp.Lower: "lower", exp.Substring: "substr",
    exp.Year: "year", exp.Month: "month", exp.Hour: "hour", exp.DayOfWeekIso: "day_of_week",
    exp.DateTrunc: "date_trunc", exp.TimestampTrunc: "date_trunc",
}
ALLOWED_FUNCTIONS = {**AGGREGATES, **SCALARS}

#: Non-function nodes allowed: columns, literals, arithmetic, comparisons, logic, CASE/IF, CAST.
ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Neg, exp.Not,
    exp.And, exp.Or, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between,
    exp.Case, exp.If, exp.Cast, exp.TryCast, exp.DataType, exp.Var, exp.Distinct,
)


class ExpressionError(ValueError):
    """An expression that does not parse or uses what is not allowed (the message says what)."""


def parse(text: str, columns: set[str] | frozenset[str], *, aggregate: bool | None = None) -> exp.Expression:
    """Parse and check one expression.

    :param text: the expression, Trino SQL (e.g. ``sum(revenue) - sum(cost)``).
    :param columns: the column names it may use (the dataset's columns and earlier calculated fields).
    :param aggregate: ``True``: it must contain an aggregate (a measure); ``False``: it must not
        (a calculated field, a dimension); ``None``: either.
    :returns: the sqlglot tree (Trino dialect).
    :raises ExpressionError: a parse error, a node or function not allowed, an unknown column, or an
        aggregate where none may be (and the reverse).
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression")
    try:
        tree = sqlglot.parse_one(text, read=DIALECT)
    except sqlglot.errors.ParseError as exc:
        raise ExpressionError(f"does not parse as Trino SQL: {exc.errors[0]['description'] if exc.errors else exc}") from exc
    has_aggregate = False
    for node in tree.walk():
        if isinstance(node, exp.Star):
            if not isinstance(node.parent, exp.Count):
                raise ExpressionError("'*' is only allowed in count(*)")
            continue
        if isinstance(node, exp.Func) and not isinstance(node, ALLOWED_NODES):  # sqlglot's AND/OR, CASE, CAST are Funcs
            if type(node) not in ALLOWED_FUNCTIONS:
                name = node.name if isinstance(node, exp.Anonymous) else node.sql_name().lower()
                raise ExpressionError(f"function {name}() is not allowed; allowed: "
                                      f"{', '.join(sorted(set(ALLOWED_FUNCTIONS.values())))}")
            if type(node) in AGGREGATES:
                if any(isinstance(a, tuple(AGGREGATES)) for a in node.find_all(*AGGREGATES) if a is not node):
                    raise ExpressionError(f"nested aggregate in {node.sql(DIALECT)}")
                has_aggregate = True
            continue
        if not isinstance(node, ALLOWED_NODES):
            raise ExpressionError(f"{type(node).__name__} ({node.sql(DIALECT)[:60]!r}) is not allowed in an expression")
        if isinstance(node, exp.Column):
            if node.table:
                raise ExpressionError(f"column {node.sql(DIALECT)} names a table; use the column alone")
            if node.name not in columns:
                raise ExpressionError(f"unknown column {node.name!r}; the dataset's columns: {', '.join(sorted(columns))}")
    if aggregate is True and not has_aggregate:
        raise ExpressionError(f"{text!r} is not an aggregate (a measure needs one of "
                              f"{', '.join(sorted(set(AGGREGATES.values())))})")
    if aggregate is False and has_aggregate:
        raise ExpressionError(f"{text!r} aggregates; only a measure or 'having' may")
    return tree


def to_duckdb(tree: exp.Expression) -> str:
    """The expression in DuckDB's dialect (the reading side runs DuckDB over the cached Parquet)."""
    return tree.sql(dialect="duckdb")
