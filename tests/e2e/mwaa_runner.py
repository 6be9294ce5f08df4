"""Run by tests/e2e/test_mwaa_compat.py with the Python of an Airflow venv (not collected by pytest):
load the MWAA package's DAGs folder and plugin as Airflow does, then ``dag.test()`` one day of
``flights_lake_daily``. Prints one JSON line: Airflow's version, where ``lake`` came from, the DAG
ids and import errors, the plugins loaded, the run's state and each task's.

    python tests/e2e/mwaa_runner.py PACKAGE_DIR YYYY-MM-DD

The environment gives AIRFLOW_HOME (migrated), the DAGs and plugins folders (inside PACKAGE_DIR)
and ``aws_default``; it imports nothing of the tests (the venv has no test dependencies).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path


def main(package: Path, day: str) -> dict:
    import airflow
    from airflow import plugins_manager

    try:  # Airflow 3.1+
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag

    import lake

    bag = DagBag(dag_folder=str(package / "dags"))  # no examples: AIRFLOW__CORE__LOAD_EXAMPLES=False
    plugins_manager.ensure_plugins_loaded()
    plugins = [p["name"] for p in plugins_manager.get_plugin_info()]
    errors = getattr(plugins_manager, "import_errors", None)
    if errors is None:
        errors = plugins_manager._get_plugins()[1]
    out = {"airflow": airflow.__version__, "lake": lake.__file__, "dags": sorted(bag.dag_ids),
           "import_errors": {k: v[-2000:] for k, v in bag.import_errors.items()},
           "plugins": plugins, "plugin_errors": {k: str(v)[-2000:] for k, v in dict(errors).items()}}
    dag = bag.get_dag("flights_lake_daily")
    if dag is None:
        return out
    if airflow.__version__.startswith("3.0."):
        # Airflow 3.0's dag.test() does not write the DAGs' assets as active, and the task runner then
        # refuses a task with outlets (AirflowInactiveAssetInInletOrOutletException). The DAG processor
        # does, on MWAA as anywhere: do what it does (3.1+'s dag.test() does it itself).
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        bag.sync_to_db("dags-folder", None)
    run = dag.test(logical_date=datetime.fromisoformat(day).replace(tzinfo=UTC))
    out["state"] = str(run.state)
    out["tasks"] = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state)
                    for ti in run.get_task_instances()}
    return out


if __name__ == "__main__":
    print("MWAA_RUNNER " + json.dumps(main(Path(sys.argv[1]), sys.argv[2])))
