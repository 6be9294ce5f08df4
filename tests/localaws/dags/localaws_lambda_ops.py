"""Test DAG: the provider's LambdaInvokeFunctionOperator against localaws."""

import pendulum
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.sdk import DAG

with DAG("localaws_lambda_ops", schedule=None, start_date=pendulum.datetime(2013, 1, 1, tz="UTC"), catchup=False):
    LambdaInvokeFunctionOperator(
        task_id="invoke",
        function_name="{{ params.function }}",
        payload='{"ds": "{{ ds }}"}',
        log_type="Tail",
        params={"function": "localaws-echo"},
    )
