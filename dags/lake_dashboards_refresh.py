"""
# lake_dashboards_refresh

The dashboards' SPICE-like cache (QuickSight's in-memory copy, here Parquet in S3), refreshed by
the lake's assets: the DAG runs whenever a daily DAG's `crawl_gold` updates a gold catalog table
(data-aware scheduling on the `glue://<gold database>/<table>` assets of `lake/assets.py`; the
catalog assets rather than the S3 ones, because Athena sees a new day only once the crawler has
added its partition).

| task | what happens to the data |
|---|---|
| `plan` | the changed days: the day (`ds`) of each run whose gold changed (from the triggering asset events), or the `days` given to a manual run (for the `lake_datasets` given, default all); one job per dashboard dataset and day |
| `queries`, `query` | Athena runs each job's query, its dashboard dataset's SQL (`include/dashboards/*.yaml`) restricted to the day's partition (mapped `AthenaOperator`) |
| `store` | each result -> one Parquet object `s3://<artifacts>/dashboards/<dashboard>/<dataset>/dt=<day>/data.parquet`, overwriting only that day |

Only the changed days are recomputed; the Lake pages (plugins/lake) read the cache with DuckDB
and start no Athena query. Names come from `lake/layout.py`; the code is `lake/dashboards/cache.py`.
Rerun days by hand: trigger with `{"days": ["2013-01-05"], "lake_datasets": ["flights"]}`.
"""

from __future__ import annotations

from datetime import timedelta
from functools import reduce

import pendulum
from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.sdk import DAG, Param, task

from lake import assets, layout, pipeline
from lake.dashboards import cache, spec
from lake.settings import get as get_settings

s = get_settings()
#: the dashboards with a cached (Athena) dataset; the lake health one reads Airflow's runs live
DASHBOARDS = [d for d in map(spec.load, spec.names()) if any(ds.source == "athena" for ds in d.datasets.values())]
LAYOUTS = {n: layout.for_dataset(s, n)
           for n in sorted({ds.lake_dataset for d in DASHBOARDS for ds in d.datasets.values() if ds.source == "athena"})}
GOLD = {n: assets.for_layout(lay).catalog_gold for n, lay in LAYOUTS.items()}
#: asset URI -> the lake dataset whose gold it is
ASSET_DATASETS = {a.uri: n for n, gold in GOLD.items() for a in gold}
ALERT = "{{ dag.dag_id }}, run {{ run_id }}: task {{ ti.task_id }} (try {{ ti.try_number }}) %s: {{ exception }}"
ANY_LAYOUT = next(iter(LAYOUTS.values()))

with DAG(
    dag_id="lake_dashboards_refresh",
    description="Refresh the dashboards' Parquet cache for the days whose gold changed (Athena -> S3)",
    doc_md=__doc__,
    schedule=reduce(lambda a, b: a | b, [a for gold in GOLD.values() for a in gold]),
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["lake", "dashboards"],
    params={"days": Param([], type="array", items={"type": "string", "format": "date"},
                          description="days to refresh by hand (YYYY-MM-DD)"),
            "lake_datasets": Param(sorted(LAYOUTS), type="array", description="lake datasets of those days")},
    default_args=pipeline.task_defaults(s, "lake dashboards: {{ ti.task_id }} %s", ALERT),
) as dag:

    @task
    def plan(triggering_asset_events=None, params=None) -> list[dict]:
        """The jobs for the changed days (:class:`lake.dashboards.cache.Job` as dicts)."""
        events = []
        for asset in triggering_asset_events or {}:
            for event in triggering_asset_events[asset]:
                run = event.source_dag_run
                events.append((event.asset.uri, run.logical_date.date().isoformat() if run and run.logical_date else None))
        days = cache.changed_days(events, ASSET_DATASETS)
        for name in (params or {}).get("lake_datasets") or []:
            if (params or {}).get("days"):
                days[name] = sorted(set(days.get(name, [])) | set(params["days"]))
        jobs = cache.jobs(DASHBOARDS, LAYOUTS, days)
        print(f"changed days: {days or 'none'}; {len(jobs)} refreshes")
        return [j.as_dict() for j in jobs]

    @task
    def queries(jobs: list[dict]) -> list[str]:
        """Each job's Athena SQL, for the mapped ``query`` task."""
        return [j["query"] for j in jobs]

    planned = plan()
    query = AthenaOperator.partial(
        task_id="query",
        database=s.gold_database,
        workgroup=s.workgroup,
        output_location=ANY_LAYOUT.athena_output,
        sleep_time=s.athena_poll_interval,
        execution_timeout=timedelta(minutes=15),
    ).expand(query=queries(planned))

    @task(outlets=[assets.dashboard_cache(ANY_LAYOUT, d.name) for d in DASHBOARDS])
    def store(jobs: list[dict], query_ids: list[str]) -> list[dict]:
        """Write each query's rows as the day's Parquet object (overwrite); log rows and bytes per day."""
        hook, s3 = AthenaHook(region_name=s.region), S3Hook(region_name=s.region).get_conn()
        out = []
        for job, qid in zip(jobs, query_ids, strict=True):
            done = cache.store(cache.Job(**job), hook.get_query_results_paginator(qid), s3)
            print(f"{done['dashboard']}/{done['dataset']} {done['day']}: {done['rows']:,} rows, "
                  f"{done['bytes']:,} bytes -> s3://{job['bucket']}/{done['key']}")
            out.append(done)
        return out

    store(planned, query.output)
