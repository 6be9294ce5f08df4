"""``awsglue.utils``: job argument parsing as in AWS Glue."""

from __future__ import annotations

import argparse


class GlueArgumentError(Exception):
    """A required job argument is missing or malformed."""


class GlueArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit
        raise GlueArgumentError(message)


#: Arguments Glue itself passes to every run; getResolvedOptions always accepts them.
_RESERVED = ("JOB_ID", "JOB_RUN_ID", "SECURITY_CONFIGURATION", "encryption-type", "TempDir",
             "job-bookmark-option", "continuation-option", "RedshiftTempDir")


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, str]:
    """Return ``{option: value}`` for each name in ``options`` from ``--option value`` pairs in ``args``.

    ``args`` is ``sys.argv`` (its first element, the script, is skipped); arguments not asked for
    are ignored, as in Glue. ``JOB_NAME`` may be asked for like any other option.

    :raises GlueArgumentError: "the following arguments are required: --x" when one is missing.
    """
    parser = GlueArgumentParser(add_help=False)
    for name in _RESERVED:
        if name not in options:
            parser.add_argument(f"--{name}", required=False)
    for name in options:
        parser.add_argument(f"--{name}", required=True)
    parsed, _ = parser.parse_known_args(args[1:])
    values = vars(parsed)
    wanted = {name.replace("-", "_"): name for name in options}
    return {wanted[k]: v for k, v in values.items() if k in wanted}
