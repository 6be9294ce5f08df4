"""Test DAG: the deferrable S3KeySensor against localaws, for a key that appears while it waits.

The sensor waits for ``s3://parity-ops/late/{{ ds }}/ready.csv`` in deferrable mode (its trigger
polls every second); the test puts the key only after the sensor has deferred.
"""

import pendulum
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import DAG

with DAG(
    "localaws_parity_sensor",
    schedule=None,
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
):
    S3KeySensor(
        task_id="wait_for_late_key",
        bucket_key="s3://parity-ops/late/{{ ds }}/ready.csv",
        deferrable=True,
        poke_interval=1,
        timeout=120,
    )
