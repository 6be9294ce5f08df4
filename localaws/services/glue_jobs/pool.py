"""Pre-started Glue drivers: ``glueetl`` runs start without waiting on a JVM.

A pooled driver is ``localaws_glue_runner.py --pool`` (``compat/``): a Python process that has
already started the JVM, the SparkContext and the SparkSession with the settings a cold run
gets (:func:`localaws.services.glue_jobs.models.driver_env`: the same ``PYSPARK_SUBMIT_ARGS``,
S3 bridge, bind address 127.0.0.1) and waits on stdin for one run. :meth:`DriverPool.take`
hands a run to one; the driver applies the run's environment (credentials, endpoint, region,
staging dir, result file) before the script imports boto3, runs the script as the cold runner
does, and exits. A pooled process serves ONE run, so nothing a script does (``sys.exit``,
``sc.stop()``, globals, environment variables) reaches the next run.

Rules (docs/localaws.md, "Glue job runs: pre-started drivers"):

* size: ``Runtime.glue_pool_size`` (``localaws serve --glue-pool-size N``, ``LocalAWS(glue_pool_size=N)``,
  env ``LOCALAWS_GLUE_POOL_SIZE``; default 2; 0 turns the pool off: every run starts cold);
* the pool is started by the first CreateJob or StartJobRun of a ``glueetl`` job, not at server
  start (which stays fast), and refills in the background: a replacement starts as soon as a
  driver is taken;
* a run that finds the pool empty, or whose driver configuration differs from the pooled
  drivers' (Spark cores or memory changed since they started, or a JVM-level job argument:
  :data:`COLD_ARGUMENTS`), starts cold as before;
* each driver has its own directory under the work dir, which becomes its run's directory;
* :meth:`DriverPool.stop` (called by ``LocalAWS.stop``) kills the idle drivers and waits for them;
  a driver also kills itself when localaws dies (it watches its parent).
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from localaws.runtime import RUNTIME, log

#: Job arguments that configure the JVM (Glue's ``--conf``, extra jars): a pooled JVM cannot take
#: them, so a run that has one starts cold (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-glue-arguments.html).
COLD_ARGUMENTS = ("--conf", "--extra-jars", "--user-jars-first")

#: The line a pooled driver writes to stderr once it has its run (``localaws_glue_runner.RUN_STARTS``):
#: not logged; the lines before it (the warm-up's) do not count for a crash's ErrorMessage.
RUN_STARTS = b"\x00localaws-run-starts\n"

_seq = itertools.count(1)


class _Lines:
    """Reads a child's stream on a thread into a queue, so nothing blocks while the driver waits.

    Iterating yields the lines read so far and then the rest, as ``bytes``, until EOF.
    """

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), name=name, daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self._queue.put(raw)
        finally:
            self._queue.put(None)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._queue.get, None)


class PooledDriver:
    """One pre-started driver process: ``proc`` (its own session), its directory ``dir``, its
    base environment ``env`` and its stdout/stderr lines (``stdout``, ``stderr``; the warm-up lines,
    e.g. Spark's startup WARNs, included, as in a cold run's logs)."""

    def __init__(self, proc: subprocess.Popen, directory: Path, env: dict[str, str], ready_fd: int) -> None:
        self.proc = proc
        self.dir = directory
        self.env = env
        self.stdout = _Lines(proc.stdout, "glue-pool-out")
        self.stderr = _Lines(proc.stderr, "glue-pool-err")
        self._ready_fd = ready_fd
        self._ready_lock = threading.Lock()
        self.ready = False

    def poll_ready(self) -> bool:
        """Whether the driver has said it is ready (non-blocking)."""
        with self._ready_lock:
            if not self.ready and self._ready_fd >= 0 and select.select([self._ready_fd], [], [], 0)[0]:
                self.ready = os.read(self._ready_fd, 64).startswith(b"ready")
                os.close(self._ready_fd)
                self._ready_fd = -1
            return self.ready

    def _close_ready(self) -> None:
        with self._ready_lock:
            if self._ready_fd >= 0:
                os.close(self._ready_fd)
                self._ready_fd = -1

    def hand_over(self, argv: list[str], env: dict[str, str]) -> None:
        """Send the run (``argv`` = script path then ``--KEY VALUE`` pairs; ``env`` = the variables
        that differ from :attr:`env`); stdin is closed after it, as a cold run's stdin is empty."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "env": env}).encode() + b"\n")
        self.proc.stdin.close()
        self.poll_ready()
        self._close_ready()

    def kill(self) -> None:
        """Kill the driver's process group (Python and JVM) and reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("pooled Glue driver %d did not exit after SIGKILL", self.proc.pid)
        self._close_ready()
        shutil.rmtree(self.dir, ignore_errors=True)


class DriverPool:
    """The pool of :class:`PooledDriver`; one per process (:data:`POOL`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[PooledDriver] = []
        self._started = False

    @property
    def size(self) -> int:
        return max(0, int(RUNTIME.glue_pool_size))

    def ensure_started(self) -> None:
        """Fill the pool up to its size (no-op when the size is 0 or localaws is stopping)."""
        with self._lock:
            self._started = True
            self._fill_locked()

    def _fill_locked(self) -> None:
        if RUNTIME.stopping.is_set() or not RUNTIME.endpoint_url:
            return
        self._idle = [d for d in self._idle if d.proc.poll() is None or self._reap(d)]
        while len(self._idle) < self.size:
            try:
                self._idle.append(self._spawn())
            except OSError:
                log.exception("could not start a pooled Glue driver")
                return

    @staticmethod
    def _reap(driver: PooledDriver) -> bool:
        log.warning("pooled Glue driver %d exited with status %s before a run; replaced",
                    driver.proc.pid, driver.proc.returncode)
        driver.kill()
        return False

    def _spawn(self) -> PooledDriver:
        from localaws.services.glue_jobs.models import RUNNER, driver_env

        directory = RUNTIME.work_dir / "glue" / f"pool-{os.getpid()}-{next(_seq)}"
        for sub in ("staging", "java-tmp"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        env = driver_env(directory, "glueetl")
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-u", str(RUNNER), "--pool"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**env, "LOCALAWS_POOL_READY_FD": str(write_fd)},
                cwd=str(directory),
                start_new_session=True,
                pass_fds=(write_fd,),
            )
        except OSError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return PooledDriver(proc, directory, env, read_fd)

    def take(self, arguments: dict[str, str]) -> PooledDriver | None:
        """A driver for a ``glueetl`` run with job ``arguments``, or ``None`` (start cold).

        Prefers a ready driver over one still warming up (which is still ahead of a cold start);
        starts a replacement at once. ``None`` when the pool is off or empty, or when the run
        needs a JVM of its own (:data:`COLD_ARGUMENTS`).
        """
        from localaws.services.glue_jobs.models import driver_env

        if self.size == 0 or any(key in arguments for key in COLD_ARGUMENTS):
            return None
        with self._lock:
            self._started = True
            stale = []
            chosen = None
            for driver in sorted(self._idle, key=lambda d: not d.poll_ready()):
                if driver.proc.poll() is not None:
                    continue
                if driver.env != driver_env(driver.dir, "glueetl"):
                    stale.append(driver)  # Spark settings changed since it started
                    continue
                chosen = driver
                break
            self._idle = [d for d in self._idle if d is not chosen and d not in stale]
            self._fill_locked()
        for driver in stale:
            driver.kill()
        return chosen

    def stop(self) -> None:
        """Kill the idle drivers and wait for them (``LocalAWS.stop``); the pool can start again."""
        with self._lock:
            idle, self._idle, self._started = self._idle, [], False
        for driver in idle:
            driver.kill()
        if idle:
            log.info("stopped %d pooled Glue driver(s)", len(idle))

    def pids(self) -> list[int]:
        """Process ids of the idle drivers (for tests and the bench)."""
        with self._lock:
            return [d.proc.pid for d in self._idle]

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Wait until every idle driver is ready (for tests and the bench); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                drivers = list(self._idle)
            if len(drivers) >= self.size and all(d.poll_ready() for d in drivers):
                return True
            time.sleep(0.1)
        return False


POOL = DriverPool()
