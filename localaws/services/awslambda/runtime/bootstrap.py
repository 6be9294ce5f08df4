"""Lambda runtime bootstrap: runs one invocation of a Python handler in this process.

This file is executed by path in a fresh interpreter (``python bootstrap.py SPEC``); it must not
import ``localaws`` or anything outside the standard library, because it stands in for the AWS
Lambda Python runtime in which the user's code runs.

SPEC is a JSON file with the keys ``handler`` ("module.function"), ``code_dir`` (the unpacked
deployment zip, used as working directory like ``/var/task``), ``layer_dirs`` (unpacked layers,
each like ``/opt``), ``event_file``, ``result_file``, ``function_name``, ``function_version``,
``invoked_function_arn``, ``memory_limit_in_mb``, ``request_id``, ``deadline_ms`` (epoch
milliseconds), ``log_group_name`` and ``log_stream_name``.

The result file receives ``{"ok": true, "payload": <handler result>}`` or
``{"ok": false, "errorType": ..., "errorMessage": ..., "stackTrace": [...]}``, the shapes the
Lambda runtime interface uses (https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback


class LambdaContext:
    """The ``context`` argument of a handler, with the attributes of the AWS Python runtime."""

    def __init__(self, spec: dict) -> None:
        self.function_name = spec["function_name"]
        self.function_version = spec["function_version"]
        self.invoked_function_arn = spec["invoked_function_arn"]
        self.memory_limit_in_mb = str(spec["memory_limit_in_mb"])
        self.aws_request_id = spec["request_id"]
        self.log_group_name = spec["log_group_name"]
        self.log_stream_name = spec["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = int(spec["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout kills this invocation."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException, error_type: str | None = None, message: str | None = None) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    # Drop the bootstrap's own frames, as the AWS runtime does.
    frames = [f for f in frames if f.filename != __file__]
    return {
        "ok": False,
        "errorType": error_type or type(exc).__name__,
        "errorMessage": message if message is not None else str(exc),
        "stackTrace": traceback.format_list(frames),
    }


def _peak_rss_kb() -> int:
    """Peak resident set size of this process since exec (VmHWM), KB; 0 where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _write(path: str, result: dict) -> None:
    result["max_rss_kb"] = _peak_rss_kb()
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


def _die_with_parent() -> None:
    """Kill this process group (the handler and anything it started) once localaws is gone.

    localaws starts each invocation in a session of its own; if localaws is killed (SIGKILL, a
    crash), an orphaned handler would go on writing to a restarted server next to the retry.
    The same guard is in ``localaws/services/glue_jobs/compat/localaws_glue_runner.py`` (both
    files run standalone and import nothing of localaws).
    """
    import signal
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.killpg(0, signal.SIGKILL)

    old = threading.stack_size(256 * 1024)  # small: RLIMIT_AS counts thread stacks
    try:
        threading.Thread(target=watch, name="localaws-parent-watch", daemon=True).start()
    finally:
        threading.stack_size(old)


def main(spec_path: str) -> int:
    _die_with_parent()
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    result_file = spec["result_file"]
    # MemorySize is enforced as an address-space limit, like a cgroup limit on AWS but counting
    # virtual memory: set before the handler's module is imported.
    limit = int(spec["memory_limit_in_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    code_dir = spec["code_dir"]
    os.chdir(code_dir)
    layer_paths = []
    for layer in spec.get("layer_dirs", []):
        # AWS puts /opt/python and /opt/python/lib/python3.x/site-packages on sys.path.
        layer_paths.append(os.path.join(layer, "python"))
        layer_paths.append(
            os.path.join(layer, "python", "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
        )
    sys.path[:0] = [code_dir, *layer_paths]

    with open(spec["event_file"], encoding="utf-8") as fh:
        event = json.load(fh)

    module_name, _, func_name = spec["handler"].rpartition(".")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - every import failure is reported to the caller
        err = _error(exc, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
        print(f"[ERROR] Runtime.ImportModuleError: {err['errorMessage']}", file=sys.stderr)
        _write(result_file, err)
        return 1
    handler = getattr(module, func_name, None)
    if handler is None:
        err = {
            "ok": False,
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": f"Handler '{func_name}' missing on module '{module_name}'",
            "stackTrace": [],
        }
        print(f"[ERROR] Runtime.HandlerNotFound: {err['errorMessage']}", file=sys.stderr)
        _write(result_file, err)
        return 1

    context = LambdaContext(spec)
    try:
        payload = handler(event, context)
    except MemoryError as exc:
        sys.stderr.write("[ERROR] Runtime.OutOfMemory\n")
        _write(result_file, _error(exc, "Runtime.OutOfMemory", "Runtime exited with error: out of memory"))
        return 1
    except BaseException as exc:  # noqa: BLE001 - the runtime reports every handler error
        err = _error(exc)
        sys.stderr.write(f"[ERROR] {err['errorType']}: {err['errorMessage']}\n")
        sys.stderr.write("Traceback (most recent call last):\n" + "".join(err["stackTrace"]))
        sys.stderr.flush()
        _write(result_file, err)
        return 1
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        err = _error(exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}")
        sys.stderr.write(f"[ERROR] Runtime.MarshalError: {err['errorMessage']}\n")
        _write(result_file, err)
        return 1
    _write(result_file, {"ok": True, "payload": payload})
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    sys.exit(main(sys.argv[1]))
