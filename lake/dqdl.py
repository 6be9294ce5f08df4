"""Glue Data Quality rulesets (DQDL) generated from a dataset contract, one per gold table.

:func:`rulesets` turns a fact's contract (``include/datasets/<name>.json``) into a DQDL ruleset
text for each of its gold tables (``gold.tables``, contract order). Every rule holds for correct
data by the contract's own definition, so a ruleset run over a correct gold table passes every
rule; the DAGs' Athena data-quality checks (``include/sql/dq``) stay the source of the verdict,
these rulesets are the same facts in a form Glue Data Quality can run (provisioned by
:func:`lake.deploy.provision.dq_rulesets`, named by :meth:`lake.layout.Layout.dq_ruleset`).

Rules, in this order (DQDL reference: <https://docs.aws.amazon.com/glue/latest/dg/dqdl.html>):

* ``RowCount > 0``, unless the source allows an empty day (``source.allow_empty``, as sales').
* ``ColumnExists "<c>"`` for every column the contract names for the table: on the row-level gold
  table (:attr:`lake.layout.Layout.gold_fact_table`, which carries every silver column) the
  contract's columns, then the partition column, then the gold table's ``not_null`` /
  ``unique_key`` columns and the ``plausible`` / ``allowed_values`` / ``date_bounds`` columns not
  listed yet; on an aggregate gold table the partition column and its ``not_null`` /
  ``unique_key`` columns.
* ``IsComplete "<c>"`` for the ``required`` columns (row-level table) and the table's ``not_null``.
* ``IsPrimaryKey "<a>" "<b>" ...`` on the table's ``gold.tables.<t>.unique_key`` (each gold
  table's key identifies a row across all its partitions: it holds the day or a timestamp).
* Row-level table only: ``ColumnValues "<c>" >= min`` / ``<= max`` for each column's hard bounds
  (``min``/``max``, inclusive, enforced by the extractor) and for ``gold.plausible`` (inclusive, as
  ``include/sql/dq/plausible_bounds.sql``); ``ColumnValues "<c>" in [...]`` for
  ``gold.allowed_values``; ``ColumnValues "<c>" >= "YYYY-MM-DD"`` / ``<=`` for ``gold.date_bounds``.
  DQDL's ``between`` excludes its ends, so inclusive bounds are two rules. A column that may be
  null (not ``required`` and not in ``not_null``) gets ``where "<c> IS NOT NULL"``: DQDL's
  ColumnValues fails NULL rows, the contract and the Athena checks let them through.

Not generated: dimension references (ReferentialIntegrity needs the run's extra data sources)
and cross-table facts (``gold_matches_silver``); those stay with the Athena checks.

The output is deterministic: same contract, same text, byte for byte (numbers print as the
contract writes them, integers without ``.0``).
"""

from __future__ import annotations

import json
from typing import Any

from lake.contracts import Contract, ContractError
from lake.layout import Layout


def _q(text: str) -> str:
    """A DQDL string literal: ``"text"`` (JSON escaping of ``"`` and ``\\``)."""
    return json.dumps(str(text), ensure_ascii=False)


def _n(value: float) -> str:
    """A number as DQDL text: ``1900``, ``0.1``, ``-120``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _bounds(col: str, low: Any, high: Any, nullable: bool, literal=_n) -> list[str]:
    where = f" where {_q(f'{col} IS NOT NULL')}" if nullable else ""
    rules = []
    if low is not None:
        rules.append(f"ColumnValues {_q(col)} >= {literal(low)}{where}")
    if high is not None:
        rules.append(f"ColumnValues {_q(col)} <= {literal(high)}{where}")
    return rules


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def rules_for(lay: Layout, table: str) -> list[str]:
    """The DQDL rules (one text each, in the order of the module docstring) of gold ``table``.

    :raises KeyError: when ``table`` is not one of the contract's gold tables.
    """
    contract: Contract = lay.contract
    spec = contract.gold.get("tables", {}).get(table)
    if spec is None:
        raise KeyError(f"dataset {contract.name} has no gold table {table!r}; gold tables: {list(lay.gold_tables)}")
    not_null = list(spec.get("not_null", []))
    key = list(spec.get("unique_key", []))
    fact = table == lay.gold_fact_table
    plausible = contract.gold.get("plausible", {}) if fact else {}
    allowed = contract.gold.get("allowed_values", {}) if fact else {}
    dates = contract.gold.get("date_bounds", {}) if fact else {}
    base = contract.column_names if fact else []
    columns = _unique([*base, lay.partition_name, *not_null, *key, *plausible, *allowed, *dates])
    complete = _unique([*(contract.required_columns if fact else []), *not_null])

    def nullable(col: str) -> bool:
        return col not in complete

    rules = [] if contract.source.allow_empty else ["RowCount > 0"]
    rules += [f"ColumnExists {_q(c)}" for c in columns]
    rules += [f"IsComplete {_q(c)}" for c in complete]
    if key:
        rules.append("IsPrimaryKey " + " ".join(_q(c) for c in key))
    if fact:
        for col in contract.columns:
            rules += _bounds(col.name, col.min, col.max, nullable(col.name))
        for col, b in plausible.items():
            rules += _bounds(col, b.get("min"), b.get("max"), nullable(col))
        for col, values in allowed.items():
            where = f" where {_q(f'{col} IS NOT NULL')}" if nullable(col) else ""
            rules.append(f"ColumnValues {_q(col)} in [{', '.join(_q(v) for v in values)}]{where}")
        for col, b in dates.items():
            rules += _bounds(col, b.get("min"), b.get("max"), nullable(col), literal=_q)
    return rules


def ruleset(lay: Layout, table: str) -> str:
    """The DQDL text of gold ``table``: ``Rules = [`` one rule a line, 4-space indented ``]``.

    :raises KeyError: as :func:`rules_for`.
    """
    return "Rules = [\n" + ",\n".join(f"    {r}" for r in rules_for(lay, table)) + "\n]"


def rulesets(lay: Layout) -> dict[str, str]:
    """``{gold table: DQDL text}`` for every gold table of the layout's dataset, contract order.

    :raises ContractError: when the contract has no gold tables (a dimension, or a fact without ``gold.tables``).
    """
    if not lay.gold_tables:
        raise ContractError(f"dataset {lay.dataset} has no gold tables (gold.tables): no rulesets")
    return {table: ruleset(lay, table) for table in lay.gold_tables}
