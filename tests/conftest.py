"""Shared fixtures: localaws in-process, and an isolated Airflow (SQLite) for ``dag.test()`` runs.

Airflow reads its configuration at import, so the environment is set here, before any test
module imports airflow: AIRFLOW_HOME and the DAGs folder live in a temporary directory per
test session and the examples are off.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="lake-tests-airflow-"))
DAGS_FOLDER = _AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": ".*",
    }
)

pytest_plugins = ["localaws.pytest_plugin"]

REPO = Path(__file__).resolve().parent.parent
#: The secret access key of the tests' ``aws_default`` connection: distinctive, so tests can prove
#: it never appears in task logs, XCom or rendered templates.
AWS_TEST_SECRET = "lake-test-secret-9f3c61d2"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised Airflow metadata database (SQLite) for this test session."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                            env=os.environ.copy())
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_aws(localaws, airflow_db):
    """Airflow's ``aws_default`` connection pointed at localaws (an env-var connection)."""
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": AWS_TEST_SECRET,
            "extra": {"region_name": "us-east-1", "endpoint_url": localaws.endpoint_url},
        }
    )
    yield localaws
    os.environ.pop("AIRFLOW_CONN_AWS_DEFAULT", None)


@pytest.fixture
def run_dag(airflow_aws):
    """``run_dag(dag_file, dag_id, logical_date=None, conf=None)`` -> the finished DagRun.

    Copies the DAG file into the session's DAGs folder (``dag.test()`` serializes DAGs from
    there), loads it and runs it with ``dag.test()``: every task really runs, in this process.
    """

    def run(dag_file: Path, dag_id: str, logical_date=None, conf: dict | None = None):
        dest = DAGS_FOLDER / Path(dag_file).name
        shutil.copy(dag_file, dest)
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(dest))
        assert not bag.import_errors, f"DAG file {dag_file} does not import: {bag.import_errors}"
        dag = bag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id} in {dag_file}"
        return dag.test(logical_date=logical_date, run_conf=conf)

    return run
