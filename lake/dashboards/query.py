"""The reading side's SQL: a visual of a dashboard as one DuckDB query over a dataset's rows.

:func:`dataset_sql` is the dataset as a relation (the cached Parquet files plus the calculated
fields, each a column computed from the ones before it); :func:`visual_sql` is one visual over it
with the request's filters. Expressions come from the checked dashboard file
(:mod:`lake.dashboards.expr`, transpiled Trino -> DuckDB by sqlglot); filter values are never
spliced into the SQL: each is a ``?`` parameter, returned beside the SQL for DuckDB to bind.

Filters in a request (a URL's query string), per filter ``<f>`` of the dashboard:

* ``date_range``: ``<f>_from=YYYY-MM-DD`` and/or ``<f>_to=YYYY-MM-DD`` (inclusive);
* ``select``: ``<f>=<value>`` once or more (rows whose column is any of the values).

Names that are no filter of the dashboard are ignored (e.g. ``format=csv``); an ill-formed date is a
:class:`FilterError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlglot import exp

from lake.dashboards import expr
from lake.dashboards.spec import Dashboard, Dataset, DateRangeFilter, RunsDataset, Table


class FilterError(ValueError):
    """A filter value that is not what the filter takes (the message names filter and value)."""


def ident(name: str) -> str:
    """A name as a quoted DuckDB identifier."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _literal(text: str) -> str:
    return exp.Literal.string(text).sql("duckdb")


def dataset_sql(ds: Dataset, files: Sequence[str]) -> str:
    """The dataset's rows: ``read_parquet`` of the cached ``files`` (local paths) (the ``dt=`` folders are not read as columns:
    the files hold ``dt`` as Athena typed it) plus a column per
    calculated field. :raises ValueError: no files (the cache has no partition yet)."""
    if not files:
        raise ValueError("no cached Parquet files for the dataset")
    return calculated_sql(ds, f"SELECT * FROM read_parquet([{', '.join(_literal(f) for f in files)}], "
                              "union_by_name=true, hive_partitioning=false)")


def calculated_sql(ds: Dataset | RunsDataset, base: str) -> str:
    """``base`` (a SELECT of the dataset's columns) plus a column per calculated field, each computed
    from the columns and the fields before it."""
    known = set(ds.columns)
    for name, text in ds.calculated.items():
        base = f"SELECT *, {expr.to_duckdb(expr.parse(text, known, aggregate=False))} AS {ident(name)} FROM ({base})"
        known.add(name)
    return base


def parse_filters(dash: Dashboard, dataset: str, params: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The request's values of the filters that apply to ``dataset`` (module docstring).

    :param params: query-string names -> their values (each name may repeat).
    :returns: ``{"<f>_from": [day], "<f>_to": [day], "<f>": [v, ...]}``, only those given.
    :raises FilterError: a date that is not ``YYYY-MM-DD``.
    """
    out: dict[str, list[str]] = {}
    for name, f in dash.filters_for(dataset).items():
        if isinstance(f, DateRangeFilter):
            for key in (f"{name}_from", f"{name}_to"):
                values = [v for v in params.get(key, []) if v]
                if values:
                    try:
                        date.fromisoformat(values[-1])
                    except ValueError as exc:
                        raise FilterError(f"filter {key}: {values[-1]!r} is not a date YYYY-MM-DD") from exc
                    out[key] = [values[-1]]
        else:
            values = [v for v in params.get(name, []) if v != ""]
            if values:
                out[name] = list(dict.fromkeys(values))
    return out


def _where(dash: Dashboard, dataset: str, values: Mapping[str, Sequence[str]]) -> tuple[str, list[Any]]:
    conds, args = [], []
    for name, f in dash.filters_for(dataset).items():
        col = f"CAST({ident(f.column)} AS VARCHAR)"
        if isinstance(f, DateRangeFilter):
            for key, op in ((f"{name}_from", ">="), (f"{name}_to", "<=")):
                if values.get(key):
                    conds.append(f"{col} {op} ?")
                    args.append(values[key][0])
        elif values.get(name):
            conds.append(f"{col} IN ({', '.join('?' for _ in values[name])})")
            args += list(values[name])
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


def visual_sql(dash: Dashboard, visual: str, relation: str,
               values: Mapping[str, Sequence[str]] | None = None) -> tuple[str, list[Any]]:
    """One visual as DuckDB SQL over ``relation`` (a table, a view or ``(<dataset_sql>)``).

    :param values: the filter values (:func:`parse_filters`).
    :returns: ``(sql, parameters)``; the columns are the visual's dimensions then its measures,
        rows ordered by the dimensions (a table: by its ``order_by``, then limited).
    """
    v = dash.visuals[visual]
    dataset = dash.dataset_of(visual)
    cols = set(dash.datasets[dataset].fields)
    dims = v.dimensions()
    select = [ident(d) for d in dims]
    select += [f"{expr.to_duckdb(expr.parse(t, cols, aggregate=True))} AS {ident(m)}" for m, t in v.measures().items()]
    where, args = _where(dash, dataset, values or {})
    sql = f"SELECT {', '.join(select)} FROM {relation}{where}"
    if dims:
        sql += " GROUP BY " + ", ".join(ident(d) for d in dims)
    if isinstance(v, Table):
        if v.having:
            sql += f" HAVING {expr.to_duckdb(expr.parse(v.having, cols, aggregate=True))}"
        order = [f"{ident(o.lstrip('-'))} {'DESC' if o.startswith('-') else 'ASC'} NULLS LAST" for o in v.order_by]
        sql += " ORDER BY " + ", ".join(order or [ident(d) for d in dims]) + f" LIMIT {int(v.limit)}"
    elif dims:
        sql += " ORDER BY " + ", ".join(f"{ident(d)} NULLS LAST" for d in dims)
    return sql, args
