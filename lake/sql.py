"""The Athena SQL under ``include/sql/``: rendering and the parameters a dataset contract gives it.

Templates are Jinja with ``{{ ds }}`` (the day, ``YYYY-MM-DD``) and ``{{ params.* }}``, as
Airflow's ``AthenaOperator`` renders them (``template_searchpath`` = ``include/sql``). They are
written in Athena's (Trino) dialect, one statement per file.

Shared by every dataset (generic, driven by :func:`params_for`):

* ``ddl/``: databases and the dimension tables (not left to the crawler).
* ``dq/``: data-quality checks; each returns the violating rows (or counts): no rows = pass.

A dataset's own, under ``<dataset>/``: ``<dataset>/dq/`` (more checks, same rule),
``<dataset>/reports/`` (the day's reports; the contract's ``gold.headline`` says which rows make
the run summary's headline) and ``<dataset>/ddl/``. A dataset file may not share a shared
file's name (the name is the task id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lake import settings
from lake.contracts import Contract
from lake.layout import Layout
from lake.layout import reference_location as reference_location_of

SQL_DIR = Path(__file__).resolve().parent.parent / "include" / "sql"


def templates(kind: str, dataset: str | None = None) -> list[str]:
    """Template paths relative to ``include/sql`` for ``kind`` (``ddl``, ``dq`` or ``reports``):
    the shared ``<kind>/*.sql`` and, with ``dataset``, the dataset's own ``<dataset>/<kind>/*.sql``,
    sorted by name (the file stem, which names the Airflow task).

    :raises ValueError: when a dataset's file has the name of a shared one.
    """
    found = [p for p in (SQL_DIR / kind).glob("*.sql")]
    if dataset:
        found += list((SQL_DIR / dataset / kind).glob("*.sql"))
    stems = [p.stem for p in found]
    repeated = sorted({n for n in stems if stems.count(n) > 1})
    if repeated:
        raise ValueError(f"include/sql: {kind} templates {repeated} exist both shared and for dataset {dataset}")
    return [p.relative_to(SQL_DIR).as_posix() for p in sorted(found, key=lambda p: p.stem)]


def name(template: str) -> str:
    """A template's name (its file stem): ``"flights/reports/worst_routes.sql"`` -> ``"worst_routes"``."""
    return Path(template).stem


def names(kind: str, dataset: str | None = None) -> list[str]:
    """Template names of :func:`templates`: e.g. ``names("dq")`` -> ``["gold_matches_silver", ...]``."""
    return [name(t) for t in templates(kind, dataset)]


def render(template: str, ds: str, params: dict[str, Any]) -> str:
    """Render ``include/sql/<template>`` with ``ds`` and ``params`` (unknown names raise).

    :raises jinja2.UndefinedError: when the template uses a parameter not in ``params``.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SQL_DIR)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.get_template(template).render(ds=ds, params=params)


def params_for(fact: Contract, dimensions: dict[str, Contract], *, silver_database: str | None = None,
               gold_database: str | None = None, reference_location: str | None = None,
               min_route_flights: int = 3, top_n: int = 10, trailing_days: int = 30,
               layout: Layout | None = None) -> dict[str, Any]:
    """The ``params`` for the dq/ and reports/ templates of a fact dataset, from its contract.

    Databases and the reference location come from ``layout`` (default: the layout of ``fact``
    with the environment's settings) unless given. Dimension tables live in the silver
    database, named as their dataset. ``fact_table`` is the gold table with one row per fact
    row (:attr:`lake.layout.Layout.gold_fact_table`), which the shared checks in ``dq/`` read;
    ``gold_tables`` maps each of the contract's gold tables to its catalog name (the dataset's
    own SQL names its tables through it, e.g. ``params.gold_tables.carrier_daily``).
    ``not_null``, ``unique_key`` are the fact table's (``gold.tables.<fact>``); ``plausible``,
    ``allowed_values``, ``date_bounds`` the contract's ``gold`` entries (``{}`` when absent);
    ``allow_empty`` the source's (an empty day passes ``dq/gold_matches_silver``).
    ``dimension_checks`` has one entry per enforced dimension of the fact (``via`` dimensions
    excluded): ``{"column", "key"}`` (a composite key's columns joined by ``", "``),
    ``"database", "table", "on": [{"column", "key"}]``.

    :returns: ``{"silver_database", "gold_database", "silver_table", "fact_table", "gold_tables",
        "partition", "not_null", "unique_key", "plausible", "allowed_values", "date_bounds",
        "allow_empty", "dimension_checks", "min_route_flights", "top_n", "trailing_days",
        "dimension_tables"}``.
    """
    lay = layout or Layout(settings.get(), fact)
    silver_database = silver_database or lay.settings.silver_database
    gold_database = gold_database or lay.settings.gold_database
    reference_location = reference_location or lay.reference_root
    gold_fact = fact.gold.get("tables", {}).get(lay.gold_fact_table, {})
    checks = []
    for dim in fact.dimensions:
        if not dim.enforce or dim.via is not None:  # a ``via`` key is the dimension's, not the fact's
            continue
        on = [{"column": column, "key": key} for column, key in dim.on.items()]
        # A composite key (sales' partsupp: l_partkey + l_suppkey) is one check on the whole key.
        checks.append({"column": ", ".join(k["column"] for k in on), "database": silver_database,
                       "table": dim.dataset, "key": ", ".join(k["key"] for k in on), "on": on})
    return {
        "silver_database": silver_database,
        "gold_database": gold_database,
        "silver_table": lay.silver_table,
        "fact_table": lay.gold_fact_table,
        "gold_tables": {table: table for _, table in lay.gold_catalog_tables},
        "partition": lay.partition_name,
        "not_null": list(gold_fact.get("not_null", [])),
        "unique_key": list(gold_fact.get("unique_key", [])),
        "plausible": dict(fact.gold.get("plausible", {})),
        "allowed_values": dict(fact.gold.get("allowed_values", {})),
        "date_bounds": dict(fact.gold.get("date_bounds", {})),
        "allow_empty": bool(fact.source.allow_empty),
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


def dimension_params(contract: Contract, database: str, reference_location: str) -> dict[str, Any]:
    """``params`` for ``ddl/create_dimension_table.sql``: database and dimension (name,
    location ``<reference_location>/<name>/`` (:func:`lake.layout.reference_location`),
    columns with Athena types)."""
    return {
        "database": database,
        "dimension": {
            "name": contract.name,
            "location": reference_location_of(reference_location, contract.name),
            "columns": [{"name": c.name, "athena_type": c.athena_type, "description": c.description}
                        for c in contract.columns],
        },
    }
