"""
# lake_provision

Creates or updates every AWS resource the lake needs, idempotently (run it by hand after a
deploy or a settings change; a second run reports everything `unchanged`):

roles (checked; created only against localaws) -> buckets (bronze versioned with lifecycle
Glacier 30 d / expiry 90 d; all with public access blocked and default encryption) -> artifacts
(Glue script, dimension tables) -> Lambda extractor -> delivery registry -> Glue job -> the stream (Firehose
delivery stream, hourly Glue job and gold crawler) -> Athena work group -> Glue
databases and dimension tables (`include/sql/ddl`) -> crawlers -> SNS topic (+ an SQS inbox
against localaws).

The same code is the `lake provision` command. Names come from `lake/settings.py` (`LAKE_*`
variables); endpoint and credentials from the `aws_default` connection.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, chain, task

from lake.deploy import provision

with DAG(
    dag_id="lake_provision",
    description="Create or update the lake's buckets, Lambda, Glue job, crawlers, catalog, work group, SNS",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["lake", "provisioning"],
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(minutes=15),
    },
) as dag:

    @task
    def provision_step(step: str) -> list[dict]:
        """Run one provisioning step against the ``aws_default`` connection's endpoint."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        from lake.settings import get as get_settings

        settings = get_settings()
        hook = AwsBaseHook(aws_conn_id="aws_default", region_name=settings.region)
        clients = provision.Clients(settings.region, hook.conn_config.endpoint_url, session=hook.get_session())
        return provision.run_step(step, settings, clients)

    chain(*[provision_step.override(task_id=name)(name) for name in provision.STEPS])
