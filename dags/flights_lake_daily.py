"""
# flights_lake_daily

One run per day (data interval = the whole day, `{{ ds }}`) turns the day's raw flights export
into trusted, queryable tables:

| task | what happens to the data |
|---|---|
| `wait_for_bronze` | waits (deferred) for `s3://<bronze>/flights/ingest_date={{ ds }}/` zip + manifest |
| `extract` | Lambda extractor: unzip, validate against `include/datasets/flights.json`; good rows -> silver Parquet `dt={{ ds }}`, rejected rows -> quarantine (with line number and reason) |
| `check_extract` | rows read = written + rejected; fails above `LAKE_MAX_REJECT_RATE` (no retry: same counts) |
| `transform` | Glue job: silver -> gold `flights` + `carrier_daily`, overwriting only `dt={{ ds }}` |
| `crawl_silver`, `crawl_gold` | Glue crawlers add the day's partitions to the catalog |
| `data_quality.*` | Athena runs `include/sql/dq/*.sql`; `evaluate` fails the run naming each failing check (no retry) |
| `reports.*` | Athena runs `include/sql/reports/*.sql` |
| `summarize` -> `notify` | SNS: the run summary (counts, DQ, on-time rate, worst route) |

Every failure and every retry of any task is published to the SNS topic too. Every task writes
only its day's partition and overwrites it: reruns and backfills never duplicate rows.

Backfill missed days: `airflow backfill create --dag-id flights_lake_daily --from-date 2013-01-01
--to-date 2013-01-07`. Names come from `lake/layout.py` (built from `lake/settings.py`'s `LAKE_*`
variables and the dataset contract); the AWS endpoint and credentials from the `aws_default`
connection.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerOperator
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import DAG, CronDataIntervalTimetable, TaskGroup, task

from lake import assets, contracts, layout, pipeline, sql
from lake.settings import get as get_settings

S = get_settings()
L = layout.for_dataset(S)
SQL_PARAMS = sql.params_for(L.contract, {n: contracts.load(n) for n in L.dimensions}, layout=L)
LAKE = assets.for_layout(L)

ALERT_MESSAGE = ("{{ dag.dag_id }}, run {{ run_id }}, day {{ ds }}: task {{ ti.task_id }} (try {{ ti.try_number }}) "
                 "%s: {{ exception }}")
ON_FAILURE = SnsNotifier(target_arn=S.topic_arn, region_name=S.region,
                         subject="lake {{ ds }}: {{ ti.task_id }} FAILED", message=ALERT_MESSAGE % "failed")
ON_RETRY = SnsNotifier(target_arn=S.topic_arn, region_name=S.region,
                       subject="lake {{ ds }}: {{ ti.task_id }} will retry", message=ALERT_MESSAGE % "will retry")

with DAG(
    dag_id="flights_lake_daily",
    description="Daily flights: bronze zip -> Lambda -> silver -> Glue -> gold -> crawler -> Athena DQ/reports -> SNS",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=S.max_active_runs,
    dagrun_timeout=timedelta(hours=6),
    template_searchpath=[str(sql.SQL_DIR)],
    tags=["lake", S.dataset, "daily"],
    default_args={
        "owner": "data-engineering",
        "retries": S.retries,
        "retry_delay": timedelta(seconds=S.retry_delay),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": [ON_FAILURE],
        "on_retry_callback": [ON_RETRY],
    },
) as dag:
    wait_for_bronze = S3KeySensor(
        task_id="wait_for_bronze",
        bucket_name=L.bronze_bucket,
        bucket_key=[L.bronze_key_template, L.manifest_key_template],
        deferrable=S.sensor_deferrable,
        poke_interval=S.sensor_poke_interval,
        timeout=S.sensor_timeout,
        inlets=[LAKE.bronze],
    )

    extract = LambdaInvokeFunctionOperator(
        task_id="extract",
        function_name=S.lambda_function,
        payload=L.lambda_payload(),
        invocation_type="RequestResponse",
        log_type="Tail",
        botocore_config={"read_timeout": S.lambda_timeout + 60, "connect_timeout": 10,
                         "retries": {"total_max_attempts": 1}},
        execution_timeout=timedelta(seconds=S.lambda_timeout + 120),
        outlets=[LAKE.silver, LAKE.quarantine],
    )

    @task
    def check_extract(payload: str) -> dict:
        """Fail the run (no retry) when the extractor's counts break the invariant or the reject rate."""
        with pipeline.verdict_is_final():
            return pipeline.check_extract(payload, S.max_reject_rate)

    checked = check_extract(extract.output)

    transform = GlueJobOperator(
        task_id="transform",
        job_name=L.glue_job,
        script_args={"--ds": "{{ ds }}"},
        verbose=True,
        deferrable=True,
        wait_for_completion=True,
        waiter_delay=10,
        waiter_max_attempts=S.glue_timeout * 6 + 6,
        execution_timeout=timedelta(minutes=S.glue_timeout + 10),
        outlets=list(LAKE.gold),
    )

    crawl_silver = GlueCrawlerOperator(
        task_id="crawl_silver",
        config={"Name": L.silver_crawler},
        poll_interval=5,
        max_active_tis_per_dag=1,  # one crawl of a crawler at a time across runs
        outlets=[LAKE.catalog_silver],
    )
    crawl_gold = GlueCrawlerOperator(
        task_id="crawl_gold",
        config={"Name": L.gold_crawler},
        poll_interval=5,
        max_active_tis_per_dag=1,
        outlets=list(LAKE.catalog_gold),
    )

    def athena_queries(kind: str) -> dict[str, AthenaOperator]:
        """One AthenaOperator per ``include/sql/<kind>/*.sql`` file, named after the file."""
        return {
            name: AthenaOperator(
                task_id=name,
                query=f"{kind}/{name}.sql",
                database=S.gold_database,
                workgroup=S.workgroup,
                output_location=L.athena_output,
                params=SQL_PARAMS,
                sleep_time=2,
                execution_timeout=timedelta(minutes=15),
            )
            for name in sql.names(kind)
        }

    with TaskGroup("data_quality") as data_quality:
        checks = athena_queries("dq")

        @task
        def evaluate(query_ids: dict, ds: str | None = None) -> dict:
            """Read each check's violating rows (retried if Athena fails); fail naming every failing check (final)."""
            hook = AthenaHook(region_name=S.region)
            rows = {name: pipeline.result_rows(hook.get_query_results_paginator(qid))
                    for name, qid in query_ids.items()}
            with pipeline.verdict_is_final():
                return pipeline.evaluate_dq(rows, ds)

        verdict = evaluate({name: op.output for name, op in checks.items()})

    with TaskGroup("reports") as reports:
        report_queries = athena_queries("reports")

    @task(multiple_outputs=True)
    def summarize(extract_counts: dict, dq: dict, report_ids: dict, glue_run_id: str | None = None,
                  ds: str | None = None) -> dict:
        """The run summary: extractor counts, DQ verdicts, the reports' headline numbers."""
        hook = AthenaHook(region_name=S.region)
        rows = {name: pipeline.result_rows(hook.get_query_results_paginator(qid)) for name, qid in report_ids.items()}
        head = pipeline.headline(rows.get("on_time_by_carrier", []), rows.get("worst_routes", []))
        return pipeline.summary(ds, extract_counts, dq, head, glue_run_id)

    summary = summarize(checked, verdict, {name: op.output for name, op in report_queries.items()},
                        transform.output)

    notify = SnsPublishOperator(
        task_id="notify",
        target_arn=S.topic_arn,
        subject=summary["subject"],
        message=summary["message"],
    )

    wait_for_bronze >> extract
    checked >> [transform, crawl_silver]
    [transform, crawl_silver] >> crawl_gold >> data_quality >> reports
    summary >> notify
