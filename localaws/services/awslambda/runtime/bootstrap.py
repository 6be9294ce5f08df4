"""Lambda runtime bootstrap: one execution environment of a Python function, in this process.

This file is executed by path in a fresh interpreter (``python bootstrap.py``); it must not import
``localaws`` or anything outside the standard library, because it stands in for the AWS Lambda
Python runtime in which the user's code runs.

It follows the lifecycle of an execution environment as AWS documents it
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html): an **init** phase
that imports the handler's module once, then any number of **invoke** phases that call the handler
with the same module globals and the same temporary directory, until localaws closes the request
pipe (**shutdown**) or kills the process (timeout, discard).

Protocol (all frames are a 4-byte big-endian length, then that many bytes of UTF-8 JSON):

* localaws -> bootstrap on the process's **stdin**; bootstrap -> localaws on its **stdout**. The
  bootstrap moves both pipes to private descriptors at start, so the handler's own ``print`` and
  ``sys.stdin`` never touch them.
* The process's stderr (inherited) is the log file of the first invocation; each ``invoke`` frame
  names the log file of its invocation, and the bootstrap points descriptors 1 and 2 at it for the
  invocation (so output of C extensions and child processes is captured too).
* First frame ``{"type": "init", "handler": "module.function", "code_dir", "layer_dirs",
  "memory_limit_in_mb", "function_name", "function_version", "invoked_function_arn",
  "log_group_name", "log_stream_name"}``; reply ``{"ok": true, "init_ms": N}`` or an error (below),
  after which the process exits.
* Then ``{"type": "invoke", "request_id", "event" (the event's JSON text), "deadline_ms" (epoch
  milliseconds), "log_file"}``; reply ``{"ok": true, "payload": <handler result>}`` or
  ``{"ok": false, "errorType", "errorMessage", "stackTrace": [...]}`` (the shapes the Lambda runtime
  interface uses, https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html). Every reply
  carries ``max_rss_kb`` (peak RSS of the process so far) and ``fatal`` (true: the environment is
  unusable and this process exits after replying: out of memory, ``SystemExit``).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import struct
import sys
import time
import traceback

_HEADER = struct.Struct(">I")


class LambdaContext:
    """The ``context`` argument of a handler, with the attributes of the AWS Python runtime."""

    def __init__(self, init: dict, invoke: dict) -> None:
        self.function_name = init["function_name"]
        self.function_version = init["function_version"]
        self.invoked_function_arn = init["invoked_function_arn"]
        self.memory_limit_in_mb = str(init["memory_limit_in_mb"])
        self.aws_request_id = invoke["request_id"]
        self.log_group_name = init["log_group_name"]
        self.log_stream_name = init["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = int(invoke["deadline_ms"])

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


class _Channel:
    """The frame pipes to localaws, on descriptors of their own (not inherited by the handler's children)."""

    def __init__(self) -> None:
        self._in = os.dup(0)
        self._out = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # until the first invoke frame: stdout goes where stderr goes (the first log)
        os.close(devnull)

    def receive(self) -> dict | None:
        """The next frame, or None when localaws closed the pipe (shutdown)."""
        header = self._read(_HEADER.size)
        if header is None:
            return None
        body = self._read(_HEADER.unpack(header)[0])
        if body is None:
            return None
        return json.loads(body.decode("utf-8"))

    def _read(self, n: int) -> bytes | None:
        chunks = []
        while n:
            chunk = os.read(self._in, n)
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def send(self, message: dict, fatal: bool = False) -> None:
        message["max_rss_kb"] = _peak_rss_kb()
        message["fatal"] = fatal
        try:
            body = json.dumps(message).encode("utf-8")
        except (TypeError, ValueError):  # never: payloads are checked before
            body = json.dumps({"ok": False, "errorType": "Runtime.MarshalError", "errorMessage": "unserialisable",
                               "stackTrace": [], "fatal": fatal}).encode("utf-8")
        data = _HEADER.pack(len(body)) + body
        while data:
            data = data[os.write(self._out, data):]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _redirect_output(path: str | None) -> None:
    """Point descriptors 1 and 2 at ``path`` (append), or at /dev/null for ``None``."""
    _flush()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if path else os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _die_with_parent() -> None:
    """Kill this process group (the handler and anything it started) once localaws is gone.

    localaws starts each environment in a session of its own; if localaws is killed (SIGKILL, a
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


def _init(init: dict):
    """The init phase: memory limit, sys.path, import of the handler's module.

    :returns: ``(handler, None)`` or ``(None, error reply)``.
    """
    # MemorySize is enforced as an address-space limit, like a cgroup limit on AWS but counting
    # virtual memory: set before the handler's module is imported.
    limit = int(init["memory_limit_in_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    code_dir = init["code_dir"]
    os.chdir(code_dir)
    layer_paths = []
    for layer in init.get("layer_dirs", []):
        # AWS puts /opt/python and /opt/python/lib/python3.x/site-packages on sys.path.
        layer_paths.append(os.path.join(layer, "python"))
        layer_paths.append(
            os.path.join(layer, "python", "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
        )
    sys.path[:0] = [code_dir, *layer_paths]

    module_name, _, func_name = init["handler"].rpartition(".")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - every import failure is reported to the caller
        err = _error(exc, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
        print(f"[ERROR] Runtime.ImportModuleError: {err['errorMessage']}", file=sys.stderr)
        return None, err
    handler = getattr(module, func_name, None)
    if handler is None:
        err = {
            "ok": False,
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": f"Handler '{func_name}' missing on module '{module_name}'",
            "stackTrace": [],
        }
        print(f"[ERROR] Runtime.HandlerNotFound: {err['errorMessage']}", file=sys.stderr)
        return None, err
    return handler, None


def _invoke(handler, init: dict, invoke: dict) -> tuple[dict, bool]:
    """One invoke phase; returns ``(reply, fatal)``."""
    event = json.loads(invoke["event"])
    context = LambdaContext(init, invoke)
    try:
        payload = handler(event, context)
    except MemoryError as exc:
        sys.stderr.write("[ERROR] Runtime.OutOfMemory\n")
        return _error(exc, "Runtime.OutOfMemory", "Runtime exited with error: out of memory"), True
    except BaseException as exc:  # noqa: BLE001 - the runtime reports every handler error
        err = _error(exc)
        sys.stderr.write(f"[ERROR] {err['errorType']}: {err['errorMessage']}\n")
        sys.stderr.write("Traceback (most recent call last):\n" + "".join(err["stackTrace"]))
        # SystemExit / KeyboardInterrupt end the runtime process on AWS: the environment goes.
        return err, not isinstance(exc, Exception)
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        err = _error(exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}")
        sys.stderr.write(f"[ERROR] Runtime.MarshalError: {err['errorMessage']}\n")
        return err, False
    return {"ok": True, "payload": payload}, False


def main() -> int:
    _die_with_parent()
    channel = _Channel()
    init = channel.receive()
    if init is None:
        return 0
    started = time.monotonic()
    handler, err = _init(init)
    _flush()
    if err is not None:
        channel.send(err, fatal=True)
        return 1
    channel.send({"ok": True, "init_ms": (time.monotonic() - started) * 1000})
    while True:
        invoke = channel.receive()
        if invoke is None:  # shutdown: localaws closed the pipe
            return 0
        _redirect_output(invoke["log_file"])
        reply, fatal = _invoke(handler, init, invoke)
        _redirect_output(None)
        channel.send(reply, fatal=fatal)
        if fatal:
            return 1


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    sys.exit(main())
