"""Entry point of a localaws Glue job run: ``python localaws_glue_runner.py SCRIPT [--KEY VALUE ...]``.

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


def main() -> int:
    _die_with_parent()
    script = sys.argv[1]
    sys.argv = [script, *sys.argv[2:]]
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
            _stop_spark()
        except Exception:  # noqa: BLE001 - stopping Spark must not hide the script's outcome
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
