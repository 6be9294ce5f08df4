"""localaws's Lambda: Invoke runs the function's handler from its deployed zip in a fresh Python process.

A package in moto's layout:

* :mod:`.models` - one invocation (:func:`run_invocation`): unpack the code and layers, start the
  child process, enforce Timeout and MemorySize, collect logs into CloudWatch Logs;
* :mod:`.responses` - the API: :func:`install` patches moto's ``LambdaFunction.invoke``;
* ``runtime/bootstrap.py`` - the child-process side: run by path in the new interpreter, it
  stands in for the AWS Lambda Python runtime and imports nothing of localaws.
"""

from localaws.services.awslambda.models import InvocationResult, run_invocation
from localaws.services.awslambda.responses import install

__all__ = ["InvocationResult", "install", "run_invocation"]
