"""Several ``airflow`` CLI commands in one Python process: ``python -m lake.dev.airflow_batch``.

Each ``airflow`` command first imports Airflow and its providers: about 5-8 CPU-seconds on the
2-core machine before it does anything. The demo stack prepares Airflow with up to six commands
before the scheduler starts (``db migrate``, ``dags reserialize``, then ``dags unpause`` and
``backfill create`` per daily DAG); run one after the other in one interpreter they pay that
import once. Each command is Airflow's own: parsed by Airflow's CLI parser and run by its
function, exactly what ``airflow <args>`` runs (``airflow/__main__.py``).

Input: a JSON list of argument lists on stdin, e.g. ``[["db", "migrate"], ["dags", "unpause",
"flights_lake_daily"]]``. The commands run in order; the first that fails (an exception, or
``SystemExit`` with a non-zero code) stops the batch: its traceback goes to stderr, and the exit
status is 3 plus its index in the list, so the caller can tell which command failed
(:func:`lake.dev.demo.airflow_cli_batch`). Before each command a line ``>>> airflow <args>`` is
written to stdout.
"""

from __future__ import annotations

import json
import sys
import traceback

#: Exit status of the batch when the command at index ``i`` failed: ``FIRST_FAILURE + i``.
FIRST_FAILURE = 3


def main() -> int:
    commands = json.load(sys.stdin)
    if not (isinstance(commands, list) and all(isinstance(c, list) and c and all(isinstance(a, str) for a in c)
                                               for c in commands)):
        print("airflow_batch: stdin must be a JSON list of non-empty lists of strings", file=sys.stderr)
        return 2
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()
    parser = cli_parser.get_parser()
    for i, argv in enumerate(commands):
        print(f">>> airflow {' '.join(argv)}", flush=True)
        try:
            args = parser.parse_args(argv)
            args.func(args)
        except SystemExit as exc:
            if exc.code not in (0, None):
                print(f"airflow {' '.join(argv)} exited with {exc.code}", file=sys.stderr)
                return FIRST_FAILURE + i
        except Exception:  # noqa: BLE001 (reported with its traceback, as the airflow command would)
            traceback.print_exc()
            return FIRST_FAILURE + i
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
