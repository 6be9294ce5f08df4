"""DagBag integrity: every DAG in dags/ imports, follows the house rules, and does no I/O at parse time."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest

from tests.helpers import REPO

DAGS = REPO / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors_and_the_expected_dags(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == {"flights_lake_daily", "sales_lake_daily", "lake_provision", "lake_dashboards_refresh",
                                "flight_events_hourly"}


def test_house_rules(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "lake" in dag.tags, dag_id
        assert dag.doc_md and dag.doc_md.strip().startswith(f"# {dag_id}"), dag_id
        assert dag.catchup is False, dag_id
        assert dag.default_args.get("retry_exponential_backoff") is True, dag_id
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.owner == "data-engineering", where
            assert task.execution_timeout is not None and task.execution_timeout <= timedelta(hours=2), where
            # Every task, the data checks too: they call AWS or XCom, which can fail transiently;
            # their verdict on the data is final by AirflowFailException (see test_pipeline).
            assert task.retries >= 2, where


def test_daily_dag_shape(dagbag):
    dag = dagbag.dags["flights_lake_daily"]
    assert dag.timetable.__class__.__name__ == "CronDataIntervalTimetable"
    assert dag.start_date.isoformat().startswith("2013-01-01") and dag.max_active_runs >= 2
    types = {t.task_id: type(t).__name__ for t in dag.tasks}
    assert types["wait_for_bronze"] == "S3KeySensor" and dag.get_task("wait_for_bronze").deferrable
    assert types["extract"] == "LambdaInvokeFunctionOperator"
    assert types["transform"] == "GlueJobOperator" and dag.get_task("transform").deferrable
    assert types["crawl_silver"] == types["crawl_gold"] == "GlueCrawlerOperator"
    assert types["notify"] == "SnsPublishOperator"
    assert sum(1 for t in types.values() if t == "AthenaOperator") >= 8
    # Every task alerts SNS on failure and on retry.
    for task in dag.tasks:
        names = {type(cb).__name__ for cb in (task.on_failure_callback or [])}
        retry_names = {type(cb).__name__ for cb in (task.on_retry_callback or [])}
        assert names == retry_names == {"SnsNotifier"}, task.task_id
    # Lineage: the data assets are outlets of the tasks that write them.
    outlets = {t.task_id: sorted(a.uri for a in t.outlets) for t in dag.tasks if t.outlets}
    assert outlets["extract"] == ["s3://lake-silver/flights", "s3://lake-silver/quarantine/flights"]
    assert outlets["transform"] == ["s3://lake-gold/carrier_daily", "s3://lake-gold/flights"]
    # The glue job may run as many days at once as the DAG.
    from lake.settings import get

    assert get().glue_max_concurrent_runs >= dag.max_active_runs


PARSE_WITHOUT_IO = r"""
import socket, sys
def refuse(*a, **k):
    raise RuntimeError("network I/O at DAG parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
import boto3, botocore.client
boto3.client = boto3.Session.client = refuse
import airflow.sdk
airflow.sdk.Variable.get = staticmethod(refuse)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(len(bag.dags), bag.import_errors)
sys.exit(1 if bag.import_errors or not bag.dags else 0)
"""


def test_hourly_dag_shape(dagbag):
    dag = dagbag.dags["flight_events_hourly"]
    # a data interval of one whole hour, UTC
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable" and dag.timetable.expression == "0 * * * *"
    assert str(dag.timetable.timezone) == "UTC"
    types = {t.task_id: type(t).__name__ for t in dag.tasks}
    sensor = dag.get_task("wait_for_watermark")
    assert sensor.mode == "reschedule" and sensor.timeout > 0
    assert types["transform"] == "GlueJobOperator" and dag.get_task("transform").deferrable
    assert types["crawl_gold"] == "GlueCrawlerOperator" and types["notify"] == "SnsPublishOperator"
    assert {t for t, k in types.items() if k == "AthenaOperator"} == {
        "data_quality.duplicate_event_id", "data_quality.event_in_hour", "data_quality.departures_match_events",
        "data_quality.gold_objects"}
    assert sensor.downstream_task_ids == {"transform"}
    assert dag.get_task("transform").downstream_task_ids == {"crawl_gold"}


def test_no_top_level_io():
    """Parsing dags/ with sockets, boto3 clients and Variable.get made to raise still works."""
    result = subprocess.run([sys.executable, "-c", PARSE_WITHOUT_IO, str(DAGS)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("5 {}")  # flights, sales, provision, dashboards, hourly


def test_ruff_air_rules_are_clean():
    """STYLE.md rule 1: ``ruff check --select AIR`` stays clean (ruff is pinned in requirements.txt)."""
    ruff = shutil.which("ruff", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: it is pinned in requirements.txt"
    result = subprocess.run([ruff, "check", "--select", "AIR", str(DAGS), str(REPO / "lake")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_refresh_runs_on_the_gold_catalog_assets(dagbag):
    from lake import assets, layout
    from lake.settings import get

    dag = dagbag.dags["lake_dashboards_refresh"]
    gold = {a.uri for n in ("flights", "sales") for a in assets.for_layout(layout.for_dataset(get(), n)).catalog_gold}
    def uris(cond):  # AssetAny of assets (nested by "|")
        return set().union(*map(uris, cond.objects)) if hasattr(cond, "objects") else {cond.uri}

    assert type(dag.timetable.asset_condition).__name__ == "AssetAny"
    assert uris(dag.timetable.asset_condition) == gold
    assert type(dag.get_task("query")).__name__ == "MappedOperator" and dag.get_task("query").operator_name == "AthenaOperator"
