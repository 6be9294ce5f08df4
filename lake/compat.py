"""Airflow names whose home moved between the Airflow 3 versions the DAGs run on.

The DAGs run on the pinned Airflow (requirements.txt) and on the oldest Airflow 3 that Amazon MWAA
offers, 3.0.6 (docs/deploy-mwaa.md; tests/e2e/test_mwaa_compat.py runs a day on both). In 3.0.6 the
Task SDK (``airflow.sdk``, task-sdk 1.0) does not export these yet; later versions do, and the
old homes are deprecated there. Each name comes from ``airflow.sdk`` where it exists, else from
Airflow 3.0's module.

* ``CronDataIntervalTimetable``: ``airflow.sdk`` (3.1+) / ``airflow.timetables.interval``
* ``TriggerRule``: ``airflow.sdk`` (3.1+) / ``airflow.utils.trigger_rule``
* ``AirflowFailException``: ``airflow.sdk.exceptions`` (3.1+) / ``airflow.exceptions``
"""

from __future__ import annotations

try:
    from airflow.sdk import CronDataIntervalTimetable, TriggerRule
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.0 (task-sdk 1.0): MWAA's oldest Airflow 3
    from airflow.exceptions import AirflowFailException
    from airflow.timetables.interval import CronDataIntervalTimetable
    from airflow.utils.trigger_rule import TriggerRule

__all__ = ["AirflowFailException", "CronDataIntervalTimetable", "TriggerRule"]
