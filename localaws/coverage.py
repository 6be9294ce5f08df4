"""Which AWS API operations localaws answers, per service: the table in docs/localaws-coverage.md.

For every operation of a service's API (botocore's service model, the same JSON the AWS SDKs
are generated from), one of:

* ``runs``: localaws executes it for real, beyond storing state (:data:`EXECUTED`: Lambda code,
  Glue Spark and Python shell jobs, crawls, Athena SQL on DuckDB, ...);
* ``localaws``: answered by localaws's own handler (a patch of moto's, see localaws/services/);
* ``moto``: answered by moto's handler (state kept, nothing executed);
* ``501``: not emulated: the call fails at once with HTTP 501 ``NotImplemented`` in the service's
  protocol (localaws/server.py ``NOT_IMPLEMENTED``), which botocore does not retry;
* ``unknown`` (REST services only): no handler of that name, and localaws does not refuse it.

For the JSON, query and CBOR protocols the rule is exact: moto dispatches a call to the method of
its response class named after the operation (``BaseResponse.call_action``, snake_case by moto's
``camelcase_to_underscores``), and a missing method raises the NotImplementedError that localaws
turns into the 501. For the REST services (S3, Lambda) moto routes by URL and query string, so an
operation counts as handled when its response class or its backend has such a method (the rule of
moto's own IMPLEMENTATION_COVERAGE.md), and the rest are listed as ``unknown``, not ``501``: moto
may answer them as another operation. The S3 operations whose sub-resource moto never reads are
refused with a 501 (localaws/services/s3subresources.py) and listed so.

Run ``localaws coverage`` to print the table, ``localaws coverage --output docs/localaws-coverage.md``
to rewrite the doc (tests/localaws/test_coverage.py checks the doc is current).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field

#: The services the lake uses, with their moto module.
SERVICES = {"s3": "s3", "glue": "glue", "athena": "athena", "lambda": "awslambda", "sns": "sns", "logs": "logs",
            "iam": "iam", "sts": "sts", "cloudwatch": "cloudwatch", "firehose": "firehose",
            "dynamodb": "dynamodb", "cloudtrail": "cloudtrail"}

#: Operations localaws executes for real, with what it does (docs/localaws.md has the details).
EXECUTED = {
    "lambda": {"Invoke": "runs the handler in a warm or cold execution environment (subprocess)"},
    "glue": {
        "StartJobRun": "runs the script under local PySpark (glueetl) or Python (pythonshell)",
        "BatchStopJobRun": "kills the run's processes",
        "StartCrawler": "crawls S3: infers schemas and partitions into the catalog",
        "StopCrawler": "stops the crawl (STOPPING, then READY)",
        "StartDataQualityRulesetEvaluationRun": "evaluates the DQDL rulesets on DuckDB over the table's data",
        "StartDataQualityRuleRecommendationRun": "profiles the table on DuckDB into a DQDL ruleset (localaws's "
                                                 "heuristics)",
    },
    "athena": {
        "StartQueryExecution": "runs the SQL (Trino dialect via sqlglot) on DuckDB over the catalog",
        "StopQueryExecution": "interrupts the running query",
        "GetQueryResults": "pages the result rows with Athena's types",
    },
    "s3": {"PutObject": "If-None-Match / If-Match conditional writes are atomic",
           "PutBucketNotificationConfiguration": "events delivered to SQS, SNS and Lambda (handlers run, retried)"},
    "sns": {"Publish": "records messages (GET /_localaws/sns/messages)"},
    "cloudwatch": {
        "PutMetricAlarm": "the alarm is evaluated every LOCALAWS_ALARM_EVALUATION_SECONDS; SNS actions publish",
        "SetAlarmState": "records history and runs the alarm's actions",
    },
    "firehose": {
        "PutRecord": "buffers the record and delivers S3 objects by BufferingHints (size, interval, at stop)",
        "PutRecordBatch": "buffers, partitions (jq) and delivers S3 objects; per-record FailedPutCount",
    },
}


@dataclass
class ServiceCoverage:
    """One service's operations by status (each list sorted): ``runs``, ``localaws``, ``moto``,
    ``missing`` (answered 501), ``unknown`` (REST services: no handler found, not refused)."""

    service: str
    protocol: str
    exact: bool = True
    runs: list[str] = field(default_factory=list)
    localaws: list[str] = field(default_factory=list)
    moto: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.runs) + len(self.localaws) + len(self.moto) + len(self.missing) + len(self.unknown)

    def status(self, operation: str) -> str:
        """``runs``, ``localaws``, ``moto`` or ``501``; :raises KeyError: not an operation of the API."""
        for name in ("runs", "localaws", "moto", "missing", "unknown"):
            if operation in getattr(self, name):
                return "501" if name == "missing" else name
        raise KeyError(f"{self.service} has no operation {operation}")


def _region(module: str) -> str:
    return "aws" if module in ("s3",) else "us-east-1"


def compute(services: dict[str, str] | None = None) -> list[ServiceCoverage]:
    """The coverage of ``services`` (boto3 name -> moto module; default :data:`SERVICES`), with
    localaws's patches installed."""
    import botocore.session
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.responses import BaseResponse
    from moto.core.utils import camelcase_to_underscores

    from localaws.server import install_patches
    from localaws.services import s3subresources

    install_patches()
    session = botocore.session.get_session()
    out = []
    for service, module in (services or SERVICES).items():
        responses = importlib.import_module(f"moto.{module}.responses")
        classes = [c for _, c in inspect.getmembers(responses, inspect.isclass)
                   if issubclass(c, BaseResponse) and c is not BaseResponse and c.__module__ == responses.__name__]
        model = session.get_service_model(service)
        protocol = model.metadata["protocol"]
        cov = ServiceCoverage(service, protocol, exact=not protocol.startswith("rest-"))
        backend = type(get_backend(module)[DEFAULT_ACCOUNT_ID][_region(module)]) if not cov.exact else None
        for operation in sorted(model.operation_names):
            name = camelcase_to_underscores(operation)
            handlers = [getattr(c, name) for c in classes if hasattr(c, name)]
            if backend is not None and hasattr(backend, name):
                handlers.append(getattr(backend, name))
            if operation in EXECUTED.get(service, {}):
                cov.runs.append(operation)
            elif service == "s3" and operation in s3subresources.refused_operations():
                cov.missing.append(operation)
            elif not handlers:
                (cov.missing if cov.exact else cov.unknown).append(operation)
            elif any(getattr(h, "__module__", "").startswith("localaws") for h in handlers):
                cov.localaws.append(operation)
            else:
                cov.moto.append(operation)
        out.append(cov)
    return out


def render_markdown(coverage: list[ServiceCoverage]) -> str:
    """docs/localaws-coverage.md: a summary table, then each service's operations by status."""
    import botocore
    import moto

    lines = [
        "# localaws: AWS API coverage",
        "",
        "Generated by `localaws coverage --output docs/localaws-coverage.md` (localaws/coverage.py, which",
        "explains the rule) from botocore's service models; do not edit by hand.",
        f"botocore {botocore.__version__}, moto {moto.__version__}.",
        "",
        "- **runs**: localaws executes it for real (code, Spark, crawls, SQL), beyond storing state;",
        "- **localaws**: answered by localaws's own handler; **moto**: answered by moto (state kept);",
        "- **501**: not emulated: HTTP 501 `NotImplemented` at once, in the service's protocol, never retried.",
        "",
        "- **unknown** (REST services only): moto has no handler of that name; it may answer the call as",
        "  another operation, so do not rely on it (see localaws/coverage.py).",
        "",
        "| service | protocol | operations | runs | localaws | moto | 501 | unknown |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in coverage:
        lines.append(f"| {c.service} | {c.protocol} | {c.total} | {len(c.runs)} | {len(c.localaws)} | "
                     f"{len(c.moto)} | {len(c.missing)} | {len(c.unknown) if not c.exact else '-'} |")
    for c in coverage:
        lines += ["", f"## {c.service}", ""]
        for op in c.runs:
            lines.append(f"- **{op}** (runs): {EXECUTED[c.service][op]}")
        if c.localaws:
            lines.append(f"- localaws: {', '.join(c.localaws)}")
        if c.moto:
            lines.append(f"- moto: {', '.join(c.moto)}")
        if c.missing:
            lines.append(f"- 501: {', '.join(c.missing)}")
        if c.unknown:
            lines.append(f"- unknown: {', '.join(c.unknown)}")
    return "\n".join(lines) + "\n"
