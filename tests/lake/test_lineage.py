"""lake.lineage: the OpenLineage names and the Airflow options built from the LAKE_LINEAGE_* settings
(the events themselves: tests/e2e/lineage_checks.py, run by tests/e2e/test_flights_lake_daily.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lake import lineage
from lake.settings import Settings


def test_the_default_is_a_file_under_the_airflow_home(tmp_path):
    env = lineage.airflow_config(Settings(), tmp_path)
    assert json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"]) == {
        "type": "file", "log_file_path": str(tmp_path / "openlineage" / "events.jsonl"), "append": True}
    assert (tmp_path / "openlineage").is_dir()
    assert env["AIRFLOW__OPENLINEAGE__NAMESPACE"] == "lake"
    assert env["AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD"] == "True"
    # Each extractor path names a class of lake/lineage/extractors.py.
    source = (Path(lineage.__file__).parent / "extractors.py").read_text()
    for path in env["AIRFLOW__OPENLINEAGE__EXTRACTORS"].split(";"):
        module, _, name = path.rpartition(".")
        assert module == "lake.lineage.extractors" and f"\nclass {name}(" in source, path


def test_a_url_means_http_and_the_other_transports(tmp_path):
    marquez = Settings(lineage_url="http://localhost:5000")
    assert lineage.transport(marquez) == {"type": "http", "url": "http://localhost:5000", "endpoint": "api/v1/lineage"}
    assert lineage.transport(Settings(lineage_transport="console")) == {"type": "console"}
    assert lineage.airflow_config(Settings(lineage_transport="off")) == {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    own = tmp_path / "lineage.jsonl"
    assert lineage.transport(Settings(lineage_file=str(own)))["log_file_path"] == str(own)
    with pytest.raises(ValueError, match="LAKE_LINEAGE_URL"):
        lineage.transport(Settings(lineage_transport="http"))


def test_names_follow_the_openlineage_spec():
    s = Settings(region="eu-west-1", account_id="111122223333")
    assert lineage.s3_dataset("s3://lake-silver/flights/dt=2013-01-05/") == ("s3://lake-silver", "flights/dt=2013-01-05")
    assert lineage.glue_table(s, "lake_gold", "flights") == ("arn:aws:glue:eu-west-1:111122223333",
                                                            "table/lake_gold/flights")
    assert lineage.athena_table(s, "lake_gold", "flights") == ("awsathena://athena.eu-west-1.amazonaws.com",
                                                              "AwsDataCatalog.lake_gold.flights")
    with pytest.raises(ValueError, match="not an s3://"):
        lineage.s3_dataset("glue://lake_gold/flights")


def test_read_events_names_a_bad_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"eventType": "START"}\n\n{"eventType": "COMPLETE"\n')
    with pytest.raises(ValueError, match=r"events\.jsonl:3: not a JSON"):
        lineage.read_events(path)
    path.write_text('{"eventType": "START"}\n{"eventType": "COMPLETE"}\n')
    assert [e["eventType"] for e in lineage.read_events(path)] == ["START", "COMPLETE"]
