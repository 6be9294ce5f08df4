"""lake.dev.demo.keep_scheduler: a demo stack's scheduler that exited is started again, once its job has
ended in Airflow's own ``job`` table (the real table, made from Airflow's model), never beside a live one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy
from airflow.jobs.job import Job

from lake.dev import demo

CRASH = ("scheduler  | sqlite3.IntegrityError: UNIQUE constraint failed: task_instance_history.dag_id, "
         "task_instance_history.task_id")


@pytest.fixture
def stopped_stack(tmp_path, monkeypatch):
    stack = demo.Stack(home=tmp_path / "demo", localaws_port=1, airflow_port=2)
    stack.airflow_home.mkdir(parents=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{stack.airflow_home / 'airflow.db'}")
    Job.__table__.create(engine)
    (stack.home / "airflow.log").write_text(f"scheduler  | Traceback (most recent call last):\n{CRASH}\n")
    spawned: list[list[str]] = []

    def spawn(stack_, name, argv, env):
        spawned.append(argv)
        return 4242

    monkeypatch.setattr(demo, "_spawn", spawn)
    monkeypatch.setattr(demo, "_pid_of", lambda stack_, name: None)
    stack.spawned = spawned
    stack.engine = engine
    return stack


def _job(stack, state: str, ended: bool) -> None:
    now = datetime.now(UTC)
    with stack.engine.begin() as con:
        con.execute(Job.__table__.insert().values(job_type="SchedulerJob", state=state, start_date=now,
                                                  latest_heartbeat=now, end_date=now if ended else None))


def test_a_running_scheduler_is_left_alone(stopped_stack, capsys):
    stack = stopped_stack
    assert demo.keep_scheduler(stack) is False  # no scheduler job yet: standalone is still starting
    _job(stack, "running", ended=False)
    assert demo.keep_scheduler(stack) is False
    assert stack.spawned == []


def test_an_exited_scheduler_is_started_again_with_the_reason_said(stopped_stack, capsys):
    stack = stopped_stack
    _job(stack, "failed", ended=True)
    assert demo.keep_scheduler(stack) is True
    assert stack.spawned == [[demo._bin("airflow"), "scheduler"]]
    said = capsys.readouterr().err
    assert "the Airflow scheduler exited at" in said and "sqlite3.IntegrityError: UNIQUE constraint failed" in said
    _job(stack, "running", ended=False)  # the new scheduler's job
    assert demo.keep_scheduler(stack) is False
    assert len(stack.spawned) == 1


def test_a_scheduler_that_keeps_exiting_is_an_error_naming_its_log(stopped_stack):
    stack = stopped_stack
    for _ in range(demo.SCHEDULER_RESTARTS):
        _job(stack, "failed", ended=True)
        assert demo.keep_scheduler(stack) is True
    (stack.home / "scheduler.log").write_text("scheduler  | airflow.exceptions.AirflowConfigException: broken\n")
    _job(stack, "failed", ended=True)
    with pytest.raises(demo.DemoError, match=r"exited at .* again, after 3 restarts; see .*scheduler\.log"):
        demo.keep_scheduler(stack)
    assert len(stack.spawned) == demo.SCHEDULER_RESTARTS
