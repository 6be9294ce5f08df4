"""Test DAG: the amazon provider's operators and sensors against localaws.

Bucket, function, job and topic names come from ``params`` so tests can point them anywhere.
"""

import pendulum
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.amazon.aws.sensors.glue import GlueJobSensor
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import DAG, chain

PARAMS = {
    "bucket": "localaws-ops",
    "function": "localaws-ops-fn",
    "topic_arn": "arn:aws:sns:us-east-1:123456789012:localaws-ops",
    "role_arn": "arn:aws:iam::123456789012:role/glue",
}

with DAG(
    "localaws_provider_ops",
    schedule=None,
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    params=PARAMS,
    default_args={"retries": 0},
):
    landed = S3KeySensor(
        task_id="wait_for_landing",
        bucket_name="{{ params.bucket }}",
        bucket_key="landing/{{ ds }}/ready.csv",
        deferrable=True,
        poke_interval=1,
        timeout=60,
    )
    invoke = LambdaInvokeFunctionOperator(
        task_id="invoke",
        function_name="{{ params.function }}",
        payload='{"ds": "{{ ds }}"}',
        log_type="Tail",
    )
    etl = GlueJobOperator(
        task_id="glue_etl",
        job_name="localaws-ops-etl",
        script_location="s3://{{ params.bucket }}/scripts/etl.py",
        iam_role_arn="{{ params.role_arn }}",
        script_args={"--source": "s3://{{ params.bucket }}/landing/{{ ds }}/", "--target": "s3://{{ params.bucket }}/out/"},
        create_job_kwargs={"GlueVersion": "5.0"},
        update_config=True,
        verbose=True,
        deferrable=False,
        job_poll_interval=1,
    )
    etl_deferred = GlueJobOperator(
        task_id="glue_etl_deferrable",
        job_name="localaws-ops-etl-deferred",
        script_location="s3://{{ params.bucket }}/scripts/etl.py",
        iam_role_arn="{{ params.role_arn }}",
        script_args={"--source": "s3://{{ params.bucket }}/landing/{{ ds }}/", "--target": "s3://{{ params.bucket }}/out_deferred/"},
        create_job_kwargs={"GlueVersion": "5.0"},
        verbose=True,
        deferrable=True,
        waiter_delay=1,
        waiter_max_attempts=300,
    )
    start_shell = GlueJobOperator(
        task_id="glue_shell_start",
        job_name="localaws-ops-shell",
        script_location="s3://{{ params.bucket }}/scripts/shell.py",
        iam_role_arn="{{ params.role_arn }}",
        create_job_kwargs={"Command": {"Name": "pythonshell",
                                       "ScriptLocation": "s3://{{ params.bucket }}/scripts/shell.py"}},
        wait_for_completion=False,
    )
    watch_shell = GlueJobSensor(
        task_id="glue_shell_sensor",
        job_name="localaws-ops-shell",
        run_id="{{ ti.xcom_pull(task_ids='glue_shell_start') }}",
        verbose=True,
        poke_interval=1,
    )
    notify = SnsPublishOperator(
        task_id="notify",
        target_arn="{{ params.topic_arn }}",
        subject="lake run {{ ds }}",
        message="day {{ ds }} done",
        message_attributes={"ds": "{{ ds }}"},
    )
    chain(landed, invoke, etl, etl_deferred, start_shell, watch_shell, notify)
