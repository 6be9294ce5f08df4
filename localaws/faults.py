"""Fault injection: throttling, 500 errors and latency per API operation; failed or timed-out runs.

A :class:`FaultConfig` (YAML/JSON file, ``localaws serve --faults FILE``, env ``LOCALAWS_FAULTS``,
``LocalAWS(faults=...)`` or ``POST /_localaws/faults``) lists rules such as::

    seed: 42
    rules:
      - {operation: "s3:PutObject", throttle_rate: 0.2}
      - {operation: "glue:*", error_rate: 0.05, latency_ms: [50, 200]}
    runs:
      lambda: {fail_rate: 0.1, timeout_rate: 0.05, functions: ["lake-*"]}
      glue: {fail_rate: 0.2, jobs: ["silver_*"]}

Request faults are decided in the WSGI layer *before* moto sees the request, so a throttled call
has no side effect, as on AWS. The error body is the one each protocol's AWS service sends, so
botocore parses the right ``Error.Code`` and its retry modes treat it as they treat AWS's.
Run faults are decided when a Lambda invocation or a Glue job run starts.

Decisions are reproducible: each operation (and each function's or job's runs) draws from its own
``random.Random(f"{seed}:{key}")``, so the sequence of outcomes of one operation does not depend
on how calls to other operations interleave with it. See docs/localaws.md, "Fault injection".
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    ValidationError,
    field_validator,
    model_validator,
)

from localaws.runtime import RUNTIME, log

#: Environment variable naming a fault config file (or holding inline JSON starting with "{").
ENV_VAR = "LOCALAWS_FAULTS"

#: Appended to every injected error message, so nobody mistakes an injected fault for a real one.
MARK = "(localaws injected fault)"

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class FaultConfigError(ValueError):
    """A fault config that cannot be read or is invalid."""


# --- configuration ------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FaultRule(_Model):
    """Faults for the API operations matching ``operation``.

    :param operation: ``"service:Operation"`` (``s3:PutObject``, ``glue:StartJobRun``), fnmatch
        wildcards allowed (``glue:*``, ``s3:Get*``, ``*``), matched case-insensitively. The service
        is the boto3 client name, the operation the API name (``lambda:Invoke``, ``logs:GetLogEvents``).
    :param throttle_rate: probability of a throttling error (see docs for the error per protocol).
    :param error_rate: probability of an HTTP 500 (``InternalFailure`` / ``InternalError`` / ...).
    :param latency_ms: added latency: a fixed number of milliseconds or ``[min, max]`` (uniform).
    :param latency_rate: probability that a call gets the latency (default 1: every call).
    :param max_faults: at most this many throttles + errors per operation (then calls pass).
    :param after_calls: the first N calls of each operation pass untouched (no latency either).
    """

    operation: str
    throttle_rate: Rate = 0.0
    error_rate: Rate = 0.0
    latency_ms: NonNegativeFloat | tuple[NonNegativeFloat, NonNegativeFloat] | None = None
    latency_rate: Rate = 1.0
    max_faults: NonNegativeInt | None = None
    after_calls: NonNegativeInt = 0

    @field_validator("operation")
    @classmethod
    def _check_operation(cls, value: str) -> str:
        value = value.strip()
        if value != "*" and (":" not in value or value.startswith(":") or value.endswith(":")):
            raise ValueError(f"operation {value!r} is not 'service:Operation' (wildcards allowed) or '*'")
        return value

    @model_validator(mode="after")
    def _check_rates(self) -> FaultRule:
        if self.throttle_rate + self.error_rate > 1.0 + 1e-9:
            raise ValueError(f"{self.operation}: throttle_rate + error_rate must not exceed 1")
        if isinstance(self.latency_ms, tuple) and self.latency_ms[0] > self.latency_ms[1]:
            raise ValueError(f"{self.operation}: latency_ms [min, max] has min > max")
        return self

    def latency_bounds(self) -> tuple[float, float] | None:
        if self.latency_ms is None:
            return None
        if isinstance(self.latency_ms, tuple):
            return self.latency_ms
        return (self.latency_ms, self.latency_ms)


class RunFaults(_Model):
    """Lambda invocations or Glue job runs that fail or time out.

    :param fail_rate: probability that a run fails without running the code.
    :param timeout_rate: probability that a run ends as timed out (at once, without waiting).
    :param max_faults: at most this many injected failures + timeouts per function / job.
    :param after_runs: the first N runs of each function / job are not touched.
    """

    fail_rate: Rate = 0.0
    timeout_rate: Rate = 0.0
    max_faults: NonNegativeInt | None = None
    after_runs: NonNegativeInt = 0

    @model_validator(mode="after")
    def _check_rates(self) -> RunFaults:
        if self.fail_rate + self.timeout_rate > 1.0 + 1e-9:
            raise ValueError("fail_rate + timeout_rate must not exceed 1")
        return self

    def names(self) -> list[str] | None:  # pragma: no cover - overridden
        return None


class LambdaRunFaults(RunFaults):
    """:param functions: function names (fnmatch patterns) affected; ``None``: every function."""

    functions: list[str] | None = None

    def names(self) -> list[str] | None:
        return self.functions


class GlueRunFaults(RunFaults):
    """:param jobs: job names (fnmatch patterns) affected; ``None``: every job."""

    jobs: list[str] | None = None

    def names(self) -> list[str] | None:
        return self.jobs


class AthenaRunFaults(_Model):
    """Slow Athena queries: a matching query stays ``RUNNING`` for ``latency_ms`` before it runs,
    as a query does on AWS while the engine is busy. StopQueryExecution ends the wait at once.

    :param latency_ms: how long each query is held, a fixed number of milliseconds or ``[min, max]``.
    :param workgroups: work group names (fnmatch patterns) affected; ``None``: every work group.
    :param after_runs: the first N queries of each work group are not held.
    """

    latency_ms: NonNegativeFloat | tuple[NonNegativeFloat, NonNegativeFloat]
    workgroups: list[str] | None = None
    after_runs: NonNegativeInt = 0

    @model_validator(mode="after")
    def _check_bounds(self) -> AthenaRunFaults:
        if isinstance(self.latency_ms, tuple) and self.latency_ms[0] > self.latency_ms[1]:
            raise ValueError("latency_ms [min, max] has min > max")
        return self


class FirehoseRecordFaults(_Model):
    """Records of a Firehose PutRecordBatch that fail one by one, as AWS fails them when a stream is
    over its throughput: the call succeeds, the record's entry has ``ErrorCode``
    ``ServiceUnavailableException`` and ``FailedPutCount`` counts it (API reference, PutRecordBatch).
    A failed record is not buffered; the client resends it.

    :param fail_rate: probability that a record fails.
    :param streams: delivery stream names (fnmatch patterns) affected; ``None``: every stream.
    :param max_faults: at most this many failed records per stream.
    :param after_records: the first N records of each stream are not touched.
    """

    fail_rate: Rate
    streams: list[str] | None = None
    max_faults: NonNegativeInt | None = None
    after_records: NonNegativeInt = 0


class RunsConfig(_Model):
    lambda_: LambdaRunFaults | None = Field(default=None, alias="lambda")
    glue: GlueRunFaults | None = None
    athena: AthenaRunFaults | None = None
    firehose: FirehoseRecordFaults | None = None


class FaultConfig(_Model):
    """The whole fault config. Rules are tried in order; the first matching one applies."""

    seed: int = 0
    rules: list[FaultRule] = Field(default_factory=list)
    runs: RunsConfig = Field(default_factory=RunsConfig)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def summary(self) -> str:
        parts = [f"seed {self.seed}", f"{len(self.rules)} rule{'s' if len(self.rules) != 1 else ''}"]
        for kind, runs in (("lambda", self.runs.lambda_), ("glue", self.runs.glue)):
            if runs is not None:
                parts.append(f"{kind} runs fail {runs.fail_rate:.0%} / time out {runs.timeout_rate:.0%}")
        if self.runs.athena is not None:
            parts.append(f"athena queries held RUNNING {self.runs.athena.latency_ms} ms")
        if self.runs.firehose is not None:
            parts.append(f"firehose records fail {self.runs.firehose.fail_rate:.0%}")
        return ", ".join(parts)


def _parse_text(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - PyYAML is in requirements.txt
        raise FaultConfigError(f"{origin} is not JSON and PyYAML is not installed") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FaultConfigError(f"{origin} is neither JSON nor YAML: {exc}") from exc


def validate(data: Any, origin: str = "fault config") -> FaultConfig:
    """A :class:`FaultConfig` from parsed JSON/YAML.

    :raises FaultConfigError: naming the first invalid field.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FaultConfigError(f"{origin}: expected a mapping with seed, rules, runs; got {type(data).__name__}")
    try:
        return FaultConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise FaultConfigError(f"invalid {origin}: {problems}") from None


def load(source: FaultConfig | dict | str | Path) -> tuple[FaultConfig, str]:
    """Load a config from a model, a dict, inline JSON (a string starting with ``{``) or a file.

    Returns the config and a label of where it came from (the path, ``inline``, ...).

    :raises FaultConfigError: when the file is missing or the config is invalid.
    """
    if isinstance(source, FaultConfig):
        return source, "inline"
    if isinstance(source, dict):
        return validate(source), "inline"
    text_source = str(source)
    if isinstance(source, str) and text_source.lstrip().startswith("{"):
        return validate(_parse_text(text_source, "inline fault config"), "inline fault config"), "inline"
    path = Path(text_source).expanduser()
    try:
        text = path.read_text()
    except OSError as exc:
        raise FaultConfigError(f"cannot read fault config {path}: {exc.strerror or exc}") from None
    return validate(_parse_text(text, str(path)), f"fault config {path}"), str(path)


def load_from_env() -> tuple[FaultConfig, str] | None:
    """The config named by ``$LOCALAWS_FAULTS`` (path or inline JSON), or ``None`` when unset."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    config, label = load(raw)
    return config, f"{ENV_VAR}={label if label != 'inline' else 'inline JSON'}"


# --- identifying the operation of a request ------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """An API call: ``service`` (boto3 client name), ``name`` (API operation) and wire ``protocol``
    (``json``, ``query``, ``ec2``, ``rest-json``, ``rest-xml``, ``s3``, ``cbor``)."""

    service: str
    name: str
    protocol: str

    @property
    def key(self) -> str:
        return f"{self.service}:{self.name}"


#: SigV4 signing names that differ from the boto3 client name.
_SIGNING_ALIASES = {"monitoring": "cloudwatch", "states": "stepfunctions", "email": "ses", "eventbridge": "events"}
#: X-Amz-Target prefixes of unsigned JSON requests (signed ones take the service from the signature).
_TARGET_PREFIXES = {
    "AWSGlue": "glue", "AmazonAthena": "athena", "Logs_20140328": "logs", "AmazonSQS": "sqs",
    "AWSEvents": "events", "Firehose_20150804": "firehose", "TrentService": "kms", "AmazonSSM": "ssm",
    "secretsmanager": "secretsmanager", "AWSStepFunctions": "stepfunctions", "DynamoDB_20120810": "dynamodb",
}
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
_VHOST_BUCKET = re.compile(r"^(.+?)\.(?:localhost|s3[.-].*amazonaws\.com|s3\.amazonaws\.com)$")
_CBOR_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")


def _service_from_signature(environ: dict[str, Any]) -> str | None:
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        # Presigned URLs carry the scope in X-Amz-Credential.
        cred = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
        parts = cred[0].split("/") if cred else []
        if len(parts) == 5 and parts[4] == "aws4_request":
            service = parts[3].lower()
            return _SIGNING_ALIASES.get(service, service)
        return None
    service = match.group(1).lower()
    return _SIGNING_ALIASES.get(service, service)


def _form_action(environ: dict[str, Any]) -> str | None:
    """``Action`` of a query-protocol request, from the query string or the form body.

    The body is read and put back (``wsgi.input`` becomes a BytesIO), as moto's dispatcher does.
    """
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if action:
        return action[0]
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode("utf-8", errors="replace")).get("Action")
    return action[0] if action else None


@dataclass
class _Route:
    name: str
    regex: re.Pattern[str]
    literal_query: dict[str, str | None]
    required_query: tuple[str, ...]
    required_headers: tuple[str, ...]
    literal_chars: int


_routes_lock = threading.Lock()
_routes: dict[str, tuple[str, dict[str, list[_Route]]] | None] = {}


def _rest_routes(service: str) -> tuple[str, dict[str, list[_Route]]] | None:
    """(protocol, routes by HTTP method) from botocore's model of ``service``; cached."""
    with _routes_lock:
        if service in _routes:
            return _routes[service]
    result: tuple[str, dict[str, list[_Route]]] | None = None
    try:
        import botocore.session

        model = botocore.session.get_session().get_service_model(service)
    except Exception:  # noqa: BLE001 - unknown service: operations are "Unknown"
        model = None
    if model is not None and model.protocol in ("rest-json", "rest-xml"):
        by_method: dict[str, list[_Route]] = {}
        for op_name in model.operation_names:
            op = model.operation_model(op_name)
            uri = op.http.get("requestUri", "/")
            path, _, query = uri.partition("?")
            pattern = ""
            for piece in re.split(r"(\{[^}]+\})", path):
                if piece.startswith("{"):
                    pattern += ".+" if piece.endswith("+}") else "[^/]+"
                else:
                    pattern += re.escape(piece)
            literal: dict[str, str | None] = {}
            for item in filter(None, query.split("&")):
                key, eq, value = item.partition("=")
                literal[key] = value if eq else None
            req_query, req_headers = [], []
            shape = op.input_shape
            if shape is not None:
                for member in shape.required_members:
                    ser = shape.members[member].serialization
                    if ser.get("location") == "querystring":
                        req_query.append(ser.get("name", member))
                    elif ser.get("location") == "header":
                        req_headers.append("HTTP_" + ser.get("name", member).upper().replace("-", "_"))
            route = _Route(op_name, re.compile(f"^{pattern.rstrip('/')}/?$"), literal, tuple(req_query),
                           tuple(req_headers), len(re.sub(r"\{[^}]+\}", "", path)))
            by_method.setdefault(op.http.get("method", "GET").upper(), []).append(route)
        result = ("s3" if service == "s3" else model.protocol, by_method)
    with _routes_lock:
        _routes[service] = result
    return result


def _rest_operation(service: str, environ: dict[str, Any]) -> Operation:
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "") or "/"
    if service == "s3":
        host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
        match = _VHOST_BUCKET.match(host)
        if match:
            path = f"/{match.group(1)}{path}"
    routes = _rest_routes(service)
    if routes is None:
        return Operation(service, "Unknown", "rest-json")
    protocol, by_method = routes
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    best: tuple[tuple[int, int, int], str] | None = None
    for route in by_method.get(method, ()):
        if not route.regex.match(path):
            continue
        if any(k not in query or (v is not None and query[k][0] != v) for k, v in route.literal_query.items()):
            continue
        if any(k not in query for k in route.required_query) or any(h not in environ for h in route.required_headers):
            continue
        score = (len(route.literal_query), len(route.required_query) + len(route.required_headers),
                 route.literal_chars)
        if best is None or score > best[0]:
            best = (score, route.name)
    return Operation(service, best[1] if best else "Unknown", protocol)


def _identify(environ: dict[str, Any]) -> Operation | None:
    """The AWS operation of a WSGI request; ``None`` for moto's own API and other non-AWS paths.

    JSON protocols: ``X-Amz-Target``; query protocols: ``Action``; RPCv2 CBOR: the path; REST
    protocols (S3, Lambda, ...): method + path + query matched against botocore's model. The
    service comes from the SigV4 credential scope (``.../us-east-1/s3/aws4_request``).
    """
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/moto-api", "/_localaws/", "/latest/meta-data", "/latest/api")) or path == "/favicon.ico":
        return None
    service = _service_from_signature(environ)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        prefix, _, name = target.rpartition(".")
        return Operation(service or _TARGET_PREFIXES.get(prefix, prefix.lower()), name or "Unknown", "json")
    match = _CBOR_PATH.match(path)
    if match and "cbor" in environ.get("HTTP_SMITHY_PROTOCOL", ""):
        return Operation(service or match.group(1).lower(), match.group(2), "cbor")
    action = _form_action(environ)
    if action:
        service = service or "unknown"
        return Operation(service, action, "ec2" if service == "ec2" else "query")
    return _rest_operation(service or "s3", environ)


_IDENTIFIED = "localaws.operation"


def identify(environ: dict[str, Any]) -> Operation | None:
    """:func:`_identify`, asked once per request: the answer is kept in the environ
    (``localaws.operation``) for the next layer (fault injection, CloudTrail, durable writes)."""
    if _IDENTIFIED not in environ:
        environ[_IDENTIFIED] = _identify(environ)
    return environ[_IDENTIFIED]


# --- error responses per protocol ----------------------------------------------------------------


def _cbor_text(value: str) -> bytes:
    data = value.encode()
    n = len(data)
    if n < 24:
        head = bytes([0x60 | n])
    elif n < 256:
        head = bytes([0x78, n])
    else:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    return head + data


def _cbor_map(items: dict[str, str]) -> bytes:
    return bytes([0xA0 | len(items)]) + b"".join(_cbor_text(k) + _cbor_text(v) for k, v in items.items())


_STATUS_TEXT = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
                503: "Service Unavailable"}

#: (status, code, message) per protocol and fault kind.
_ERRORS: dict[str, dict[str, tuple[int, str, str]]] = {
    "s3": {"throttle": (503, "SlowDown", "Please reduce your request rate."),
           "error": (500, "InternalError", "We encountered an internal error. Please try again.")},
    "json": {"throttle": (400, "ThrottlingException", "Rate exceeded"),
             "error": (500, "InternalFailure", "The request processing has failed because of an unknown error.")},
    "cbor": {"throttle": (400, "ThrottlingException", "Rate exceeded"),
             "error": (500, "InternalFailure", "The request processing has failed because of an unknown error.")},
    "query": {"throttle": (400, "Throttling", "Rate exceeded"),
              "error": (500, "InternalFailure", "The request processing has failed because of an unknown error.")},
    "ec2": {"throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
            "error": (500, "InternalError", "An internal error has occurred.")},
    "rest-json": {"throttle": (429, "TooManyRequestsException", "Rate exceeded"),
                  "error": (500, "ServiceException", "An internal service error occurred.")},
    "rest-xml": {"throttle": (400, "Throttling", "Rate exceeded"),
                 "error": (500, "InternalFailure", "The request processing has failed because of an unknown error.")},
}


def error_response(op: Operation, kind: str, method: str = "POST") -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of an injected ``throttle`` or ``error`` for ``op``'s protocol."""
    status, code, message = _ERRORS.get(op.protocol, _ERRORS["rest-json"])[kind]
    return protocol_error(op, status, code, f"{message} {MARK}", sender=kind == "throttle", method=method)


def protocol_error(op: Operation, status: int, code: str, message: str, *, sender: bool,
                   method: str = "POST") -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of an AWS error ``code`` with ``message`` in ``op``'s wire protocol
    (the shapes botocore parses: JSON ``__type``, query/REST-XML ``ErrorResponse``, S3 ``Error``, ...).

    :param status: HTTP status; one of :data:`_STATUS_TEXT`.
    :param sender: the caller's fault (``Sender``/``User``) rather than the service's.
    """
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    if op.protocol == "s3":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}'
                f"</Message><RequestId>{request_id}</RequestId><HostId>localaws</HostId></Error>").encode()
        headers = [("x-amz-request-id", request_id), ("x-amz-id-2", "localaws"), ("Content-Type", "application/xml")]
    elif op.protocol in ("json", "rest-json"):
        payload: dict[str, str] = {"__type": code, "message": message}
        if op.protocol == "rest-json":
            payload = {"Type": "User" if sender else "Service", "message": message}
            if code == "TooManyRequestsException" and op.service == "lambda":
                payload["Reason"] = "CallerRateLimitExceeded"
        body = json.dumps(payload).encode()
        content_type = "application/x-amz-json-1.1" if op.protocol == "json" else "application/json"
        headers += [("x-amzn-ErrorType", code), ("Content-Type", content_type)]
    elif op.protocol == "cbor":
        body = _cbor_map({"__type": code, "message": message})
        headers += [("smithy-protocol", "rpc-v2-cbor"), ("Content-Type", "application/cbor")]
    elif op.protocol == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
                "</Response>").encode()
        headers += [("Content-Type", "text/xml")]
    else:  # query, rest-xml
        fault_type = "Sender" if sender else "Receiver"
        body = (f"<ErrorResponse><Error><Type>{fault_type}</Type><Code>{code}</Code><Message>{escape(message)}"
                f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers += [("Content-Type", "text/xml")]
    if method.upper() == "HEAD":
        body = b""
    headers.append(("Content-Length", str(len(body))))
    return f"{status} {_STATUS_TEXT[status]}", headers, body


def _drain(environ: dict[str, Any]) -> None:
    """Read and drop the request body, so the client is not reset while still sending it."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    try:
        if environ.get("wsgi.input_terminated"):
            while stream.read(65536):
                pass
            return
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
        while remaining > 0:
            chunk = stream.read(min(65536, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
    except (OSError, ValueError):
        pass


# --- the injector --------------------------------------------------------------------------------


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass
class _OpCounters:
    calls: int = 0
    throttled: int = 0
    errors: int = 0
    delayed: int = 0
    latency_ms: float = 0.0

    @property
    def faults(self) -> int:
        return self.throttled + self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "throttled": self.throttled, "errors": self.errors, "delayed": self.delayed,
                "latency_ms": round(self.latency_ms, 1)}


@dataclass
class _RunCounters:
    runs: int = 0
    failed: int = 0
    timed_out: int = 0

    @property
    def faults(self) -> int:
        return self.failed + self.timed_out

    def as_dict(self) -> dict[str, int]:
        return {"runs": self.runs, "failed": self.failed, "timed_out": self.timed_out}


@dataclass
class Decision:
    """What to do with one request: ``fault`` is ``"throttle"``, ``"error"`` or ``None``."""

    operation: str
    fault: str | None = None
    latency_s: float = 0.0


@dataclass
class FaultInjector:
    """Holds the active config, the per-operation random streams and the counters (thread-safe).

    ``config is None`` means fault injection is off: requests are not even classified.
    """

    config: FaultConfig | None = None
    source: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rngs: dict[str, random.Random] = field(default_factory=dict, repr=False)
    _rules: dict[str, FaultRule | None] = field(default_factory=dict, repr=False)
    _ops: dict[str, _OpCounters] = field(default_factory=dict, repr=False)
    _runs: dict[str, _RunCounters] = field(default_factory=dict, repr=False)
    #: Set when this config is replaced or cleared: the latencies being slept under it end at once.
    _replaced: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def from_source(cls, source: FaultConfig | dict | str | Path | None) -> FaultInjector:
        """From ``source`` or, when it is ``None``, from ``$LOCALAWS_FAULTS`` (off when unset)."""
        loaded = load(source) if source is not None else load_from_env()
        return cls(*loaded) if loaded else cls()

    @property
    def active(self) -> bool:
        return self.config is not None

    def configure(self, config: FaultConfig | None, source: str | None = None) -> None:
        """Replace the config (``None``: off); counters and random streams start over, and the
        latencies being slept under the old config end at once (their calls go on)."""
        with self._lock:
            self._replaced.set()
            self._replaced = threading.Event()
            self.config = config
            self.source = source if config is not None else None
            self._rngs.clear()
            self._rules.clear()
            self._ops.clear()
            self._runs.clear()
        if config is not None:
            log.info("localaws fault injection active (%s): %s", self.source or "inline", config.summary())
        else:
            log.info("localaws fault injection off")

    def _rng(self, key: str) -> random.Random:
        rng = self._rngs.get(key)
        if rng is None:
            assert self.config is not None
            rng = self._rngs[key] = random.Random(f"{self.config.seed}:{key}")
        return rng

    def _rule_for(self, operation: str) -> FaultRule | None:
        if operation not in self._rules:
            assert self.config is not None
            lowered = operation.lower()
            self._rules[operation] = next(
                (r for r in self.config.rules if fnmatchcase(lowered, r.operation.lower())), None
            )
        return self._rules[operation]

    # -- requests
    def decide(self, operation: str) -> Decision:
        """Count one call of ``operation`` and draw its fate (three draws per matched call)."""
        decision = Decision(operation)
        with self._lock:
            if self.config is None:
                return decision
            counters = self._ops.setdefault(operation, _OpCounters())
            counters.calls += 1
            rule = self._rule_for(operation)
            if rule is None:
                return decision
            rng = self._rng(operation)
            u_fault, u_latency_rate, u_latency = rng.random(), rng.random(), rng.random()
            if counters.calls <= rule.after_calls:
                return decision
            bounds = rule.latency_bounds()
            if bounds is not None and u_latency_rate < rule.latency_rate:
                decision.latency_s = (bounds[0] + (bounds[1] - bounds[0]) * u_latency) / 1000.0
                if decision.latency_s > 0:
                    counters.delayed += 1
                    counters.latency_ms += decision.latency_s * 1000.0
            if rule.max_faults is None or counters.faults < rule.max_faults:
                if u_fault < rule.throttle_rate:
                    decision.fault = "throttle"
                    counters.throttled += 1
                elif u_fault < rule.throttle_rate + rule.error_rate:
                    decision.fault = "error"
                    counters.errors += 1
            calls, faults = counters.calls, counters.faults
        if decision.fault:
            what = "throttled" if decision.fault == "throttle" else "failed with HTTP 500"
            log.info("localaws fault: %s %s (%s fault in %d call%s)", operation, what, _ordinal(faults), calls,
                     "" if calls == 1 else "s")
        if decision.latency_s:
            log.debug("localaws fault: %s delayed %.0f ms", operation, decision.latency_s * 1000)
        return decision

    def intercept(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """Apply the faults to one WSGI request before moto sees it.

        Sleeps for the injected latency; returns ``(status, headers, body)`` of the error to send
        instead of calling moto, or ``None`` to let the request through.
        """
        if self.config is None:
            return None
        op = identify(environ)
        if op is None:
            return None
        replaced = self._replaced
        decision = self.decide(op.key)
        if decision.latency_s > 0:
            self._sleep(decision.latency_s, replaced)
        if decision.fault is None:
            return None
        _drain(environ)
        return error_response(op, decision.fault, environ.get("REQUEST_METHOD", "POST"))

    @staticmethod
    def _sleep(seconds: float, replaced: threading.Event) -> None:
        """Sleep ``seconds``, less if localaws stops or the config is replaced (``replaced`` set)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not RUNTIME.stopping.is_set():
            if replaced.wait(min(left, 0.25)):
                return

    # -- Lambda invocations and Glue job runs
    def decide_run(self, kind: str, name: str) -> str | None:
        """``"fail"``, ``"timeout"`` or ``None`` for a new run of Lambda function / Glue job ``name``."""
        with self._lock:
            if self.config is None:
                return None
            runs = self.config.runs.lambda_ if kind == "lambda" else self.config.runs.glue
            key = f"{kind}:{name}"
            counters = self._runs.setdefault(key, _RunCounters())
            counters.runs += 1
            patterns = runs.names() if runs is not None else None
            if runs is None or (patterns is not None and not any(fnmatchcase(name, p) for p in patterns)):
                return None
            u = self._rng(f"{kind}-run:{name}").random()
            if counters.runs <= runs.after_runs:
                return None
            if runs.max_faults is not None and counters.faults >= runs.max_faults:
                return None
            if u < runs.fail_rate:
                outcome = "fail"
                counters.failed += 1
            elif u < runs.fail_rate + runs.timeout_rate:
                outcome = "timeout"
                counters.timed_out += 1
            else:
                return None
            nth, total = counters.faults, counters.runs
        what = "fails" if outcome == "fail" else "times out"
        noun = "invocation" if kind == "lambda" else "run"
        log.info("localaws fault: %s %s %s %s (%s fault in %d %s%s)", kind, name, noun, what, _ordinal(nth), total,
                 noun, "" if total == 1 else "s")
        return outcome

    def query_hold(self, workgroup: str) -> float:
        """Seconds a new Athena query of ``workgroup`` stays RUNNING before it runs (0: not held)."""
        with self._lock:
            if self.config is None or self.config.runs.athena is None:
                return 0.0
            rule = self.config.runs.athena
            key = f"athena:{workgroup}"
            counters = self._runs.setdefault(key, _RunCounters())
            counters.runs += 1
            if rule.workgroups is not None and not any(fnmatchcase(workgroup, p) for p in rule.workgroups):
                return 0.0
            u = self._rng(f"athena-run:{workgroup}").random()
            if counters.runs <= rule.after_runs:
                return 0.0
            low, high = rule.latency_ms if isinstance(rule.latency_ms, tuple) else (rule.latency_ms,) * 2
            seconds = (low + (high - low) * u) / 1000.0
        log.info("localaws fault: athena query of work group %s held RUNNING %.0f ms", workgroup, seconds * 1000)
        return seconds

    def record_fails(self, stream: str) -> bool:
        """Whether the next record put to Firehose delivery stream ``stream`` fails (one draw per record)."""
        with self._lock:
            if self.config is None or self.config.runs.firehose is None:
                return False
            rule = self.config.runs.firehose
            key = f"firehose:{stream}"
            counters = self._runs.setdefault(key, _RunCounters())
            counters.runs += 1
            if rule.streams is not None and not any(fnmatchcase(stream, p) for p in rule.streams):
                return False
            u = self._rng(f"firehose-record:{stream}").random()
            if counters.runs <= rule.after_records:
                return False
            if rule.max_faults is not None and counters.faults >= rule.max_faults:
                return False
            if u >= rule.fail_rate:
                return False
            counters.failed += 1
            nth, total = counters.failed, counters.runs
        log.info("localaws fault: firehose %s record fails (%s fault in %d records)", stream, _ordinal(nth), total)
        return True

    # -- reporting
    def state(self) -> dict[str, Any]:
        """``{"active", "source", "config", "counters": {"operations", "runs", "totals"}}``."""
        with self._lock:
            ops = {k: v.as_dict() for k, v in sorted(self._ops.items())}
            runs = {k: v.as_dict() for k, v in sorted(self._runs.items())}
            totals = {
                "calls": sum(v.calls for v in self._ops.values()),
                "throttled": sum(v.throttled for v in self._ops.values()),
                "errors": sum(v.errors for v in self._ops.values()),
                "delayed": sum(v.delayed for v in self._ops.values()),
                "runs": sum(v.runs for v in self._runs.values()),
                "runs_failed": sum(v.failed for v in self._runs.values()),
                "runs_timed_out": sum(v.timed_out for v in self._runs.values()),
            }
            totals["faults"] = totals["throttled"] + totals["errors"] + totals["runs_failed"] + totals["runs_timed_out"]
            return {
                "active": self.config is not None,
                "source": self.source,
                "config": self.config.dump() if self.config is not None else None,
                "counters": {"operations": ops, "runs": runs, "totals": totals},
            }


def query_hold(workgroup: str) -> float:
    """Seconds a new Athena query of ``workgroup`` is held RUNNING by fault injection (0: none)."""
    injector = RUNTIME.faults
    return injector.query_hold(workgroup) if injector is not None else 0.0


def firehose_record_fails(stream: str) -> bool:
    """Whether fault injection fails the next record put to Firehose delivery stream ``stream``."""
    injector = RUNTIME.faults
    return injector.record_fails(stream) if injector is not None else False


def run_fault(kind: str, name: str) -> str | None:
    """The injected fate of a new Lambda invocation / Glue run (``"fail"``, ``"timeout"``, ``None``)."""
    injector = RUNTIME.faults
    return injector.decide_run(kind, name) if injector is not None else None
