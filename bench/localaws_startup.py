"""Benchmark: localaws server start time and Lambda invoke overhead.

Prints:
* start time: from spawning ``localaws serve`` (a new Python process, imports included) until
  ``/_localaws/health`` answers, median of 5 starts, seconds;
* Lambda invoke overhead: wall time of ``lambda.invoke`` (RequestResponse) of a no-op handler,
  median and p90 of 20 invocations after one warm-up, milliseconds. The warm-up starts the
  function's execution environment; the 20 reuse it (warm; cold vs warm: bench/warm_runtimes.py).

Run: ``.venv/bin/python bench/localaws_startup.py``
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
import urllib.request
import zipfile

import boto3


def start_once() -> tuple[float, subprocess.Popen, str]:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "localaws.cli", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    endpoint = ""
    for line in proc.stdout:
        if line.startswith("localaws ready at "):
            endpoint = line.split()[-1]
            break
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/_localaws/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.01)
    return time.monotonic() - started, proc, endpoint


def main() -> None:
    starts = []
    for _ in range(5):
        seconds, proc, endpoint = start_once()
        starts.append(seconds)
        proc.terminate()
        proc.wait(timeout=30)
    print(f"server start (spawn to healthy): median {statistics.median(starts):.2f} s, "
          f"min {min(starts):.2f} s, max {max(starts):.2f} s over {len(starts)} starts")

    _, proc, endpoint = start_once()
    try:
        kw = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "k",
              "aws_secret_access_key": "s"}
        lam, iam = boto3.client("lambda", **kw), boto3.client("iam", **kw)
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("app.py", "def handler(event, context):\n    return None\n")
        lam.create_function(FunctionName="noop", Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": buf.getvalue()})
        lam.invoke(FunctionName="noop", Payload=b"{}")  # warm-up: unpacks the zip once
        times = []
        for _ in range(20):
            t = time.monotonic()
            resp = lam.invoke(FunctionName="noop", Payload=b"{}")
            resp["Payload"].read()
            times.append((time.monotonic() - t) * 1000)
        times.sort()
        print(f"lambda invoke overhead (no-op handler): median {statistics.median(times):.0f} ms, "
              f"p90 {times[int(len(times) * 0.9) - 1]:.0f} ms, min {times[0]:.0f} ms over {len(times)} invocations")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
