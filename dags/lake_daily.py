"""
# lake_daily

One Airflow DAG per fact dataset, all made by one factory (:func:`lake_daily`): the DAG
`<dataset>_lake_daily` for each dataset named in `LAKE_DAILY_DATASETS` (comma-separated; default
`LAKE_DATASET`, `flights`, giving `flights_lake_daily`). A dataset is data, not code: its
contract `include/datasets/<dataset>.json` (columns, bronze keys, partition, gold tables, start
date), its Glue script `include/glue_scripts/<dataset>_gold.py` and its SQL under
`include/sql/<dataset>/` (plus the shared checks in `include/sql/dq/`). Every name comes from
`lake/layout.py`. Each DAG's `doc_md` is :data:`DOC` filled in for its dataset.
"""

from __future__ import annotations

import string
from datetime import timedelta

import pendulum
from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerOperator
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import DAG, TaskGroup, get_current_context, task

from lake import assets, contracts, events, layout, pipeline, sql
from lake.compat import CronDataIntervalTimetable, TriggerRule
from lake.settings import Settings
from lake.settings import get as get_settings

#: The documentation of each dataset's DAG (``string.Template``: ``$dag_id``, ``$dataset`` ...).
DOC = string.Template("""
# $dag_id

One run per day (data interval = the whole day, `{{ ds }}`) turns the day's raw $dataset export
into trusted, queryable tables:

| task | what happens to the data |
|---|---|
| `wait_for_bronze` | waits (deferred) for `$bronze_key` + its manifest |
| `extract` | Lambda extractor: unzip, validate against `include/datasets/$dataset.json`; good rows -> silver Parquet `$partition`, rejected rows -> quarantine (with line number and reason) |
| `check_extract` | rows read = written + rejected; fails above `LAKE_MAX_REJECT_RATE` (no retry: same counts) |
| `transform` | Glue job `$glue_job`: silver -> gold $gold_tables, overwriting only `$partition` |
| `crawl_silver`, `crawl_gold` | Glue crawlers add the day's partitions to the catalog |
| `data_quality.*` | Athena runs $dq; `evaluate` fails the run naming each failing check (no retry) |
| `reports.*` | Athena runs $reports |
| `summarize` -> `notify` | SNS: the run summary (counts, DQ, the reports' headline, the estimated cost) |
| `publish_metrics` | CloudWatch metrics in namespace `Lake` (rows, reject rate, gold rows, DQ failures, Athena bytes, cost, run time, freshness; `lake/metrics.py`); runs whatever the other tasks' outcome |

Every failure and every retry of any task is published to the SNS topic too. Every task writes
only its day's partition and overwrites it: reruns and backfills never duplicate rows.

Backfill missed days: `airflow backfill create --dag-id $dag_id --from-date $start_date
--to-date <day>`. Names come from `lake/layout.py` (built from `lake/settings.py`'s `LAKE_*`
variables and the dataset contract); the AWS endpoint and credentials from the `aws_default`
connection. Made by `dags/lake_daily.py`.
""")

ALERT_MESSAGE = ("{{ dag.dag_id }}, run {{ run_id }}, day {{ ds }}: task {{ ti.task_id }} (try {{ ti.try_number }}) "
                 "%s: {{ exception }}")


def _files(templates: list[str]) -> str:
    return ", ".join(f"`include/sql/{t}`" for t in templates)


def lake_daily(s: Settings, dataset: str) -> DAG:
    """The daily DAG ``<dataset>_lake_daily`` of a fact dataset (no I/O beyond reading its
    contract and SQL files).

    :raises contracts.ContractError: when the dataset has no valid contract or is not a fact.
    """
    L = layout.Layout(s, contracts.load(dataset))
    fact = L.contract
    if fact.kind != "fact":
        raise contracts.ContractError(f"dataset {dataset} is a {fact.kind}: only facts get a daily DAG")
    sql_params = sql.params_for(fact, {n: contracts.load(n) for n in L.dimensions}, layout=L)
    lake = assets.for_layout(L)
    dag_id = L.daily_dag_id
    start = fact.start_date
    if start is None:
        raise contracts.ContractError(f"dataset {dataset}: a daily DAG needs the contract's start_date")
    doc = DOC.substitute(
        dag_id=dag_id, dataset=dataset, bronze_key=f"s3://{L.bronze_bucket}/{L.bronze_key_template}",
        partition=L.partition("{{ ds }}"), glue_job=L.glue_job,
        gold_tables=" + ".join(f"`{t}`" for t in L.gold_tables), start_date=start.isoformat(),
        dq=_files(sql.templates("dq", dataset)), reports=_files(sql.templates("reports", dataset)))

    with DAG(
        dag_id=dag_id,
        description=f"Daily {dataset}: bronze zip -> Lambda -> silver -> Glue -> gold -> crawler -> Athena DQ/reports "
                    "-> SNS",
        doc_md=doc,
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=pendulum.datetime(start.year, start.month, start.day, tz="UTC"),
        catchup=False,
        max_active_runs=s.max_active_runs,
        dagrun_timeout=timedelta(hours=6),
        template_searchpath=[str(sql.SQL_DIR)],
        tags=["lake", dataset, "daily"],
        default_args=pipeline.task_defaults(s, "lake {{ ds }}: {{ ti.task_id }} %s", ALERT_MESSAGE),
    ) as dag:
        wait_for_bronze = S3KeySensor(
            task_id="wait_for_bronze",
            bucket_name=L.bronze_bucket,
            bucket_key=[L.bronze_key_template, L.manifest_key_template],
            deferrable=s.sensor_deferrable,
            poke_interval=s.sensor_poke_interval,
            timeout=s.sensor_timeout,
            inlets=[lake.bronze],
            pre_execute=events.before_bronze,  # the run's start, for RunSeconds
            post_execute=events.after_bronze(s, L),  # publishes BronzeFiles at the file's arrival
        )

        extract = LambdaInvokeFunctionOperator(
            task_id="extract",
            function_name=s.lambda_function,
            payload=L.lambda_payload(),
            invocation_type="RequestResponse",
            log_type="Tail",
            botocore_config={"read_timeout": s.lambda_timeout + 60, "connect_timeout": 10,
                             "retries": {"total_max_attempts": 1}},
            execution_timeout=timedelta(seconds=s.lambda_timeout + 120),
            outlets=[lake.silver, lake.quarantine],
            post_execute=events.after_extract(L, lake),
        )

        @task
        def check_extract(payload: str) -> dict:
            """Fail the run (no retry) when the extractor's counts break the invariant or the reject rate."""
            with pipeline.verdict_is_final():
                return pipeline.check_extract(payload, s.max_reject_rate)

        checked = check_extract(extract.output)

        transform = GlueJobOperator(
            task_id="transform",
            job_name=L.glue_job,
            script_args={"--ds": "{{ ds }}"},
            verbose=True,
            deferrable=True,
            wait_for_completion=True,
            waiter_delay=s.poll_interval,
            waiter_max_attempts=s.glue_timeout * 60 // s.poll_interval + 6,
            execution_timeout=timedelta(minutes=s.glue_timeout + 10),
            outlets=list(lake.gold),
            post_execute=events.after_transform(s, L, lake),
        )

        crawl_silver = GlueCrawlerOperator(
            task_id="crawl_silver",
            config={"Name": L.silver_crawler},
            poll_interval=s.poll_interval,
            max_active_tis_per_dag=1,  # one crawl of a crawler at a time across runs
            outlets=[lake.catalog_silver],
            post_execute=events.after_crawl(L, lake, "silver"),
        )
        crawl_gold = GlueCrawlerOperator(
            task_id="crawl_gold",
            config={"Name": L.gold_crawler},
            poll_interval=s.poll_interval,
            max_active_tis_per_dag=1,
            outlets=list(lake.catalog_gold),
            post_execute=events.after_crawl(L, lake, "gold"),
        )

        def athena_queries(kind: str) -> dict[str, AthenaOperator]:
            """One AthenaOperator per SQL file of ``kind`` for the dataset, named after the file."""
            return {
                sql.name(template): AthenaOperator(
                    task_id=sql.name(template),
                    query=template,
                    database=s.gold_database,
                    workgroup=s.workgroup,
                    output_location=L.athena_output,
                    params=sql_params,
                    sleep_time=s.athena_poll_interval,
                    execution_timeout=timedelta(minutes=15),
                )
                for template in sql.templates(kind, dataset)
            }

        with TaskGroup("data_quality") as data_quality:
            checks = athena_queries("dq")

            @task
            def evaluate(query_ids: dict, ds: str | None = None) -> dict:
                """Read each check's violating rows (retried if Athena fails); fail naming every failing check (final)."""
                hook = AthenaHook(region_name=s.region)
                rows = {name: pipeline.result_rows(hook.get_query_results_paginator(qid))
                        for name, qid in query_ids.items()}
                events.record_dq(get_current_context(), rows)  # the counts, for lineage, before the verdict
                with pipeline.verdict_is_final():
                    return pipeline.evaluate_dq(rows, ds)

            verdict = evaluate({name: op.output for name, op in checks.items()})

        with TaskGroup("reports") as reports:
            report_queries = athena_queries("reports")

        @task(multiple_outputs=True)
        def summarize(extract_counts: dict, dq: dict, report_ids: dict, dq_ids: dict, glue_run_id: str | None = None,
                      ds: str | None = None) -> dict:
            """The run summary: extractor counts, DQ verdicts, the reports' headline numbers, the cost."""
            hook = AthenaHook(region_name=s.region)
            rows = {name: pipeline.result_rows(hook.get_query_results_paginator(qid))
                    for name, qid in report_ids.items()}
            head = pipeline.headline_for(fact, rows)
            run_cost = events.run_cost(s, get_current_context()["ti"], [*dq_ids.values(), *report_ids.values()],
                                       extract_counts)
            return pipeline.summary(ds, extract_counts, dq, head, glue_run_id, contract=fact, run_cost=run_cost)

        summary = summarize(checked, verdict, {name: op.output for name, op in report_queries.items()},
                            {name: op.output for name, op in checks.items()}, transform.output)

        notify = SnsPublishOperator(
            task_id="notify",
            target_arn=s.topic_arn,
            subject=summary["subject"],
            message=summary["message"],
        )

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def publish_metrics() -> dict:
            """CloudWatch metrics of whatever the run reached (lake/metrics.py), also after a failure."""
            return events.publish(s, L, get_current_context(), [f"data_quality.{n}" for n in checks],
                                  [f"reports.{n}" for n in report_queries])

        published = publish_metrics()

        wait_for_bronze >> extract
        # After every task; a leaf beside notify, so a failed task still fails the run.
        summary["subject"] >> published
        checked >> [transform, crawl_silver]
        [transform, crawl_silver] >> crawl_gold >> data_quality >> reports
        summary >> notify
    return dag


S = get_settings()
for _dataset in S.daily_dataset_names:
    globals()[f"{_dataset}_lake_daily"] = lake_daily(S, _dataset)
