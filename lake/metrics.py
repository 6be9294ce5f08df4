"""The run's CloudWatch metrics (namespace ``Lake``) and the facts they are made of.

Every daily run publishes, in its ``publish_metrics`` task (``dags/lake_daily.py``), one datum of
each metric below with the dimension ``Dataset`` (and ``Table`` for ``GoldRows``), timestamped
at the run's end; the ``wait_for_bronze`` sensor publishes ``BronzeFiles`` as soon as it has
found the day's file, timestamped at the file's arrival. Units are CloudWatch's
(``StandardUnit``: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html).

===================  =========  ================  ===============================================
metric               unit       dimensions        value
===================  =========  ================  ===============================================
RowsRead             Count      Dataset           rows the extractor read from the bronze file
RowsWritten          Count      Dataset           rows written to silver
RowsRejected         Count      Dataset           rows quarantined
RejectRate           Percent    Dataset           100 x rejected / read
GoldRows             Count      Dataset, Table    rows the Glue job wrote to each gold table's partition
DQFailedChecks       Count      Dataset           data-quality checks that returned violating rows
AthenaBytesScanned   Bytes      Dataset           ``DataScannedInBytes`` summed over the day's queries
EstimatedCostUSD     None       Dataset           :func:`lake.cost.estimate`'s ``total_usd``
RunSeconds           Seconds    Dataset           the start of the run's first task (wait_for_bronze) to publish_metrics
FreshnessSeconds     Seconds    Dataset           the bronze zip's ``LastModified`` (its arrival) to the run's end
BronzeFiles          Count      Dataset           1 per day's file found (timestamp = its arrival)
===================  =========  ================  ===============================================

A metric whose fact the run never reached (a run that failed at ``check_extract`` has no gold
rows, no DQ and no Athena bytes) is not published for that run, so an alarm sees no datum, not a
false zero. Alarms on these metrics: ``lake/deploy/provision.py``, step ``alarms``.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

NAMESPACE = "Lake"
#: metric -> CloudWatch unit.
UNITS = {
    "RowsRead": "Count", "RowsWritten": "Count", "RowsRejected": "Count", "RejectRate": "Percent",
    "GoldRows": "Count", "DQFailedChecks": "Count", "AthenaBytesScanned": "Bytes", "EstimatedCostUSD": "None",
    "RunSeconds": "Seconds", "FreshnessSeconds": "Seconds", "BronzeFiles": "Count",
}


def _datum(name: str, value: float, dims: dict[str, str], at: datetime) -> dict[str, Any]:
    return {"MetricName": name, "Value": float(value), "Unit": UNITS[name], "Timestamp": at,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}


def build(dataset: str, at: datetime, *, extract: dict[str, Any] | None = None,
          gold_rows: dict[str, int] | None = None, dq: dict[str, int] | None = None,
          athena_bytes: int | None = None, cost_usd: float | None = None, run_seconds: float | None = None,
          freshness_seconds: float | None = None) -> list[dict[str, Any]]:
    """The run's metric data (``PutMetricData``'s ``MetricData`` shape), from what the run reached.

    :param extract: the extractor's counts (``rows_read``, ``rows_written``, ``rows_rejected``).
    :param gold_rows: gold table -> rows written for the day.
    :param dq: check name -> violating rows (the checks that ran).
    :param at: the datums' timestamp (the run's end, timezone-aware).
    """
    dims = {"Dataset": dataset}
    out = []
    if extract is not None:
        read, written, rejected = (int(extract[k]) for k in ("rows_read", "rows_written", "rows_rejected"))
        out += [_datum("RowsRead", read, dims, at), _datum("RowsWritten", written, dims, at),
                _datum("RowsRejected", rejected, dims, at)]
        if read:
            out.append(_datum("RejectRate", 100 * rejected / read, dims, at))
    for table, rows in sorted((gold_rows or {}).items()):
        out.append(_datum("GoldRows", rows, {**dims, "Table": table}, at))
    if dq:
        out.append(_datum("DQFailedChecks", sum(1 for n in dq.values() if n), dims, at))
    for name, value in (("AthenaBytesScanned", athena_bytes), ("EstimatedCostUSD", cost_usd),
                        ("RunSeconds", run_seconds), ("FreshnessSeconds", freshness_seconds)):
        if value is not None:
            out.append(_datum(name, value, dims, at))
    return out


def bronze_file(dataset: str, arrived: datetime) -> list[dict[str, Any]]:
    """The ``BronzeFiles`` datum of a day's file that arrived at ``arrived`` (its LastModified)."""
    return [_datum("BronzeFiles", 1, {"Dataset": dataset}, arrived)]


def put(cloudwatch: Any, data: list[dict[str, Any]]) -> int:
    """``PutMetricData`` the datums in namespace :data:`NAMESPACE`, in calls of at most 1000
    (the API's limit); returns how many were published."""
    for i in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[i:i + 1000])
    for d in data:
        dims = ",".join(f"{x['Name']}={x['Value']}" for x in d["Dimensions"])
        log.info("metric %s/%s {%s} = %s %s", NAMESPACE, d["MetricName"], dims, d["Value"], d["Unit"])
    return len(data)


# -- facts read from AWS -------------------------------------------------------------------------

def gold_rows_from_log(messages: list[str], ds: str, partition_name: str) -> dict[str, int]:
    """Gold rows per table from the Glue job's log lines ``<job> <ds>: wrote <n> rows to
    <gold root>/<table>/<partition>=<ds>/`` (the form both Glue scripts log per table written;
    the last line of a table wins)."""
    pattern = re.compile(rf"{re.escape(ds)}: wrote (\d+) rows to \S*?/([^/\s]+)/{re.escape(partition_name)}="
                         rf"{re.escape(ds)}/")
    out: dict[str, int] = {}
    for message in messages:
        for rows, table in pattern.findall(message):
            out[table] = int(rows)
    return out


def glue_log_messages(logs: Any, job_run: dict[str, Any], run_id: str) -> list[str]:
    """The messages of a Glue job run's ``output`` and ``error`` log groups that contain ``wrote``:
    the groups and stream (the run id) the amazon provider's GlueJobHook reads for ``verbose``
    (``<LogGroupName>/output`` and ``/error``: its suffix constants, in every provider version we run)."""
    from airflow.providers.amazon.aws.hooks.glue import DEFAULT_LOG_SUFFIX, ERROR_LOG_SUFFIX

    out = []
    for group in (f"{job_run['LogGroupName']}/{DEFAULT_LOG_SUFFIX}", f"{job_run['LogGroupName']}/{ERROR_LOG_SUFFIX}"):
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamNames": [run_id], "filterPattern": '"wrote"'}
        while True:
            try:
                page = logs.filter_log_events(**kwargs)
            except logs.exceptions.ResourceNotFoundException:
                break
            out += [e["message"] for e in page.get("events", [])]
            if not page.get("nextToken") or not page.get("events"):
                break
            kwargs["nextToken"] = page["nextToken"]
    return out


def athena_scanned(query_infos: list[dict[str, Any]]) -> list[int]:
    """``DataScannedInBytes`` of each billable query (``GetQueryExecution``'s ``QueryExecution``):
    SUCCEEDED or CANCELLED (Athena bills the bytes a cancelled query scanned, not a failed one)."""
    return [int(q.get("Statistics", {}).get("DataScannedInBytes", 0)) for q in query_infos
            if q.get("Status", {}).get("State") in ("SUCCEEDED", "CANCELLED")]
