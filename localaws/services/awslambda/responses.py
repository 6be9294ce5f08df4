"""The Lambda Invoke API as localaws answers it: a patch of moto's ``LambdaFunction.invoke``.

RequestResponse invocations run the handler (:func:`localaws.services.awslambda.models.run_invocation`)
and answer with its payload, ``X-Amz-Function-Error`` and the last 4 KB of the log in
``X-Amz-Log-Result``; ``Event`` invocations return 202 at once and run on a background thread;
``DryRun`` runs nothing. Only ``python*`` runtimes run (others answer ``Runtime.InvalidRuntime``).

Each invocation has one request id: the response's ``x-amzn-RequestId`` header, the handler's
``context.aws_request_id`` and the START/END/REPORT lines of its log, as on AWS
(https://docs.aws.amazon.com/lambda/latest/dg/python-context.html). moto's
``BaseResponse._enrich_response`` writes a random ``x-amzn-requestid`` into every response; the
patched ``LambdaResponse._enrich_response`` puts the invocation's id back.

UpdateFunctionCode and UpdateFunctionConfiguration discard the function's execution environments
(:meth:`localaws.services.awslambda.environments.EnvironmentPool.discard_function`): the next
invocation is cold, with the new code and configuration.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from moto.awslambda import models as lambda_models
from moto.awslambda import responses as lambda_responses
from moto.core.responses import BaseResponse

from localaws.runtime import RUNTIME, log
from localaws.services.awslambda.environments import POOL
from localaws.services.awslambda.models import LOG_TAIL_BYTES, run_invocation

#: Private header carrying the invocation's request id from :func:`_invoke` to
#: :func:`_enrich_response` (never sent to the client).
_REQUEST_ID_HEADER = "x-localaws-lambda-request-id"

_original_update_configuration = lambda_models.LambdaFunction.update_configuration
_original_update_function_code = lambda_models.LambdaFunction.update_function_code


def _invoke(self: lambda_models.LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> bytes:
    """Replacement for ``LambdaFunction.invoke`` (moto's responses call it for Invoke)."""
    inv_type = request_headers.get("x-amz-invocation-type", "RequestResponse")
    event = body.encode() if isinstance(body, str) else (body or b"{}")
    response_headers["x-amz-executed-version"] = "$LATEST"
    request_id = str(uuid.uuid4())
    response_headers[_REQUEST_ID_HEADER] = request_id
    if inv_type == "DryRun":
        return b""
    if inv_type == "Event":
        RUNTIME.spawn(f"lambda-event-{self.function_name}", _run_event, self, event, request_id)
        return b""
    if not (self.run_time or "").startswith("python"):
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({
            "errorType": "Runtime.InvalidRuntime",
            "errorMessage": f"localaws runs only python3.x runtimes; function {self.function_name} has {self.run_time}",
        }).encode()
    result = run_invocation(self, event, request_id)
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    tail = result.log.encode()[-LOG_TAIL_BYTES:]
    response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
    return result.payload


def _run_event(fn: lambda_models.LambdaFunction, event: bytes, request_id: str) -> None:
    try:
        run_invocation(fn, event, request_id)
    except Exception:  # noqa: BLE001 - a background invocation has no caller to raise to
        log.exception("lambda %s: asynchronous invocation failed to run", fn.function_name)


def _enrich_response(headers: dict[str, Any], body: Any) -> tuple[dict[str, Any], Any]:
    """moto's ``_enrich_response``, keeping the invocation's request id as ``x-amzn-requestid``."""
    request_id = headers.pop(_REQUEST_ID_HEADER, None)
    headers, body = BaseResponse._enrich_response(headers, body)
    if request_id:
        headers["x-amzn-requestid"] = request_id
    return headers, body


def _update_configuration(self: lambda_models.LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
    result = _original_update_configuration(self, config_updates)
    POOL.discard_function(self.function_arn)
    return result


def _update_function_code(self: lambda_models.LambdaFunction, updated_spec: dict[str, Any]) -> dict[str, Any]:
    result = _original_update_function_code(self, updated_spec)
    POOL.discard_function(self.function_arn)
    return result


def install() -> None:
    """Patch moto's Lambda model so Invoke runs the handler and updates discard environments (idempotent)."""
    lambda_models.LambdaFunction.invoke = _invoke  # type: ignore[method-assign]
    lambda_models.LambdaFunction.update_configuration = _update_configuration  # type: ignore[method-assign]
    lambda_models.LambdaFunction.update_function_code = _update_function_code  # type: ignore[method-assign]
    lambda_responses.LambdaResponse._enrich_response = staticmethod(_enrich_response)  # type: ignore[method-assign]


def shutdown() -> None:
    """Stop every execution environment (localaws stops; see :meth:`EnvironmentPool.shutdown`)."""
    POOL.shutdown()
