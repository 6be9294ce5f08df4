"""What the daily DAG's tasks add to their asset events, and what its ``publish_metrics`` task
gathers: the Airflow-side glue between the provider operators and :mod:`lake.metrics` /
:mod:`lake.cost`.

Asset event extras (``outlet_events[asset].extra``, shown on the Airflow UI's asset pages), set by
``post_execute`` hooks of the provider operators (:func:`after_extract` ...), each with
``partition`` (``dt=<ds>``) and ``ds``:

====================  ==============  ====================================================================
asset                 set by          extra beyond partition and ds
====================  ==============  ====================================================================
silver.<dataset>      extract         ``rows_read``, ``rows_written``, ``rows_rejected``, ``path``
quarantine.<dataset>  extract         ``rows_rejected``, ``rejected_by_reason`` (reason -> rows), ``path``
gold.<table>          transform       ``rows`` (written by the Glue job, from its log), ``glue_job_run_id``
<db>.<table> silver   crawl_silver    ``rows`` (= silver rows written), ``table``
<db>.<table> gold     crawl_gold      ``rows`` (the gold table's, as above), ``table``
====================  ==============  ====================================================================

Gold rows come from the Glue job's own output: each script logs ``wrote <n> rows to
<gold root>/<table>/dt=<ds>/`` per table, read from the log groups and stream the provider's
GlueJobHook reads (:func:`lake.metrics.glue_log_messages`). A table with no such line is absent
from the extra and a warning is logged.

Every AWS call goes through the ``aws_default`` connection (amazon provider hooks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lake import cost, metrics, pipeline
from lake.assets import LakeAssets
from lake.layout import Layout
from lake.settings import Settings

log = logging.getLogger(__name__)

Hook = Callable[[Any, Any], None]


def _client(service: str, s: Settings) -> Any:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(client_type=service, region_name=s.region).get_conn()


def before_bronze(context: Any) -> None:
    """``wait_for_bronze``'s pre_execute: push XCom ``started`` (ISO 8601, now) unless this try
    already did (a deferred sensor runs its pre_execute again when it resumes): the start of the
    run's first task, from which ``RunSeconds`` counts (``dag_run.start_date`` would do on a
    scheduler, but ``dag.test()`` sets it to the logical date)."""
    ti = context["ti"]
    if ti.xcom_pull(task_ids=ti.task_id, key="started") is None:
        ti.xcom_push(key="started", value=datetime.now(UTC).isoformat())


def after_bronze(s: Settings, L: Layout) -> Hook:
    """``wait_for_bronze``'s post_execute: read the zip's LastModified (its arrival), push it as
    XCom ``bronze_last_modified`` (ISO 8601) and publish ``BronzeFiles`` = 1 at that time."""

    def hook(context: Any, result: Any = None) -> None:
        ds = context["ds"]
        head = _client("s3", s).head_object(Bucket=L.bronze_bucket, Key=L.bronze_key(ds))
        arrived = head["LastModified"]
        context["ti"].xcom_push(key="bronze_last_modified", value=arrived.isoformat())
        metrics.put(_client("cloudwatch", s), metrics.bronze_file(L.dataset, arrived))

    return hook


def after_extract(L: Layout, lake: LakeAssets) -> Hook:
    """``extract``'s post_execute: the silver and quarantine events' extras from the extractor's result."""

    def hook(context: Any, result: Any = None) -> None:
        r = pipeline.parse_extract(result)
        ds = context["ds"]
        base = {"partition": L.partition(ds), "ds": ds}
        context["outlet_events"][lake.silver].extra = {
            **base, **{k: r.get(k) for k in ("rows_read", "rows_written", "rows_rejected")},
            "path": r.get("silver_path")}
        context["outlet_events"][lake.quarantine].extra = {
            **base, "rows_rejected": r.get("rows_rejected"), "rejected_by_reason": r.get("rejected_by_reason") or {},
            "path": r.get("quarantine_path")}

    return hook


def after_transform(s: Settings, L: Layout, lake: LakeAssets) -> Hook:
    """``transform``'s post_execute (``result`` = the Glue job run id): the gold events' extras;
    XComs ``gold_rows`` (table -> rows) and ``glue_run`` (``ExecutionTime``, ``NumberOfWorkers``,
    ``WorkerType``, for the cost)."""

    def hook(context: Any, result: Any = None) -> None:
        ds, run_id = context["ds"], result
        from botocore.exceptions import BotoCoreError, ClientError

        run = _client("glue", s).get_job_run(JobName=L.glue_job, RunId=run_id)["JobRun"]
        try:
            messages = metrics.glue_log_messages(_client("logs", s), run, run_id)
        except (BotoCoreError, ClientError) as exc:  # the gold is written: a log read must not redo the job
            log.warning("%s: could not read Glue run %s's log for the gold row counts: %s", ds, run_id, exc)
            messages = []
        rows = metrics.gold_rows_from_log(messages, ds, L.partition_name)
        for table, asset in zip(L.gold_tables, lake.gold, strict=True):
            extra: dict[str, Any] = {"partition": L.partition(ds), "ds": ds, "glue_job_run_id": run_id}
            if table in rows:
                extra["rows"] = rows[table]
            else:
                log.warning("%s: Glue run %s logged no 'wrote <n> rows' line for gold table %s: no row count",
                            ds, run_id, table)
            context["outlet_events"][asset].extra = extra
        context["ti"].xcom_push(key="gold_rows", value=rows)
        context["ti"].xcom_push(key="glue_run", value={k: run.get(k) for k in (
            "ExecutionTime", "NumberOfWorkers", "WorkerType")})

    return hook


def after_crawl(L: Layout, lake: LakeAssets, layer: str) -> Hook:
    """``crawl_silver`` / ``crawl_gold``'s post_execute: each catalog table's event carries the
    day's rows (silver: ``check_extract``'s rows_written; gold: ``transform``'s gold_rows)."""

    def hook(context: Any, result: Any = None) -> None:
        ds = context["ds"]
        base = {"partition": L.partition(ds), "ds": ds}
        assets = [lake.catalog_silver] if layer == "silver" else list(lake.catalog_gold)
        for ((db, table), rows), asset in zip(crawled_rows(L, context["ti"], layer).items(), assets, strict=True):
            context["outlet_events"][asset].extra = {**base, "table": f"{db}.{table}", "rows": rows}

    return hook


def crawled_rows(L: Layout, ti: Any, layer: str) -> dict[tuple[str, str], int | None]:
    """The day's rows of each catalog table a crawl of ``layer`` (``silver`` / ``gold``) adds a
    partition to, from the run's XComs: (database, table) -> rows (silver: ``check_extract``'s
    ``rows_written``; gold: ``transform``'s ``gold_rows``), None where the run has no count."""
    if layer == "silver":
        counts = ti.xcom_pull(task_ids="check_extract") or {}
        return {L.silver_catalog_table: counts.get("rows_written")}
    gold_rows = ti.xcom_pull(task_ids="transform", key="gold_rows") or {}
    return {(db, table): gold_rows.get(table) for db, table in L.gold_catalog_tables}


def record_dq(context: Any, rows: dict[str, list]) -> None:
    """``data_quality.evaluate``'s first step: push XCom ``violations`` (check name -> violating
    rows) before the verdict, so that a failed evaluate still tells its counts (its OpenLineage
    event's data-quality assertions, :class:`lake.lineage.extractors.DataQualityExtractor`)."""
    context["ti"].xcom_push(key="violations", value={name: len(r) for name, r in sorted(rows.items())})


# -- the run's cost and metrics --------------------------------------------------------------------

def run_cost(s: Settings, ti: Any, query_ids: list[str], extract: dict[str, Any] | None) -> dict[str, Any]:
    """The run's estimated cost (:func:`lake.cost.estimate`) from the Athena queries' statistics,
    the Glue run (``transform``'s XCom ``glue_run``) and the extractor's ``seconds``."""
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook

    hook = AthenaHook(region_name=s.region)
    infos = [hook.get_query_info(qid) for qid in query_ids if qid]
    glue = ti.xcom_pull(task_ids="transform", key="glue_run") or {}
    return cost.estimate(metrics.athena_scanned([i["QueryExecution"] for i in infos]),
                         glue.get("ExecutionTime"), glue.get("NumberOfWorkers") or s.glue_workers,
                         glue.get("WorkerType") or "G.1X",
                         (extract or {}).get("seconds"), s.lambda_memory)


def publish(s: Settings, L: Layout, context: Any, dq_tasks: list[str], report_tasks: list[str]) -> dict[str, Any]:
    """``publish_metrics``: gather what the run reached (any upstream task may have failed) and
    ``PutMetricData`` it (:func:`lake.metrics.build`); returns ``{metric name: value}`` (GoldRows
    as ``GoldRows.<table>``).

    DQ counts are read from each check's query results (so a failed ``evaluate`` still reports
    them); the cost is ``summarize``'s when it ran, else computed here.
    """
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook

    ti, ds = context["ti"], context["ds"]
    now = datetime.now(UTC)  # the metrics' timestamp: the time of observation (CloudWatch refuses 2013)
    extract = ti.xcom_pull(task_ids="check_extract")
    if extract is None and (payload := ti.xcom_pull(task_ids="extract")) is not None:
        try:  # check_extract failed: the extractor's counts still stand (a reject rate above the limit)
            extract = pipeline.parse_extract(payload)
        except pipeline.ExtractCheckError as exc:
            log.warning("%s: no extractor counts to publish: %s", ds, exc)
        if extract is not None and not {"rows_read", "rows_written", "rows_rejected"} <= set(extract):
            log.warning("%s: the extractor's result has no counts to publish: %s", ds, str(extract)[:300])
            extract = None
    athena = AthenaHook(region_name=s.region)
    dq_ids = {t: ti.xcom_pull(task_ids=t) for t in dq_tasks}
    dq = {t.rsplit(".", 1)[-1]: len(pipeline.result_rows(athena.get_query_results_paginator(qid)))
          for t, qid in dq_ids.items() if qid and athena.check_query_status(qid) == "SUCCEEDED"}
    report_ids = [ti.xcom_pull(task_ids=t) for t in report_tasks]
    run_cost_ = ti.xcom_pull(task_ids="summarize", key="cost")
    if run_cost_ is None:
        run_cost_ = run_cost(s, ti, [*dq_ids.values(), *report_ids], extract)
    queried = any(dq_ids.values()) or any(report_ids)
    arrived = ti.xcom_pull(task_ids="wait_for_bronze", key="bronze_last_modified")
    started = ti.xcom_pull(task_ids="wait_for_bronze", key="started")
    data = metrics.build(
        L.dataset, now, extract=extract, gold_rows=ti.xcom_pull(task_ids="transform", key="gold_rows"), dq=dq,
        athena_bytes=run_cost_["athena_bytes_scanned"] if queried else None, cost_usd=run_cost_["total_usd"],
        run_seconds=(now - datetime.fromisoformat(started)).total_seconds() if started else None,
        freshness_seconds=(now - datetime.fromisoformat(arrived)).total_seconds() if arrived else None)
    metrics.put(_client("cloudwatch", s), data)
    log.info("%s: published %d metrics to CloudWatch namespace %s; %s", ds, len(data), metrics.NAMESPACE,
             cost.line(run_cost_))
    return {(d["MetricName"] + "".join(f".{x['Value']}" for x in d["Dimensions"] if x["Name"] == "Table")):
            d["Value"] for d in data}
