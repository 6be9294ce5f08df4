"""Provisioning: create or update every AWS resource the lake needs, idempotently.

The same code runs against localaws and AWS (the ``lake provision`` command and the
``lake_provision`` DAG both call :func:`provision`). Names come from :mod:`lake.settings` and :class:`lake.layout.Layout`.
Each step reads the resource first and only creates or changes what differs, so running it
twice changes nothing the second time; each returns ``{"resource": ..., "action": ...}`` rows
with action ``created``, ``updated`` or ``unchanged``.

What is provisioned, in order:

1. ``buckets``: bronze, silver, gold, artifacts. All: public access blocked, default
   encryption (SSE-S3, AES256), a bucket policy that denies requests without TLS (not against
   a plain-http endpoint such as localaws, which enforces it and would refuse every call). Bronze:
   versioned, lifecycle "Glacier after 30 days, expire after 90" (current and noncurrent
   versions), the retention of raw deliveries (docs/architecture.md).
2. ``artifacts``: the Glue script (``include/glue_scripts/<dataset>_gold.py``, unchanged) and
   the dimension tables (``lake source load-dimensions``) uploaded.
3. ``lambda``: the extractor from ``include/lambdas/extractor`` (zip built by
   :func:`lake.deploy.package.build_lambda`, python3.12, the AWS SDK for pandas layer on AWS).
3b. ``registry``: the delivery registry (:func:`registry`): DynamoDB table ``lake_deliveries``
   (:func:`registry_table_definition`; on-demand, point-in-time recovery, TTL on ``ttl``), the
   ``lake-registry`` Lambda (``include/lambdas/registry``) with its delivery rules, S3's permission
   to invoke it and bronze's ``s3:ObjectCreated:*`` notifications merged into the bucket's own.
4. ``glue_job``: the gold job (glueetl, Glue 5.0, G.1X workers, MaxConcurrentRuns).
4b. ``stream``: per stream dataset (``flight_events``, :func:`stream`): its Glue script, hourly Glue
   job and gold crawler, and the DirectPut Firehose delivery stream into bronze with dynamic
   partitioning (jq), GZIP and the buffer hints of the settings (:func:`delivery_stream_destination`).
5. ``workgroup``: the Athena work group with its result location (enforced).
6. ``catalog``: the silver and gold Glue databases and the dimension tables, by running
   ``include/sql/ddl`` through Athena.
7. ``crawlers``: one for the silver fact table, one for the gold tables.
8. ``dq_rulesets``: a Glue Data Quality ruleset per gold table (:meth:`lake.layout.Layout.dq_ruleset`,
   text from :func:`lake.dqdl.ruleset`), ``TargetTable`` the gold table; updated when the text
   changed. A gold table enters the catalog when the gold crawler first runs, after a DAG run, and
   AWS refuses a target table that does not exist: until then the ruleset is ``skipped`` (provision
   again after the first run). The DAGs' Athena checks remain the verdict on the data.

Steps 2, 4, 6, 7 and 8 cover every fact dataset with a daily DAG (``LAKE_DAILY_DATASETS``, default
``flights,sales``): its Glue script, job, dimension tables (TPC-H ones at ``LAKE_TPCH_SCALE``)
and crawlers (:func:`layouts`).
9. ``notifications``: the SNS topic; with ``inbox=True`` (the default against localaws) an SQS
   queue subscribed to it, so ``localaws sns messages`` or the queue show every message.
10. ``alarms``: three CloudWatch metric alarms per fact dataset on the run's metrics
    (:mod:`lake.metrics`), each with the SNS topic as ``AlarmActions`` and ``OKActions``
    (:func:`alarm_definitions`); put again only when a definition differs.

IAM roles are not created here: on AWS, create them from ``include/iam`` (or your own) and set
``LAKE_LAMBDA_ROLE_ARN`` / ``LAKE_REGISTRY_ROLE_ARN`` / ``LAKE_GLUE_ROLE_ARN`` / ``LAKE_FIREHOSE_ROLE_ARN``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from lake import contracts, dqdl, source
from lake import sql as lake_sql
from lake.deploy import package
from lake.layout import Layout, for_dataset, split_uri
from lake.settings import Settings

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
GLUE_SCRIPTS = REPO / "include" / "glue_scripts"

#: Lifecycle of raw deliveries (docs/architecture.md, "Data layout"): Glacier after 30 days, expire after 90.
BRONZE_GLACIER_DAYS = 30
BRONZE_EXPIRE_DAYS = 90

Step = dict[str, str]


class ProvisionError(RuntimeError):
    """A resource could not be created or updated; the message names it and AWS's error."""


class Clients:
    """boto3 clients for one region and endpoint (``endpoint_url=None``: AWS itself)."""

    def __init__(self, region: str, endpoint_url: str | None = None, session: boto3.Session | None = None) -> None:
        self.session = session or boto3.Session(region_name=region)
        self.region = region
        self.endpoint_url = endpoint_url
        self._cache: dict[str, Any] = {}
        #: False for a plain-http endpoint (localaws): a deny-non-TLS bucket policy would lock us out.
        self.tls = endpoint_url is None or endpoint_url.startswith("https://")

    def __call__(self, service: str):
        if service not in self._cache:
            self._cache[service] = self.session.client(service, region_name=self.region,
                                                       endpoint_url=self.endpoint_url)
        return self._cache[service]


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _row(resource: str, action: str) -> Step:
    log.info("%s: %s", resource, action)
    return {"resource": resource, "action": action}


# --- 1. buckets ---------------------------------------------------------------------------------


def _deny_insecure_transport(bucket: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }, sort_keys=True)


def bronze_lifecycle() -> dict[str, Any]:
    """The bronze bucket's lifecycle configuration (``put_bucket_lifecycle_configuration`` shape)."""
    return {"Rules": [{
        "ID": "bronze-retention",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "Transitions": [{"Days": BRONZE_GLACIER_DAYS, "StorageClass": "GLACIER"}],
        "Expiration": {"Days": BRONZE_EXPIRE_DAYS},
        "NoncurrentVersionTransitions": [{"NoncurrentDays": BRONZE_GLACIER_DAYS, "StorageClass": "GLACIER"}],
        "NoncurrentVersionExpiration": {"NoncurrentDays": BRONZE_EXPIRE_DAYS},
    }]}


def buckets(s: Settings, aws: Clients) -> list[Step]:
    """Create the four buckets and set their protections (see the module docstring)."""
    s3 = aws("s3")
    rows = []
    for bucket in s.buckets:
        action = "unchanged"
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise ProvisionError(f"bucket {bucket}: {exc}") from exc
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if s.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": s.region}
            s3.create_bucket(**kwargs)
            action = "created"
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
        if aws.tls:
            s3.put_bucket_policy(Bucket=bucket, Policy=_deny_insecure_transport(bucket))
        if bucket == s.bronze_bucket:
            if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
                action = "created" if action == "created" else "updated"
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=bronze_lifecycle())
        rows.append(_row(f"s3://{bucket}", action))
    return rows


# --- roles -------------------------------------------------------------------------------------

TRUST = {"lambda": "lambda.amazonaws.com", "glue": "glue.amazonaws.com", "firehose": "firehose.amazonaws.com"}


def roles(s: Settings, aws: Clients) -> list[Step]:
    """Check that the Lambda (extractor, registry), Glue and Firehose roles exist; against localaws (an endpoint is set) create
    missing ones with their service trust policy, since localaws, like AWS, refuses a function
    whose role does not exist.

    :raises ProvisionError: on AWS when a role does not exist, naming it and the setting.
    """
    iam = aws("iam")
    rows = []
    for service, arn, setting in (("lambda", s.lambda_role, "LAKE_LAMBDA_ROLE_ARN"),
                                  ("lambda", s.registry_role, "LAKE_REGISTRY_ROLE_ARN"),
                                  ("glue", s.glue_role, "LAKE_GLUE_ROLE_ARN"),
                                  ("firehose", s.firehose_role, "LAKE_FIREHOSE_ROLE_ARN")):
        name = arn.rsplit("/", 1)[-1]
        try:
            iam.get_role(RoleName=name)
            rows.append(_row(f"role:{name}", "unchanged"))
            continue
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise ProvisionError(f"IAM role {name}: {exc}") from exc
        if aws.endpoint_url is None:
            raise ProvisionError(f"IAM role {arn} does not exist: create it (README, 'Run on AWS') or set {setting}")
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": TRUST[service]}, "Action": "sts:AssumeRole"}]}
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                        Description=f"lake {service} role (created by lake provision against localaws)")
        rows.append(_row(f"role:{name}", "created"))
    return rows


# --- 2. artifacts -------------------------------------------------------------------------------


def _put_if_changed(s3, bucket: str, key: str, body: bytes) -> str:
    import hashlib

    digest = hashlib.sha256(body).hexdigest()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == digest:
            return "unchanged"
        action = "updated"
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
        action = "created"
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": digest})
    return action


def layouts(s: Settings) -> list[Layout]:
    """The layout of every fact dataset with a daily DAG (``LAKE_DAILY_DATASETS``, default
    ``flights,sales``): the datasets whose job, crawlers and catalog tables are provisioned."""
    return [for_dataset(s, name) for name in s.daily_dataset_names]


def glue_script(s: Settings, layout: Layout | None = None) -> Path:
    """A dataset's Glue script, ``include/glue_scripts/<dataset>_gold.py`` (default: ``LAKE_DATASET``'s).

    :raises ProvisionError: when the file does not exist.
    """
    lay = layout or for_dataset(s)
    path = GLUE_SCRIPTS / lay.glue_script_name
    if not path.is_file():
        raise ProvisionError(f"no Glue script for dataset {lay.dataset}: {path} does not exist")
    return path


def artifacts(s: Settings, aws: Clients) -> list[Step]:
    """Upload each dataset's Glue script and load its dimension tables into the reference prefix."""
    s3 = aws("s3")
    rows = []
    loaded: set[str] = set()
    for lay in layouts(s):
        script_bucket, script_key = split_uri(lay.glue_script_location)
        rows.append(_row(lay.glue_script_location, _put_if_changed(s3, script_bucket, script_key,
                                                                   glue_script(s, lay).read_bytes())))
        dims = [contracts.load(d) for d in lay.dimensions if d not in loaded]
        loaded.update(lay.dimensions)
        for item in source.load_dimensions(dims, bucket=lay.silver_bucket, s3=s3, reference_prefix=s.reference_prefix):
            rows.append(_row(item["path"], f"loaded ({item['rows']} rows)"))
    return rows


# --- 3. Lambda ----------------------------------------------------------------------------------


def _lambda_config(s: Settings, local: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Role": s.lambda_role,
        "Handler": "handler.handler",
        "Runtime": "python3.12",
        "Timeout": s.lambda_timeout,
        "MemorySize": s.lambda_memory,
        # The extractor keeps the day's zip and its Parquet in /tmp: a 2 GB CSV day needs 953 MB
        # (bench/big_day.py), more than Lambda's default 512 MB.
        "EphemeralStorage": {"Size": s.lambda_ephemeral_storage},
        "Description": f"lake extractor: bronze {s.dataset} zip -> silver Parquet + quarantine",
        # Every name travels in the event (lake.layout.Layout.lambda_payload): no configuration here.
        "Environment": {"Variables": {}},
    }
    if s.pandas_layer and not local:
        config["Layers"] = [s.pandas_layer]
    return config


def lambda_function(s: Settings, aws: Clients) -> list[Step]:
    """Create the extractor, or update its code (when CodeSha256 differs) and configuration."""
    return [deploy_function(aws("lambda"), s.lambda_function, package.build_lambda(),
                            _lambda_config(s, local=aws.endpoint_url is not None))]


def deploy_function(lam: Any, name: str, pkg: package.Package, config: dict[str, Any]) -> Step:
    """Create function ``name`` from ``pkg`` with ``config`` (``create_function`` keywords without
    the name and code), or bring an existing one to them: new code when its CodeSha256 differs, the
    configuration when the role, handler, runtime, timeout, memory, /tmp size, environment or layers
    differ. Waits until the function is active / updated."""
    try:
        current = lam.get_function(FunctionName=name)["Configuration"]
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise ProvisionError(f"Lambda function {name}: {exc}") from exc
        lam.create_function(FunctionName=name, Code={"ZipFile": pkg.data}, Publish=True, **config)
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        return _row(f"lambda:{name}", f"created (code {pkg.code_sha256[:12]})")
    actions = []
    if current.get("CodeSha256") != pkg.code_sha256:
        lam.update_function_code(FunctionName=name, ZipFile=pkg.data, Publish=True)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        actions.append(f"code {pkg.code_sha256[:12]}")
    differs = (current.get("Role") != config["Role"] or current.get("Handler") != config["Handler"]
               or current.get("Runtime") != config["Runtime"] or current.get("Timeout") != config["Timeout"]
               or current.get("MemorySize") != config["MemorySize"]
               or current.get("EphemeralStorage", {}).get("Size", 512) != config["EphemeralStorage"]["Size"]
               or current.get("Environment", {}).get("Variables", {}) != config["Environment"]["Variables"]
               or sorted(layer["Arn"] for layer in current.get("Layers", [])) != sorted(config.get("Layers", [])))
    if differs:
        lam.update_function_configuration(FunctionName=name, **{"Layers": [], **config})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        actions.append("configuration")
    return _row(f"lambda:{name}", f"updated ({', '.join(actions)})" if actions else "unchanged")


# --- 3b. the delivery registry -----------------------------------------------------------------

#: The registry's attributes that keys and indexes use (all strings).
REGISTRY_KEY_ATTRIBUTES = ("pk", "version_id", "dataset", "partition", "event_time")
#: Lambda's limit on a function's environment variables, all together (Lambda quotas:
#: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
LAMBDA_ENVIRONMENT_BYTES = 4096


def registry_rules(s: Settings) -> list[dict[str, str]]:
    """The registry's delivery rules (:meth:`lake.layout.Layout.delivery_rules`): every daily
    dataset's bronze zip and manifest, then every stream contract's Firehose objects (contracts of
    kind ``stream`` in ``include/datasets``)."""
    streams = [for_dataset(s, name) for name, c in contracts.load_all().items() if c.kind == "stream"]
    return [rule for lay in [*layouts(s), *streams] for rule in lay.delivery_rules()]


def registry_table_definition(s: Settings) -> dict[str, Any]:
    """``create_table`` keywords of the delivery registry (``s.registry_table``).

    * key: ``pk`` (``s3://<bucket>/<key>``, HASH) + ``version_id`` (RANGE): one item per object
      version, so a new version of a key is a new delivery and a redelivered event the same item;
    * GSI ``by_partition`` (:data:`lake.layout.REGISTRY_PARTITION_INDEX`): ``dataset`` HASH +
      ``partition`` RANGE, all attributes projected (``lake.registry.deliveries``);
    * GSI ``by_event_time`` (:data:`lake.layout.REGISTRY_TIME_INDEX`): ``dataset`` HASH +
      ``event_time`` RANGE, keys only (``lake.registry.watermark``: the newest first, one item).
      Items without a dataset (no rule matched) are in neither index (sparse indexes);
    * on-demand billing (PAY_PER_REQUEST): deliveries come in bursts, a few a minute;
      point-in-time recovery and TTL on ``ttl`` are set by :func:`registry` after creation
      (CreateTable takes neither).
    """
    from lake.layout import REGISTRY_PARTITION_INDEX, REGISTRY_TIME_INDEX

    return {
        "TableName": s.registry_table,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in REGISTRY_KEY_ATTRIBUTES],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "version_id", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {"IndexName": REGISTRY_PARTITION_INDEX, "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": "dataset", "KeyType": "HASH"},
                           {"AttributeName": "partition", "KeyType": "RANGE"}]},
            {"IndexName": REGISTRY_TIME_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": "dataset", "KeyType": "HASH"},
                           {"AttributeName": "event_time", "KeyType": "RANGE"}]},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def _registry_config(s: Settings) -> dict[str, Any]:
    rules = json.dumps(registry_rules(s), separators=(",", ":"))
    variables = {"LAKE_REGISTRY_TABLE": s.registry_table, "LAKE_REGISTRY_TTL_DAYS": str(s.registry_ttl_days),
                 "LAKE_REGISTRY_RULES": rules}
    size = sum(len(k) + len(v.encode()) for k, v in variables.items())
    if size > LAMBDA_ENVIRONMENT_BYTES:
        raise ProvisionError(f"Lambda function {s.registry_function}: its environment would be {size} bytes, over "
                             f"Lambda's {LAMBDA_ENVIRONMENT_BYTES} (too many delivery rules)")
    return {
        "Role": s.registry_role, "Handler": "handler.handler", "Runtime": "python3.12",
        "Timeout": 30, "MemorySize": 256, "EphemeralStorage": {"Size": 512},
        "Description": "lake registry: S3 ObjectCreated -> one DynamoDB item per object version",
        "Environment": {"Variables": variables},
    }


def _registry_table(s: Settings, ddb: Any) -> list[Step]:
    name = s.registry_table
    wanted = registry_table_definition(s)
    rows = []
    try:
        current = ddb.describe_table(TableName=name)["Table"]
        indexes = {i["IndexName"]: i["KeySchema"] for i in current.get("GlobalSecondaryIndexes", [])}
        missing = [i["IndexName"] for i in wanted["GlobalSecondaryIndexes"] if indexes.get(i["IndexName"]) != i["KeySchema"]]
        if current["KeySchema"] != wanted["KeySchema"] or missing:
            raise ProvisionError(f"DynamoDB table {name} exists with another key schema or without the indexes "
                                 f"{missing}: rename it (LAKE_REGISTRY_TABLE) or delete it")
        rows.append(_row(f"dynamodb:{name}", "unchanged"))
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise ProvisionError(f"DynamoDB table {name}: {exc}") from exc
        ddb.create_table(**wanted)
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        rows.append(_row(f"dynamodb:{name}", "created"))
    pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    if pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") != "ENABLED":
        ddb.update_continuous_backups(TableName=name,
                                      PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        rows.append(_row(f"dynamodb:{name} point-in-time recovery", "enabled"))
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or ttl.get("AttributeName") != "ttl":
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
        rows.append(_row(f"dynamodb:{name} ttl", "enabled"))
    return rows


def _s3_may_invoke(s: Settings, lam: Any, function: str, bucket: str) -> Step:
    """The function's resource policy statement letting S3 invoke it for ``bucket`` (AddPermission)."""
    sid = f"s3-{bucket}"
    try:
        policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise ProvisionError(f"Lambda function {function} policy: {exc}") from exc
        policy = {"Statement": []}
    if any(st.get("Sid") == sid for st in policy.get("Statement", [])):
        return _row(f"lambda:{function} permission {sid}", "unchanged")
    lam.add_permission(FunctionName=function, StatementId=sid, Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{bucket}", SourceAccount=s.account_id)
    return _row(f"lambda:{function} permission {sid}", "created")


def registry_notifications(s: Settings, function_arn: str, bucket: str, current: dict[str, Any]) -> dict[str, Any]:
    """``bucket``'s notification configuration with the registry's rules merged into ``current``
    (a GetBucketNotificationConfiguration answer): one ``LambdaFunctionConfigurations`` entry per
    dataset prefix of the bucket's rules, Id ``<registry function>-<dataset>``, events
    ``s3:ObjectCreated:*``, filter ``Prefix`` (URL-encoded, as S3 matches filters on the encoded key).
    Every other configuration (queues, topics, other functions, EventBridge) is kept as it is:
    PutBucketNotificationConfiguration replaces the whole configuration
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketNotificationConfiguration.html)."""
    from urllib.parse import quote_plus

    ours = f"{s.registry_function}-"
    out = {k: v for k, v in current.items() if k in (
        "TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations", "EventBridgeConfiguration")}
    kept = [c for c in out.get("LambdaFunctionConfigurations", []) if not str(c.get("Id", "")).startswith(ours)]
    added = {}
    for rule in registry_rules(s):
        if rule["bucket"] == bucket:
            added.setdefault((rule["dataset"], rule["prefix"]), {
                "Id": f"{ours}{rule['dataset']}", "LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": quote_plus(rule["prefix"], safe="/*")}]}}})
    out["LambdaFunctionConfigurations"] = kept + list(added.values())
    return {k: v for k, v in out.items() if v}


def registry(s: Settings, aws: Clients) -> list[Step]:
    """The delivery registry: the table (:func:`registry_table_definition`, point-in-time recovery,
    TTL on ``ttl``), the ``lake-registry`` function (``include/lambdas/registry``, its rules and
    table in its environment), S3's permission to invoke it, and the ObjectCreated notifications of
    every bucket the rules name, merged into the bucket's configuration (:func:`registry_notifications`)."""
    rows = _registry_table(s, aws("dynamodb"))
    lam = aws("lambda")
    rows.append(deploy_function(lam, s.registry_function, package.build_registry(), _registry_config(s)))
    arn = lam.get_function(FunctionName=s.registry_function)["Configuration"]["FunctionArn"]
    s3 = aws("s3")
    for bucket in sorted({r["bucket"] for r in registry_rules(s)}):
        rows.append(_s3_may_invoke(s, lam, s.registry_function, bucket))
        current = s3.get_bucket_notification_configuration(Bucket=bucket)
        current.pop("ResponseMetadata", None)
        wanted = registry_notifications(s, arn, bucket, current)
        if wanted == {k: v for k, v in current.items() if v}:
            rows.append(_row(f"s3://{bucket} notifications", "unchanged"))
            continue
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=wanted)
        ours = [c for c in current.get("LambdaFunctionConfigurations", [])
                if str(c.get("Id", "")).startswith(f"{s.registry_function}-")]
        rows.append(_row(f"s3://{bucket} notifications", "updated" if ours else "created"))
    return rows


# --- 3c. the stream: Firehose, its Glue job and crawler -----------------------------------------


def stream_layouts(s: Settings) -> list[Layout]:
    """The layout of every stream dataset (contracts of kind ``stream`` in ``include/datasets``)."""
    return [for_dataset(s, name) for name, c in contracts.load_all().items() if c.kind == "stream"]


def delivery_stream_destination(s: Settings, lay: Layout) -> dict[str, Any]:
    """The delivery stream's ``ExtendedS3DestinationConfiguration``: bronze, the layout's dynamic
    partitioning ``Prefix`` and ``ErrorOutputPrefix``, the jq ``MetadataExtraction`` processor
    (``JQ-1.6``, the only engine), GZIP, ``BufferingHints`` from ``LAKE_FIREHOSE_BUFFER_MB`` /
    ``LAKE_FIREHOSE_BUFFER_SECONDS``, written as ``LAKE_FIREHOSE_ROLE_ARN``. Sources: Firehose API
    Reference, CreateDeliveryStream / ExtendedS3DestinationConfiguration; Developer Guide,
    "Dynamic partitioning" (https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html)."""
    return {
        "RoleARN": s.firehose_role,
        "BucketARN": f"arn:aws:s3:::{lay.bronze_bucket}",
        "Prefix": lay.stream_prefix,
        "ErrorOutputPrefix": lay.stream_error_prefix,
        "BufferingHints": {"SizeInMBs": s.firehose_buffer_mb, "IntervalInSeconds": s.firehose_buffer_seconds},
        "CompressionFormat": "GZIP",
        "DynamicPartitioningConfiguration": {"Enabled": True, "RetryOptions": {"DurationInSeconds": 300}},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{
            "Type": "MetadataExtraction",
            "Parameters": [{"ParameterName": "MetadataExtractionQuery", "ParameterValue": lay.stream_partition_query},
                           {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]},
    }


#: The destination fields compared to decide whether a delivery stream needs UpdateDestination.
_DESTINATION_FIELDS = ("RoleARN", "BucketARN", "Prefix", "ErrorOutputPrefix", "BufferingHints", "CompressionFormat",
                       "DynamicPartitioningConfiguration", "ProcessingConfiguration")


def _delivery_stream(s: Settings, lay: Layout, firehose: Any) -> Step:
    name, wanted = lay.delivery_stream, delivery_stream_destination(s, lay)
    try:
        description = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise ProvisionError(f"Firehose delivery stream {name}: {exc}") from exc
        firehose.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                                        ExtendedS3DestinationConfiguration=wanted)
        return _row(f"firehose:{name}", "created")
    dest = description["Destinations"][0]
    current = dest.get("ExtendedS3DestinationDescription", {})
    if all(current.get(k) == wanted[k] for k in _DESTINATION_FIELDS):
        return _row(f"firehose:{name}", "unchanged")
    firehose.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId=description["VersionId"],
                                DestinationId=dest["DestinationId"], ExtendedS3DestinationUpdate=wanted)
    return _row(f"firehose:{name}", "updated")


def stream(s: Settings, aws: Clients) -> list[Step]:
    """Each stream dataset: its Glue script uploaded, its hourly Glue job and gold crawler, and its
    DirectPut Firehose delivery stream into bronze (:func:`delivery_stream_destination`), each
    created, updated when its definition differs, or unchanged."""
    rows = []
    for lay in stream_layouts(s):
        bucket, key = split_uri(lay.glue_script_location)
        rows.append(_row(lay.glue_script_location, _put_if_changed(aws("s3"), bucket, key,
                                                                   glue_script(s, lay).read_bytes())))
        rows += _glue_job(s, lay, aws("glue"))
        rows += _crawlers(aws("glue"), crawler_definitions(s, lay))
        rows.append(_delivery_stream(s, lay, aws("firehose")))
    return rows


# --- 4. Glue job --------------------------------------------------------------------------------


def _job_definition(s: Settings, lay: Layout) -> dict[str, Any]:
    return {
        "Role": s.glue_role,
        "Description": (f"lake: silver {lay.silver_table} -> gold {', '.join(lay.gold_tables)}, "
                        f"one {lay.partition_name} partition per run") if lay.contract.kind != "stream" else
                       (f"lake: Firehose {lay.dataset} -> gold {', '.join(lay.gold_tables)}, one event hour per run"),
        "Command": {"Name": "glueetl", "ScriptLocation": lay.glue_script_location, "PythonVersion": "3"},
        "DefaultArguments": lay.stream_glue_arguments() if lay.contract.kind == "stream" else lay.glue_arguments(),
        "ExecutionProperty": {"MaxConcurrentRuns": s.glue_max_concurrent_runs},
        "GlueVersion": "5.0",
        "WorkerType": "G.1X",
        "NumberOfWorkers": s.glue_workers,
        "Timeout": s.glue_timeout,
        "MaxRetries": 0,
    }


def glue_job(s: Settings, aws: Clients) -> list[Step]:
    """Create each dataset's gold Glue job or update it when its definition differs. Retries are
    the DAG's (task-level), so the job itself has ``MaxRetries`` 0."""
    return [row for lay in layouts(s) for row in _glue_job(s, lay, aws("glue"))]


def _glue_job(s: Settings, lay: Layout, glue: Any) -> list[Step]:
    name = lay.glue_job
    definition = _job_definition(s, lay)
    try:
        current = glue.get_job(JobName=name)["Job"]
    except ClientError as exc:
        if _code(exc) != "EntityNotFoundException":
            raise ProvisionError(f"Glue job {name}: {exc}") from exc
        glue.create_job(Name=name, **definition)
        return [_row(f"glue-job:{name}", "created")]
    same = all(current.get(k) == v for k, v in definition.items() if k != "Command") and \
        current.get("Command", {}).get("ScriptLocation") == definition["Command"]["ScriptLocation"] and \
        current.get("Command", {}).get("Name") == "glueetl"
    if same:
        return [_row(f"glue-job:{name}", "unchanged")]
    glue.update_job(JobName=name, JobUpdate=definition)
    return [_row(f"glue-job:{name}", "updated")]


# --- 5. Athena work group -----------------------------------------------------------------------


def workgroup(s: Settings, aws: Clients) -> list[Step]:
    """Create the work group (results in the layout's ``athena_output``, configuration enforced,
    SSE-S3, a query scanning more than ``s.athena_bytes_cutoff`` bytes cancelled) or bring its
    result location and cutoff to the current settings."""
    athena = aws("athena")
    output = for_dataset(s).athena_output
    result = {"OutputLocation": output, "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}}
    try:
        # AWS answers InvalidRequestException for an unknown work group; moto an empty body.
        current = athena.get_work_group(WorkGroup=s.workgroup).get("WorkGroup")
    except ClientError as exc:
        if _code(exc) != "InvalidRequestException":
            raise ProvisionError(f"Athena work group {s.workgroup}: {exc}") from exc
        current = None
    if current is None:
        athena.create_work_group(Name=s.workgroup, Description="lake: data-quality checks and reports",
                                 Configuration={"ResultConfiguration": result,
                                                "EnforceWorkGroupConfiguration": True,
                                                "PublishCloudWatchMetricsEnabled": True,
                                                "BytesScannedCutoffPerQuery": s.athena_bytes_cutoff})
        return [_row(f"workgroup:{s.workgroup}", "created")]
    config = current.get("Configuration", {})
    if (config.get("ResultConfiguration", {}).get("OutputLocation") == output
            and config.get("BytesScannedCutoffPerQuery") == s.athena_bytes_cutoff):
        return [_row(f"workgroup:{s.workgroup}", "unchanged")]
    athena.update_work_group(WorkGroup=s.workgroup, ConfigurationUpdates={
        "ResultConfigurationUpdates": result, "EnforceWorkGroupConfiguration": True,
        "BytesScannedCutoffPerQuery": s.athena_bytes_cutoff})
    return [_row(f"workgroup:{s.workgroup}", "updated")]


# --- 6. catalog ---------------------------------------------------------------------------------


def run_query(aws: Clients, s: Settings, query: str, database: str | None = None, timeout_s: float = 300) -> str:
    """Run one Athena statement in the work group and wait for it.

    :returns: the query execution id.
    :raises ProvisionError: when the query fails or is cancelled (AWS's reason included) or is
        still running after ``timeout_s`` seconds.
    """
    athena = aws("athena")
    kwargs: dict[str, Any] = {"QueryString": query, "WorkGroup": s.workgroup}
    if database:
        kwargs["QueryExecutionContext"] = {"Database": database}
    qid = athena.start_query_execution(**kwargs)["QueryExecutionId"]
    deadline = time.monotonic() + timeout_s
    while True:
        status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            return qid
        if status["State"] in ("FAILED", "CANCELLED"):
            first_line = query.strip().splitlines()[0]
            raise ProvisionError(f"Athena query {qid} ({first_line}) {status['State']}: "
                                 f"{status.get('StateChangeReason', '')}")
        if time.monotonic() > deadline:
            raise ProvisionError(f"Athena query {qid} still {status['State']} after {timeout_s} s")
        time.sleep(0.5)


def catalog(s: Settings, aws: Clients) -> list[Step]:
    """Create the silver and gold databases and the dimension tables with ``include/sql/ddl``."""
    glue = aws("glue")
    rows = []
    for database in (s.silver_database, s.gold_database):
        try:
            glue.get_database(Name=database)
            action = "unchanged"
        except ClientError as exc:
            if _code(exc) != "EntityNotFoundException":
                raise
            action = "created"
        run_query(aws, s, lake_sql.render("ddl/create_database.sql", "", {"database": database}))
        rows.append(_row(f"database:{database}", action))
    facts = layouts(s)
    for name in sorted({d for lay in facts for d in lay.dimensions}):
        dim = contracts.load(name)
        try:
            glue.get_table(DatabaseName=s.silver_database, Name=name)
            action = "unchanged"
        except ClientError as exc:
            if _code(exc) != "EntityNotFoundException":
                raise
            action = "created"
        params = lake_sql.dimension_params(dim, s.silver_database, facts[0].reference_root)
        run_query(aws, s, lake_sql.render("ddl/create_dimension_table.sql", "", params))
        rows.append(_row(f"table:{s.silver_database}.{name}", action))
    return rows


# --- 7. crawlers --------------------------------------------------------------------------------


def crawler_definitions(s: Settings, layout: Layout | None = None) -> dict[str, dict[str, Any]]:
    """The two crawlers' definitions (``create_crawler`` shape without ``Name``), by name.

    Silver: the fact table under ``layout.silver_root`` into the silver database. Gold: each of
    the contract's gold tables (``layout.gold_location``) into the gold database. New partitions
    and columns are added; objects that disappear are only logged (DeleteBehavior LOG): the lake
    deletes nothing through the catalog.
    """
    lay = layout or for_dataset(s)
    policy = {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}
    config = json.dumps({"Version": 1.0, "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}}})
    out = {
        lay.silver_crawler: {
            "Role": s.glue_role, "DatabaseName": s.silver_database,
            "Description": f"lake: silver {lay.silver_table}",
            "Targets": {"S3Targets": [{"Path": lay.silver_root}]},
            "SchemaChangePolicy": policy, "Configuration": config,
        },
        lay.gold_crawler: {
            "Role": s.glue_role, "DatabaseName": s.gold_database,
            "Description": f"lake: gold {' and '.join(lay.gold_tables)}",
            "Targets": {"S3Targets": [{"Path": lay.gold_location(t)} for t in lay.gold_tables]},
            "SchemaChangePolicy": policy, "Configuration": config,
        },
    }
    if lay.contract.kind == "stream":  # a stream has no silver table: its bronze is read by the Glue job
        del out[lay.silver_crawler]
    return out


def crawlers(s: Settings, aws: Clients) -> list[Step]:
    """Create each dataset's two crawlers or update them when their targets, database or role differ."""
    definitions = {name: d for lay in layouts(s) for name, d in crawler_definitions(s, lay).items()}
    return _crawlers(aws("glue"), definitions)


def _crawlers(glue: Any, definitions: dict[str, dict[str, Any]]) -> list[Step]:
    rows = []
    for name, definition in definitions.items():
        try:
            current = glue.get_crawler(Name=name)["Crawler"]
        except ClientError as exc:
            if _code(exc) != "EntityNotFoundException":
                raise ProvisionError(f"crawler {name}: {exc}") from exc
            glue.create_crawler(Name=name, **definition)
            rows.append(_row(f"crawler:{name}", "created"))
            continue
        paths = [t["Path"] for t in current.get("Targets", {}).get("S3Targets", [])]
        wanted = [t["Path"] for t in definition["Targets"]["S3Targets"]]
        if paths == wanted and current.get("DatabaseName") == definition["DatabaseName"] \
                and current.get("Role") == definition["Role"]:
            rows.append(_row(f"crawler:{name}", "unchanged"))
            continue
        glue.update_crawler(Name=name, **definition)
        rows.append(_row(f"crawler:{name}", "updated"))
    return rows


# --- 8. Glue Data Quality rulesets ---------------------------------------------------------------


def dq_ruleset_definitions(s: Settings, layout: Layout | None = None) -> dict[str, dict[str, Any]]:
    """Each gold table's ruleset (``create_data_quality_ruleset`` shape without ``Name``), by name:
    ``Ruleset`` (:func:`lake.dqdl.ruleset`), ``Description``, ``TargetTable`` (the gold table)."""
    lay = layout or for_dataset(s)
    out = {}
    for database, table in lay.gold_catalog_tables:
        out[lay.dq_ruleset(table)] = {
            "Ruleset": dqdl.ruleset(lay, table),
            "Description": f"lake: data-quality rules of {database}.{table} from the {lay.dataset} contract "
                           f"(lake/dqdl.py)",
            "TargetTable": {"DatabaseName": database, "TableName": table},
        }
    return out


def dq_rulesets(s: Settings, aws: Clients) -> list[Step]:
    """Create each gold table's Data Quality ruleset, update its text or description when they
    differ, else leave it; ``skipped`` while its gold table is not in the catalog.

    :raises ProvisionError: when AWS refuses a call, or a ruleset of that name targets another table
        (the lake does not delete it: rename or delete it by hand).
    """
    glue = aws("glue")
    rows = []
    definitions = {name: d for lay in layouts(s) for name, d in dq_ruleset_definitions(s, lay).items()}
    for name, definition in definitions.items():
        target = definition["TargetTable"]
        table = f"{target['DatabaseName']}.{target['TableName']}"
        resource = f"dq-ruleset:{name}"
        try:
            try:
                current = glue.get_data_quality_ruleset(Name=name)
            except ClientError as exc:
                if _code(exc) != "EntityNotFoundException":
                    raise
                try:
                    glue.get_table(DatabaseName=target["DatabaseName"], Name=target["TableName"])
                except ClientError as exc2:
                    if _code(exc2) != "EntityNotFoundException":
                        raise
                    rows.append(_row(resource, f"skipped ({table} is not in the catalog yet: provision again "
                                               f"after the gold crawler has run)"))
                    continue
                glue.create_data_quality_ruleset(Name=name, **definition)
                rows.append(_row(resource, "created"))
                continue
            have = current.get("TargetTable") or {}
            if (have.get("DatabaseName"), have.get("TableName")) != (target["DatabaseName"], target["TableName"]):
                raise ProvisionError(f"Data Quality ruleset {name} targets {have or 'no table'}, expected {table}: "
                                     f"rename or delete it")
            if current.get("Ruleset") == definition["Ruleset"] and current.get("Description") == definition["Description"]:
                rows.append(_row(resource, "unchanged"))
                continue
            glue.update_data_quality_ruleset(Name=name, Ruleset=definition["Ruleset"],
                                             Description=definition["Description"])
            rows.append(_row(resource, "updated"))
        except ClientError as exc:
            raise ProvisionError(f"Data Quality ruleset {name}: {exc}") from exc
    return rows


# --- 9. notifications ---------------------------------------------------------------------------


def notifications(s: Settings, aws: Clients, inbox: bool) -> list[Step]:
    """The SNS topic (CreateTopic is idempotent) and, with ``inbox``, an SQS queue subscribed."""
    sns = aws("sns")
    existing = {t["TopicArn"] for page in sns.get_paginator("list_topics").paginate() for t in page["Topics"]}
    arn = sns.create_topic(Name=s.sns_topic)["TopicArn"]
    rows = [_row(f"sns:{s.sns_topic}", "unchanged" if arn in existing else "created")]
    if inbox:
        sqs = aws("sqs")
        url = sqs.create_queue(QueueName=s.inbox_queue)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        subs = [sub["Endpoint"] for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
                for sub in page["Subscriptions"]]
        if queue_arn in subs:
            rows.append(_row(f"sqs:{s.inbox_queue} subscription", "unchanged"))
        else:
            sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn,
                          Attributes={"RawMessageDelivery": "false"})
            rows.append(_row(f"sqs:{s.inbox_queue} subscription", "created"))
    return rows


# --- 10. CloudWatch alarms ----------------------------------------------------------------------------


def alarm_definitions(s: Settings, layout: Layout | None = None) -> dict[str, dict[str, Any]]:
    """The dataset's alarms (``put_metric_alarm`` shape without ``AlarmName``), by name
    (:meth:`lake.layout.Layout.alarm`). All in namespace ``Lake`` with dimension ``Dataset``:

    * ``reject-rate``: ``RejectRate`` (Percent, Maximum over an hour) above
      ``LAKE_MAX_REJECT_RATE`` x 100. One datum per run; ``TreatMissingData: ignore``: between
      daily runs there is no datum, and the alarm keeps its state until the next run's rate.
    * ``dq-failures``: ``DQFailedChecks`` (Count, Maximum over an hour) > 0; ``ignore`` as above.
    * ``bronze-missing``: ``BronzeFiles`` (Count, Sum per hour; the ``wait_for_bronze`` sensor
      publishes 1 at each file's arrival time, its LastModified) < 1 in each of the last
      24 + ``LAKE_BRONZE_DEADLINE_HOUR`` hours, all of them to alarm (M = N), with
      ``TreatMissingData: breaching`` (an hour without a datum is an hour without a file). A
      day's file normally lands just after midnight UTC (the export of the day before), so the
      alarm fires when the previous file is older than a day plus the deadline hour: today's file
      is not there by about ``LAKE_BRONZE_DEADLINE_HOUR``:00 UTC. It needs no Airflow to fire (a
      stopped scheduler or a paused DAG publishes nothing and alarms too), and CloudWatch
      evaluates it as documented for M of N with missing data
      (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html).
      Period 3600 allows up to 168 periods (7 days), so N <= 47 is valid.
    """
    lay = layout or for_dataset(s)
    topic = [s.topic_arn]
    dims = [{"Name": "Dataset", "Value": lay.dataset}]
    common = {"Namespace": "Lake", "Dimensions": dims, "AlarmActions": topic, "OKActions": topic,
              "ActionsEnabled": True}
    hours = 24 + s.bronze_deadline_hour
    return {
        lay.alarm("reject-rate"): {
            **common, "MetricName": "RejectRate", "Unit": "Percent", "Statistic": "Maximum", "Period": 3600,
            "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": 100 * s.max_reject_rate,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "ignore",
            "AlarmDescription": f"lake {lay.dataset}: a day's rows rejected by the extractor above "
                                f"LAKE_MAX_REJECT_RATE ({s.max_reject_rate:.2%})"},
        lay.alarm("dq-failures"): {
            **common, "MetricName": "DQFailedChecks", "Unit": "Count", "Statistic": "Maximum", "Period": 3600,
            "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": 0.0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "ignore",
            "AlarmDescription": f"lake {lay.dataset}: a day's data-quality checks failed"},
        lay.alarm("bronze-missing"): {
            **common, "MetricName": "BronzeFiles", "Unit": "Count", "Statistic": "Sum", "Period": 3600,
            "EvaluationPeriods": hours, "DatapointsToAlarm": hours, "Threshold": 1.0,
            "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "breaching",
            "AlarmDescription": f"lake {lay.dataset}: no bronze file for {hours} hours (the day's file is not "
                                f"there by {s.bronze_deadline_hour:02d}:00 UTC)"},
    }


def alarms(s: Settings, aws: Clients) -> list[Step]:
    """Create or update each dataset's alarms (:func:`alarm_definitions`); PutMetricAlarm keeps
    an existing alarm's state, and is called only when the definition differs."""
    cw = aws("cloudwatch")
    rows = []
    definitions = {name: d for lay in layouts(s) for name, d in alarm_definitions(s, lay).items()}
    current = {a["AlarmName"]: a for page in cw.get_paginator("describe_alarms").paginate(
        AlarmNames=list(definitions), AlarmTypes=["MetricAlarm"]) for a in page["MetricAlarms"]}
    for name, definition in definitions.items():
        have = current.get(name)
        if have is not None and all(have.get(k) == v for k, v in definition.items()):
            rows.append(_row(f"alarm:{name}", "unchanged"))
            continue
        try:
            cw.put_metric_alarm(AlarmName=name, **definition)
        except ClientError as exc:
            raise ProvisionError(f"CloudWatch alarm {name}: {exc}") from exc
        rows.append(_row(f"alarm:{name}", "created" if have is None else "updated"))
    return rows


# --- all ----------------------------------------------------------------------------------------

STEPS: dict[str, Callable[..., list[Step]]] = {
    "roles": roles,
    "buckets": buckets,
    "artifacts": artifacts,
    "lambda": lambda_function,
    "registry": registry,
    "glue_job": glue_job,
    "stream": stream,
    "workgroup": workgroup,
    "catalog": catalog,
    "crawlers": crawlers,
    "dq_rulesets": dq_rulesets,
    "notifications": notifications,
    "alarms": alarms,
}


def run_step(name: str, s: Settings, aws: Clients, inbox: bool | None = None) -> list[Step]:
    """Run one provisioning step by name (a key of :data:`STEPS`).

    :raises KeyError: for an unknown step.
    :raises ProvisionError: or botocore's ``ClientError`` when AWS refuses a call.
    """
    if name == "notifications":
        return notifications(s, aws, inbox=aws.endpoint_url is not None if inbox is None else inbox)
    return STEPS[name](s, aws)


def provision(s: Settings, aws: Clients, inbox: bool | None = None) -> list[Step]:
    """Run every step in order; returns the rows of all steps (see the module docstring)."""
    rows: list[Step] = []
    for name in STEPS:
        rows += run_step(name, s, aws, inbox)
    return rows
