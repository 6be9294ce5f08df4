"""lake.pipeline: the daily DAG's own checks, on the extractor's real output for a real day."""

from __future__ import annotations

import json

import pytest

from lake import contracts, pipeline
from tests.helpers import BLIZZARD, src_count
from tests.lake.helpers import extractor_event, replay_day


@pytest.fixture
def blizzard_payload(buckets, aws_client, handler_mod) -> str:
    """The extractor's JSON result for 2013-02-08, as LambdaInvokeFunctionOperator returns it."""
    replay_day(aws_client("s3"), buckets["bronze"], BLIZZARD)
    return json.dumps(handler_mod.handler(extractor_event(buckets, BLIZZARD)))


def test_check_extract_passes_a_real_day(blizzard_payload, duck):
    counts = pipeline.check_extract(blizzard_payload, max_reject_rate=0.05)
    rows = src_count(duck, f"dt = '{BLIZZARD}'")
    assert (counts["rows_read"], counts["rows_written"], counts["rows_rejected"]) == (rows, rows, 0)
    assert counts["reject_rate"] == 0 and counts["silver_path"].endswith(f"dt={BLIZZARD}/")


def test_check_extract_fails_on_broken_invariant_and_reject_rate(blizzard_payload):
    result = json.loads(blizzard_payload)
    broken = {**result, "rows_written": result["rows_written"] - 1}
    with pytest.raises(pipeline.ExtractCheckError, match=r"rows_read \d+ != rows_written"):
        pipeline.check_extract(broken, 0.05)
    rejected = {**result, "rows_written": result["rows_read"] - 100, "rows_rejected": 100,
                "rejected_by_reason": {"missing_required:carrier": 100}}
    with pytest.raises(pipeline.ExtractCheckError, match=r"100 of \d+ rows rejected .* > the limit 5.00%.*carrier"):
        pipeline.check_extract(rejected, 0.05)
    assert pipeline.check_extract(rejected, 0.2)["rows_rejected"] == 100
    with pytest.raises(pipeline.ExtractCheckError, match="no JSON object"):
        pipeline.check_extract("Task timed out", 0.05)


def test_evaluate_dq_names_every_failing_check():
    assert pipeline.evaluate_dq({"unique_key": [], "not_null": []}, "2013-02-08") == {"not_null": 0, "unique_key": 0}
    with pytest.raises(pipeline.DataQualityError) as err:
        pipeline.evaluate_dq({"unique_key": [{"carrier": "UA", "n": "2"}], "not_null": [],
                              "known_dimensions": [{"column": "carrier", "value": "ZZ"}] * 3}, "2013-02-08")
    text = str(err.value)
    assert "2 of 3 data-quality checks failed" in text
    assert "unique_key: 1 violating rows" in text and "known_dimensions: 3 violating rows" in text


def test_a_verdict_on_the_data_is_final_but_aws_errors_are_retried(blizzard_payload):
    """The DAG's check_extract and evaluate run inside verdict_is_final(): a failed check fails the
    task without retries (the same data fails again), an AWS error keeps the task's retries."""
    from airflow.sdk.exceptions import AirflowFailException
    from botocore.exceptions import EndpointConnectionError

    broken = {**json.loads(blizzard_payload), "rows_rejected": 7}
    with pytest.raises(AirflowFailException, match=r"rows_read \d+ != rows_written") as err:
        with pipeline.verdict_is_final():
            pipeline.check_extract(broken, 0.05)
    assert isinstance(err.value.__cause__, pipeline.ExtractCheckError)
    with pytest.raises(AirflowFailException, match="1 of 1 data-quality checks failed"):
        with pipeline.verdict_is_final():
            pipeline.evaluate_dq({"unique_key": [{"n": "2"}]}, "2013-02-08")
    with pytest.raises(EndpointConnectionError):  # localaws down: not final, Airflow retries the task
        with pipeline.verdict_is_final():
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    with pipeline.verdict_is_final():
        assert pipeline.check_extract(blizzard_payload, 0.05)["rows_rejected"] == 0


def test_result_rows_skips_the_header_and_keeps_nulls():
    page = {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": [{"Name": "carrier"}, {"Name": "n"}]},
                          "Rows": [{"Data": [{"VarCharValue": "carrier"}, {"VarCharValue": "n"}]},
                                   {"Data": [{"VarCharValue": "UA"}, {}]}]}}
    assert pipeline.result_rows([page]) == [{"carrier": "UA", "n": None}]


def test_headline_and_summary(duck):
    ds = BLIZZARD
    by_carrier = duck.execute(f"""SELECT carrier, count(*), count(*) FILTER (WHERE arr_delay < 15),
                                  count(*) FILTER (WHERE arr_delay < 15) / count(*)
                                  FROM src_flights WHERE dt = '{ds}' GROUP BY carrier""").fetchall()
    rows = [{"carrier": c, "flights": str(f), "on_time": str(o), "on_time_rate": str(r)} for c, f, o, r in by_carrier]
    flights = contracts.load("flights")
    head = pipeline.headline_for(flights, {"on_time_by_carrier": rows,
                                           "worst_routes": [{"origin": "EWR", "dest": "ORD", "avg_arr_delay": "95.5"}]})
    total, on_time = duck.execute(f"SELECT count(*), count(*) FILTER (WHERE arr_delay < 15) FROM src_flights "
                                  f"WHERE dt = '{ds}'").fetchone()
    assert (head["flights"], head["on_time"]) == (total, on_time)
    assert head["on_time_rate"] == pytest.approx(on_time / total)
    assert head["best_carrier"] == max(by_carrier, key=lambda r: (r[3], r[0]))[0]
    assert head["worst_route"] == "EWR-ORD" and head["worst_route_avg_arr_delay"] == 95.5
    extract = {"rows_read": total, "rows_written": total, "rows_rejected": 0, "rejected_by_reason": {},
               "silver_path": "s3://s/flights/dt=2013-02-08/", "quarantine_path": "s3://s/q/"}
    out = pipeline.summary(ds, extract, {"unique_key": 0}, head, "jr_1", contract=flights)
    assert len(out["subject"]) <= 100 and out["subject"].startswith(f"lake {ds}: {total:,} rows")
    assert json.loads(out["message"])["gold_rows"] == total
