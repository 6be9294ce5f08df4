"""The Lake app (lake/dashboards/web.py) over a cache in localaws S3, the login dependency replaced
(FastAPI's dependency_overrides): pages with SVG charts, the JSON API and CSV equal DuckDB straight
over the package CSV, filters with SQL or HTML in them stay values."""

from __future__ import annotations

import csv
import io
import os
import uuid

import pytest
import sqlglot
from fastapi.testclient import TestClient

from lake import layout
from lake.dashboards import spec, web
from lake.settings import Settings
from tests.lake.helpers import GOLD_FLIGHTS_SQL

DAYS = ["2013-01-02", "2013-01-03", "2013-01-04"]


@pytest.fixture(scope="module")
def cached(localaws, duck, tmp_path_factory):
    """The flights dashboard's cache for DAYS in a fresh artifacts bucket (the dataset's own query,
    transpiled, over the tests' gold view of the CSV), as lake_dashboards_refresh would write it."""
    import boto3

    s = Settings(artifacts_bucket=f"artifacts-{uuid.uuid4().hex[:8]}")
    s3 = boto3.client("s3", endpoint_url=localaws.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=s.artifacts_bucket)
    duck.execute("CREATE SCHEMA IF NOT EXISTS gold")
    duck.execute(f"CREATE OR REPLACE VIEW gold.flights AS {GOLD_FLIGHTS_SQL}")
    ds_sql = sqlglot.transpile(spec.load("flights").datasets["flights"].query, read="trino", write="duckdb")[0]
    lay = layout.for_dataset(s, "flights")
    tmp = tmp_path_factory.mktemp("web")
    for day in DAYS:
        local = tmp / f"{day}.parquet"
        duck.execute(f"COPY (SELECT * FROM ({ds_sql}) WHERE dt = '{day}') TO '{local}' (FORMAT parquet)")
        s3.put_object(Bucket=s.artifacts_bucket, Key=lay.dashboard_key("flights", "flights", day), Body=local.read_bytes())
    return s, s3, tmp


@pytest.fixture(scope="module")
def client(cached):
    s, s3, tmp = cached
    app = web.create_app(web.Reader(s3, s, tmp / "mirror"))
    app.dependency_overrides[web.airflow_user] = lambda: "tester"
    return TestClient(app)


def test_the_api_and_csv_equal_duckdb_over_the_csv(client, duck):
    r = client.get("/api/dashboards/flights/visuals/worst_routes",
                   params=[("dates_from", "2013-01-02"), ("dates_to", "2013-01-04"), ("origin", "JFK"), ("origin", "EWR")])
    assert r.status_code == 200
    body = r.json()
    assert body["columns"] == ["origin", "dest", "dest_name", "flights", "arrived", "avg_arr_delay"]
    want = duck.execute("""SELECT f.origin, f.dest, p.name, count(*), count(arr_delay), round(avg(arr_delay), 1)
        FROM src_flights f LEFT JOIN src_airports p ON p.faa = f.dest
        WHERE dt BETWEEN '2013-01-02' AND '2013-01-04' AND origin IN ('JFK', 'EWR')
        GROUP BY ALL HAVING count(arr_delay) >= 20 ORDER BY 6 DESC NULLS LAST, 1, 2 LIMIT 10""").fetchall()
    assert [tuple(row) for row in body["rows"]] == want
    r = client.get("/dashboards/flights/visuals/on_time_by_carrier.csv", params={"carrier": "AA"})
    got = list(csv.reader(io.StringIO(r.text)))
    assert got[0] == ["dt", "carrier", "on_time_rate"]
    want = duck.execute("""SELECT dt, carrier, avg(CASE WHEN arr_delay < 15 THEN 1 ELSE 0 END) FROM src_flights
        WHERE carrier = 'AA' AND dt IN ('2013-01-02', '2013-01-03', '2013-01-04') GROUP BY ALL ORDER BY ALL""").fetchall()
    assert [(a, b, pytest.approx(float(c))) for a, b, c in got[1:]] == want


def test_the_page_renders_every_visual_with_filters_and_the_cache_age(client, duck):
    r = client.get("/dashboards/flights", params={"origin": "LGA"})
    assert r.status_code == 200 and "render;dur=" in r.headers["server-timing"]
    html = r.text
    dash = spec.load("flights")
    for v in dash.visuals:
        assert f'data-visual="{v}"' in html
    assert html.count("<svg class=\"chart") == 3  # line, stacked bar, heat map
    n = duck.execute("SELECT count(*) FROM src_flights WHERE origin = 'LGA' AND dt BETWEEN '2013-01-02' AND '2013-01-04'"
                     ).fetchone()[0]
    assert f'data-value="{n}">{n:,}<' in html
    assert '<option value="LGA" selected>LGA</option>' in html and "cache updated" in html
    assert "cdn" not in html.lower() and "<script" not in html
    alone = client.get("/dashboards/flights/visuals/delay_buckets", params={"origin": "LGA"}).text
    assert alone.count("<svg") == 1 and 'href="/dashboards/flights/visuals/delay_buckets.csv?origin=LGA"' in alone


@pytest.mark.parametrize("evil", ["JFK' OR '1'='1", "'; DROP TABLE x; --", "<script>alert(1)</script>"])
def test_a_filter_value_with_sql_or_html_stays_a_value(client, evil):
    r = client.get("/api/dashboards/flights/visuals/flights", params={"origin": evil})
    assert r.json() == {"columns": ["value"], "rows": [[0]]}
    page = client.get("/dashboards/flights", params={"origin": evil}).text
    assert "<script>alert" not in page


def test_unknown_names_are_404_and_a_bad_date_400(client):
    """(No login -> 401 needs Airflow's API server: tests/e2e/test_dashboards_browser.py.)"""
    assert client.get("/dashboards/nope").status_code == 404
    assert client.get("/api/dashboards/flights/visuals/nope").status_code == 404
    r = client.get("/api/dashboards/flights/visuals/flights", params={"dates_from": "2013-13-01"})
    assert r.status_code == 400 and "not a date" in r.json()["detail"]


def test_a_calculated_field_added_to_the_yaml_appears_on_reload(cached, duck, tmp_path):
    """The same app (no restart): a new calculated field and a visual over it, written to the
    flights file, are on the page and in the API at the next request, as DuckDB computes them."""
    s, s3, _ = cached
    folder = tmp_path / "dashboards"
    folder.mkdir()
    path = folder / "flights.yaml"
    path.write_text((spec.default_directory() / "flights.yaml").read_text())
    app = web.create_app(web.Reader(s3, s, tmp_path / "mirror"), directory=folder)
    app.dependency_overrides[web.airflow_user] = lambda: "tester"
    c = TestClient(app)
    assert "visual-long_delays" not in c.get("/dashboards/flights").text
    text = path.read_text().replace(
        "      cancelled_flag: CASE WHEN is_cancelled THEN 1 ELSE 0 END\n",
        "      cancelled_flag: CASE WHEN is_cancelled THEN 1 ELSE 0 END\n"
        "      late_hour: CASE WHEN arr_delay >= 60 THEN 1 ELSE 0 END\n")
    path.write_text(text + "  long_delays:\n    kind: kpi\n    title: An hour late or more\n"
                           "    value: sum(late_hour)\n    format: integer\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new mtime even within one clock tick
    page = c.get("/dashboards/flights", params={"origin": "EWR"}).text
    want = duck.execute("SELECT count(*) FILTER (WHERE arr_delay >= 60) FROM src_flights WHERE origin = 'EWR' "
                        "AND dt BETWEEN '2013-01-02' AND '2013-01-04'").fetchone()[0]
    assert 'id="visual-long_delays"' in page and f'data-value="{want}"' in page
    assert c.get("/api/dashboards/flights/visuals/long_delays", params={"origin": "EWR"}).json()["rows"] == [[want]]
