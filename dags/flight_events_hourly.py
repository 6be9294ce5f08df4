"""
# flight_events_hourly

One run per event hour (data interval = one hour, UTC) of the `flight_events` stream (Kinesis Data
Firehose -> bronze, dynamically partitioned by event hour; the registry Lambda records each object):

| task | what happens to the data |
|---|---|
| `wait_for_watermark` | waits (reschedule mode) until the registry shows an object of an hour at or past the interval's end + `LAKE_STREAM_LATENESS` (15 min) and the Firehose buffers (`LAKE_FIREHOSE_BUFFER_SECONDS`) have flushed (`lake/stream/hourly.py`) |
| `transform` | Glue job `lake-flight_events-gold`: the hour's GZIP JSON-lines objects -> gold `flight_events` (one row per `event_id`) and `departures_hourly`, overwriting only `dt=<day>/hour=<HH>`; writes the run record `run.json` |
| `crawl_gold` | the gold crawler adds the hour's partitions to the catalog |
| `data_quality.*` | Athena: no duplicate `event_id`, every event in its hour, departures_hourly = the events; `evaluate` adds "the objects in gold = the registry's deliveries of the hour" and fails naming each failing check (no retry) |
| `summarize` -> `notify` | SNS: events, duplicates dropped, late events of earlier hours (`LAKE_STREAM_LATE_LOOKBACK` hours) |

Late events (sent after their hour ran) land in their hour's partition all the same: the next run
counts them, and a rerun of that hour (`airflow tasks clear flight_events_hourly -s <hour> -e <hour>`
or `airflow backfill create --dag-id flight_events_hourly --from-date <hour> --to-date <hour>
--reprocess-behavior completed`) reads them; nothing is lost. Names come from `lake/layout.py`; logic
from `lake/stream/hourly.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum
from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.sdk import DAG, PokeReturnValue, TaskGroup, task

from lake import assets, pipeline, sql
from lake.compat import CronDataIntervalTimetable
from lake.layout import for_dataset
from lake.settings import get as get_settings
from lake.stream import hourly

DATASET = "flight_events"
S = get_settings()
L = for_dataset(S, DATASET)
LAKE = assets.for_layout(L)
# The hour is the data interval's start (UTC); dt and hour name its partition (not {{ ds }}: a manual run's
# logical date is the interval's end).
DT, HOUR = "{{ data_interval_start.strftime('%Y-%m-%d') }}", "{{ data_interval_start.strftime('%H') }}"
ALERT = ("{{ dag.dag_id }}, hour {{ data_interval_start }}: task {{ ti.task_id }} (try {{ ti.try_number }}) %s: "
         "{{ exception }}")
SQL_PARAMS = {"gold_database": S.gold_database, "events_table": L.gold_tables[0], "departures_table": L.gold_tables[1]}


def _clients() -> tuple:
    """S3 and DynamoDB clients from the ``aws_default`` connection."""
    return (AwsBaseHook(client_type="s3", region_name=S.region).get_conn(),
            AwsBaseHook(client_type="dynamodb", region_name=S.region).get_conn())


def _athena(template: str) -> AthenaOperator:
    return AthenaOperator(task_id=sql.name(template), query=template, database=S.gold_database, workgroup=S.workgroup,
                          output_location=L.athena_output, params=SQL_PARAMS, sleep_time=S.athena_poll_interval,
                          execution_timeout=timedelta(minutes=15))


def _rows(query_id: str) -> list[dict]:
    return pipeline.result_rows(AthenaHook(region_name=S.region).get_query_results_paginator(query_id))


start = L.contract.start_date
with DAG(
    dag_id=f"{DATASET}_hourly",
    description="Hourly flight_events: Firehose objects -> Glue -> gold (dedup) -> crawler -> Athena DQ -> SNS",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(start.year, start.month, start.day, tz="UTC"),
    catchup=False,  # backfill past hours with `airflow backfill create` (see above)
    max_active_runs=S.max_active_runs,
    dagrun_timeout=timedelta(hours=6),
    template_searchpath=[str(sql.SQL_DIR)],
    tags=["lake", DATASET, "hourly", "stream"],
    default_args=pipeline.task_defaults(S, "lake flight_events: {{ ti.task_id }} %s", ALERT),
) as dag:

    @task.sensor(mode="reschedule", poke_interval=S.sensor_poke_interval, timeout=S.sensor_timeout,
                 inlets=[LAKE.bronze])
    def wait_for_watermark(data_interval_end: datetime | None = None) -> PokeReturnValue:
        """Done when the registry's watermark passed the hour's end + lateness and the buffers flushed."""
        ready, why = hourly.hour_ready(S, L, data_interval_end, now=datetime.now(UTC), ddb=_clients()[1])
        print(why)
        return PokeReturnValue(is_done=ready, xcom_value=why)

    transform = GlueJobOperator(
        task_id="transform",
        job_name=L.glue_job,
        script_args={"--dt": DT, "--hour": HOUR},
        verbose=True,
        deferrable=True,
        wait_for_completion=True,
        waiter_delay=S.poll_interval,
        waiter_max_attempts=S.glue_timeout * 60 // S.poll_interval + 6,
        execution_timeout=timedelta(minutes=S.glue_timeout + 10),
        outlets=list(LAKE.gold),
    )

    crawl_gold = GlueCrawlerOperator(task_id="crawl_gold", config={"Name": L.gold_crawler}, poll_interval=S.poll_interval,
                                     max_active_tis_per_dag=1, outlets=list(LAKE.catalog_gold))

    with TaskGroup("data_quality") as data_quality:
        checks = {sql.name(t): _athena(t) for t in sql.templates("dq", DATASET) if t.startswith(f"{DATASET}/")}
        gold_objects = _athena(f"{DATASET}/hourly/gold_objects.sql")

        @task
        def evaluate(query_ids: dict, objects_id: str, data_interval_start: datetime | None = None) -> dict:
            """Read the checks' rows (retried if Athena fails); fail naming every failing check (final)."""
            rows = {name: _rows(qid) for name, qid in query_ids.items()}
            objects = _rows(objects_id)
            s3, ddb = _clients()
            with pipeline.verdict_is_final():
                return hourly.evaluate(S, L, data_interval_start, rows, objects, s3=s3, ddb=ddb)

        verdict = evaluate({name: op.output for name, op in checks.items()}, gold_objects.output)

    @task(multiple_outputs=True)
    def summarize(dq: dict, data_interval_start: datetime | None = None) -> dict:
        """The run summary: events, duplicates dropped, late events of earlier hours."""
        s3, ddb = _clients()
        return hourly.run_summary(S, L, data_interval_start, dq, s3=s3, ddb=ddb)

    summary = summarize(verdict)
    notify = SnsPublishOperator(task_id="notify", target_arn=S.topic_arn, subject=summary["subject"],
                                message=summary["message"])

    wait_for_watermark() >> transform >> crawl_gold >> data_quality
    summary >> notify
