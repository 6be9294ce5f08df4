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

Run: ``.venv/bin/python bench/warm_runtimes.py [--invokes 20]``
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import subprocess
import sys
import time
import zipfile

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=20, help="measured invocations per handler and mode")
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


if __name__ == "__main__":
    main()
