"""The daily DAG's own task logic: extractor checks, data-quality verdicts, the run summary.

Everything else in the daily DAGs (``dags/lake_daily.py``) is a provider operator; these functions are
what no operator does. They take plain values (the extractor's JSON, Athena result rows) so
they are tested without Airflow, and they log what happened to the day's data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Iterable

from lake.contracts import Contract

log = logging.getLogger(__name__)


class ExtractCheckError(ValueError):
    """The extractor's counts are inconsistent or reject too many rows; the message names the
    day, the counts and the limit."""


class DataQualityError(AssertionError):
    """One or more data-quality checks found violations; the message names each check and its
    number of violating rows, plus the first rows."""


@contextmanager
def verdict_is_final() -> Iterator[None]:
    """Fail the Airflow task without retrying when the day's data is at fault.

    An :class:`ExtractCheckError` or :class:`DataQualityError` raised inside becomes Airflow's
    ``AirflowFailException`` (same message): a retry would read the same data and reach the same
    verdict, so the run fails at once with one alert. Any other error (an AWS call that timed out,
    localaws restarting, the API server not answering) passes through unchanged and is left to the
    task's retries.

    :raises airflow.sdk.exceptions.AirflowFailException: for a verdict on the data.
    """
    try:
        yield
    except (ExtractCheckError, DataQualityError) as exc:
        from lake.compat import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


def parse_extract(payload: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """The extractor's result as a dict, from the JSON string LambdaInvokeFunctionOperator returns.

    :raises ExtractCheckError: when the payload is not a JSON object.
    """
    if isinstance(payload, dict):
        return payload
    try:
        result = json.loads(payload)
    except (TypeError, ValueError) as exc:
        raise ExtractCheckError(f"extractor returned no JSON object: {str(payload)[:300]!r}") from exc
    if not isinstance(result, dict):
        raise ExtractCheckError(f"extractor returned {type(result).__name__}, not an object: {str(payload)[:300]!r}")
    return result


def check_extract(payload: str | bytes | dict[str, Any], max_reject_rate: float) -> dict[str, Any]:
    """Check one day's extractor result and return its counts.

    Rules: rows_read = rows_written + rows_rejected (the invariant of docs/architecture.md), rows_read > 0,
    and rows_rejected / rows_read <= ``max_reject_rate`` (``LAKE_MAX_REJECT_RATE``).

    :param payload: the extractor's result (JSON text or dict; shape in the handler's docstring).
    :param max_reject_rate: the largest accepted share of rejected rows, 0..1.
    :returns: ``{"ds", "rows_read", "rows_written", "rows_rejected", "reject_rate",
        "rejected_by_reason", "silver_path", "quarantine_path", "bytes_in", "bytes_out", "seconds"}``
        (``seconds``: the handler's own run time, None when the extractor did not say).
    :raises ExtractCheckError: when a rule does not hold.
    """
    r = parse_extract(payload)
    missing = [k for k in ("ds", "rows_read", "rows_written", "rows_rejected") if k not in r]
    if missing:
        raise ExtractCheckError(f"extractor result lacks {missing}: {json.dumps(r)[:300]}")
    read, written, rejected = int(r["rows_read"]), int(r["rows_written"]), int(r["rows_rejected"])
    ds = r["ds"]
    if read != written + rejected:
        raise ExtractCheckError(f"{ds}: rows_read {read} != rows_written {written} + rows_rejected {rejected}")
    if read == 0:
        raise ExtractCheckError(f"{ds}: the extractor read 0 rows from {r.get('source')}")
    rate = rejected / read
    log.info("%s: extractor read %d rows from %s, wrote %d to %s, rejected %d (%.2f%%) to %s %s",
             ds, read, r.get("source"), written, r.get("silver_path"), rejected, 100 * rate,
             r.get("quarantine_path"), r.get("rejected_by_reason") or {})
    if rate > max_reject_rate:
        raise ExtractCheckError(f"{ds}: {rejected} of {read} rows rejected ({rate:.2%}) > the limit "
                                f"{max_reject_rate:.2%} (LAKE_MAX_REJECT_RATE); reasons "
                                f"{r.get('rejected_by_reason')}; rejected rows kept in {r.get('quarantine_path')}")
    return {"ds": ds, "rows_read": read, "rows_written": written, "rows_rejected": rejected,
            "reject_rate": rate, "rejected_by_reason": dict(r.get("rejected_by_reason") or {}),
            "silver_path": r.get("silver_path"), "quarantine_path": r.get("quarantine_path"),
            "bytes_in": r.get("bytes_in"), "bytes_out": r.get("bytes_out"), "seconds": r.get("seconds")}


def result_rows(response_pages: Iterable[dict[str, Any]]) -> list[dict[str, str | None]]:
    """Rows of an Athena ``GetQueryResults`` (all pages) as dicts of column -> text (None = null).

    The first row of the first page is the header (Athena's rule for SELECT results).
    """
    columns: list[str] | None = None
    rows: list[dict[str, str | None]] = []
    first = True
    for page in response_pages:
        if columns is None:
            columns = [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
        for raw in page["ResultSet"]["Rows"]:
            values = [d.get("VarCharValue") for d in raw["Data"]]
            if first:
                first = False
                if values == columns:
                    continue
            rows.append(dict(zip(columns, values, strict=False)))
    return rows


def evaluate_dq(results: dict[str, list[dict[str, Any]]], ds: str) -> dict[str, int]:
    """The verdict of the day's data-quality checks: each check's query returns its violating
    rows (no rows = pass; see include/sql/dq).

    :param results: check name -> the rows its query returned.
    :returns: check name -> violating rows (all 0 when every check passed).
    :raises DataQualityError: naming every failing check, its row count and its first rows.
    """
    counts = {name: len(rows) for name, rows in sorted(results.items())}
    failed = {name: rows for name, rows in sorted(results.items()) if rows}
    for name, n in counts.items():
        log.info("%s: data-quality check %s: %s", ds, name, "pass" if n == 0 else f"FAIL ({n} rows)")
    if failed:
        detail = "; ".join(f"{name}: {len(rows)} violating rows, first {rows[:3]}" for name, rows in failed.items())
        raise DataQualityError(f"{ds}: {len(failed)} of {len(counts)} data-quality checks failed: {detail}")
    return counts


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _key(row: dict[str, Any], columns: list[str] | str) -> str:
    cols = [columns] if isinstance(columns, str) else list(columns)
    return "-".join(str(row[c]) for c in cols)


def headline_for(contract: Contract, reports: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The run summary's headline numbers from the day's report rows, as the contract's
    ``gold.headline`` says (no headline: ``{}``). Each part is optional:

    * ``totals``: ``{"report", "sum": [column, ...]}``: each column summed over the report's rows
      (an integer when every value is whole, e.g. counts; else a float, e.g. sales' revenue);
    * ``ratio``: ``{"name", "of", "per"}``: ``name`` = total ``of`` / total ``per`` (None when 0);
    * ``rank``: ``{"report", "by", "key": [columns], "best", "worst"}``: the keys of the rows with
      the highest and lowest ``by`` (ties broken by the key);
    * ``top``: ``{"report", "key": [columns], "name", "value", "value_name"}``: the first row's key
      (columns joined by ``-``) and its ``value`` (a number).

    For flights: ``{"flights", "on_time", "on_time_rate" (0..1), "best_carrier", "worst_carrier",
    "worst_route" ("ORIGIN-DEST"), "worst_route_avg_arr_delay" (minutes)}``. For sales:
    ``{"orders", "lines", "revenue", "cost", "profit" (the data's currency), "profit_margin"
    (profit / revenue), "best_region", "worst_region" (by margin), "top_supplier_nation",
    "top_supplier_nation_profit"}``.

    :param reports: report name (the SQL file's stem) -> the rows its query returned.
    """
    spec = contract.gold.get("headline") or {}
    out: dict[str, Any] = {}
    if "totals" in spec:
        rows = reports.get(spec["totals"]["report"], [])
        for col in spec["totals"]["sum"]:
            values = [_num(r[col]) or 0.0 for r in rows]
            total = sum(values)
            out[col] = int(total) if all(v.is_integer() for v in values) else total
    if "ratio" in spec:
        r = spec["ratio"]
        per = out.get(r["per"])
        out[r["name"]] = out.get(r["of"], 0) / per if per else None
    if "rank" in spec:
        r = spec["rank"]
        ranked = sorted(reports.get(r["report"], []), key=lambda row: (_num(row[r["by"]]) or 0.0, _key(row, r["key"])))
        out[r["best"]] = _key(ranked[-1], r["key"]) if ranked else None
        out[r["worst"]] = _key(ranked[0], r["key"]) if ranked else None
    if "top" in spec:
        t = spec["top"]
        rows = reports.get(t["report"], [])
        first = rows[0] if rows else None
        out[t["name"]] = _key(first, t["key"]) if first else None
        out[t["value_name"]] = _num(first.get(t["value"])) if first else None
    return out


def summary(ds: str, extract: dict[str, Any], dq: dict[str, int], head: dict[str, Any],
            glue_run_id: str | None = None, *, contract: Contract,
            run_cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run summary published to SNS: ``{"subject" (<= 100 characters, SNS's limit), "message"}``.

    The message is JSON (machine-readable for subscribers) with ``ds``, ``dataset`` (the
    contract's name: every daily DAG publishes to the one topic), the extractor's counts,
    the DQ verdicts, the headline numbers (:func:`headline_for`), ``gold_rows`` (the headline
    field the contract's ``gold.headline.gold_rows`` names), the Glue job run id and, given
    ``run_cost`` (:func:`lake.cost.estimate`), ``cost`` (that dict) and ``cost_line``
    (:func:`lake.cost.line`). The subject ends with the headline's ``subject`` field as a
    percentage, e.g. ``on time 61.2%``. The returned dict also holds ``cost`` (the dict or None).
    """
    from lake import cost as lake_cost

    spec = contract.gold.get("headline") or {}
    shown = spec.get("subject") or {}
    rate = head.get(shown["field"]) if shown else None
    subject = (f"lake {ds}: {extract['rows_written']:,} rows, {extract['rows_rejected']:,} rejected, "
               f"DQ {'pass' if not any(dq.values()) else 'FAIL'}"
               + (f", {shown.get('label', shown.get('field'))} {rate:.1%}" if rate is not None else ""))[:100]
    message = {"ds": ds, "dataset": contract.name, "status": "success", **{k: extract[k] for k in (
        "rows_read", "rows_written", "rows_rejected", "rejected_by_reason", "silver_path", "quarantine_path")},
               "gold_rows": head.get(spec["gold_rows"]) if spec.get("gold_rows") else None, "data_quality": dq,
               "report": head, "glue_job_run_id": glue_run_id}
    if run_cost is not None:
        message["cost"] = run_cost
        message["cost_line"] = lake_cost.line(run_cost)
    return {"subject": subject, "message": json.dumps(message, sort_keys=True), "cost": run_cost}


def task_defaults(s: Any, subject: str, message: str) -> dict[str, Any]:
    """The ``default_args`` of the lake's DAGs: ``s.retries`` retries from ``s.retry_delay`` seconds,
    doubling up to 15 minutes (``retry_exponential_backoff``), a 30-minute execution timeout, and an
    SNS alert to ``s.topic_arn`` on each failure and each retry.

    :param s: the lake's :class:`lake.settings.Settings`.
    :param subject: the alerts' subject, a Jinja template with one ``%s``: ``FAILED`` or ``will retry``.
    :param message: the alerts' message, a Jinja template with one ``%s``: ``failed`` or ``will retry``.
    """
    from datetime import timedelta

    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    def alert(subject_word: str, message_words: str) -> SnsNotifier:
        return SnsNotifier(target_arn=s.topic_arn, region_name=s.region, subject=subject % subject_word,
                           message=message % message_words)

    return {
        "owner": "data-engineering",
        "retries": s.retries,
        "retry_delay": timedelta(seconds=s.retry_delay),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": [alert("FAILED", "failed")],
        "on_retry_callback": [alert("will retry", "will retry")],
    }
