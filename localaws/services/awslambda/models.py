"""Lambda invocations: run a function's handler from its deployed zip in a fresh Python subprocess.

:func:`run_invocation` stands in for moto's Docker-based ``LambdaFunction.invoke``. One invocation:

1. the deployment zip (``LambdaFunction.code_bytes``) and each layer's zip are unpacked once per
   code sha256 under the work directory;
2. ``runtime/bootstrap.py`` (next to this module) runs in a new interpreter with the function's
   environment variables, ``AWS_ENDPOINT_URL`` pointing back at localaws, and an address-space
   limit of ``MemorySize`` MB (``RLIMIT_AS``);
3. the process is killed at ``Timeout`` seconds ("Task timed out after N.NN seconds");
4. stdout and stderr, framed by START/END/REPORT lines, go to CloudWatch Logs group
   ``/aws/lambda/<name>``; the last 4 KB are returned in ``X-Amz-Log-Result`` for ``LogType=Tail``.

Errors come back with ``X-Amz-Function-Error: Unhandled`` and a JSON body
``{"errorType", "errorMessage", "stackTrace"}`` as AWS returns them (the Invoke API itself is in
:mod:`localaws.services.awslambda.responses`). Fault injection (``runs.lambda`` in the fault
config, see :mod:`localaws.faults`) can make an invocation fail (``Runtime.InjectedFault``) or
time out (``Sandbox.Timedout``, reported at once) without running the handler.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from moto.awslambda import models as lambda_models

from localaws import faults
from localaws.runtime import CHILD_CREDENTIALS, RUNTIME, log

BOOTSTRAP = Path(__file__).resolve().parent / "runtime" / "bootstrap.py"

#: AWS returns the last 4 KB of the execution log in X-Amz-Log-Result
#: (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).
LOG_TAIL_BYTES = 4096

_unpack_lock = threading.Lock()


@dataclass
class InvocationResult:
    """Outcome of one invocation.

    :param payload: the response body (bytes of JSON) as the caller receives it.
    :param function_error: ``None`` on success, else ``"Unhandled"``.
    :param log: the whole execution log (START ... REPORT), text.
    :param duration_ms: wall time of the handler process, milliseconds.
    :param max_memory_mb: peak resident set size of the process, MB.
    """

    payload: bytes
    function_error: str | None
    log: str
    duration_ms: float
    max_memory_mb: int


def _unpack(kind: str, sha: str, code: bytes) -> Path:
    """Unpack a zip once per content hash; returns the directory."""
    target = RUNTIME.work_dir / "lambda" / kind / sha.replace("/", "_").replace("+", "-")
    with _unpack_lock:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=target.parent))
            with zipfile.ZipFile(io.BytesIO(code)) as zf:
                zf.extractall(tmp)
            tmp.rename(target)
    return target


def _layer_dirs(fn: lambda_models.LambdaFunction) -> list[str]:
    backend = lambda_models.lambda_backends[fn.account_id][fn.region]
    dirs = []
    for layer in fn.layers:
        lv = backend.layers_versions_by_arn(layer["Arn"])
        if lv is None or not lv.code_bytes:
            continue
        dirs.append(str(_unpack("layer", lv.code_sha_256, lv.code_bytes)))
    return dirs


def _child_env(fn: lambda_models.LambdaFunction) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": str(RUNTIME.work_dir / "lambda" / "home"),
        # Keep glibc from reserving a 64 MB arena per thread: RLIMIT_AS counts reservations.
        "MALLOC_ARENA_MAX": "2",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "_HANDLER": fn.handler or "",
        "AWS_ENDPOINT_URL": RUNTIME.endpoint_url,
        **CHILD_CREDENTIALS,
    }
    env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
    # The endpoint always points back at localaws, whatever the function's variables say.
    env["AWS_ENDPOINT_URL"] = RUNTIME.endpoint_url
    return env


def run_invocation(fn: lambda_models.LambdaFunction, event: bytes) -> InvocationResult:
    """Run one invocation of ``fn`` with ``event`` (JSON bytes) and record its logs.

    :raises ValueError: when the function has no Python runtime (only ``python3.x`` runs here).
    """
    if not (fn.run_time or "").startswith("python"):
        raise ValueError(f"localaws runs only python runtimes; function {fn.function_name} has {fn.run_time!r}")
    fault = faults.run_fault("lambda", fn.function_name)
    if fault is not None:
        return _injected_result(fn, fault)
    request_id = str(uuid.uuid4())
    code_dir = _unpack("code", fn.code_sha_256, fn.code_bytes)
    inv_dir = Path(tempfile.mkdtemp(prefix=f"inv-{request_id[:8]}-", dir=RUNTIME.work_dir))
    (RUNTIME.work_dir / "lambda" / "home").mkdir(parents=True, exist_ok=True)
    timeout_s = float(fn.timeout or 3)
    memory_mb = int(fn.memory_size or 128)
    now = datetime.now(timezone.utc)
    log_stream = f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    try:
        event_file = inv_dir / "event.json"
        event_file.write_bytes(event or b"{}")
        result_file = inv_dir / "result.json"
        spec = {
            "handler": fn.handler,
            "code_dir": str(code_dir),
            "layer_dirs": _layer_dirs(fn),
            "event_file": str(event_file),
            "result_file": str(result_file),
            "function_name": fn.function_name,
            "function_version": "$LATEST",
            "invoked_function_arn": fn.function_arn,
            "memory_limit_in_mb": memory_mb,
            "request_id": request_id,
            "deadline_ms": int((time.time() + timeout_s) * 1000),
            "log_group_name": fn.logs_group_name,
            "log_stream_name": log_stream,
        }
        spec_file = inv_dir / "spec.json"
        spec_file.write_text(json.dumps(spec))
        out_file = inv_dir / "output.log"
        started = time.monotonic()
        with open(out_file, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-u", str(BOOTSTRAP), str(spec_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_child_env(fn),
                cwd=str(code_dir),
                # No preexec_fn: a forked copy of this (large) process would count in the
                # child's peak RSS. The bootstrap sets its own RLIMIT_AS before importing the handler.
                start_new_session=True,
            )
            timed_out = threading.Event()

            def _kill() -> None:
                timed_out.set()
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(timeout_s, _kill)
            timer.start()
            peak_kb = _watch_peak_rss(proc)
            timer.cancel()
        duration_ms = (time.monotonic() - started) * 1000
        output = out_file.read_bytes().decode("utf-8", errors="replace")

        error: dict[str, Any] | None = None
        payload: bytes
        if timed_out.is_set():
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
            }
        elif result_file.exists():
            result = json.loads(result_file.read_text())
            peak_kb = max(peak_kb, int(result.get("max_rss_kb", 0)))
            if result.get("ok"):
                payload = json.dumps(result["payload"]).encode()
            else:
                error = {k: result[k] for k in ("errorType", "errorMessage", "stackTrace") if k in result}
                if error.get("errorType") == "Runtime.OutOfMemory":
                    error["errorMessage"] = (
                        f"RequestId: {request_id} Error: Runtime exited with error: "
                        f"out of memory (MemorySize {memory_mb} MB exceeded)"
                    )
        else:
            # No result: the process died, typically because an allocation hit the memory limit.
            code = proc.returncode
            looks_oom = "MemoryError" in output or "std::bad_alloc" in output or "Cannot allocate memory" in output
            error = {
                "errorType": "Runtime.OutOfMemory" if looks_oom else "Runtime.ExitError",
                "errorMessage": (
                    f"RequestId: {request_id} Error: Runtime exited with error: "
                    + (f"out of memory (MemorySize {memory_mb} MB exceeded)" if looks_oom else f"exit status {code}")
                ),
            }
        if error is not None:
            payload = json.dumps(error).encode()
        max_memory_mb = max(1, round(peak_kb / 1024))

        billed = int(-(-duration_ms // 1))
        lines = [f"START RequestId: {request_id} Version: $LATEST"]
        lines += output.splitlines()
        if timed_out.is_set():
            lines.append(f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%S.%fZ} {request_id} Task timed out after {timeout_s:.2f} seconds")
        lines.append(f"END RequestId: {request_id}")
        lines.append(
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
            f"Memory Size: {memory_mb} MB\tMax Memory Used: {max_memory_mb} MB"
        )
        log_text = "\n".join(lines) + "\n"
        _save_logs(fn, log_stream, lines)
        log.info(
            "lambda %s request %s: %s in %.0f ms, max memory %d MB of %d MB",
            fn.function_name,
            request_id,
            "error " + error["errorType"] if error else "succeeded",
            duration_ms,
            max_memory_mb,
            memory_mb,
        )
        return InvocationResult(payload, "Unhandled" if error else None, log_text, duration_ms, max_memory_mb)
    finally:
        shutil.rmtree(inv_dir, ignore_errors=True)


def _injected_result(fn: lambda_models.LambdaFunction, fault: str) -> InvocationResult:
    """An invocation that fails (``fault="fail"``) or times out (``"timeout"``) without running.

    The response and the log have the shapes of a real failure / timeout; the timeout is
    reported at once instead of after ``Timeout`` seconds.
    """
    request_id = str(uuid.uuid4())
    timeout_s = float(fn.timeout or 3)
    memory_mb = int(fn.memory_size or 128)
    now = datetime.now(timezone.utc)
    log_stream = f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    lines = [f"START RequestId: {request_id} Version: $LATEST"]
    if fault == "timeout":
        error = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        }
        lines.append(f"{now:%Y-%m-%dT%H:%M:%S.%fZ} {request_id} Task timed out after {timeout_s:.2f} seconds "
                     f"{faults.MARK}")
    else:
        error = {
            "errorType": "Runtime.InjectedFault",
            "errorMessage": f"RequestId: {request_id} Error: localaws injected fault: the invocation failed "
                            "(runs.lambda.fail_rate)",
        }
        lines.append(f"[ERROR] Runtime.InjectedFault: {error['errorMessage']}")
    lines.append(f"END RequestId: {request_id}")
    lines.append(f"REPORT RequestId: {request_id}\tDuration: 0.00 ms\tBilled Duration: 0 ms\t"
                 f"Memory Size: {memory_mb} MB\tMax Memory Used: 0 MB")
    _save_logs(fn, log_stream, lines)
    log.info("lambda %s request %s: error %s (localaws injected fault)", fn.function_name, request_id,
             error["errorType"])
    return InvocationResult(json.dumps(error).encode(), "Unhandled", "\n".join(lines) + "\n", 0.0, 0)


def _watch_peak_rss(proc: subprocess.Popen) -> int:
    """Wait for ``proc``, sampling its peak RSS (VmHWM) every 50 ms; returns the last sample, KB.

    ``ru_maxrss`` from wait4 is useless here: Linux carries the parent's peak across fork+exec.
    """
    peak = 0
    status_path = f"/proc/{proc.pid}/status"
    while proc.poll() is None:
        try:
            with open(status_path, encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
                        break
        except OSError:
            pass
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
    return peak


def _save_logs(fn: lambda_models.LambdaFunction, stream: str, lines: list[str]) -> None:
    logs = fn.logs_backend
    logs.ensure_log_group(fn.logs_group_name)
    logs.create_log_stream(fn.logs_group_name, stream)
    now_ms = int(time.time() * 1000)
    events = [{"timestamp": now_ms, "message": line} for line in lines if line != ""] or [
        {"timestamp": now_ms, "message": "(no output)"}
    ]
    logs.put_log_events(fn.logs_group_name, stream, events)
