"""localaws's Lambda: Invoke runs the function's handler from its deployed zip in an execution environment.

A package in moto's layout:

* :mod:`.models` - one invocation (:func:`run_invocation`): unpack the code and layers, take or
  start an execution environment, enforce Timeout and MemorySize, collect logs into CloudWatch Logs;
* :mod:`.environments` - execution environments (long-lived bootstrap processes) and their pool:
  init once, reuse while warm, idle expiry, discard on timeout / crash / update, shutdown;
* :mod:`.responses` - the API: :func:`install` patches moto's ``LambdaFunction.invoke``;
* ``runtime/bootstrap.py`` - the child-process side: run by path in the new interpreter, it
  stands in for the AWS Lambda Python runtime and imports nothing of localaws.
"""

from localaws.services.awslambda import environments
from localaws.services.awslambda.environments import POOL
from localaws.services.awslambda.models import InvocationResult, run_invocation
from localaws.services.awslambda.responses import install, shutdown

__all__ = ["POOL", "InvocationResult", "environments", "install", "run_invocation", "shutdown"]
