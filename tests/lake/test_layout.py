"""lake.layout: every physical name of a dataset, from the settings and the contract (no I/O)."""

from __future__ import annotations

import json
from datetime import date

import jinja2
import pytest

from lake import contracts
from lake.layout import Layout, for_dataset, reference_key, split_uri
from lake.settings import Settings

DAY = "2013-01-05"


@pytest.fixture
def defaults(monkeypatch) -> Settings:
    import os

    for key in [k for k in os.environ if k.startswith("LAKE_")]:
        monkeypatch.delenv(key)
    return Settings()


@pytest.fixture
def flights(defaults) -> Layout:
    return Layout(defaults, contracts.load("flights"))


def _render(template: str, ds: str) -> str:
    return jinja2.Template(template).render(ds=ds, ds_nodash=ds.replace("-", ""))


def test_flights_names_are_todays_names(flights):
    assert flights.bronze_bucket == "lake-bronze"
    assert flights.bronze_root == "s3://lake-bronze/flights/"
    assert flights.bronze_key(DAY) == "flights/ingest_date=2013-01-05/flights_20130105.csv.zip"
    assert flights.manifest_key(date(2013, 1, 5)) == "flights/ingest_date=2013-01-05/flights_20130105.manifest.json"
    assert flights.partition_name == "dt" and flights.partition(DAY) == "dt=2013-01-05"
    assert flights.silver_root == "s3://lake-silver/flights/"
    assert flights.silver_prefix(DAY) == "flights/dt=2013-01-05/"
    assert flights.silver_path(DAY) == "s3://lake-silver/flights/dt=2013-01-05/"
    assert flights.quarantine_root == "s3://lake-silver/quarantine/flights/"
    assert flights.quarantine_prefix(DAY) == "quarantine/flights/dt=2013-01-05/"
    assert flights.quarantine_path(DAY) == "s3://lake-silver/quarantine/flights/dt=2013-01-05/"
    assert flights.reference_root == "s3://lake-silver/reference/"
    assert flights.dimension_key("airlines") == "reference/airlines/airlines.parquet"
    assert flights.dimension_location("airlines") == "s3://lake-silver/reference/airlines/"
    assert flights.dimensions == ("airlines", "airports", "planes")
    assert flights.gold_root == "s3://lake-gold/"
    assert flights.gold_tables == ("flights", "carrier_daily")
    assert flights.gold_location("flights") == "s3://lake-gold/flights/"
    assert flights.gold_location("carrier_daily") == "s3://lake-gold/carrier_daily/"
    assert flights.gold_path("carrier_daily", DAY) == "s3://lake-gold/carrier_daily/dt=2013-01-05/"
    assert flights.silver_catalog_table == ("lake_silver", "flights")
    assert flights.gold_catalog_tables == (("lake_gold", "flights"), ("lake_gold", "carrier_daily"))
    assert flights.lease_root == "s3://lake-artifacts/leases/lake-flights-gold/"
    assert flights.lease_key(DAY) == "leases/lake-flights-gold/dt=2013-01-05.json"
    assert (flights.glue_job, flights.silver_crawler, flights.gold_crawler) == (
        "lake-flights-gold", "lake-silver-crawler", "lake-gold-crawler")
    assert flights.glue_script_location == "s3://lake-artifacts/glue/flights_gold.py"
    assert flights.athena_output == "s3://lake-artifacts/athena-results/"


def test_the_glue_arguments_carry_paths_partition_and_tables(flights):
    assert flights.glue_arguments() == {
        "--silver_path": "s3://lake-silver/flights",
        "--dimensions_path": "s3://lake-silver/reference",
        "--gold_path": "s3://lake-gold",
        "--lease_path": "s3://lake-artifacts/leases/lake-flights-gold",
        "--partition_name": "dt",
        "--gold_tables": "flights,carrier_daily",
        "--job-language": "python",
        "--enable-continuous-cloudwatch-log": "true",
    }


def test_the_sensor_templates_render_to_the_days_keys(flights):
    assert flights.bronze_key_template == "flights/ingest_date={{ ds }}/flights_{{ ds_nodash }}.csv.zip"
    for ds in (DAY, "2013-12-31"):
        assert _render(flights.bronze_key_template, ds) == flights.bronze_key(ds)
        assert _render(flights.manifest_key_template, ds) == flights.manifest_key(ds)


def test_the_lambda_payload_is_json_with_every_key(flights):
    event = flights.lambda_event(DAY)
    assert event == {
        "ds": DAY, "dataset": "flights", "bucket": "lake-bronze",
        "key": "flights/ingest_date=2013-01-05/flights_20130105.csv.zip",
        "manifest_key": "flights/ingest_date=2013-01-05/flights_20130105.manifest.json",
        "silver_bucket": "lake-silver", "silver_prefix": "flights/dt=2013-01-05/",
        "quarantine_bucket": "lake-silver", "quarantine_prefix": "quarantine/flights/dt=2013-01-05/",
        "partition": {"name": "dt", "value": DAY},
    }
    assert json.loads(flights.lambda_payload(DAY)) == event
    # The DAG's payload is the same JSON with Airflow's Jinja forms of the day.
    assert json.loads(_render(flights.lambda_payload(), DAY)) == event


def test_settings_reach_every_name(monkeypatch):
    for key, value in {"LAKE_BRONZE_BUCKET": "raw", "LAKE_SILVER_BUCKET": "clean", "LAKE_GOLD_BUCKET": "marts",
                       "LAKE_ARTIFACTS_BUCKET": "code", "LAKE_SILVER_PREFIX": "/tables/",
                       "LAKE_QUARANTINE_PREFIX": "rejects", "LAKE_REFERENCE_PREFIX": "dims",
                       "LAKE_GLUE_JOB": "job", "LAKE_SILVER_DATABASE": "c", "LAKE_GOLD_DATABASE": "m"}.items():
        monkeypatch.setenv(key, value)
    lay = for_dataset()
    assert lay.bronze_key(DAY).startswith("flights/") and lay.bronze_root == "s3://raw/flights/"
    assert lay.silver_path(DAY) == "s3://clean/tables/flights/dt=2013-01-05/"
    assert lay.quarantine_path(DAY) == "s3://clean/rejects/flights/dt=2013-01-05/"
    assert lay.dimension_location("planes") == "s3://clean/dims/planes/"
    assert lay.gold_location("flights") == "s3://marts/flights/"
    assert lay.lease_key(DAY) == "leases/job/dt=2013-01-05.json" and lay.lease_root == "s3://code/leases/job/"
    assert lay.glue_script_location == "s3://code/glue/flights_gold.py"
    assert lay.silver_catalog_table == ("c", "flights") and lay.gold_catalog_tables[1] == ("m", "carrier_daily")


def test_a_second_contract_gets_its_own_names(defaults):
    doc = json.loads((contracts.default_directory() / "flights.json").read_text())
    doc.update(name="sales", silver={"table": "sales_lines"},
               partition_key={"name": "order_date", "type": "date", "format": "%Y-%m-%d"},
               gold={"tables": {"sales": {}, "sales_region_daily": {}}})
    doc["source"].update(prefix="orders/{date}/", file_name="orders_{yyyymmdd}.csv.zip",
                         member_name="orders_{yyyymmdd}.csv", manifest_name="orders_{yyyymmdd}.json")
    lay = Layout(defaults, contracts.parse(doc))
    assert lay.bronze_root == "s3://lake-bronze/orders/"
    assert lay.bronze_key(DAY) == "orders/2013-01-05/orders_20130105.csv.zip"
    assert lay.manifest_key_template == "orders/{{ ds }}/orders_{{ ds_nodash }}.json"
    assert lay.partition(DAY) == "order_date=2013-01-05"
    assert lay.silver_path(DAY) == "s3://lake-silver/sales_lines/order_date=2013-01-05/"
    assert lay.quarantine_prefix(DAY) == "quarantine/sales_lines/order_date=2013-01-05/"
    assert lay.gold_tables == ("sales", "sales_region_daily")
    assert lay.gold_path("sales_region_daily", DAY) == "s3://lake-gold/sales_region_daily/order_date=2013-01-05/"
    assert lay.gold_catalog_tables == (("lake_gold", "sales"), ("lake_gold", "sales_region_daily"))
    assert lay.silver_catalog_table == ("lake_silver", "sales_lines")
    assert lay.glue_script_location == "s3://lake-artifacts/glue/sales_gold.py"
    # Names that must differ per dataset: its own job and crawlers (LAKE_DATASET keeps LAKE_GLUE_JOB ...).
    assert (lay.glue_job, lay.silver_crawler, lay.gold_crawler) == (
        "lake-sales-gold", "lake-sales-silver-crawler", "lake-sales-gold-crawler")
    assert lay.lease_key(DAY) == "leases/lake-sales-gold/order_date=2013-01-05.json"
    assert lay.gold_fact_table == "sales"
    assert lay.glue_arguments()["--partition_name"] == "order_date"
    assert lay.glue_arguments()["--gold_tables"] == "sales,sales_region_daily"
    event = lay.lambda_event(DAY)
    assert event["partition"] == {"name": "order_date", "value": DAY}
    assert event["silver_prefix"] == "sales_lines/order_date=2013-01-05/"
    with pytest.raises(KeyError, match="no gold table 'flights'"):
        lay.gold_location("flights")


def test_helpers():
    assert split_uri("s3://b/k/x") == ("b", "k/x") and split_uri("s3://b") == ("b", "")
    with pytest.raises(ValueError, match="not an s3:// URI"):
        split_uri("/tmp/x")
    assert reference_key("/reference/", "airports") == "reference/airports/airports.parquet"


def test_a_layout_is_frozen(flights):
    with pytest.raises(AttributeError):
        flights.contract = None  # type: ignore[misc]


def test_the_extractor_takes_the_keys_from_the_event(flights, handler_mod):
    """The handler derives no name: an event without a key is refused, naming every missing field."""
    event = flights.lambda_event(DAY)
    contract, day, cfg = handler_mod._config(event, contracts.load)
    assert cfg == event and contract.name == "flights" and day.isoformat() == DAY
    with pytest.raises(ValueError, match=r"the event lacks 'key', 'silver_prefix'"):
        handler_mod.extract({k: v for k, v in event.items() if k not in ("key", "silver_prefix")}, s3=object())
    with pytest.raises(ValueError, match=r"lacks 'dataset', 'bucket', 'key'"):
        handler_mod.handler({"ds": DAY})
    with pytest.raises(ValueError, match="is not the folder of partition 'dt=2013-01-05/'"):
        handler_mod.extract({**event, "quarantine_prefix": "quarantine/flights/"}, s3=object())
    with pytest.raises(ValueError, match="'partition' must be"):
        handler_mod.extract({**event, "partition": {"name": "dt", "value": "2013-01-06"}}, s3=object())


def test_per_dataset_names_can_be_overridden(monkeypatch):
    monkeypatch.setenv("LAKE_DATASET_NAMES", '{"sales": {"glue_job": "sales-gold"}}')
    monkeypatch.setenv("LAKE_DAILY_DATASETS", "flights, sales")
    s = Settings()
    assert s.daily_dataset_names == ("flights", "sales")
    assert s.names_for("sales") == {"glue_job": "sales-gold", "silver_crawler": "lake-sales-silver-crawler",
                                    "gold_crawler": "lake-sales-gold-crawler"}
    assert s.names_for("flights")["glue_job"] == s.glue_job
    monkeypatch.setenv("LAKE_DATASET_NAMES", '{"sales": {"bucket": "x"}}')
    with pytest.raises(ValueError, match="names \\['bucket'\\]"):
        Settings().names_for("sales")


def test_a_stream_datasets_firehose_names(defaults, flights):
    """flight_events: the delivery stream, its dynamic-partitioning Prefix (by event date and hour, the
    contract's jq keys), the ErrorOutputPrefix and an hour's delivered prefix; a fact has none of them.
    (The send test in tests/lake/test_stream_send.py creates a stream with them on localaws.)"""
    stream = Layout(defaults, contracts.load("flight_events"))
    assert stream.delivery_stream == "lake-flight-events" and stream.bronze_bucket == "lake-bronze"
    assert stream.stream_prefix == "flight_events/dt=!{partitionKeyFromQuery:dt}/hour=!{partitionKeyFromQuery:hour}/"
    assert stream.stream_error_prefix == ("quarantine/flight_events/!{firehose:error-output-type}/"
                                          "dt=!{timestamp:yyyy-MM-dd}/")
    assert stream.stream_partition_query == "{dt: .event_time[0:10], hour: .event_time[11:13]}"
    assert stream.stream_partition_prefix(hour="07", dt="2013-06-01") == "flight_events/dt=2013-06-01/hour=07/"
    with pytest.raises(KeyError, match="partition values"):
        stream.stream_partition_prefix(dt="2013-06-01")
    with pytest.raises(KeyError, match="is a fact, not a stream"):
        _ = flights.delivery_stream
