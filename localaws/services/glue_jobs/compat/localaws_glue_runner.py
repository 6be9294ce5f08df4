"""Entry point of a localaws Glue job run: ``python localaws_glue_runner.py SCRIPT [--KEY VALUE ...]``.

``python localaws_glue_runner.py --pool`` is a pre-started (pooled) driver instead: it starts
the JVM and the SparkContext/SparkSession first, says so on ``$LOCALAWS_POOL_READY_FD``, then
waits on stdin for one run (a JSON line ``{"argv": [SCRIPT, --KEY, VALUE, ...], "env": {...}}``),
applies the run's environment and runs SCRIPT exactly as the cold entry point does, then exits:
one pooled process serves one run (see ``localaws/services/glue_jobs/pool.py``).

Runs SCRIPT as ``__main__`` with ``sys.argv = [SCRIPT, --KEY, VALUE, ...]`` as Glue does. For
``glueetl`` runs (``LOCALAWS_JOB_KIND=glueetl``) the S3 bridge is installed first so s3:// paths
work in plain Spark reads and writes. When the script raises, the exception's last line
("Type: message") is written to ``$LOCALAWS_RESULT_FILE`` as the run's ErrorMessage, the
traceback goes to stderr (the ``/aws-glue/jobs/error`` log) and the process exits 1.
"""

import json
import os
import runpy
import signal
import sys
import threading
import time
import traceback

#: The line a pooled driver writes to stderr when its run starts (``pool.RUN_STARTS``).
RUN_STARTS = "\x00localaws-run-starts\n"


def _record_error(message: str) -> None:
    path = os.environ.get("LOCALAWS_RESULT_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"error": message}, fh)


def _stop_spark() -> None:
    if "pyspark" not in sys.modules:
        return
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()


def _die_with_parent() -> None:
    """Kill this process group (the script and its Spark JVM) once localaws is gone.

    localaws starts each run in a session of its own; if localaws is killed (SIGKILL, a crash), an
    orphaned run would go on writing to a restarted server next to the retry. The same guard is in
    ``localaws/services/awslambda/runtime/bootstrap.py`` (both files run standalone and import
    nothing of localaws).
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="localaws-parent-watch", daemon=True).start()


def _run(script: str, stop_spark: bool = True) -> int:
    """Run ``script`` as ``__main__`` (``sys.argv`` already set); returns the process's exit status.

    ``stop_spark``: stop an active SparkContext afterwards (a pooled driver kills its JVM instead).
    """
    if os.environ.get("LOCALAWS_JOB_KIND") == "glueetl":
        import localaws_s3_bridge

        localaws_s3_bridge.install()
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            _record_error(f"SystemExit: {exc.code}")
            return exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - every script failure becomes the run's ErrorMessage
        message = str(exc).strip().splitlines()
        _record_error(f"{type(exc).__name__}: {message[0] if message else ''}".rstrip(": "))
        traceback.print_exc()
        return 1
    finally:
        try:
            if stop_spark:
                _stop_spark()
        except Exception:  # noqa: BLE001 - stopping Spark must not hide the script's outcome
            pass
    return 0


def main() -> int:
    _die_with_parent()
    script = sys.argv[1]
    sys.argv = [script, *sys.argv[2:]]
    return _run(script)


def _adopt_warm_context(warm) -> None:
    """Make the script's ``SparkContext()`` return the pre-started context ``warm``.

    A cold run's ``SparkContext()`` (no arguments) creates a context from the spark-submit
    settings in ``PYSPARK_SUBMIT_ARGS``; ``warm`` was created from the same settings, so it is
    returned instead (pyspark would otherwise refuse a second context). A call with arguments
    (``master``, ``appName``, ``conf``, ...) stops ``warm`` and creates the context asked for in the
    same JVM, as a cold run would. Once ``warm`` is stopped, ``SparkContext()`` behaves as usual.
    """
    from pyspark import SparkContext

    orig_init = SparkContext.__init__

    def __new__(cls, *args, **kwargs):
        if cls is SparkContext and SparkContext._active_spark_context is warm and warm._jsc is not None:
            if not args and not kwargs:
                return warm
            warm.stop()
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        if self is warm and warm._jsc is not None and not args and not kwargs:
            return
        orig_init(self, *args, **kwargs)

    SparkContext.__new__ = __new__
    SparkContext.__init__ = __init__


def _warm_up(spark) -> None:
    """Load, before a run arrives, what a run's first Spark job and first boto3 call load: a small
    shuffle, a Parquet and a CSV write and read on local disk (scheduler, codegen, Hadoop and Parquet
    classes), and botocore's modules through a throwaway session with explicit dummy settings (the
    default session, which reads the run's credentials, is left untouched)."""
    import shutil
    import tempfile

    import boto3

    df = spark.createDataFrame([(1, "a", 1.5), (2, "b", None)], "id int, v string, x double")
    df.groupBy("v").count().collect()
    scratch = tempfile.mkdtemp(prefix="localaws-warm-up-")
    try:
        for fmt in ("parquet", "csv"):
            df.write.mode("overwrite").format(fmt).option("header", "true").save(f"{scratch}/{fmt}")
            spark.read.format(fmt).option("header", "true").load(f"{scratch}/{fmt}").count()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    boto3.session.Session(aws_access_key_id="warm-up", aws_secret_access_key="warm-up",
                          region_name="us-east-1").client("s3", endpoint_url="http://127.0.0.1:9")


def pool_main() -> int:
    """A pooled driver: warm up, wait for one run on stdin, run it (see the module docstring)."""
    _die_with_parent()
    import localaws_s3_bridge
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    sc = SparkContext.getOrCreate()
    spark = SparkSession.builder.getOrCreate()
    _warm_up(spark)
    localaws_s3_bridge.install()

    ready_fd = int(os.environ.pop("LOCALAWS_POOL_READY_FD"))
    try:
        os.write(ready_fd, b"ready\n")
    except BrokenPipeError:  # a run was handed over while this driver warmed up: nobody waits for "ready"
        pass
    os.close(ready_fd)
    line = sys.stdin.readline()
    if not line:  # localaws stopped the pool before handing over a run
        sc.stop()
        return 0
    order = json.loads(line)
    # Lines before this mark are the warm-up's (Spark's startup WARNs): localaws keeps them in the
    # run's error log but not in the tail it takes a crash's ErrorMessage from.
    sys.stderr.write(RUN_STARTS)
    sys.stderr.flush()
    # The run's environment (credentials, endpoint, region, staging dir, result file) reaches
    # boto3 here, before any client exists, and the Python workers through sc.environment.
    os.environ.update(order["env"])
    sc.environment.update(order["env"])
    _adopt_warm_context(sc)
    script = order["argv"][0]
    sys.argv = list(order["argv"])
    code = _run(script, stop_spark=False)
    _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End a pooled driver after its run: flush the logs, kill the JVM, exit with ``code``.

    The process serves no further run and its directory is deleted by localaws, so the orderly
    ``SparkContext.stop()`` and JVM shutdown of a cold run (about 1.5 s on 2 cores) are skipped;
    the script's outcome, output and logs are complete at this point.
    """
    from pyspark import SparkContext

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream has nothing left to flush
            pass
    # What the dying JVM connection makes pyspark's helper threads print is not the run's output.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    jvm = getattr(SparkContext._gateway, "proc", None)
    if jvm is not None and jvm.poll() is None:
        jvm.kill()
        jvm.wait()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(pool_main() if sys.argv[1:] == ["--pool"] else main())
