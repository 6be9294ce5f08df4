"""Lambda invocations: run a function's handler from its deployed zip in an execution environment.

:func:`run_invocation` stands in for moto's Docker-based ``LambdaFunction.invoke``. One invocation:

1. the deployment zip (``LambdaFunction.code_bytes``) and each layer's zip are unpacked once per
   code sha256 under the work directory;
2. an idle execution environment of the function's configuration is taken (warm), or a new one
   is started (cold): ``runtime/bootstrap.py`` in a new interpreter with the function's
   environment variables, ``AWS_ENDPOINT_URL`` pointing back at localaws, an address-space limit
   of ``MemorySize`` MB (``RLIMIT_AS``) and its own ``TMPDIR``, which imports the handler's module
   once (the init phase, reported as ``Init Duration``); see
   :mod:`localaws.services.awslambda.environments` for reuse, idle expiry and discard rules, as
   https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html documents them;
3. the environment's process is killed at ``Timeout`` seconds ("Task timed out after N.NN
   seconds") and the environment discarded;
4. the handler's stdout and stderr of this invocation, framed by START/END/REPORT lines with
   the invocation's request id, go to CloudWatch Logs group ``/aws/lambda/<name>`` (one stream
   per environment, as on AWS); the last 4 KB are returned in ``X-Amz-Log-Result`` for
   ``LogType=Tail``.

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
from moto.logs.exceptions import ResourceAlreadyExistsException

from localaws import faults
from localaws.runtime import CHILD_CREDENTIALS, RUNTIME, log
from localaws.services.awslambda import environments

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
    :param duration_ms: wall time of the invoke phase (the handler call), milliseconds.
    :param max_memory_mb: peak resident set size of the environment's process so far, MB.
    :param init_ms: ``Init Duration`` of a cold start (process start + import), milliseconds;
        ``None`` for a warm invocation (and one that did not run: injected fault).
    :param request_id: the invocation's request id.
    """

    payload: bytes
    function_error: str | None
    log: str
    duration_ms: float
    max_memory_mb: int
    init_ms: float | None = None
    request_id: str = ""


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


def run_invocation(fn: lambda_models.LambdaFunction, event: bytes, request_id: str | None = None) -> InvocationResult:
    """Run one invocation of ``fn`` with ``event`` (JSON bytes) and record its logs.

    The invocation runs in an idle execution environment of the function's configuration (warm)
    or in a new one (cold, ``Init Duration`` in REPORT); see
    :mod:`localaws.services.awslambda.environments` and
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html.

    :param request_id: the invocation's id (a UUID4 string): the ``x-amzn-RequestId`` of the Invoke
        response, ``context.aws_request_id`` and the id of the START/END/REPORT lines; new if None.
    :raises ValueError: when the function has no Python runtime (only ``python3.x`` runs here).
    """
    if not (fn.run_time or "").startswith("python"):
        raise ValueError(f"localaws runs only python runtimes; function {fn.function_name} has {fn.run_time!r}")
    request_id = request_id or str(uuid.uuid4())
    fault = faults.run_fault("lambda", fn.function_name)
    if fault is not None:
        return _injected_result(fn, fault, request_id)
    code_dir = _unpack("code", fn.code_sha_256, fn.code_bytes)
    layer_dirs = _layer_dirs(fn)
    (RUNTIME.work_dir / "lambda" / "home").mkdir(parents=True, exist_ok=True)
    timeout_s = float(fn.timeout or 3)
    memory_mb = int(fn.memory_size or 128)
    key = environments.config_key(fn, layer_dirs)
    pool = environments.POOL
    started = time.monotonic()
    deadline = started + timeout_s
    deadline_ms = int((time.time() + timeout_s) * 1000)
    env = pool.acquire(key)
    fd, out_path = tempfile.mkstemp(prefix=f"inv-{request_id[:8]}-", suffix=".log", dir=RUNTIME.work_dir)
    os.close(fd)
    out_file = Path(out_path)  # the invocation's stdout + stderr, written by the bootstrap
    init_ms: float | None = None
    timed_out = False
    died = False
    reusable = False
    reply: dict[str, Any] | None = None
    invoke_started = started
    try:
        if env is None:
            # Cold start: the init phase (process start + import of the handler's module).
            env = pool.start(key, fn, _child_env(fn), code_dir, out_file, environments.new_log_stream())
            try:
                env.send({
                    "type": "init",
                    "handler": fn.handler,
                    "code_dir": str(code_dir),
                    "layer_dirs": layer_dirs,
                    "function_name": fn.function_name,
                    "function_version": "$LATEST",
                    "invoked_function_arn": fn.function_arn,
                    "memory_limit_in_mb": memory_mb,
                    "log_group_name": fn.logs_group_name,
                    "log_stream_name": env.log_stream,
                })
                init_reply = env.receive(deadline)
                if not init_reply.get("ok"):
                    reply = init_reply  # init failed (import error): reported as the invocation's error
            except environments.InvokeTimeout:
                timed_out = True
            except environments.EnvironmentDied:
                died = True
            init_ms = (time.monotonic() - started) * 1000
        if reply is None and not timed_out and not died:
            invoke_started = time.monotonic()
            try:
                env.send({"type": "invoke", "request_id": request_id,
                          "event": (event or b"{}").decode("utf-8", errors="replace"),
                          "deadline_ms": deadline_ms, "log_file": str(out_file)})
                reply = env.receive(deadline)
                reusable = not reply.get("fatal")
            except environments.InvokeTimeout:
                timed_out = True
            except environments.EnvironmentDied:
                died = True
        ended = time.monotonic()
        duration_ms = (ended - invoke_started) * 1000
        output = out_file.read_bytes().decode("utf-8", errors="replace")
        peak_kb = env.peak_kb
        log_stream = env.log_stream
    finally:
        if env is not None:  # None only when the process could not be started (the error propagates)
            pool.release(env, reusable)
        out_file.unlink(missing_ok=True)

    error: dict[str, Any] | None = None
    payload: bytes = b""
    if timed_out:
        error = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        }
    elif reply is not None:
        if reply.get("ok"):
            payload = json.dumps(reply["payload"]).encode()
        else:
            error = {k: reply[k] for k in ("errorType", "errorMessage", "stackTrace") if k in reply}
            if error.get("errorType") == "Runtime.OutOfMemory":
                error["errorMessage"] = (
                    f"RequestId: {request_id} Error: Runtime exited with error: "
                    f"out of memory (MemorySize {memory_mb} MB exceeded)"
                )
    else:
        # No reply: the process died, typically because an allocation hit the memory limit.
        code = env.proc.returncode
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
    if timed_out:
        lines.append(f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%S.%fZ} {request_id} Task timed out after {timeout_s:.2f} seconds")
    lines.append(f"END RequestId: {request_id}")
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: {max_memory_mb} MB"
    )
    if init_ms is not None:
        # AWS adds Init Duration to the REPORT line of a cold start only.
        report += f"\tInit Duration: {init_ms:.2f} ms"
    lines.append(report)
    log_text = "\n".join(lines) + "\n"
    _save_logs(fn, log_stream, lines)
    log.info(
        "lambda %s request %s (%s): %s in %.0f ms, max memory %d MB of %d MB",
        fn.function_name,
        request_id,
        f"cold, init {init_ms:.0f} ms" if init_ms is not None else "warm",
        "error " + error["errorType"] if error else "succeeded",
        duration_ms,
        max_memory_mb,
        memory_mb,
    )
    return InvocationResult(payload, "Unhandled" if error else None, log_text, duration_ms, max_memory_mb,
                            init_ms, request_id)


def _injected_result(fn: lambda_models.LambdaFunction, fault: str, request_id: str) -> InvocationResult:
    """An invocation that fails (``fault="fail"``) or times out (``"timeout"``) without running.

    The response and the log have the shapes of a real failure / timeout; the timeout is
    reported at once instead of after ``Timeout`` seconds.
    """
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
    return InvocationResult(json.dumps(error).encode(), "Unhandled", "\n".join(lines) + "\n", 0.0, 0, None, request_id)


def _save_logs(fn: lambda_models.LambdaFunction, stream: str, lines: list[str]) -> None:
    logs = fn.logs_backend
    logs.ensure_log_group(fn.logs_group_name)
    # One stream per execution environment: its later invocations append to it.
    if stream not in logs.groups[fn.logs_group_name].streams:
        try:
            logs.create_log_stream(fn.logs_group_name, stream)
        except ResourceAlreadyExistsException:  # two threads of one environment never run at once; be safe
            pass
    now_ms = int(time.time() * 1000)
    events = [{"timestamp": now_ms, "message": line} for line in lines if line != ""] or [
        {"timestamp": now_ms, "message": "(no output)"}
    ]
    logs.put_log_events(fn.logs_group_name, stream, events)
