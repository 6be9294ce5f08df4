"""The zip built by ``lake build lambda``, deployed to localaws and invoked through boto3."""

from __future__ import annotations

import base64
import json
import re
import zipfile
from datetime import date

from lake import cli, contracts, source
from lake.layout import Layout
from lake.settings import Settings
from tests.helpers import BLIZZARD, src_count
from tests.localaws.helpers import lambda_role


def test_built_zip_deploys_and_extracts_the_blizzard_day(tmp_path, buckets, aws_client, duck, capsys):
    out = tmp_path / "extractor.zip"
    assert cli.main(["build", "lambda", "--out", str(out)]) == 0
    data = out.read_bytes()
    assert cli.main(["build", "lambda", "--out", str(tmp_path / "again.zip")]) == 0
    assert (tmp_path / "again.zip").read_bytes() == data  # reproducible
    names = zipfile.ZipFile(out).namelist()
    assert names == sorted(names) == ["chunks.py", "contracts.py", "datasets/airlines.json", "datasets/airports.json",
                                      "datasets/customer.json", "datasets/flight_events.json",
                                      "datasets/flights.json", "datasets/lineitem.json",
                                      "datasets/nation.json", "datasets/part.json", "datasets/partsupp.json",
                                      "datasets/planes.json", "datasets/region.json", "datasets/sales.json",
                                      "datasets/supplier.json", "handler.py", "parquet_out.py", "validate.py"]
    assert {i.date_time for i in zipfile.ZipFile(out).infolist()} == {(1980, 1, 1, 0, 0, 0)}

    s3 = aws_client("s3")
    d = date.fromisoformat(BLIZZARD)
    source.replay(contracts.load("flights"), d, d, bucket=buckets["bronze"], s3=s3)
    lam = aws_client("lambda")
    name = f"extractor-{buckets['bronze']}"
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=lambda_role(aws_client("iam")), Handler="handler.handler",
        Code={"ZipFile": data}, MemorySize=1024, Timeout=120,
    )
    layout = Layout(Settings(bronze_bucket=buckets["bronze"], silver_bucket=buckets["silver"], silver_prefix="silver"),
                    contracts.load("flights"))
    resp = lam.invoke(FunctionName=name, Payload=layout.lambda_payload(BLIZZARD).encode(), LogType="Tail")
    payload = json.loads(resp["Payload"].read())
    log_tail = base64.b64decode(resp["LogResult"]).decode()
    assert "FunctionError" not in resp, payload
    rows = src_count(duck, f"dt = '{BLIZZARD}'")
    assert payload["rows_read"] == payload["rows_written"] == rows
    assert payload["rows_rejected"] == 0
    assert payload["silver_objects"] == [f"s3://{buckets['silver']}/silver/flights/dt={BLIZZARD}/part-00000.parquet"]
    assert f"wrote {rows} rows" in log_tail
    memory = re.search(r"Max Memory Used: (\d+) MB", log_tail)
    print(f"\nextractor Lambda on {BLIZZARD}: {rows} rows in {payload['seconds']} s, "
          f"max memory {memory.group(1)} MB")

    # A bad file: FunctionError naming the file and the reason; the bronze object stays.
    key = contracts.load("flights").source_key("2013-02-09")
    s3.put_object(Bucket=buckets["bronze"], Key=key, Body=b"PK\x03\x04 truncated")
    s3.put_object(Bucket=buckets["bronze"], Key=contracts.load("flights").manifest_key("2013-02-09"),
                  Body=json.dumps({"rows": 1}).encode())
    resp = lam.invoke(FunctionName=name, Payload=layout.lambda_payload("2013-02-09").encode())
    err = json.loads(resp["Payload"].read())
    assert resp["FunctionError"] == "Unhandled"
    assert err["errorType"] == "BronzeFileError"
    assert err["errorMessage"].startswith(f"s3://{buckets['bronze']}/{key}: corrupt zip")
    assert s3.get_object(Bucket=buckets["bronze"], Key=key)["Body"].read() == b"PK\x03\x04 truncated"
