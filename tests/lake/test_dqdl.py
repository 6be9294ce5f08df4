"""lake/dqdl.py: the DQDL rulesets generated from the contracts, and ``lake contracts dqdl``.

Whether localaws accepts them and every rule passes on gold-like data: tests/localaws/test_lake_dq_rulesets.py.
"""

from __future__ import annotations

import pytest

from lake import cli, contracts, dqdl, layout, settings


def lay(dataset: str) -> layout.Layout:
    return layout.Layout(settings.Settings(), contracts.load(dataset))


def test_one_deterministic_ruleset_per_gold_table_from_the_contract():
    flights = dqdl.rulesets(lay("flights"))
    assert list(flights) == ["flights", "carrier_daily"]
    assert flights == dqdl.rulesets(lay("flights"))
    rules = dqdl.rules_for(lay("flights"), "flights")
    assert rules[0] == "RowCount > 0"
    assert {f'ColumnExists "{c}"' for c in lay("flights").contract.column_names + ["dt"]} <= set(rules)
    assert 'IsComplete "carrier"' in rules and 'IsComplete "dep_time"' not in rules  # dep_time: null = cancelled
    assert 'IsPrimaryKey "carrier" "flight" "origin" "sched_dep_local"' in rules
    # inclusive hard bounds as two rules (DQDL between excludes its ends); a nullable column only where set
    assert 'ColumnValues "month" >= 1' in rules and 'ColumnValues "month" <= 12' in rules
    assert 'ColumnValues "dep_time" <= 2400 where "dep_time IS NOT NULL"' in rules
    assert dqdl.rules_for(lay("flights"), "carrier_daily") == [
        "RowCount > 0", 'ColumnExists "dt"', 'ColumnExists "carrier"', 'ColumnExists "flights"',
        'IsComplete "dt"', 'IsComplete "carrier"', 'IsComplete "flights"', 'IsPrimaryKey "dt" "carrier"']
    assert flights["carrier_daily"] == "Rules = [\n    " + ",\n    ".join(
        dqdl.rules_for(lay("flights"), "carrier_daily")) + "\n]"


def test_sales_allowed_values_and_date_bounds_and_no_row_count_for_an_allowed_empty_day():
    rules = dqdl.rules_for(lay("sales"), "sales")
    assert "RowCount > 0" not in rules  # sales' source allows an empty day
    assert 'ColumnValues "l_linestatus" in ["O", "F"]' in rules
    assert 'ColumnValues "o_orderdate" <= "1998-08-02"' in rules
    assert 'ColumnValues "l_discount" <= 0.1' in rules and 'ColumnValues "o_shippriority" <= 0' in rules


def test_unknown_tables_and_datasets_without_gold_are_refused():
    with pytest.raises(KeyError, match="no gold table 'nope'"):
        dqdl.ruleset(lay("flights"), "nope")
    with pytest.raises(contracts.ContractError, match="no gold tables"):
        dqdl.rulesets(lay("airlines"))


def test_cli_prints_each_ruleset_under_its_name_and_table(capsys):
    assert cli.main(["contracts", "dqdl", "flights"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# lake_gold-flights-dq: lake_gold.flights\nRules = [\n")
    assert "# lake_gold-carrier_daily-dq: lake_gold.carrier_daily\n" in out
    assert cli.main(["contracts", "dqdl", "nope"]) == 2
