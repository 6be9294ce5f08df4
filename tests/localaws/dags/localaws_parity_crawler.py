"""Test DAG: GlueCrawlerOperator (deferrable) over a target whose bucket does not exist.

The crawl fails; the task's error must carry the crawl's ``LastCrawl.ErrorMessage``.
"""

import pendulum
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerOperator
from airflow.sdk import DAG

with DAG(
    "localaws_parity_crawler",
    schedule=None,
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
):
    GlueCrawlerOperator(
        task_id="crawl_missing_bucket",
        config={"Name": "parity-dag-missing", "Role": "arn:aws:iam::123456789012:role/crawler",
                "DatabaseName": "parity_dag", "Targets": {"S3Targets": [{"Path": "parity-ops-missing/data/"}]}},
        poll_interval=1,
        deferrable=True,
    )
