"""localaws's Glue Data Quality: DQDL rulesets evaluated on DuckDB over a Glue table's data.

A package in moto's layout:

* :mod:`.dqdl` - the DQDL grammar (pyparsing) and its checks: an invalid ruleset is refused at
  CreateDataQualityRuleset / UpdateDataQualityRuleset with ``InvalidInputException``;
* :mod:`.evaluation` - each rule type's meaning, as SQL on DuckDB (the semantics and their sources
  are in its docstring);
* :mod:`.models` - rulesets, evaluation runs and results (kept on moto's Glue backend, so they
  persist with it), and the run's background thread;
* :mod:`.responses` - the API: :func:`install` adds the operations to moto's Glue responses,
  :func:`recover_after_restart` fails runs a restart cut off.

docs/localaws.md ("Glue Data Quality") documents the behaviour.
"""

from localaws.services.glue_dq.responses import install, recover_after_restart

__all__ = ["install", "recover_after_restart"]
