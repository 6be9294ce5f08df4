"""``awsglue.job.Job``: init/commit. Job bookmarks are not kept locally: every run reads all input."""

from __future__ import annotations

import sys


class Job:
    """A Glue job handle; ``init`` records the job name, ``commit`` ends the run."""

    def __init__(self, glue_context) -> None:
        self._glue_context = glue_context
        self._name: str | None = None
        self._args: dict = {}

    def init(self, job_name: str, args: dict | None = None) -> None:
        self._name = job_name
        self._args = dict(args or {})
        if self._args.get("job_bookmark_option", self._args.get("job-bookmark-option")) == "job-bookmark-enable":
            print("localaws: job bookmarks are not kept; this run reads all of its input", file=sys.stderr)

    def commit(self) -> None:
        """Nothing to persist locally (no bookmarks); kept so scripts run unchanged."""

    def __getattr__(self, name: str):
        raise NotImplementedError(f"Job.{name} is not supported by localaws (see docs/localaws.md)")
