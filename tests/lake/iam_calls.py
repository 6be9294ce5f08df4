"""Every AWS call the lake makes, for the IAM policy test (tests/lake/test_iam.py): a test
helper, kept out of the shipped ``lake`` package. :func:`pipeline_calls` derives each call's
resource ARN from the settings, each daily dataset's layout and the code that makes the call, so a
new call (or a new dataset's prefix) that a policy does not allow fails the test.
"""

from __future__ import annotations

from typing import NamedTuple

from lake.deploy.iam import _obj, values
from lake.layout import for_dataset
from lake.settings import Settings

#: The day the example calls of :func:`pipeline_calls` use.
EXAMPLE_DAY = "2013-01-05"
#: An AWS-owned account in example ARNs (MWAA's Celery queue and its AWS-owned KMS key).
SERVICE_ACCOUNT = "999999999999"


class Call(NamedTuple):
    """One AWS call the pipeline makes: which policy must allow it, the IAM action, the resource
    ARN, the request's condition keys (e.g. ``{"s3:prefix": ...}``) and where it comes from."""

    policy: str
    action: str
    resource: str
    context: dict[str, str]
    source: str


# --- the calls ----------------------------------------------------------------------------------


def _bucket(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def pipeline_calls(s: Settings, day: str = EXAMPLE_DAY, **extra: str) -> list[Call]:
    """Every AWS call the lake makes on AWS: :func:`dataset_calls` of each fact dataset with a
    daily DAG (``LAKE_DAILY_DATASETS``) and :func:`stream_calls` of each stream dataset, each call once (the shared ones, e.g. MWAA's, appear in
    every dataset's list).

    :raises IamTemplateError: for an unknown ``extra`` name.
    """
    from lake import contracts

    seen, out = set(), []
    streams = [n for n, c in contracts.load_all().items() if c.kind == "stream"]
    calls = [c for d in s.daily_dataset_names for c in dataset_calls(s, d, day, **extra)]
    for call in calls + [c for d in streams for c in stream_calls(s, d)]:
        ident = (call.policy, call.action, call.resource, tuple(sorted(call.context.items())))
        if ident not in seen:
            seen.add(ident)
            out.append(call)
    return out


def dataset_calls(s: Settings, dataset: str, day: str = EXAMPLE_DAY, **extra: str) -> list[Call]:
    """Every AWS call the lake makes on AWS for ``dataset``, one row per (policy, action, resource
    ARN), for the settings ``s`` and an example ``day``. Object keys come from the same code that builds
    them at run time (the dataset contract, the settings, ``lake.deploy.provision``, ``lake.sql``).

    Where the calls come from (the ``source`` column says which, per row):

    * ``lambda-extractor``: ``include/lambdas/extractor/handler.py`` ``extract``: ``get_object``
      of the manifest and ``download_file`` (HeadObject + GetObject) of the zip in bronze;
      ``list_objects_v2`` + ``delete_objects`` of the day's silver and quarantine prefixes;
      ``upload_file`` (PutObject, or a multipart upload, aborted on failure) of the new
      objects. A missing bronze object must answer 404 (``BronzeFileError`` "missing file"), not
      403: S3 answers 404 only to a caller allowed ``s3:ListBucket`` with the key as
      ``s3:prefix``. Plus the Lambda runtime's log group ``/aws/lambda/<function>``.
    * ``lambda-registry``: ``include/lambdas/registry/handler.py``: ``put_item`` into the registry
      table (conditional: ``attribute_not_exists``), and the runtime's log group.
    * ``glue-job``: Glue fetches ``glue_script_location`` with the job's role;
      ``include/glue_scripts/<dataset>_gold.py`` reads the day's silver partition (``Layout.silver_path``) and the
      dimensions under ``dimensions_path`` and overwrites the day's partition of each gold table
      (dynamic partition overwrite: HEAD of the table path, list, staging objects under the
      table, copy = GetObject + PutObject, delete, ``_SUCCESS``, EMRFS ``<table>_$folder$``
      markers); the day's lease under ``lease_path`` (put, get, delete; ``GetJobRun`` on the
      holder); continuous logging to ``/aws-glue/jobs/{output,error,logs-v2}``. The gold tables
      are the gold crawler's targets (``lake.deploy.provision.crawler_definitions``).
    * ``glue-crawler``: the crawlers' S3 targets and databases (``lake.deploy.provision.crawler_definitions``):
      list and read the objects, create/update the table and its partitions (``DeleteBehavior``
      LOG: nothing is deleted); logs in ``/aws-glue/crawlers``.
    * ``airflow-execution``: ``dags/lake_daily.py`` through the amazon provider:
      ``S3KeySensor`` (``S3Hook.head_object`` / the deferred ``S3KeyTrigger``: HeadObject of the
      zip and the manifest, 404 while they are missing), ``LambdaInvokeFunctionOperator``
      (Invoke), ``GlueJobOperator`` (``GlueJobHook.get_or_create_glue_job`` -> GetJob,
      StartJobRun, GetJobRun; GetJobRuns when a retry looks for the run it started (``durable``);
      ``verbose``: the trigger's GetLogEvents / the hook's FilterLogEvents on
      ``/aws-glue/jobs/output`` and ``/error``), ``GlueCrawlerOperator`` (``has_crawler`` and
      ``update_crawler`` -> GetCrawler only, since the config holds just the name; StartCrawler;
      the ``crawler_ready`` waiter -> GetCrawler; GetCrawlerMetrics), ``AthenaOperator``
      (StartQueryExecution, GetQueryExecution, StopQueryExecution on kill) and
      ``AthenaHook.get_query_results_paginator`` (GetQueryResults), ``SnsPublishOperator`` and
      the ``SnsNotifier`` callbacks (Publish). Athena reads the tables' catalog entries and S3
      objects and writes and reads the results with the caller's credentials. Plus what MWAA
      itself does with the execution role (the AWS MWAA execution-role sample): metrics, the
      environment's bucket, ``airflow-<env>-*`` logs, the Celery SQS queue and its AWS-owned
      KMS key.
    * ``provisioner``: ``lake/deploy/provision.py``, step by step (``roles``, ``buckets``,
      ``artifacts``, ``lambda``, ``registry``, ``glue_job``, ``workgroup``, ``catalog`` through Athena DDL,
      ``crawlers``, ``dq_rulesets``, ``notifications``, ``alarms``; the SQS inbox is created only against localaws).

    :raises IamTemplateError: for an unknown ``extra`` name.
    """
    from lake import contracts, sql
    from lake.deploy import provision

    x = values(s, **extra)
    region, account = s.region, s.account_id
    lay = for_dataset(s, dataset)
    dims = list(lay.dimensions)
    calls: list[Call] = []

    def add(policy: str, action: str, resources: str | list[str], source_: str, **context: str) -> None:
        for resource in [resources] if isinstance(resources, str) else resources:
            calls.append(Call(policy, action, resource, dict(context), source_))

    def logs(group: str, stream: str | None = None) -> str:
        arn = f"arn:aws:logs:{region}:{account}:log-group:{group}"
        return arn if stream is None else f"{arn}:log-stream:{stream}"

    glue_arn = f"arn:aws:glue:{region}:{account}"
    catalog = f"{glue_arn}:catalog"

    def table_arns(db: str, table: str) -> list[str]:
        return [catalog, f"{glue_arn}:database/{db}", f"{glue_arn}:table/{db}/{table}"]

    # --- the extractor ---------------------------------------------------------------------------
    p = "lambda-extractor"
    src = "include/lambdas/extractor/handler.py extract"
    event = lay.lambda_event(day)
    bronze = event["bucket"]
    zip_key, manifest_key = event["key"], event["manifest_key"]
    silver_prefix, quarantine_prefix = event["silver_prefix"], event["quarantine_prefix"]
    add(p, "s3:GetObject", _obj(bronze, manifest_key), f"{src}: _read_manifest get_object")
    add(p, "s3:GetObject", _obj(bronze, zip_key), f"{src}: download_file (HeadObject + GetObject)")
    for key in (manifest_key, zip_key):
        add(p, "s3:ListBucket", _bucket(bronze), f"{src}: a missing object answers 404, not 403", **{"s3:prefix": key})
    for bucket, prefix in ((event["silver_bucket"], silver_prefix),
                           (event["quarantine_bucket"], quarantine_prefix)):
        obj = _obj(bucket, prefix + "part-00000.parquet")
        add(p, "s3:ListBucket", _bucket(bucket), f"{src}: _delete_prefix list_objects_v2", **{"s3:prefix": prefix})
        add(p, "s3:DeleteObject", obj, f"{src}: _delete_prefix delete_objects (the day's old objects)")
        add(p, "s3:PutObject", obj, f"{src}: upload_file (PutObject or multipart upload)")
        add(p, "s3:AbortMultipartUpload", obj, f"{src}: upload_file aborts a failed multipart upload")
    group = f"/aws/lambda/{s.lambda_function}"
    add(p, "logs:CreateLogGroup", logs(group), "Lambda runtime: the function's log group")
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        add(p, action, logs(group, "2013/01/05/[$LATEST]0123456789abcdef"), "Lambda runtime: the function's logs")

    # --- the Glue job -----------------------------------------------------------------------------
    p = "glue-job"
    src = f"include/glue_scripts/{lay.glue_script_name}"
    args = lay.glue_arguments()
    script_bucket, script_key = _split(lay.glue_script_location)
    add(p, "s3:GetObject", _obj(script_bucket, script_key), "Glue: fetches ScriptLocation with the job's role")
    silver_bucket, day_prefix = _split(lay.silver_path(day))
    part = lay.partition(day)
    add(p, "s3:ListBucket", _bucket(silver_bucket), f"{src} read_day", **{"s3:prefix": day_prefix})
    add(p, "s3:GetObject", _obj(silver_bucket, day_prefix + "part-00000.parquet"), f"{src} read_day")
    add(p, "s3:GetObject", _obj(silver_bucket, day_prefix.rstrip("/")), f"{src} read_day: HEAD of the path")
    for name in ("airlines", "airports"):
        dim_bucket, dim_folder = _split(lay.dimension_location(name))
        add(p, "s3:ListBucket", _bucket(dim_bucket), f"{src} transform: dimension {name}", **{"s3:prefix": dim_folder})
        add(p, "s3:GetObject", _obj(dim_bucket, lay.dimension_key(name)), f"{src} transform: dimension {name}")
    gold_targets = [t["Path"] for t in provision.crawler_definitions(s, lay)[lay.gold_crawler]["Targets"]["S3Targets"]]
    gold_tables = [_split(t) for t in gold_targets]
    for bucket, key in gold_tables:
        table = key.rstrip("/")
        w = f"{src} write_partition({table})"
        add(p, "s3:GetObject", _obj(bucket, table), f"{w}: HEAD of the table path")
        add(p, "s3:ListBucket", _bucket(bucket), f"{w}: list the table", **{"s3:prefix": f"{table}/"})
        add(p, "s3:ListBucket", _bucket(bucket), f"{w}: list the partition", **{"s3:prefix": f"{table}/{part}/"})
        staged = f"{table}/.spark-staging-0123/{part}/part-00000.snappy.parquet"
        final = f"{table}/{part}/part-00000-0123.c000.snappy.parquet"
        add(p, "s3:PutObject", _obj(bucket, staged), f"{w}: staging object")
        add(p, "s3:GetObject", _obj(bucket, staged), f"{w}: rename = copy (source)")
        add(p, "s3:PutObject", _obj(bucket, final), f"{w}: rename = copy (target)")
        add(p, "s3:DeleteObject", _obj(bucket, staged), f"{w}: rename = delete the staged object")
        add(p, "s3:DeleteObject", _obj(bucket, f"{table}/{part}/part-00000-old.c000.snappy.parquet"),
            f"{w}: overwrite deletes the partition's old objects")
        add(p, "s3:AbortMultipartUpload", _obj(bucket, final), f"{w}: a failed multipart upload")
        add(p, "s3:PutObject", _obj(bucket, f"{table}/_SUCCESS"), f"{w}: _SUCCESS marker")
        add(p, "s3:PutObject", _obj(bucket, f"{table}_$folder$"), f"{w}: EMRFS directory marker")
    lease_obj = _obj(_split(args["--lease_path"])[0], lay.lease_key(day))
    add(p, "s3:PutObject", lease_obj, f"{src} acquire_lease: create (If-None-Match) or take over (If-Match)")
    add(p, "s3:GetObject", lease_obj, f"{src} acquire_lease / release_lease: read the holder")
    add(p, "s3:DeleteObject", lease_obj, f"{src} release_lease")
    add(p, "glue:GetJobRun", f"{glue_arn}:job/{lay.glue_job}", f"{src} acquire_lease: is the holder still active?")
    add(p, "s3:GetBucketLocation", [_bucket(silver_bucket), _bucket(gold_tables[0][0])], "Glue/EMRFS: bucket region")
    for suffix in ("output", "error", "logs-v2"):
        group = f"/aws-glue/jobs/{suffix}"
        add(p, "logs:CreateLogGroup", logs(group), "Glue: --enable-continuous-cloudwatch-log")
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            add(p, action, logs(group, "jr_0123456789abcdef"), "Glue: --enable-continuous-cloudwatch-log")

    # --- the delivery registry ---------------------------------------------------------------------
    p = "lambda-registry"
    src = "include/lambdas/registry/handler.py register"
    add(p, "dynamodb:PutItem", s.registry_table_arn, f"{src}: put_item (attribute_not_exists) of each object version")
    group = f"/aws/lambda/{s.registry_function}"
    add(p, "logs:CreateLogGroup", logs(group), "Lambda runtime logs")
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        add(p, action, logs(group, "2026/12/01/[$LATEST]0123456789abcdef"), "Lambda runtime logs")

    # --- the crawlers -----------------------------------------------------------------------------
    p = "glue-crawler"
    for name, definition in provision.crawler_definitions(s, lay).items():
        src = f"crawler {name} (lake.deploy.provision.crawler_definitions)"
        db = definition["DatabaseName"]
        for target in definition["Targets"]["S3Targets"]:
            bucket, key = _split(target["Path"])
            table = key.rstrip("/").rsplit("/", 1)[-1]
            add(p, "s3:GetBucketLocation", _bucket(bucket), src)
            add(p, "s3:ListBucket", _bucket(bucket), f"{src}: list the target", **{"s3:prefix": key})
            add(p, "s3:ListBucket", _bucket(bucket), f"{src}: list a partition", **{"s3:prefix": f"{key}{part}/"})
            add(p, "s3:GetObject", _obj(bucket, f"{key}{part}/part-00000.parquet"), f"{src}: read the schema")
            add(p, "glue:GetDatabase", table_arns(db, table)[:2], src)
            add(p, "glue:GetTables", table_arns(db, table)[:2], f"{src}: the database's tables")
            for action in ("glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetPartition",
                           "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition",
                           "glue:BatchCreatePartition", "glue:UpdatePartition", "glue:BatchUpdatePartition"):
                add(p, action, table_arns(db, table), f"{src}: table {db}.{table} (UPDATE_IN_DATABASE)")
        add(p, "logs:CreateLogGroup", logs("/aws-glue/crawlers"), "Glue crawler logs")
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            add(p, action, logs("/aws-glue/crawlers", name), "Glue crawler logs")

    # --- Airflow (MWAA execution role) ------------------------------------------------------------
    p = "airflow-execution"
    dag = "dags/lake_daily.py"
    for key in (zip_key, manifest_key):
        src = f"{dag} wait_for_bronze: S3KeySensor -> S3Hook.head_object / S3KeyTrigger"
        add(p, "s3:GetObject", _obj(s.bronze_bucket, key), src)
        add(p, "s3:ListBucket", _bucket(s.bronze_bucket), f"{src}: 404 (not 403) while missing", **{"s3:prefix": key})
    add(p, "lambda:InvokeFunction", f"arn:aws:lambda:{region}:{account}:function:{s.lambda_function}",
        f"{dag} extract: LambdaInvokeFunctionOperator -> LambdaHook.invoke_lambda")
    job = f"{glue_arn}:job/{lay.glue_job}"
    src = f"{dag} transform: GlueJobOperator"
    add(p, "glue:GetJob", job, f"{src} -> GlueJobHook.get_or_create_glue_job (has_job)")
    add(p, "glue:StartJobRun", job, f"{src} -> GlueJobHook.initialize_job")
    add(p, "glue:GetJobRun", job, f"{src} -> GlueJobCompleteTrigger / GlueJobHook.get_job_state")
    add(p, "glue:GetJobRuns", job, f"{src} (durable): a retry looks for the run it started")
    for suffix in ("output", "error"):
        group = f"/aws-glue/jobs/{suffix}"
        add(p, "logs:GetLogEvents", logs(group, "jr_0123456789abcdef"), f"{src} verbose: GlueJobCompleteTrigger")
        add(p, "logs:FilterLogEvents", logs(group), f"{src} verbose: GlueJobHook.print_job_logs")
    for crawler in (lay.silver_crawler, lay.gold_crawler):
        src = f"{dag} crawl_*: GlueCrawlerOperator"
        add(p, "glue:GetCrawler", f"{glue_arn}:crawler/{crawler}", f"{src}: has_crawler, update_crawler, crawler_ready")
        add(p, "glue:StartCrawler", f"{glue_arn}:crawler/{crawler}", f"{src}: start_crawler")
    add(p, "glue:GetCrawlerMetrics", "*", f"{dag} crawl_*: GlueCrawlerHook.wait_for_crawler_completion")
    workgroup = f"arn:aws:athena:{region}:{account}:workgroup/{s.workgroup}"
    src = f"{dag} data_quality.*, reports.*: AthenaOperator"
    add(p, "athena:StartQueryExecution", workgroup, f"{src} -> AthenaHook.run_query")
    add(p, "athena:GetQueryExecution", workgroup, f"{src} -> AthenaHook.poll_query_status")
    add(p, "athena:StopQueryExecution", workgroup, f"{src}.on_kill (execution_timeout)")
    add(p, "athena:GetQueryResults", workgroup, f"{dag} evaluate, summarize: AthenaHook.get_query_results_paginator")
    src = "Athena, with the caller's credentials: the queried tables (include/sql/dq, reports)"
    # (database, table, bucket, the key prefix Athena lists): the day of each fact table, whole dimensions.
    queried = [(db, table, *_split(lay.gold_path(table, day))) for db, table in lay.gold_catalog_tables]
    queried.append((*lay.silver_catalog_table, silver_bucket, day_prefix))
    params = sql.params_for(lay.contract, {}, layout=lay)
    for check in params["dimension_checks"]:
        location = sql.dimension_params(contracts.load(check["table"]), check["database"], lay.reference_root)
        bucket, key = _split(location["dimension"]["location"])
        queried.append((check["database"], check["table"], bucket, key))
    for db, table, bucket, prefix in queried:
        add(p, "glue:GetDatabase", table_arns(db, table)[:2], src)
        for action in ("glue:GetTable", "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition"):
            add(p, action, table_arns(db, table), f"{src}: {db}.{table}")
        add(p, "s3:ListBucket", _bucket(bucket), f"{src}: {db}.{table}", **{"s3:prefix": prefix})
        add(p, "s3:GetObject", _obj(bucket, f"{prefix}part-00000.parquet"), f"{src}: {db}.{table}")
        add(p, "s3:GetBucketLocation", _bucket(bucket), src)
    results_bucket, results_key = _split(lay.athena_output)
    src = "Athena query results (AthenaOperator output_location = athena_output)"
    result = _obj(results_bucket, f"{results_key}0123-4567.csv")
    add(p, "s3:PutObject", [result, result + ".metadata"], f"{src}: written with the caller's credentials")
    add(p, "s3:AbortMultipartUpload", result, f"{src}: a failed multipart result upload")
    add(p, "s3:GetObject", result, f"{src}: read by GetQueryResults")
    add(p, "s3:ListBucket", _bucket(results_bucket), src, **{"s3:prefix": results_key})
    add(p, "s3:GetBucketLocation", _bucket(results_bucket), src)
    add(p, "sns:Publish", s.topic_arn, f"{dag} notify: SnsPublishOperator; on_failure/on_retry: SnsNotifier")
    # lake_dashboards_refresh stores each day's rows; the Lake pages (API server) mirror the cache.
    cache_bucket, _ = _split(lay.dashboards_root)
    cached = _obj(cache_bucket, lay.dashboard_key("flights", lay.dataset, day))
    add(p, "s3:PutObject", cached, "lake_dashboards_refresh store: S3 put_object of the day's Parquet")
    add(p, "s3:GetObject", cached, "Lake pages: cache.Mirror downloads changed objects")
    add(p, "s3:ListBucket", _bucket(cache_bucket), "Lake pages: cache.Mirror lists the cache",
        **{"s3:prefix": lay.dashboard_prefix("flights", lay.dataset)})
    # What MWAA itself does with the execution role (AWS MWAA docs, execution role sample).
    mwaa = "MWAA service (execution role sample in the AWS MWAA docs)"
    env_name, mwaa_bucket = x["mwaa_environment"], x["mwaa_bucket"]
    add(p, "airflow:PublishMetrics", f"arn:aws:airflow:{region}:{account}:environment/{env_name}", mwaa)
    for action in ("s3:GetObject", "s3:GetObjectVersion"):
        add(p, action, [_obj(mwaa_bucket, "dags/lake_daily.py"), _obj(mwaa_bucket, "requirements.txt")],
            f"{mwaa}: DAGs, requirements, plugins")
    for action in ("s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning",
                   "s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration"):
        add(p, action, _bucket(mwaa_bucket), f"{mwaa}: the environment's bucket")
    task_logs = f"airflow-{env_name}-Task"
    add(p, "logs:CreateLogGroup", logs(task_logs), f"{mwaa}: Airflow logs")
    for action in ("logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents"):
        add(p, action, logs(task_logs, f"dag_id={lay.dataset}_lake_daily/run_id=x/task_id=extract/attempt=1.log"),
            f"{mwaa}: Airflow task logs (the UI reads them back)")
    for action in ("logs:GetLogRecord", "logs:GetLogGroupFields", "logs:GetQueryResults"):
        add(p, action, logs(task_logs), f"{mwaa}: Airflow logs")
    for action in ("logs:DescribeLogGroups", "s3:GetAccountPublicAccessBlock"):
        add(p, action, "*", f"{mwaa}: no resource-level scoping for this action")
    add(p, "cloudwatch:PutMetricData", "*", f"{mwaa}: environment metrics", **{"cloudwatch:namespace": "AmazonMWAA"})
    add(p, "cloudwatch:PutMetricData", "*", f"{dag} publish_metrics, wait_for_bronze: lake.metrics.put",
        **{"cloudwatch:namespace": "Lake"})
    queue = f"arn:aws:sqs:{region}:{SERVICE_ACCOUNT}:airflow-celery-0123abcd"
    for action in ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
                   "sqs:ReceiveMessage", "sqs:SendMessage"):
        add(p, action, queue, f"{mwaa}: the Celery queue (in an AWS-owned account)")
    key_arn = f"arn:aws:kms:{region}:{SERVICE_ACCOUNT}:key/0123abcd-0000-0000-0000-000000000000"
    for action in ("kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:Encrypt"):
        add(p, action, key_arn, f"{mwaa}: the Celery queue's AWS-owned key, through SQS",
            **{"kms:ViaService": f"sqs.{region}.amazonaws.com"})

    # --- the provisioner --------------------------------------------------------------------------
    p = "provisioner"
    src = "lake/deploy/provision.py"
    add(p, "iam:GetRole", [s.lambda_role, s.registry_role, s.glue_role], f"{src} roles: get_role")
    for bucket in s.buckets:
        add(p, "s3:ListBucket", _bucket(bucket), f"{src} buckets: head_bucket")
        for action in ("s3:CreateBucket", "s3:PutBucketPublicAccessBlock", "s3:PutEncryptionConfiguration",
                       "s3:PutBucketPolicy"):
            add(p, action, _bucket(bucket), f"{src} buckets")
    for action in ("s3:GetBucketVersioning", "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration"):
        add(p, action, _bucket(s.bronze_bucket), f"{src} buckets: bronze versioning and lifecycle")
    add(p, "s3:GetObject", _obj(script_bucket, script_key), f"{src} artifacts: _put_if_changed head_object")
    add(p, "s3:PutObject", _obj(script_bucket, script_key), f"{src} artifacts: _put_if_changed put_object")
    for name in dims:
        add(p, "s3:PutObject", _obj(lay.silver_bucket, lay.dimension_key(name)),
            f"{src} artifacts: lake.source.load_dimensions")
    function = f"arn:aws:lambda:{region}:{account}:function:{s.lambda_function}"
    for action in ("lambda:GetFunction", "lambda:CreateFunction", "lambda:UpdateFunctionCode",
                   "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion"):
        add(p, action, function, f"{src} lambda_function (Publish=True publishes a version)")
    add(p, "iam:PassRole", s.lambda_role, f"{src} lambda_function: Role", **{"iam:PassedToService": "lambda.amazonaws.com"})
    if s.pandas_layer:
        add(p, "lambda:GetLayerVersion", s.pandas_layer, f"{src} lambda_function: Layers")
    registry_fn = f"arn:aws:lambda:{region}:{account}:function:{s.registry_function}"
    for action in ("lambda:GetFunction", "lambda:CreateFunction", "lambda:UpdateFunctionCode",
                   "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion"):
        add(p, action, registry_fn, f"{src} registry: deploy_function")
    for action in ("lambda:GetPolicy", "lambda:AddPermission"):
        add(p, action, registry_fn, f"{src} registry: _s3_may_invoke (S3 may invoke it for bronze)")
    add(p, "iam:PassRole", s.registry_role, f"{src} registry: Role", **{"iam:PassedToService": "lambda.amazonaws.com"})
    for action in ("dynamodb:DescribeTable", "dynamodb:CreateTable", "dynamodb:DescribeContinuousBackups",
                   "dynamodb:UpdateContinuousBackups", "dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive"):
        add(p, action, s.registry_table_arn, f"{src} registry: _registry_table (the table_exists waiter: DescribeTable)")
    for bucket in sorted({r["bucket"] for r in provision.registry_rules(s)}):
        for action in ("s3:GetBucketNotification", "s3:PutBucketNotification"):
            add(p, action, _bucket(bucket), f"{src} registry: the bucket's notifications, merged")
    for action in ("glue:GetJob", "glue:CreateJob", "glue:UpdateJob"):
        add(p, action, job, f"{src} glue_job")
    add(p, "iam:PassRole", s.glue_role, f"{src} glue_job, crawlers: Role", **{"iam:PassedToService": "glue.amazonaws.com"})
    for action in ("athena:GetWorkGroup", "athena:CreateWorkGroup", "athena:UpdateWorkGroup"):
        add(p, action, workgroup, f"{src} workgroup")
    for action in ("athena:StartQueryExecution", "athena:GetQueryExecution"):
        add(p, action, workgroup, f"{src} catalog: run_query")
    add(p, "s3:PutObject", _obj(results_bucket, f"{results_key}0123.txt"), f"{src} catalog: DDL results")
    add(p, "s3:AbortMultipartUpload", _obj(results_bucket, f"{results_key}0123.txt"), f"{src} catalog: DDL results")
    add(p, "s3:GetBucketLocation", _bucket(results_bucket), f"{src} catalog: DDL results")
    for db in (s.silver_database, s.gold_database):
        add(p, "glue:GetDatabase", table_arns(db, "-")[:2], f"{src} catalog: get_database")
        add(p, "glue:CreateDatabase", table_arns(db, "-")[:2], f"{src} catalog: CREATE DATABASE (Athena)")
    for name in dims:
        arns = table_arns(s.silver_database, name)
        add(p, "glue:GetTable", arns, f"{src} catalog: get_table")
        add(p, "glue:CreateTable", arns, f"{src} catalog: CREATE EXTERNAL TABLE (Athena)")
    for crawler in (lay.silver_crawler, lay.gold_crawler):
        add(p, "glue:GetCrawler", f"{glue_arn}:crawler/{crawler}", f"{src} crawlers: get_crawler")
        add(p, "glue:UpdateCrawler", f"{glue_arn}:crawler/{crawler}", f"{src} crawlers: update_crawler")
    add(p, "glue:CreateCrawler", "*", f"{src} crawlers: create_crawler (no resource-level scoping)")
    for db, table in lay.gold_catalog_tables:
        ruleset = f"{glue_arn}:dataQualityRuleset/{lay.dq_ruleset(table)}"
        add(p, "glue:GetDataQualityRuleset", ruleset, f"{src} dq_rulesets: get_data_quality_ruleset")
        add(p, "glue:UpdateDataQualityRuleset", ruleset, f"{src} dq_rulesets: update_data_quality_ruleset")
        add(p, "glue:GetTable", table_arns(db, table), f"{src} dq_rulesets: get_table (is the target in the catalog?)")
    for kind in lay.ALARM_KINDS:
        alarm = f"arn:aws:cloudwatch:{region}:{account}:alarm:{lay.alarm(kind)}"
        add(p, "cloudwatch:DescribeAlarms", alarm, f"{src} alarms: describe_alarms(AlarmNames=...)")
        add(p, "cloudwatch:PutMetricAlarm", alarm, f"{src} alarms: put_metric_alarm")
    add(p, "glue:CreateDataQualityRuleset", "*", f"{src} dq_rulesets: create_data_quality_ruleset "
        "(no resource-level scoping)")
    add(p, "sns:ListTopics", "*", f"{src} notifications: list_topics (no resource-level scoping)")
    add(p, "sns:CreateTopic", s.topic_arn, f"{src} notifications: create_topic")
    return calls


#: The event hour the example calls of :func:`stream_calls` use.
EXAMPLE_HOUR = "2013-06-01T12:00:00+00:00"


def stream_calls(s: Settings, dataset: str) -> list[Call]:
    """Every AWS call of a stream dataset (kind ``stream``), as :func:`dataset_calls`:

    * ``firehose-delivery``: Firehose writes the stream's objects (PutObject, multipart uploads)
      under the dynamic-partitioning Prefix and the ErrorOutputPrefix in bronze
      (``lake.deploy.provision.delivery_stream_destination``) and checks the bucket (the AWS
      Firehose developer guide's S3 destination policy, "Grant Firehose access to an Amazon S3
      destination", without the reads Firehose does not need).
    * ``glue-stream``: ``include/glue_scripts/flight_events_gold.py``: the script, list + read of the
      hour's objects, dynamic partition overwrite of the hour in both gold tables, ``run.json``;
      the gold crawler's catalog writes for the stream's tables.
    * ``airflow-stream``: ``dags/flight_events_hourly.py``: the watermark sensor's and the late
      count's registry queries (``lake.registry``: the two GSIs), the Glue job and crawler
      through the provider's operators, Athena's reads of the stream's gold tables, the run
      records and the late objects (``lake/stream/hourly.py``).
    * ``provisioner-stream``: ``lake/deploy/provision.py`` steps ``roles`` (the Firehose role) and ``stream``.
    """
    from datetime import datetime

    lay = for_dataset(s, dataset)
    start = datetime.fromisoformat(EXAMPLE_HOUR)
    region, account = s.region, s.account_id
    glue_arn = f"arn:aws:glue:{region}:{account}"
    calls: list[Call] = []

    def add(policy: str, action: str, resources: str | list[str], source_: str, **context: str) -> None:
        for resource in [resources] if isinstance(resources, str) else resources:
            calls.append(Call(policy, action, resource, dict(context), source_))

    bronze = s.bronze_bucket
    hour_prefix = lay.stream_partition_prefix(**lay.stream_hour(start))
    obj = hour_prefix + f"{lay.delivery_stream}-1-2013-06-01-12-00-00-0123.gz"
    error_obj = lay.stream_error_prefix.split("!{", 1)[0] + "partitioning-failed/dt=2026-12-02/x-1-2026-12-02.gz"
    # --- Firehose ---------------------------------------------------------------------------------
    p, src = "firehose-delivery", "Firehose delivery to S3 (provision.delivery_stream_destination)"
    for key in (obj, error_obj):
        add(p, "s3:PutObject", _obj(bronze, key), f"{src}: an object")
        add(p, "s3:AbortMultipartUpload", _obj(bronze, key), f"{src}: a failed multipart upload")
    add(p, "s3:GetBucketLocation", _bucket(bronze), f"{src}: the bucket's region")
    add(p, "s3:ListBucketMultipartUploads", _bucket(bronze), f"{src}: its unfinished uploads")
    # --- the hourly Glue job and the crawler ----------------------------------------------------------
    p, src = "glue-stream", f"include/glue_scripts/{lay.glue_script_name}"
    add(p, "s3:GetObject", _obj(*_split(lay.glue_script_location)), "Glue: fetches ScriptLocation with the job's role")
    add(p, "s3:ListBucket", _bucket(bronze), f"{src} main: list the hour's objects", **{"s3:prefix": hour_prefix})
    add(p, "s3:GetObject", _obj(bronze, obj), f"{src} read_hour")
    part = "/".join(f"{k}={v}" for k, v in lay.stream_hour(start).items())
    for table in lay.gold_tables:
        folder = _split(lay.gold_location(table))[1].rstrip("/")
        w = f"{src} write_hour({table})"
        add(p, "s3:GetObject", _obj(s.gold_bucket, folder), f"{w}: HEAD of the table path")
        add(p, "s3:ListBucket", _bucket(s.gold_bucket), f"{w}: list the partition", **{"s3:prefix": f"{folder}/{part}/"})
        final = f"{folder}/{part}/part-00000-0123.c000.snappy.parquet"
        for action in ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
            add(p, action, _obj(s.gold_bucket, final), f"{w}: dynamic partition overwrite")
        add(p, "s3:PutObject", _obj(s.gold_bucket, f"{folder}_$folder$"), f"{w}: EMRFS directory marker")
        add(p, "s3:GetObject", _obj(s.gold_bucket, final), "the gold crawler reads the objects")
        db = s.gold_database
        add(p, "glue:GetDatabase", [f"{glue_arn}:catalog", f"{glue_arn}:database/{db}"],
            f"the gold crawler {lay.gold_crawler}: its database")
        for action in ("glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetPartitions",
                       "glue:BatchCreatePartition", "glue:BatchGetPartition", "glue:UpdatePartition"):
            add(p, action, [f"{glue_arn}:catalog", f"{glue_arn}:database/{db}", f"{glue_arn}:table/{db}/{table}"],
                f"the gold crawler {lay.gold_crawler}: catalog the table and its partitions")
    add(p, "s3:PutObject", _obj(s.artifacts_bucket, lay.stream_run_key(start)), f"{src} main: run.json")
    add(p, "s3:GetBucketLocation", [_bucket(bronze), _bucket(s.artifacts_bucket)], "Glue/EMRFS: bucket region")
    # --- the hourly DAG -------------------------------------------------------------------------------
    p, src = "airflow-stream", "dags/flight_events_hourly.py"
    for index in ("by_partition", "by_event_time"):
        add(p, "dynamodb:Query", f"{s.registry_table_arn}/index/{index}", f"{src}: lake.registry (sensor, late count)")
    for action in ("glue:GetJob", "glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns"):
        add(p, action, f"{glue_arn}:job/{lay.glue_job}", f"{src} transform: GlueJobOperator")
    for action in ("glue:GetCrawler", "glue:StartCrawler"):
        add(p, action, f"{glue_arn}:crawler/{lay.gold_crawler}", f"{src} crawl_gold: GlueCrawlerOperator")
    for table in lay.gold_tables:
        db = s.gold_database
        add(p, "glue:GetDatabase", [f"{glue_arn}:catalog", f"{glue_arn}:database/{db}"],
            f"{src} data_quality.*: Athena reads the database")
        for action in ("glue:GetTable", "glue:GetPartitions"):
            add(p, action, [f"{glue_arn}:catalog", f"{glue_arn}:database/{db}", f"{glue_arn}:table/{db}/{table}"],
                f"{src} data_quality.*: Athena reads the catalog")
        folder = _split(lay.gold_location(table))[1].rstrip("/")
        add(p, "s3:GetObject", _obj(s.gold_bucket, f"{folder}/{part}/part-00000.snappy.parquet"),
            f"{src} data_quality.*: Athena reads the hour")
        add(p, "s3:ListBucket", _bucket(s.gold_bucket), f"{src} data_quality.*: Athena lists the partition",
            **{"s3:prefix": f"{folder}/{part}/"})
    add(p, "s3:GetObject", _obj(bronze, obj), f"{src} summarize: hourly.late_events counts a late object's records")
    add(p, "s3:GetObject", _obj(s.artifacts_bucket, lay.stream_run_key(start)), f"{src}: hourly.run_record")
    add(p, "s3:ListBucket", _bucket(s.artifacts_bucket), f"{src}: a missing run.json answers 404, not 403",
        **{"s3:prefix": lay.stream_run_key(start)})
    # --- provisioning -------------------------------------------------------------------------------
    p, src = "provisioner-stream", "lake/deploy/provision.py"
    add(p, "iam:GetRole", s.firehose_role, f"{src} roles: get_role")
    add(p, "iam:PassRole", s.firehose_role, f"{src} stream: the delivery stream's RoleARN",
        **{"iam:PassedToService": "firehose.amazonaws.com"})
    stream_arn = f"arn:aws:firehose:{region}:{account}:deliverystream/{lay.delivery_stream}"
    for action in ("firehose:DescribeDeliveryStream", "firehose:CreateDeliveryStream", "firehose:UpdateDestination"):
        add(p, action, stream_arn, f"{src} stream: _delivery_stream")
    for action in ("s3:GetObject", "s3:PutObject"):
        add(p, action, _obj(*_split(lay.glue_script_location)), f"{src} stream: _put_if_changed (HEAD, put)")
    for action in ("glue:GetJob", "glue:CreateJob", "glue:UpdateJob"):
        add(p, action, f"{glue_arn}:job/{lay.glue_job}", f"{src} stream: _glue_job")
    for action in ("glue:GetCrawler", "glue:UpdateCrawler"):
        add(p, action, f"{glue_arn}:crawler/{lay.gold_crawler}", f"{src} stream: _crawlers")
    add("provisioner", "glue:CreateCrawler", "*", f"{src} stream: _crawlers create_crawler")
    add("provisioner", "iam:PassRole", s.glue_role, f"{src} stream: the job's and crawler's Role",
        **{"iam:PassedToService": "glue.amazonaws.com"})
    return calls
