"""The Athena SQL under ``include/sql/``: rendering and the parameters a dataset contract gives it.

Templates are Jinja with ``{{ ds }}`` (the day, ``YYYY-MM-DD``) and ``{{ params.* }}``, as
Airflow's ``AthenaOperator`` renders them (``template_searchpath`` = ``include/sql``). They are
written in Athena's (Trino) dialect, one statement per file.

* ``ddl/``: databases and the dimension tables (not left to the crawler).
* ``dq/``: data-quality checks; each returns the violating rows (or counts): no rows = pass.
* ``reports/``: the day's reports.

Those are flights'; a dataset with SQL of its own keeps it under ``<dataset>/dq/`` and
``<dataset>/reports/`` (e.g. ``sales/dq``: ``templates("sales/dq")``), with the parameters of
:func:`dataset_params`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lake.contracts import Contract

SQL_DIR = Path(__file__).resolve().parent.parent / "include" / "sql"


def templates(kind: str) -> list[str]:
    """Template paths relative to ``include/sql`` for ``kind`` (``ddl``, ``dq`` or ``reports``), sorted."""
    return sorted(p.relative_to(SQL_DIR).as_posix() for p in (SQL_DIR / kind).glob("*.sql"))


def names(kind: str) -> list[str]:
    """Template names (file stems) of ``kind``, sorted: e.g. ``names("dq")`` -> ``["gold_matches_silver", ...]``."""
    return [Path(t).stem for t in templates(kind)]


def render(template: str, ds: str, params: dict[str, Any]) -> str:
    """Render ``include/sql/<template>`` with ``ds`` and ``params`` (unknown names raise).

    :raises jinja2.UndefinedError: when the template uses a parameter not in ``params``.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SQL_DIR)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.get_template(template).render(ds=ds, params=params)


def params_for(fact: Contract, dimensions: dict[str, Contract], *, silver_database: str = "lake_silver",
               gold_database: str = "lake_gold", reference_location: str = "s3://lake-silver/reference/",
               min_route_flights: int = 3, top_n: int = 10, trailing_days: int = 30) -> dict[str, Any]:
    """The ``params`` for the dq/ and reports/ templates of a fact dataset, from its contract.

    Dimension tables live in ``silver_database``, named as their dataset; gold tables are
    ``flights`` (the fact's table) and ``carrier_daily``.

    :returns: ``{"silver_database", "gold_database", "silver_table", "flights_table",
        "carrier_daily_table", "partition", "not_null", "unique_key", "plausible",
        "dimension_checks", "min_route_flights", "top_n", "trailing_days", "dimension_tables"}``.
    """
    gold_flights = fact.gold.get("tables", {}).get(fact.table, {})
    checks = []
    for dim in fact.dimensions:
        if dim.enforce:
            for column, key in dim.on.items():
                checks.append({"column": column, "database": silver_database, "table": dim.dataset, "key": key})
    return {
        "silver_database": silver_database,
        "gold_database": gold_database,
        "silver_table": fact.table,
        "flights_table": fact.table,
        "carrier_daily_table": "carrier_daily",
        "partition": fact.partition_name,
        "not_null": list(gold_flights.get("not_null", [])),
        "unique_key": list(gold_flights.get("unique_key", [])),
        "plausible": dict(fact.gold.get("plausible", {})),
        "dimension_checks": checks,
        "min_route_flights": min_route_flights,
        "top_n": top_n,
        "trailing_days": trailing_days,
        "dimension_tables": {
            name: dimension_params(contract, silver_database, reference_location)
            for name, contract in dimensions.items()
            if contract.kind == "dimension"
        },
    }


def dataset_params(fact: Contract, *, silver_database: str = "lake_silver", gold_database: str = "lake_gold",
                   top_n: int = 10) -> dict[str, Any]:
    """The ``params`` for a dataset's own templates (``include/sql/<dataset>/dq`` and ``reports``,
    e.g. sales), every name from its contract: gold tables are named as in ``gold.tables``,
    dimension tables as their dataset, in ``silver_database``.

    :returns: ``{"silver_database", "gold_database", "silver_table", "partition", "fact_table"
        (the gold table named as the silver one), "gold_tables": {name: {"table", "unique_key",
        "not_null"}}, "plausible", "allowed_values", "date_bounds" (the contract's ``gold``
        entries, ``{}`` when absent), "dimension_checks": [{"dataset", "role", "database",
        "table", "on": [{"column", "key"}]}] (the enforced dimensions; a composite key is one
        check), "top_n"}``.
    """
    gold = fact.gold
    return {
        "silver_database": silver_database,
        "gold_database": gold_database,
        "silver_table": fact.table,
        "partition": fact.partition_name,
        "fact_table": fact.table,
        "gold_tables": {name: {"table": name, "unique_key": list(spec.get("unique_key", [])),
                               "not_null": list(spec.get("not_null", []))}
                        for name, spec in gold.get("tables", {}).items()},
        "plausible": dict(gold.get("plausible", {})),
        "allowed_values": dict(gold.get("allowed_values", {})),
        "date_bounds": dict(gold.get("date_bounds", {})),
        "dimension_checks": [
            {"dataset": dim.dataset, "role": dim.role, "database": silver_database, "table": dim.dataset,
             "on": [{"column": column, "key": key} for column, key in dim.on.items()]}
            for dim in fact.dimensions if dim.enforce and dim.via is None
        ],
        "top_n": top_n,
    }


def dimension_params(contract: Contract, database: str, reference_location: str) -> dict[str, Any]:
    """``params`` for ``ddl/create_dimension_table.sql``: database and dimension (name,
    location ``<reference_location>/<name>/``, columns with Athena types)."""
    return {
        "database": database,
        "dimension": {
            "name": contract.name,
            "location": f"{reference_location.rstrip('/')}/{contract.name}/",
            "columns": [{"name": c.name, "athena_type": c.athena_type, "description": c.description}
                        for c in contract.columns],
        },
    }
