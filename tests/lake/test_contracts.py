"""Dataset contracts: they load, agree with the real source files, and bad ones are refused."""

from __future__ import annotations

import json
import zipfile

import pytest

from lake import contracts
from tests.helpers import PKG_DATA, REQUIRED


def test_contracts_load_and_cross_reference():
    all_ = contracts.load_all()
    assert set(all_) == {"flights", "airlines", "airports", "planes", "lineitem", "flight_events",
                         "sales", "customer", "supplier", "nation", "region", "part", "partsupp"}
    flights = all_["flights"]
    assert flights.kind == "fact" and flights.partition_name == "dt"
    assert flights.required_columns == REQUIRED
    # Cancelled flights carry nulls in these; they must stay optional so gold can count them.
    for col in ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "tailnum"):
        assert not flights.column(col).required
    assert {d.dataset for d in flights.dimensions} == {"airlines", "airports", "planes"}
    assert flights.source_key("2013-01-05") == "flights/ingest_date=2013-01-05/flights_20130105.csv.zip"
    assert flights.manifest_key("2013-01-05") == "flights/ingest_date=2013-01-05/flights_20130105.manifest.json"
    assert flights.member_name("2013-01-05") == "flights_20130105.csv"
    assert flights.partition_prefix("2013-01-05", "/silver/") == "silver/flights/dt=2013-01-05/"
    # TPC-H lineitem (bench/extractor.py): a fact without dimensions; every column is NOT NULL, and a
    # day's file is a full dump, so rows are not checked against the day.
    lineitem = all_["lineitem"]
    assert lineitem.kind == "fact" and lineitem.partition_name == "dt" and not lineitem.dimensions
    assert lineitem.required_columns == lineitem.column_names and not lineitem.source.day_columns
    assert lineitem.source_key("2024-01-02") == "lineitem/ingest_date=2024-01-02/lineitem_20240102.csv.zip"
    assert lineitem.member_name("2024-01-02") == "lineitem_20240102.csv"


def test_contract_columns_match_the_real_headers():
    with zipfile.ZipFile(PKG_DATA / "flights.csv.zip") as zf:
        header = zf.open("flights.csv").readline().decode().strip().split(",")
    assert contracts.load("flights").column_names == header
    for name in ("airlines", "airports", "planes"):
        header = (PKG_DATA / f"{name}.csv").read_text().splitlines()[0].split(",")
        assert contracts.load(name).column_names == header


@pytest.mark.parametrize(
    "patch, message",
    [
        (lambda d: d["columns"][0].update(type="integer"), "has type 'integer'"),
        (lambda d: d["columns"].append(dict(d["columns"][0])), "duplicate column"),
        (lambda d: d["source"].update(file_name="flights_{day}.csv.zip"), "uses {day}"),
        (lambda d: d["unique_key"].append("nope"), "unique_key column 'nope'"),
        (lambda d: d["columns"][1].update(min=13, max=1), "min 13 > max 1"),
        (lambda d: d["source"].update(day_columns={"year": "yr"}), "source.day_columns"),
        (lambda d: d.pop("partition_key"), "needs a partition_key"),
        (lambda d: d["dimensions"][0]["on"].update(carrier_code="carrier"), "unknown column 'carrier_code'"),
    ],
)
def test_bad_contracts_are_refused(tmp_path, patch, message):
    doc = json.loads((contracts.default_directory() / "flights.json").read_text())
    patch(doc)
    (tmp_path / "flights.json").write_text(json.dumps(doc))
    with pytest.raises(contracts.ContractError, match=message.replace("{", r"\{").replace("(", r"\(")):
        contracts.load("flights", tmp_path)


def test_dimension_reference_to_unknown_column_is_refused(tmp_path):
    src = contracts.default_directory()
    for name in ("flights", "airlines", "airports", "planes"):
        (tmp_path / f"{name}.json").write_text((src / f"{name}.json").read_text())
    doc = json.loads((tmp_path / "flights.json").read_text())
    doc["dimensions"][0]["on"] = {"carrier": "code"}
    (tmp_path / "flights.json").write_text(json.dumps(doc))
    with pytest.raises(contracts.ContractError, match="airlines has no column 'code'"):
        contracts.load_all(tmp_path)
    with pytest.raises(contracts.ContractError, match="no file"):
        contracts.load("weather", tmp_path)


def test_the_stream_contract_and_its_rules(tmp_path, source_csv):
    """flight_events (kind stream): its columns are the generator's record (lake.stream.events), and a
    stream's event_id / event_time / partition_keys are checked."""
    from lake.stream import events

    stream = contracts.load("flight_events")
    assert stream.kind == "stream" and stream.stream["event_time"] == "event_time"
    assert stream.column("event_time").type == "timestamp" and stream.required_columns[:3] == [
        "event_id", "event_type", "event_time"]
    assert stream.source.replay == {"dataset": "flights", "zone": "America/New_York"}
    with open(source_csv) as fh:  # the real header and first rows: the record's keys are the contract's columns
        (tmp_path / "flights.csv").write_text("".join(next(fh) for _ in range(3)))
    event = events.flight_events("2013-01-01", csv=tmp_path / "flights.csv")[0]
    assert list(event) == stream.column_names
    for patch, message in ((lambda d: d["stream"].update(event_time="carrier"), "must be a timestamp"),
                           (lambda d: d["stream"].update(event_id="nope"), "stream.event_id 'nope'"),
                           (lambda d: d["stream"].update(partition_keys={}), "stream.partition_keys"),
                           (lambda d: d.update(kind="dimension"), "only a stream dataset has a 'stream'")):
        doc = json.loads((contracts.default_directory() / "flight_events.json").read_text())
        patch(doc)
        (tmp_path / "flight_events.json").write_text(json.dumps(doc))
        with pytest.raises(contracts.ContractError, match=message):
            contracts.load("flight_events", tmp_path)
