"""The CloudTrail record of one API call served by localaws.

Fields as "CloudTrail record contents for management, data, and network activity events"
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html)
and "CloudTrail userIdentity element"
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html)
describe them: ``eventVersion``, ``userIdentity``, ``eventTime``, ``eventSource``, ``eventName``,
``awsRegion``, ``sourceIPAddress``, ``userAgent``, ``requestParameters``, ``responseElements`` (only
for calls that change state), ``errorCode`` / ``errorMessage`` (failed calls), ``requestID``,
``eventID``, ``readOnly``, ``resources``, ``eventType`` (``AwsApiCall``), ``managementEvent``,
``recipientAccountId``, ``eventCategory`` (``Management`` or ``Data``).

Data events, as "Logging data events"
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-data-events-with-cloudtrail.html)
and "Amazon S3 CloudTrail events"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-s3-info.html) list them:
S3 object-level calls (every S3 operation whose input names an object ``Key``, DeleteObjects, and
the object listings ListObjects(V2), ListObjectVersions, ListMultipartUploads), Lambda ``Invoke``,
SNS ``Publish`` / ``PublishBatch``. Everything else is a management event.

Redaction (:func:`redact`): the value of any parameter whose name contains ``password``,
``secret``, ``token`` (but not a paging or idempotency token: ``nextToken``, ``continuationToken``,
``clientRequestToken``, ...), ``credential``, ``privatekey``, ``passphrase`` or ``apikey``, and the
values of Lambda ``environment.variables``, and message content (a top-level ``message``,
``messageBody`` or ``payload``: SNS Publish, SQS SendMessage, Lambda Invoke), are replaced by ``HIDDEN_DUE_TO_SECURITY_REASONS``, the
placeholder AWS writes in CloudTrail records for sensitive fields (IAM ``CreateLoginProfile``'s
password, a function's environment variables). Blobs (Lambda ``ZipFile``, Firehose record data) and
any string longer than :data:`MAX_STRING` characters are replaced by a note of their size: a record
carries what was asked, not the payload.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import unescape

from localaws.faults import _VHOST_BUCKET, Operation

#: The CloudTrail record format version localaws writes.
EVENT_VERSION = "1.11"
#: What AWS writes in place of a sensitive value.
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
#: Strings longer than this (characters) are replaced by a note of their length.
MAX_STRING = 2048
#: Request bodies larger than this (bytes) are not parsed into requestParameters.
MAX_BODY = 1024 * 1024

_SECRET = re.compile(r"password|secret|token|credential|privatekey|private_key|passphrase|apikey|api_key",
                     re.IGNORECASE)
_NOT_SECRET = re.compile(r"(next|continuation|pagination|client_?request|idempotency|start_?after)_?token$|"
                         r"^tokenkey$|^marker$", re.IGNORECASE)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")

#: Operations of a service whose events are data events, besides S3's object-level calls.
DATA_EVENTS = {"lambda": {"Invoke"}, "sns": {"Publish", "PublishBatch"},
               "s3": {"DeleteObjects", "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads"}}

#: Request parameters naming a resource, per service: parameter -> CloudTrail resource type. A
#: ``Name`` parameter names the resource its operation creates (``CreateJob`` -> a job).
RESOURCE_PARAMETERS: dict[str, dict[str, str]] = {
    "glue": {"JobName": "AWS::Glue::Job", "CrawlerName": "AWS::Glue::Crawler", "DatabaseName": "AWS::Glue::Database",
             "TableName": "AWS::Glue::Table", "RulesetName": "AWS::Glue::DataQualityRuleset"},
    "lambda": {"FunctionName": "AWS::Lambda::Function", "LayerName": "AWS::Lambda::LayerVersion"},
    "iam": {"UserName": "AWS::IAM::User", "RoleName": "AWS::IAM::Role", "PolicyArn": "AWS::IAM::Policy",
            "AccessKeyId": "AWS::IAM::AccessKey", "GroupName": "AWS::IAM::Group"},
    "athena": {"WorkGroup": "AWS::Athena::WorkGroup", "QueryExecutionId": "AWS::Athena::QueryExecution"},
    "sns": {"TopicArn": "AWS::SNS::Topic"},
    "sqs": {"QueueUrl": "AWS::SQS::Queue", "QueueName": "AWS::SQS::Queue"},
    "firehose": {"DeliveryStreamName": "AWS::KinesisFirehose::DeliveryStream"},
    "logs": {"logGroupName": "AWS::Logs::LogGroup"},
    "cloudwatch": {"AlarmName": "AWS::CloudWatch::Alarm", "AlarmNames": "AWS::CloudWatch::Alarm"},
}
_CREATED_BY_NAME = {"glue": {"Job": "AWS::Glue::Job", "Crawler": "AWS::Glue::Crawler"},
                    "sns": {"Topic": "AWS::SNS::Topic"}, "iam": {}}


def iso(ts: float) -> str:
    """``2026-12-01T22:30:05Z``: CloudTrail's eventTime format (UTC, whole seconds)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def credential_scope(environ: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(access key id, region, signing name) from the SigV4 ``Authorization`` header's
    ``Credential=AKID/date/region/service/aws4_request`` or a presigned URL's ``X-Amz-Credential``;
    ``(None, None, None)`` for an unsigned request."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1), match.group(3), match.group(4)
    cred = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
    parts = cred[0].split("/") if cred else []
    if len(parts) == 5:
        return parts[0], parts[2], parts[3]
    return None, None, None


def user_identity(access_key_id: str | None, account_id: str) -> dict[str, Any]:
    """The ``userIdentity`` of a caller, as localaws's IAM and STS (moto's) know its access key.

    * a key of an IAM user (``CreateAccessKey``): ``type: IAMUser`` with the user's id, ARN, name;
    * a key ``AssumeRole`` handed out: ``type: AssumedRole``, ARN ``...:assumed-role/<role>/<session>``,
      ``sessionContext.sessionIssuer`` the role;
    * any other key (localaws checks no signature, so placeholder keys work): what localaws's
      ``sts:GetCallerIdentity`` answers for it, moto's default principal
      ``arn:aws:sts::<account>:user/moto``, as ``type: IAMUser``, ``userName: moto``;
    * an unsigned request: ``type: AWSAccount``, ``accountId: ANONYMOUS_PRINCIPAL`` (AWS's anonymous
      caller).
    """
    if not access_key_id:
        return {"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"}
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    sts = sts_backends[account_id]["global"]
    role = sts.get_assumed_role_from_access_key(access_key_id)
    if role is not None:
        role_name = role.role_arn.rsplit("/", 1)[-1]
        try:
            role_id = role.user_id.split(":", 1)[0]
        except Exception:  # noqa: BLE001 - the role was deleted since: its id is unknown
            role_id = ""
        return {"type": "AssumedRole", "principalId": f"{role_id}:{role.session_name}", "arn": role.arn,
                "accountId": role.account_id, "accessKeyId": access_key_id,
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id, "arn": role.role_arn,
                                                     "accountId": role.account_id, "userName": role_name},
                                   "attributes": {"creationDate": iso(role.created.timestamp()) if hasattr(
                                       role, "created") else None, "mfaAuthenticated": "false"}}}
    user = iam_backends[account_id]["aws"].get_user_from_access_key_id(access_key_id)
    if user is not None:
        return {"type": "IAMUser", "principalId": user.id, "arn": user.arn, "accountId": user.account_id,
                "accessKeyId": access_key_id, "userName": user.name}
    return {"type": "IAMUser", "principalId": "AKIAIOSFODNN7EXAMPLE", "arn": f"arn:aws:sts::{account_id}:user/moto",
            "accountId": account_id, "accessKeyId": access_key_id, "userName": "moto"}


def username(identity: dict[str, Any]) -> str:
    """LookupEvents' ``Username``: the IAM user's name, the session name of an assumed role."""
    if identity.get("type") == "AssumedRole":
        return identity["arn"].rsplit("/", 1)[-1]
    return identity.get("userName") or identity.get("accountId", "")


@functools.lru_cache(maxsize=4096)
def is_data_event(op: Operation) -> bool:
    """Whether CloudTrail classifies the call as a data event (see the module docstring)."""
    if op.name in DATA_EVENTS.get(op.service, ()):
        return True
    if op.service == "s3":
        shape = _input_shape(op)
        return shape is not None and "Key" in shape.members
    return False


# --- requestParameters ---------------------------------------------------------------------------

_models: dict[str, Any] = {}


def _service_model(service: str) -> Any:
    model = _models.get(service)
    if model is None and service not in _models:
        try:
            import botocore.session

            model = botocore.session.get_session().get_service_model(service)
        except Exception:  # noqa: BLE001 - a service botocore does not know: parameters as sent
            model = None
        _models[service] = model
    return model


@functools.lru_cache(maxsize=4096)
def _shape_of(service: str, name: str) -> Any:
    model = _service_model(service)
    if model is None:
        return None
    try:
        return model.operation_model(name).input_shape
    except Exception:  # noqa: BLE001 - an operation botocore does not know
        return None


def _input_shape(op: Operation) -> Any:
    return _shape_of(op.service, op.name)


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _convert(value: Any, shape: Any) -> Any:
    """Model-driven: structure members get CloudTrail's lowerCamelCase names, map keys stay as sent."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = {k.lower(): (k, s) for k, s in shape.members.items()}
        out = {}
        for key, item in value.items():
            name, member = members.get(key.lower(), (key, None))
            out[_lower_first(name)] = _convert(item, member)
        return out
    if kind == "list" and isinstance(value, list):
        return [_convert(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _convert(v, shape.value) for k, v in value.items()}
    if kind == "blob":
        return f"<{len(value) if isinstance(value, (str, bytes)) else '?'} bytes>"
    return value


def _unflatten(params: dict[str, str]) -> dict[str, Any]:
    """Query-protocol form fields (``Tags.member.1.Key``) as nested dicts and lists."""
    root: dict[str, Any] = {}
    for dotted, value in params.items():
        parts = [p for p in dotted.split(".") if p not in ("member", "entry")]
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_listify(node[k]) for k in sorted(node, key=int)]
        return {k: _listify(v) for k, v in node.items()}
    return node


@functools.lru_cache(maxsize=1024)
def _uri_route(service: str, name: str) -> tuple[re.Pattern[str], tuple[str, ...], dict[tuple[Any, str], str]]:
    """(path regex with a group per URI label, the labels, (location, wire name) -> member) of a REST operation."""
    operation = _service_model(service).operation_model(name)
    uri = operation.http.get("requestUri", "/").partition("?")[0]
    pattern = ""
    labels: list[str] = []
    for piece in re.split(r"(\{[^}]+\})", uri):
        if piece.startswith("{"):
            labels.append(piece.strip("{}+"))
            pattern += f"(?P<g{len(labels) - 1}>{'.+' if piece.endswith('+}') else '[^/]+'})"
        else:
            pattern += re.escape(piece)
    members = operation.input_shape.members if operation.input_shape is not None else {}
    by_location = {(m.serialization.get("location"), m.serialization.get("name", n)): n for n, m in members.items()}
    return re.compile(f"^{pattern.rstrip('/')}/?$"), tuple(labels), by_location


def _rest_uri_params(op: Operation, environ: dict[str, Any], shape: Any) -> dict[str, Any]:
    regex, labels, by_location = _uri_route(op.service, op.name)
    out: dict[str, Any] = {}
    match = regex.match(environ.get("PATH_INFO", ""))
    if match:
        for i, label in enumerate(labels):
            name = by_location.get(("uri", label), label)
            out[name] = unquote(match.group(f"g{i}"))
    for key, values in parse_qs(environ.get("QUERY_STRING", "")).items():
        name = by_location.get(("querystring", key))
        if name:
            out[name] = values[0]
    for (location, wire), name in by_location.items():
        if location == "header":
            value = environ.get("HTTP_" + wire.upper().replace("-", "_"))
            if value is not None:
                out[name] = value
    return out


def _s3_target(environ: dict[str, Any]) -> tuple[str | None, str | None, str]:
    host = environ.get("HTTP_HOST", "")
    path = environ.get("PATH_INFO", "") or "/"
    match = _VHOST_BUCKET.match(host.rsplit(":", 1)[0])
    if match:
        bucket, key = match.group(1), path.lstrip("/")
    else:
        bucket, _, key = path.lstrip("/").partition("/")
    return (unquote(bucket) or None), (unquote(key) or None), host


def request_parameters(op: Operation, environ: dict[str, Any], body: bytes | None) -> dict[str, Any] | None:
    """What the caller asked, in CloudTrail's shape (lowerCamelCase members), not yet redacted."""
    shape = _input_shape(op)
    if op.protocol == "s3":
        bucket, key, host = _s3_target(environ)
        params: dict[str, Any] = {}
        if bucket:
            params["bucketName"] = bucket
        params["Host"] = host
        if key:
            params["key"] = key
        for name, values in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items():
            if name not in ("x-id", "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token"):
                params[name] = values[0]
        if op.name == "DeleteObjects" and body:
            keys = [unescape(k) for k in re.findall(r"<Key>(.*?)</Key>", body.decode("utf-8", "replace"))]
            params["delete"] = {"objects": [{"key": k} for k in keys]}
        return params
    data: Any = {}
    payload = shape.serialization.get("payload") if shape is not None else None
    if payload and body:
        # The body is one member (Lambda Invoke's Payload): a blob is noted by size, never kept.
        member = shape.members[payload]
        if member.type_name == "structure":
            try:
                data = {payload: json.loads(body)}
            except ValueError:
                data = {}
        else:
            data = {payload: f"<{len(body)} bytes>"}
    elif op.protocol in ("json", "rest-json") and body:
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
    elif op.protocol == "query":
        form = {k: v[0] for k, v in parse_qs((body or b"").decode("utf-8", "replace")).items()}
        form.update({k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()})
        form.pop("Action", None)
        form.pop("Version", None)
        data = _unflatten(form)
    if op.protocol == "rest-json" and shape is not None:
        data = {**(data if isinstance(data, dict) else {}), **_rest_uri_params(op, environ, shape)}
    if not isinstance(data, dict):
        return None
    return _convert(data, shape) if data else None


def response_elements(op: Operation, body: bytes) -> Any:
    """What a state-changing call answered (JSON protocols: the body; query protocols: the
    ``<Op>Result`` element), lowerCamelCase, not yet redacted; ``None`` when not parseable."""
    if not body:
        return None
    if op.protocol in ("json", "rest-json"):
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return _lower_keys(data) if isinstance(data, dict) and data else None
    if op.protocol == "query":
        import xmltodict

        try:
            doc = xmltodict.parse(body)
        except Exception:  # noqa: BLE001 - not XML
            return None
        result = next(iter(doc.values()), None)
        if isinstance(result, dict):
            result = result.get(f"{op.name}Result")
        return _lower_keys(result) if isinstance(result, dict) else None
    return None


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_lower_first(k): _lower_keys(v) for k, v in value.items() if not k.startswith("@")}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


#: Top-level parameters holding message content (SNS Publish, SQS SendMessage), hidden as secrets are.
_MESSAGE_KEYS = ("message", "messagebody", "payload")


def redact(value: Any, _path: tuple[str, ...] = ()) -> Any:
    """``value`` with secrets replaced by :data:`HIDDEN` and long strings by a size note (rule
    and sources in the module docstring)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            lowered = key.lower()
            if _SECRET.search(lowered) and not _NOT_SECRET.search(lowered):
                out[key] = HIDDEN
            elif lowered == "variables" and _path and _path[-1].lower() == "environment":
                out[key] = {k: HIDDEN for k in item} if isinstance(item, dict) else HIDDEN
            elif lowered in _MESSAGE_KEYS and not _path:
                out[key] = HIDDEN
            elif lowered == "zipfile":
                out[key] = f"<{len(item) if isinstance(item, str) else '?'} characters omitted by localaws>"
            else:
                out[key] = redact(item, (*_path, key))
        return out
    if isinstance(value, list):
        return [redact(v, _path) for v in value]
    if isinstance(value, str) and len(value) > MAX_STRING:
        return f"<{len(value)} characters omitted by localaws>"
    return value


# --- the record ----------------------------------------------------------------------------------

def error_of(op: Operation, status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[str, str]:
    """(errorCode, errorMessage) of a failed call, from the protocol's error body."""
    text = body.decode("utf-8", "replace")
    code = message = ""
    header = {k.lower(): v for k, v in headers}
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        code = str(data.get("__type") or data.get("code") or data.get("Code") or header.get("x-amzn-errortype", ""))
        message = str(data.get("message") or data.get("Message") or data.get("errorMessage") or "")
    else:
        found = re.search(r"<Code>(.*?)</Code>", text, re.DOTALL)
        code = unescape(found.group(1)) if found else ""
        found = re.search(r"<Message>(.*?)</Message>", text, re.DOTALL)
        message = unescape(found.group(1)) if found else ""
    code = (code or header.get("x-amzn-errortype", "") or f"HTTP{status}").split(":")[0].rsplit("#", 1)[-1]
    return code, message


def resources_of(op: Operation, params: dict[str, Any] | None, raw: dict[str, Any] | None,
                 account_id: str) -> list[dict[str, str]]:
    """The resources the call names: ``[{"type", "name", "ARN"?}]`` (S3 with ARNs, as CloudTrail's
    ``resources`` field; other services by :data:`RESOURCE_PARAMETERS`, for LookupEvents)."""
    out: list[dict[str, str]] = []
    if op.protocol == "s3" and params:
        bucket = params.get("bucketName")
        if bucket:
            out.append({"type": "AWS::S3::Bucket", "name": bucket, "ARN": f"arn:aws:s3:::{bucket}",
                        "accountId": account_id})
            keys = [params["key"]] if params.get("key") else [
                o["key"] for o in params.get("delete", {}).get("objects", [])]
            out += [{"type": "AWS::S3::Object", "name": k, "ARN": f"arn:aws:s3:::{bucket}/{k}"} for k in keys]
        return out
    if not raw:
        return out
    known = RESOURCE_PARAMETERS.get(op.service, {})
    lowered = {k.lower(): v for k, v in known.items()}
    for key, value in raw.items():
        kind = lowered.get(key.lower())
        if kind is None and key.lower() == "name":
            kind = next((t for noun, t in _CREATED_BY_NAME.get(op.service, {}).items() if op.name.endswith(noun)), None)
        if kind is None:
            continue
        for name in value if isinstance(value, list) else [value]:
            if isinstance(name, str) and name:
                out.append({"type": kind, "name": name})
    return out


def build(op: Operation, environ: dict[str, Any], *, started: float, account_id: str, read_only: bool,
          status: int, headers: list[tuple[str, str]], request_body: bytes | None,
          response_body: bytes | None) -> dict[str, Any]:
    """One stored event: ``{"record": <the CloudTrail record>, "resources": [LookupEvents' Resources],
    "names": [the resources' names and ARNs, for ResourceName], "username", "time": epoch seconds}``."""
    access_key, region, signing = credential_scope(environ)
    identity = user_identity(access_key, account_id)
    raw_params = request_parameters(op, environ, request_body)
    header = {k.lower(): v for k, v in headers}
    data = is_data_event(op)
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": iso(started),
        "eventSource": f"{signing or op.service}.amazonaws.com",
        "eventName": op.name,
        "awsRegion": region or "us-east-1",
        "sourceIPAddress": environ.get("REMOTE_ADDR", ""),
        "userAgent": environ.get("HTTP_USER_AGENT", ""),
    }
    if status >= 400:
        record["errorCode"], record["errorMessage"] = error_of(op, status, headers, response_body or b"")
    record["requestParameters"] = redact(raw_params) if raw_params is not None else None
    if not read_only and status < 400:
        elements = response_elements(op, response_body) if response_body else None
        record["responseElements"] = redact(elements) if elements is not None else None
    record["requestID"] = (header.get("x-amzn-requestid") or header.get("x-amz-request-id")
                           or str(uuid.uuid4()))
    record["eventID"] = str(uuid.uuid4())
    record["readOnly"] = read_only
    resources = resources_of(op, raw_params, raw_params, account_id)
    arns = [{k: v for k, v in r.items() if k in ("accountId", "ARN")} | {"type": r["type"]}
            for r in resources if "ARN" in r]
    if arns:
        record["resources"] = arns
    record["eventType"] = "AwsApiCall"
    record["managementEvent"] = not data
    record["recipientAccountId"] = account_id
    record["eventCategory"] = "Data" if data else "Management"
    return {"time": started, "record": record, "username": username(identity),
            "resources": [{"ResourceType": r["type"], "ResourceName": r["name"]} for r in resources],
            "names": sorted({r["name"] for r in resources} | {r["ARN"] for r in resources if "ARN" in r})}

