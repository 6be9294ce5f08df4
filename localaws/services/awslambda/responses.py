"""The Lambda Invoke API as localaws answers it: a patch of moto's ``LambdaFunction.invoke``.

RequestResponse invocations run the handler (:func:`localaws.services.awslambda.models.run_invocation`)
and answer with its payload, ``X-Amz-Function-Error`` and the last 4 KB of the log in
``X-Amz-Log-Result``; ``Event`` invocations return 202 at once and run on a background thread,
retried on a function error as AWS retries them (:mod:`localaws.services.awslambda.asynchronous`);
``DryRun`` runs nothing. Only ``python*`` runtimes run (others answer ``Runtime.InvalidRuntime``).

Each invocation has one request id: the response's ``x-amzn-RequestId`` header, the handler's
``context.aws_request_id`` and the START/END/REPORT lines of its log, as on AWS
(https://docs.aws.amazon.com/lambda/latest/dg/python-context.html). moto's
``BaseResponse._enrich_response`` writes a random ``x-amzn-requestid`` into every response; the
patched ``LambdaResponse._enrich_response`` puts the invocation's id back.

UpdateFunctionCode and UpdateFunctionConfiguration discard the function's execution environments
(:meth:`localaws.services.awslambda.environments.EnvironmentPool.discard_function`): the next
invocation is cold, with the new code and configuration.

PutFunctionEventInvokeConfig replaces the function's config, as AWS documents ("overwrites any
existing configuration"); moto appended it, so GetFunctionEventInvokeConfig kept answering the first
one. UpdateFunctionEventInvokeConfig changes only the settings it is given.

An SNS subscription of protocol ``lambda`` invokes the function asynchronously, as AWS does
(https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html); moto invoked it synchronously, inside
the Publish request (or the S3 event delivery), which then waited for the handler and, holding the
server's request lock, could deadlock with the handler's own durable writes.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from moto.awslambda import models as lambda_models
from moto.awslambda import responses as lambda_responses
from moto.core.responses import BaseResponse

from localaws.services.awslambda.asynchronous import invoke_async
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
        invoke_async(self, event, request_id)
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


def _send_sns_message(self: lambda_models.LambdaBackend, function_name: str, message: str,
                      subject: str | None = None, qualifier: str | None = None) -> None:
    """The event moto's ``send_sns_message`` builds (its placeholder ids and times kept), invoked asynchronously."""
    event = {"Records": [{
        "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:EXAMPLE", "EventSource": "aws:sns",
        "Sns": {"SignatureVersion": "1", "Timestamp": "1970-01-01T00:00:00.000Z", "Signature": "EXAMPLE",
                "SigningCertUrl": "EXAMPLE", "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e", "Message": message,
                "MessageAttributes": {"Test": {"Type": "String", "Value": "TestString"},
                                      "TestBinary": {"Type": "Binary", "Value": "TestBinary"}},
                "Type": "Notification", "UnsubscribeUrl": "EXAMPLE", "TopicArn": "arn:aws:sns:EXAMPLE",
                "Subject": subject or "TestInvoke"},
    }]}
    fn = self._lambdas.get_function_by_name_or_arn_with_qualifier(function_name, qualifier)
    invoke_async(fn, json.dumps(event).encode())


def _put_event_invoke_config(self: lambda_models.LambdaBackend, function_name: str,
                             config: dict[str, Any]) -> dict[str, Any]:
    fn = self.get_function(function_name)
    event_config = lambda_models.EventInvokeConfig(fn.function_arn, fn.last_modified, config)
    fn.event_invoke_config = [event_config]
    return event_config.response()


def _update_event_invoke_config(self: lambda_models.LambdaBackend, function_name: str,
                                config: dict[str, Any]) -> dict[str, Any]:
    fn = self.get_function(function_name)
    current = fn.event_invoke_config[-1].config if fn.event_invoke_config else {}
    return _put_event_invoke_config(self, function_name, {**current, **config})


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
    lambda_models.LambdaBackend.send_sns_message = _send_sns_message  # type: ignore[method-assign]
    lambda_models.LambdaBackend.put_function_event_invoke_config = _put_event_invoke_config  # type: ignore[method-assign]
    lambda_models.LambdaBackend.update_function_event_invoke_config = _update_event_invoke_config  # type: ignore[method-assign]
    lambda_responses.LambdaResponse._enrich_response = staticmethod(_enrich_response)  # type: ignore[method-assign]


def shutdown() -> None:
    """Stop every execution environment (localaws stops; see :meth:`EnvironmentPool.shutdown`)."""
    POOL.shutdown()
