"""Process-wide runtime state of localaws: where the server listens and where executors work.

moto keeps its backends in module-level dicts, so one process hosts at most one localaws server;
the executors (Lambda, Glue) read the endpoint and work directory from here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localaws.faults import FaultInjector

log = logging.getLogger("localaws")

#: Credentials handed to Lambda functions and Glue jobs. localaws does not check signatures,
#: so these are placeholders, like the role credentials AWS injects into a function.
CHILD_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "localaws",
    "AWS_SECRET_ACCESS_KEY": "localaws",
    "AWS_SESSION_TOKEN": "localaws",
}


#: JVM options for many small Glue runs: C1 JIT only and the serial GC. A small gold run spends
#: about 35% less CPU (33 -> 21 CPU-seconds on 2 cores), a 20M-row aggregation runs ~55% longer
#: (docs/localaws.md, "Spark settings"). The test suite and ``make demo`` use them.
QUICK_START_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc


class NotEmulated(NotImplementedError):
    """A request localaws refuses with HTTP 501 ``NotImplemented`` because it would store but not
    emulate what it asks for (a metric-math alarm, say); the message, given verbatim to the
    client, names the resource and the field (localaws/server.py ``_answer_not_implemented``)."""
def _env_delays(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        delays = tuple(float(part) for part in raw.split(","))
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a comma-separated list of seconds") from exc
    if not delays or any(d < 0 for d in delays):
        raise ValueError(f"environment variable {name}={raw!r}: seconds must be >= 0")
    return delays


@dataclass
class Runtime:
    """Settings the executors need; filled in by :class:`localaws.server.LocalAWS` at start.

    :param endpoint_url: ``http://host:port`` that child processes use as ``AWS_ENDPOINT_URL``.
    :param work_dir: scratch directory for unpacked Lambda code and Glue staging (deleted at stop).
    :param glue_minute_seconds: seconds in one "minute" of a Glue job's ``Timeout`` (default 60;
        env ``LOCALAWS_GLUE_MINUTE_SECONDS``; tests shorten it to exercise timeouts quickly).
    :param spark_driver_memory: ``spark.driver.memory`` for glueetl runs (env
        ``LOCALAWS_SPARK_DRIVER_MEMORY``, default ``2g``).
    :param spark_cores: ``local[N]`` cores for glueetl runs (env ``LOCALAWS_SPARK_CORES``, default 2).
    :param glue_pool_size: pre-started Glue drivers kept ready for glueetl runs (env
        ``LOCALAWS_GLUE_POOL_SIZE``, default 2; 0: off, every run starts its own JVM); see
        :mod:`localaws.services.glue_jobs.pool`.
    :param glue_jvm_options: extra JVM options of glueetl drivers, cold and pooled (set at start
        from ``LocalAWS(glue_jvm_options=...)``, ``--glue-jvm-options`` or env
        ``LOCALAWS_GLUE_JVM_OPTIONS``; default none). ``-XX:TieredStopAtLevel=1 -XX:+UseSerialGC``
        (C1 JIT only) cuts a small run's CPU by about a third and slows a long one (measured in
        docs/localaws.md); the test suite and ``make demo`` set it, since their days are small.
    :param alarm_evaluation_seconds: seconds between two evaluations of every CloudWatch metric
        alarm (env ``LOCALAWS_ALARM_EVALUATION_SECONDS``, default 60: AWS evaluates each minute);
        tests shorten it with :meth:`localaws.services.cloudwatch_alarms.EVALUATOR.configure`.
    :param lambda_retry_delays: seconds before the 1st and 2nd retry of a failed asynchronous Lambda
        invocation (env ``LOCALAWS_LAMBDA_RETRY_DELAYS``, e.g. ``"60,120"``, the default: AWS waits one
        minute, then two; see :mod:`localaws.services.awslambda.asynchronous`). Tests shorten them.
    :param lambda_async_concurrency: asynchronous invocations of one function run at once, when it has
        no reserved concurrency (env ``LOCALAWS_LAMBDA_ASYNC_CONCURRENCY``, default 4); the others wait.
    :param state_change: a context manager that background work (not an HTTP request) enters while
        it changes moto's state, so that a snapshot never pickles a half-made change and the next
        periodic snapshot includes it; the server sets it at start (``nullcontext`` otherwise).
    """

    endpoint_url: str = ""
    work_dir: Path = Path("/tmp/localaws")
    glue_minute_seconds: float = field(default_factory=lambda: _env_float("LOCALAWS_GLUE_MINUTE_SECONDS", 60.0))
    spark_driver_memory: str = field(default_factory=lambda: os.environ.get("LOCALAWS_SPARK_DRIVER_MEMORY", "2g"))
    spark_cores: int = field(default_factory=lambda: int(_env_float("LOCALAWS_SPARK_CORES", 2)))
    glue_pool_size: int = field(default_factory=lambda: int(_env_float("LOCALAWS_GLUE_POOL_SIZE", 2)))
    glue_jvm_options: str = ""
    alarm_evaluation_seconds: float = field(
        default_factory=lambda: _env_float("LOCALAWS_ALARM_EVALUATION_SECONDS", 60.0))
    lambda_retry_delays: tuple[float, ...] = field(
        default_factory=lambda: _env_delays("LOCALAWS_LAMBDA_RETRY_DELAYS", (60.0, 120.0)))
    lambda_async_concurrency: int = field(default_factory=lambda: max(1, int(_env_float(
        "LOCALAWS_LAMBDA_ASYNC_CONCURRENCY", 4))))
    state_change: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
    #: Background threads (Event invocations, Glue runs) still running; joined at stop.
    threads: list[threading.Thread] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    #: The running server's fault injector (see localaws/faults.py); ``None`` when no server runs.
    faults: FaultInjector | None = None

    def spawn(self, name: str, target, *args) -> threading.Thread:
        """Start a daemon thread for background work and remember it so stop() can wait."""
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()]
        self.threads.append(thread)
        thread.start()
        return thread


RUNTIME = Runtime()
