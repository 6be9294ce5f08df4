"""The amazon provider's deferrable S3KeySensor and GlueCrawlerOperator against localaws in
``dag.test()`` (which runs triggers inline), for issue 13 items 2 and 7."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pendulum

DAGS = Path(__file__).parent / "dags"


class _Deferred(logging.Handler):
    """Sets ``event`` when ``dag.test()`` starts running a trigger inline (the task has deferred)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "running trigger in line" in record.getMessage():
            self.event.set()


def test_deferrable_s3_key_sensor_sees_a_key_put_after_it_deferred(run_dag, aws_client):
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="parity-ops")
    key = "late/2013-01-07/ready.csv"
    dag_log = logging.getLogger("airflow.sdk.definitions.dag")
    handler, level = _Deferred(), dag_log.level
    dag_log.addHandler(handler)
    dag_log.setLevel(logging.INFO)
    put_at: list[float] = []

    def put_later() -> None:
        if handler.event.wait(timeout=90):
            time.sleep(3)  # the trigger has polled (and found nothing) a few times by now
            s3.put_object(Bucket="parity-ops", Key=key, Body=b"day,rows\n2013-01-07,3\n")
            put_at.append(time.monotonic())

    putter = threading.Thread(target=put_later, daemon=True)
    putter.start()
    try:
        started = time.monotonic()
        dr = run_dag(DAGS / "localaws_parity_sensor.py", "localaws_parity_sensor",
                     pendulum.datetime(2013, 1, 7, tz="UTC"))
        finished = time.monotonic()
    finally:
        dag_log.removeHandler(handler)
        dag_log.setLevel(level)
        putter.join(timeout=5)
    (ti,) = dr.get_task_instances()
    assert handler.event.is_set(), "the sensor never deferred"
    assert put_at, "the key was never put"
    assert dr.state == "success" and ti.state == "success"
    # It resumed from its trigger (execute_complete), after the key appeared.
    assert ti.next_method == "execute_complete"
    assert started < put_at[0] < finished


def test_deferrable_crawler_operator_failure_shows_the_crawls_reason(run_dag, capfd):
    dr = run_dag(DAGS / "localaws_parity_crawler.py", "localaws_parity_crawler",
                 pendulum.datetime(2013, 1, 7, tz="UTC"))
    out = capfd.readouterr()
    (ti,) = dr.get_task_instances()
    assert dr.state == "failed" and ti.state == "failed"
    assert "bucket parity-ops-missing does not exist" in out.out + out.err
