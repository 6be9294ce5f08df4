"""The Lambda Invoke API as localaws answers it: a patch of moto's ``LambdaFunction.invoke``.

RequestResponse invocations run the handler (:func:`localaws.services.awslambda.models.run_invocation`)
and answer with its payload, ``X-Amz-Function-Error`` and the last 4 KB of the log in
``X-Amz-Log-Result``; ``Event`` invocations return 202 at once and run on a background thread;
``DryRun`` runs nothing. Only ``python*`` runtimes run (others answer ``Runtime.InvalidRuntime``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from moto.awslambda import models as lambda_models

from localaws.runtime import RUNTIME, log
from localaws.services.awslambda.models import LOG_TAIL_BYTES, run_invocation


def _invoke(self: lambda_models.LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> bytes:
    """Replacement for ``LambdaFunction.invoke`` (moto's responses call it for Invoke)."""
    inv_type = request_headers.get("x-amz-invocation-type", "RequestResponse")
    event = body.encode() if isinstance(body, str) else (body or b"{}")
    response_headers["x-amz-executed-version"] = "$LATEST"
    if inv_type == "DryRun":
        return b""
    if inv_type == "Event":
        RUNTIME.spawn(f"lambda-event-{self.function_name}", _run_event, self, event)
        return b""
    if not (self.run_time or "").startswith("python"):
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({
            "errorType": "Runtime.InvalidRuntime",
            "errorMessage": f"localaws runs only python3.x runtimes; function {self.function_name} has {self.run_time}",
        }).encode()
    result = run_invocation(self, event)
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    tail = result.log.encode()[-LOG_TAIL_BYTES:]
    response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
    return result.payload


def _run_event(fn: lambda_models.LambdaFunction, event: bytes) -> None:
    try:
        run_invocation(fn, event)
    except Exception:  # noqa: BLE001 - a background invocation has no caller to raise to
        log.exception("lambda %s: asynchronous invocation failed to run", fn.function_name)


def install() -> None:
    """Patch moto's Lambda model so Invoke runs the handler (idempotent)."""
    lambda_models.LambdaFunction.invoke = _invoke  # type: ignore[method-assign]
