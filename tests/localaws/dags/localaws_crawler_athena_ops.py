"""Test DAG: the provider's Glue crawler and Athena operators and sensor against localaws.

Crawls the flights (waiting) and airports (deferrable) folders of bucket ``athena-lake`` into
database ``dagdb``, runs a templated ``.sql`` file from ``$LOCALAWS_ATHENA_SQL_DIR`` and a
deferrable query with AthenaOperator, and submits a query that AthenaSensor waits for.
"""

import os

import pendulum
from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerOperator
from airflow.providers.amazon.aws.sensors.athena import AthenaSensor
from airflow.sdk import DAG, task

BUCKET = "athena-lake"
OUTPUT = f"s3://{BUCKET}/dag-results/"
ROLE = "arn:aws:iam::123456789012:role/crawler"

with DAG(
    "localaws_crawler_athena_ops",
    schedule=None,
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    template_searchpath=[os.environ.get("LOCALAWS_ATHENA_SQL_DIR", "/tmp")],
    params={"table": "flights"},
):
    crawl_flights = GlueCrawlerOperator(
        task_id="crawl_flights",
        config={"Name": "dag-flights-crawler", "Role": ROLE, "DatabaseName": "dagdb",
                "Targets": {"S3Targets": [{"Path": f"s3://{BUCKET}/raw/flights/"}]}},
        poll_interval=1,
        wait_for_completion=True,
    )
    crawl_airports = GlueCrawlerOperator(
        task_id="crawl_airports",
        config={"Name": "dag-airports-crawler", "Role": ROLE, "DatabaseName": "dagdb", "TablePrefix": "ref_",
                "Targets": {"S3Targets": [{"Path": f"s3://{BUCKET}/raw/airports/"}]}},
        poll_interval=1,
        deferrable=True,
    )
    daily = AthenaOperator(
        task_id="daily_delays",
        query="daily_delays.sql",
        database="dagdb",
        output_location=OUTPUT,
        sleep_time=1,
    )
    west = AthenaOperator(
        task_id="west_coast_deferred",
        query="""-- localaws-dag-deferred
            SELECT f.carrier, count(*) AS n FROM flights f JOIN ref_airports a ON f.dest = a.faa
            WHERE f.dt = '{{ ds }}' AND a.tzone = 'America/Los_Angeles'
            GROUP BY f.carrier ORDER BY n DESC, f.carrier""",
        database="dagdb",
        output_location=OUTPUT,
        sleep_time=1,
        deferrable=True,
    )

    @task
    def submit(ds=None) -> str:
        """Start a query without waiting; the sensor waits for it."""
        return AthenaHook().run_query(
            f"-- localaws-dag-sensor\nSELECT count(*) FROM flights WHERE dt = '{ds}'",
            {"Database": "dagdb"},
            {"OutputLocation": OUTPUT},
        )

    submitted = submit()
    wait = AthenaSensor(
        task_id="wait_for_query",
        query_execution_id="{{ ti.xcom_pull(task_ids='submit') }}",
        sleep_time=1,
        poke_interval=1,
    )
    crawl_flights >> crawl_airports >> [daily, west]
    crawl_flights >> submitted >> wait
