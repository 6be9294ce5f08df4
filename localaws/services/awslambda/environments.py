"""Lambda execution environments: long-lived bootstrap processes, reused by later invocations.

As AWS documents the Lambda execution environment lifecycle
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html):

* **Init**: an environment is one ``runtime/bootstrap.py`` process for one function version and
  configuration (:func:`config_key`: code sha256, handler, runtime, environment variables, memory,
  timeout, layers). It imports the handler's module once; the time from process start to the end
  of the import is the ``Init Duration`` of the cold start's REPORT line.
* **Invoke**: each invocation takes an idle environment of its configuration (warm: no new
  process, no re-import; module globals and the environment's temporary directory, ``TMPDIR``,
  persist) or starts a new one (cold). An environment serves one invocation at a time, so
  concurrent invocations get environments of their own.
* **Shutdown**: an environment idle for :attr:`EnvironmentPool.idle_seconds` (default 600;
  ``localaws serve --lambda-idle-seconds``, ``LocalAWS(lambda_idle_seconds=...)``, env
  ``LOCALAWS_LAMBDA_IDLE_SECONDS``) is stopped, as are all of them when localaws stops
  (:meth:`EnvironmentPool.shutdown`). A timeout, an out-of-memory error, a crash of the process,
  a failed init, or an UpdateFunctionCode / UpdateFunctionConfiguration of the function discards
  its environments: the next invocation is cold, as on AWS ("If the function crashes or times out
  during the Invoke phase, Lambda resets the execution environment").

Environments live only in this process: they are never part of a state snapshot, so a restarted
localaws starts every function cold.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localaws.runtime import RUNTIME, log

BOOTSTRAP = Path(__file__).resolve().parent / "runtime" / "bootstrap.py"

_HEADER = struct.Struct(">I")

#: At most this many idle environments are kept (env ``LOCALAWS_LAMBDA_MAX_IDLE``); past it the
#: least recently used is stopped. AWS reclaims environments as it needs to as well; this keeps a
#: test session that creates hundreds of functions from holding hundreds of processes.
DEFAULT_MAX_IDLE = 32

#: Default seconds an idle environment is kept. AWS does not publish a figure; environments are
#: commonly observed to live 5-15 minutes idle, so 10 minutes.
DEFAULT_IDLE_SECONDS = 600.0


class EnvironmentDied(Exception):
    """The bootstrap process exited (or closed its pipe) before it replied."""


class InvokeTimeout(Exception):
    """No reply before the deadline; the process group has been killed."""


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc


def idle_seconds_from_env() -> float:
    """``$LOCALAWS_LAMBDA_IDLE_SECONDS`` as a number, else :data:`DEFAULT_IDLE_SECONDS`.

    :raises ValueError: when the variable is set but not a number.
    """
    return _env_float("LOCALAWS_LAMBDA_IDLE_SECONDS", DEFAULT_IDLE_SECONDS)


@dataclass(eq=False)
class Environment:
    """One execution environment: a bootstrap process, its temporary directory and log stream.

    :param key: the configuration it serves (see :func:`config_key`).
    :param function_arn: the function's ARN (for discarding on update).
    :param proc: the bootstrap process (its own session: killing the group kills what it started).
    :param directory: the environment's folder; ``directory/tmp`` is the handler's ``TMPDIR``.
    :param log_stream: the CloudWatch Logs stream of this environment (one per environment, as on AWS).
    """

    key: tuple
    function_arn: str
    proc: subprocess.Popen
    directory: Path
    log_stream: str
    peak_kb: int = 0
    invocations: int = 0
    last_used: float = field(default_factory=time.monotonic)
    discarded: bool = False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, message: dict[str, Any]) -> None:
        """Write one frame to the bootstrap. :raises EnvironmentDied: when the pipe is closed."""
        body = json.dumps(message).encode("utf-8")
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(_HEADER.pack(len(body)) + body)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise EnvironmentDied(str(exc)) from None

    def receive(self, deadline: float) -> dict[str, Any]:
        """Read one frame, sampling the process's peak RSS every 50 ms while waiting.

        :param deadline: ``time.monotonic()`` value at which the process group is killed.
        :raises InvokeTimeout: at the deadline (the process is killed).
        :raises EnvironmentDied: when the process exits or closes its pipe first.
        """
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        need = _HEADER.size
        header_done = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise InvokeTimeout()
            ready, _, _ = select.select([fd], [], [], min(0.05, remaining))
            if not ready:
                self._sample_peak()
                continue
            chunk = os.read(fd, need - len(buf))
            if not chunk:
                self._sample_peak()
                self.proc.wait()
                raise EnvironmentDied(f"exit status {self.proc.returncode}")
            buf += chunk
            if not header_done and len(buf) >= _HEADER.size:
                need = _HEADER.unpack(buf[:_HEADER.size])[0]
                buf = buf[_HEADER.size:]
                header_done = True
            if header_done and len(buf) >= need:
                message = json.loads(buf[:need].decode("utf-8"))
                self.peak_kb = max(self.peak_kb, int(message.get("max_rss_kb", 0)))
                return message

    def _sample_peak(self) -> None:
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                        break
        except OSError:
            pass

    def kill(self) -> None:
        """Kill the process group (the bootstrap and anything the handler started) and reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        """Shutdown phase: close the request pipe (the bootstrap exits), kill what is left, remove the folder."""
        if self.alive:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # the group too: a handler may have left a child behind
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)


def config_key(fn: Any, layer_dirs: list[str]) -> tuple:
    """What makes two invocations share an environment: the same function object (a re-created
    function is another function), version and configuration as AWS versions them (code, handler,
    runtime, environment variables, memory, timeout, layers)."""
    return (
        id(fn), fn.function_arn, "$LATEST", fn.code_sha_256, fn.handler, fn.run_time,
        json.dumps(fn.environment_vars or {}, sort_keys=True, default=str),
        int(fn.memory_size or 128), float(fn.timeout or 3), tuple(layer_dirs),
    )


class EnvironmentPool:
    """The environments of all functions; thread-safe (one HTTP thread per Invoke).

    :param idle_seconds: an environment unused this long is stopped; ``0`` stops each environment
        after its invocation (every invocation cold, as localaws did before environments).
    :param max_idle: most idle environments kept (all functions together); the least recently
        used beyond it is stopped. ``None``: ``$LOCALAWS_LAMBDA_MAX_IDLE``, else :data:`DEFAULT_MAX_IDLE`.
    """

    def __init__(self, idle_seconds: float | None = None, max_idle: int | None = None) -> None:
        self.idle_seconds = idle_seconds_from_env() if idle_seconds is None else float(idle_seconds)
        self.max_idle = int(_env_float("LOCALAWS_LAMBDA_MAX_IDLE", DEFAULT_MAX_IDLE)) if max_idle is None else max_idle
        self._lock = threading.Lock()
        self._idle: list[Environment] = []
        self._busy: set[Environment] = set()
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    def configure(self, idle_seconds: float | None = None) -> None:
        """Settings for a server start: ``idle_seconds`` (``None``: ``$LOCALAWS_LAMBDA_IDLE_SECONDS``,
        else 600) and :attr:`max_idle` from ``$LOCALAWS_LAMBDA_MAX_IDLE`` (else 32).

        :raises ValueError: when one of the variables is set but not a number.
        """
        self.idle_seconds = idle_seconds_from_env() if idle_seconds is None else float(idle_seconds)
        self.max_idle = int(_env_float("LOCALAWS_LAMBDA_MAX_IDLE", DEFAULT_MAX_IDLE))

    # -- acquire / release
    def acquire(self, key: tuple) -> Environment | None:
        """An idle environment for ``key`` (most recently used first), marked busy; None: start one."""
        with self._lock:
            for env in reversed(self._idle):
                if env.key == key:
                    self._idle.remove(env)
                    if not env.alive:
                        self._stop_later(env)
                        continue
                    self._busy.add(env)
                    return env
        return None

    def start(self, key: tuple, fn: Any, env_vars: dict[str, str], code_dir: Path, first_log: Path,
              log_stream: str) -> Environment:
        """Start a bootstrap process for ``key`` (busy); its stderr is ``first_log`` until the first invoke."""
        directory = Path(tempfile.mkdtemp(prefix=f"env-{fn.function_name[:40]}-", dir=RUNTIME.work_dir / "lambda"))
        tmp = directory / "tmp"
        tmp.mkdir()
        env_vars = {**env_vars, "TMPDIR": str(tmp), "AWS_LAMBDA_LOG_STREAM_NAME": log_stream}
        with open(first_log, "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-u", str(BOOTSTRAP)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env_vars,
                cwd=str(code_dir),
                # No preexec_fn: a forked copy of this (large) process would count in the
                # child's peak RSS. The bootstrap sets its own RLIMIT_AS before importing the handler.
                start_new_session=True,
                bufsize=0,
            )
        env = Environment(key=key, function_arn=fn.function_arn, proc=proc, directory=directory, log_stream=log_stream)
        with self._lock:
            self._busy.add(env)
            self._ensure_reaper()
        return env

    def release(self, env: Environment, reusable: bool) -> None:
        """Give ``env`` back after an invocation: idle if ``reusable`` and still alive, else stopped."""
        env.last_used = time.monotonic()
        env.invocations += 1
        evicted: list[Environment] = []
        with self._lock:
            self._busy.discard(env)
            keep = reusable and not env.discarded and env.alive and self.idle_seconds > 0 and not self._stop.is_set()
            if keep:
                self._idle.append(env)  # the list stays ordered by last use
                while len(self._idle) > max(self.max_idle, 0):
                    evicted.append(self._idle.pop(0))
        if not keep:
            env.stop()
        for old in evicted:
            old.stop()

    def discard_function(self, function_arn: str) -> int:
        """Discard every environment of a function (after a code or configuration update).

        Idle ones stop now; busy ones finish their invocation and stop then. Returns how many.
        """
        with self._lock:
            idle = [e for e in self._idle if e.function_arn == function_arn]
            self._idle = [e for e in self._idle if e.function_arn != function_arn]
            busy = [e for e in self._busy if e.function_arn == function_arn]
            for env in busy:
                env.discarded = True
        for env in idle:
            env.stop()
        if idle or busy:
            log.info("lambda %s: %d execution environment(s) discarded (code or configuration updated)",
                     function_arn.rsplit(":", 1)[-1], len(idle) + len(busy))
        return len(idle) + len(busy)

    def _stop_later(self, env: Environment) -> None:
        threading.Thread(target=env.stop, name="lambda-env-stop", daemon=True).start()

    # -- idle expiry and shutdown
    def _ensure_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._stop.clear()
            self._reaper = threading.Thread(target=self._reap_loop, name="lambda-env-reaper", daemon=True)
            self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._stop.wait(max(0.05, min(1.0, self.idle_seconds / 4 if self.idle_seconds else 1.0))):
            self.reap()

    def reap(self) -> int:
        """Stop environments idle longer than :attr:`idle_seconds` or whose process died; returns how many."""
        now = time.monotonic()
        with self._lock:
            expired = [e for e in self._idle if now - e.last_used >= self.idle_seconds or not e.alive]
            self._idle = [e for e in self._idle if e not in expired]
        for env in expired:
            env.stop()
        if expired:
            log.debug("lambda: %d idle execution environment(s) stopped", len(expired))
        return len(expired)

    def pids(self) -> list[int]:
        """Process ids of all environments (idle and busy), for tests and benchmarks."""
        with self._lock:
            return [e.proc.pid for e in [*self._idle, *self._busy]]

    def shutdown(self) -> None:
        """Stop every environment (idle and busy) and the reaper; the pool can be used again afterwards."""
        self._stop.set()
        with self._lock:
            envs = [*self._idle, *self._busy]
            self._idle = []
            for env in self._busy:
                env.discarded = True
            self._busy = set()
        for env in envs:
            env.stop()
        if self._reaper is not None:
            self._reaper.join(timeout=5)
            self._reaper = None
        if envs:
            log.info("lambda: %d execution environment(s) shut down", len(envs))


#: The process-wide pool (moto's backends are process-wide too). Not pickled with the state.
#: Built with the defaults (importing never fails on a bad variable); LocalAWS.start() configures it.
POOL = EnvironmentPool(DEFAULT_IDLE_SECONDS, DEFAULT_MAX_IDLE)


def new_log_stream() -> str:
    """A CloudWatch Logs stream name as AWS gives one per environment: ``YYYY/MM/DD/[$LATEST]<hex>``."""
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
