"""The MWAA package on two Airflows: the oldest Airflow 3 that Amazon MWAA offers (3.0.6, in the
venv ``make mwaa-venv`` builds under its constraints) and the pinned one (this venv).

``lake package mwaa`` builds the package once; localaws runs as a ``localaws serve`` process of this
venv, provisioned, with 2013-02-07 replayed into bronze. For each Airflow, a child process of its
venv (``tests/e2e/mwaa_runner.py``) loads the package's DAGs folder and plugins as Airflow does (the
packaged ``lake``, not this checkout's), and runs ``flights_lake_daily`` for the day with
``dag.test()`` against localaws. Each run must succeed in every task and leave silver, quarantine
and gold as DuckDB straight over the package's CSV says (rows read = written + rejected = the
day's source rows; gold = the rows without a null required column). The second run overwrites
the first's partitions, so the counts also prove the rerun duplicates nothing.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import boto3
import pyarrow.parquet as pq
import pytest

from lake import contracts, settings, source
from lake.deploy import mwaa, provision
from tests.e2e.helpers import gold_against_source
from tests.helpers import REPO, list_keys
from tests.localaws.test_server import serve

pytestmark = pytest.mark.slow  # two whole-DAG runs with a Glue Spark job each, in child processes

DAY = "2013-02-07"
MWAA_VENV = REPO / ".venv-mwaa"
RUNNER = Path(__file__).with_name("mwaa_runner.py")
OLDEST = "3.0.6"
AIRFLOWS = {f"airflow-{OLDEST}": MWAA_VENV / "bin" / "python", "pinned": Path(sys.executable)}
EXPECTED_DAGS = ["flight_events_hourly", "flights_lake_daily", "lake_dashboards_refresh", "lake_provision", "sales_lake_daily"]


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> mwaa.MwaaPackage:
    """The MWAA package for Airflow 3.0.6, with plugins.zip unzipped into ``plugins/`` as MWAA does."""
    pkg = mwaa.build(tmp_path_factory.mktemp("mwaa"), OLDEST)
    with zipfile.ZipFile(pkg.root / "plugins.zip") as zf:
        zf.extractall(pkg.root / "plugins")
    return pkg


@pytest.fixture(scope="module")
def served_lake(tmp_path_factory):
    """``localaws serve`` (this venv), provisioned, with the day in bronze: ``(served, settings, clients)``."""
    served = serve(tmp_path_factory.mktemp("localaws"))
    try:
        s = settings.get()
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=s.region)
        aws = provision.Clients(s.region, served.endpoint, session=session)
        provision.provision(s, aws)
        source.replay(contracts.load("flights"), date.fromisoformat(DAY), date.fromisoformat(DAY),
                      bucket=s.bronze_bucket, s3=aws("s3"))
        yield served, s, aws
    finally:
        served.stop()


def _child_env(package: mwaa.MwaaPackage, home: Path, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(package.root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(package.root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": ".*",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",  # 30 s by default: a loaded machine took longer
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                "extra": {"region_name": "us-east-1", "endpoint_url": endpoint}}),
        # The packaged lake first (MWAA puts the DAGs folder on sys.path), before this checkout's editable install.
        "PYTHONPATH": str(package.root / "dags"),
    })
    return env


def _installed(python: Path, names: list[str]) -> dict[str, str | None]:
    code = ("import importlib.metadata as m, json, sys\n"
            "def v(n):\n    try: return m.version(n)\n    except m.PackageNotFoundError: return None\n"
            "print(json.dumps({n: v(n) for n in sys.argv[1:]}))")
    out = subprocess.run([str(python), "-c", code, *names], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


@pytest.mark.timeout(2400)  # two Airflow imports, a migrate and a Glue Spark run in a child, on a loaded machine
@pytest.mark.parametrize("airflow", list(AIRFLOWS))
def test_package_runs_a_day(airflow, package, served_lake, duck, tmp_path):
    python = AIRFLOWS[airflow]
    if not python.exists():
        pytest.fail(f"{MWAA_VENV} is missing: run `make mwaa-venv` (Airflow {OLDEST} under its constraints)")
    served, s, aws = served_lake
    wanted = ["apache-airflow", "apache-airflow-providers-amazon", "aiobotocore",  # aiobotocore: the amazon extra
              *(r for r in package.requirements if "[" not in r)]
    versions = _installed(python, wanted)
    missing = [n for n, v in versions.items() if v is None]
    assert not missing, f"{python} lacks {missing}: run `make mwaa-venv` again (the package's requirements changed)"
    if airflow != "pinned":
        assert versions["apache-airflow"] == OLDEST

    env = _child_env(package, tmp_path / "airflow", served.endpoint)
    migrate = subprocess.run([str(python), "-m", "airflow", "db", "migrate"], check=False, env=env,
                             capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    child = subprocess.run([str(python), str(RUNNER), str(package.root), DAY], check=False, env=env,
                           capture_output=True, text=True, timeout=1500)
    lines = [line for line in child.stdout.splitlines() if line.startswith("MWAA_RUNNER ")]
    assert child.returncode == 0 and lines, f"exit {child.returncode}:\n{child.stdout[-4000:]}\n{child.stderr[-4000:]}"
    result = json.loads(lines[-1].removeprefix("MWAA_RUNNER "))
    print(airflow, "Airflow", result["airflow"], "tasks", len(result.get("tasks", {})))

    assert result["airflow"] == versions["apache-airflow"]
    assert Path(result["lake"]).is_relative_to(package.root / "dags"), result["lake"]
    assert result["import_errors"] == {}
    assert result["dags"] == EXPECTED_DAGS
    assert "lake" in result["plugins"] and result["plugin_errors"] == {}
    failed = {t: st for t, st in result["tasks"].items() if st != "success"}
    assert result["state"] == "success" and not failed, failed

    # The day's data against DuckDB over the source CSV: read = written + rejected = the day's rows.
    day_rows = duck.execute(f"SELECT count(*) FROM src_flights WHERE dt = '{DAY}'").fetchone()[0]
    s3 = aws("s3")

    def rows(bucket: str, prefix: str) -> int:
        return sum(pq.read_metadata(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows
                   for k in list_keys(s3, bucket, prefix) if k.endswith(".parquet"))

    written = rows(s.silver_bucket, f"flights/dt={DAY}/")
    rejected = rows(s.silver_bucket, f"{s.quarantine_prefix}/flights/dt={DAY}/")
    assert written + rejected == day_rows
    lost, duplicated = gold_against_source(SimpleNamespace(endpoint_url=served.endpoint), duck, [DAY])
    assert (lost, duplicated) == (0, 0)
