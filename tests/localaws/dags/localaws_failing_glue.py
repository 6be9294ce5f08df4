"""Test DAG: a Glue job whose script fails; the task must fail with the script's error."""

import pendulum
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.sdk import DAG

with DAG("localaws_failing_glue", schedule=None, start_date=pendulum.datetime(2013, 1, 1, tz="UTC"), catchup=False,
         params={"bucket": "localaws-ops", "deferrable": False}, default_args={"retries": 0}):
    for deferrable in (False, True):
        GlueJobOperator(
            task_id=f"failing_{'deferrable' if deferrable else 'waiting'}",
            job_name=f"localaws-failing-{int(deferrable)}",
            script_location="s3://{{ params.bucket }}/scripts/failing.py",
            iam_role_arn="arn:aws:iam::123456789012:role/glue",
            create_job_kwargs={"Command": {"Name": "pythonshell",
                                           "ScriptLocation": "s3://{{ params.bucket }}/scripts/failing.py"}},
            verbose=True,
            deferrable=deferrable,
            job_poll_interval=1,
            waiter_delay=1,
        )
