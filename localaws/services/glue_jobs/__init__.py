"""localaws's Glue jobs: StartJobRun really runs the job's script (PySpark or Python shell) in a child process.

A package in moto's layout:

* :mod:`.models` - a job run (:class:`LocalJobRun`) and its executor: the child process, its
  logs in CloudWatch Logs, Timeout, retries, fault injection;
* :mod:`.responses` - the API: :func:`install` patches moto's StartJobRun and adds UpdateJob and
  BatchStopJobRun; :func:`recover_after_restart` fails runs a restart cut off;
* :mod:`.pool` - pre-started drivers (Python + JVM + SparkContext) that glueetl runs are handed to;
* ``compat/`` - the child-process side, put on the child's ``PYTHONPATH``: the local ``awsglue``
  package, ``localaws_glue_runner.py`` (the entry point) and ``localaws_s3_bridge.py``; it
  imports nothing of localaws.
"""

from localaws.services.glue_jobs.models import LocalJobRun, read_s3_object
from localaws.services.glue_jobs.pool import POOL
from localaws.services.glue_jobs.responses import install, recover_after_restart

__all__ = ["POOL", "LocalJobRun", "install", "read_s3_object", "recover_after_restart"]
