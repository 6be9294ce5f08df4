"""The AWS API coverage table (localaws/coverage.py, docs/localaws-coverage.md): the doc is current,
and what it says of an operation is what boto3 gets from localaws."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localaws import coverage
from tests.helpers import REPO

NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture(scope="module")
def table() -> list[coverage.ServiceCoverage]:
    return coverage.compute()


def test_the_doc_is_current(table):
    doc = REPO / "docs" / "localaws-coverage.md"
    assert doc.read_text() == coverage.render_markdown(table), (
        "docs/localaws-coverage.md is stale: run `localaws coverage --output docs/localaws-coverage.md`")


def _callable_without_arguments(client, operation: str) -> bool:
    shape = client.meta.service_model.operation_model(operation).input_shape
    return shape is None or not shape.required_members


def test_what_the_table_says_is_what_boto3_gets(table, localaws):
    """For each service with exact dispatch (JSON, query, CBOR): up to two operations listed 501 that
    need no arguments answer HTTP 501 NotImplemented at once, and one listed moto/localaws answers
    without that error (STS's have required arguments; at least 10 and 5 are checked in all)."""
    checked = []
    for cov in table:
        if not cov.exact:
            continue
        client = boto3.client(cov.service, endpoint_url=localaws.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x", config=NO_RETRIES)
        missing = [op for op in cov.missing if _callable_without_arguments(client, op)][:2]
        answered = [op for op in cov.moto + cov.localaws
                    if op.startswith(("List", "Get", "Describe")) and _callable_without_arguments(client, op)][:1]
        for op in missing:
            with pytest.raises(ClientError) as info:
                client._make_api_call(op, {})
            error = info.value.response
            assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("NotImplemented", 501), (
                f"{cov.service} {op}: the table says 501, localaws answered {error['Error']}")
            assert f"localaws does not implement {cov.service} {op}" in error["Error"]["Message"]
            checked.append(f"{cov.service}:{op}=501")
        for op in answered:
            try:
                client._make_api_call(op, {})
            except ClientError as exc:  # an AWS error (e.g. not found) is an answer; 501 is not
                assert exc.response["Error"]["Code"] != "NotImplemented", f"{cov.service} {op}: {exc}"
            checked.append(f"{cov.service}:{op}=answered")
    refused = [c for c in checked if c.endswith("=501")]
    assert len(refused) >= 10 and len(checked) - len(refused) >= 5, checked


def test_s3_sub_resources_moto_does_not_read_are_refused_not_answered_as_another_operation(table, localaws):
    """``GET /bucket?abac`` used to reach moto's plain GET bucket: an empty 200 that botocore parsed
    as ``{"AbacStatus": {}}``. Such calls now answer 501; the sub-resources moto reads still work."""
    s3 = boto3.client("s3", endpoint_url=localaws.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x", config=NO_RETRIES)
    s3.create_bucket(Bucket="coverage-sub-resources")
    s3.put_object(Bucket="coverage-sub-resources", Key="k", Body=b"data")
    (s3_cov,) = [c for c in table if c.service == "s3"]
    calls = {
        "GetBucketAbac": lambda: s3.get_bucket_abac(Bucket="coverage-sub-resources"),
        "GetBucketMetricsConfiguration": lambda: s3.get_bucket_metrics_configuration(
            Bucket="coverage-sub-resources", Id="m1"),
        "PutBucketRequestPayment": lambda: s3.put_bucket_request_payment(
            Bucket="coverage-sub-resources", RequestPaymentConfiguration={"Payer": "Requester"}),
        "GetBucketRequestPayment": lambda: s3.get_bucket_request_payment(Bucket="coverage-sub-resources"),
        "ListBucketAnalyticsConfigurations": lambda: s3.list_bucket_analytics_configurations(
            Bucket="coverage-sub-resources"),
    }
    for op, call in calls.items():
        assert s3_cov.status(op) == "501", op
        with pytest.raises(ClientError) as info:
            call()
        error = info.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("NotImplemented", 501), op
        assert f"localaws does not implement s3 {op}" in error["Error"]["Message"]
    # What moto reads still answers as S3 does.
    assert s3_cov.status("GetBucketTagging") == "moto"
    with pytest.raises(ClientError) as info:
        s3.get_bucket_tagging(Bucket="coverage-sub-resources")
    assert info.value.response["Error"]["Code"] == "NoSuchTagSet"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="coverage-sub-resources")["Contents"]] == ["k"]
    assert s3.get_object(Bucket="coverage-sub-resources", Key="k")["Body"].read() == b"data"
    s3.delete_objects(Bucket="coverage-sub-resources", Delete={"Objects": [{"Key": "k"}]})
    assert "Contents" not in s3.list_objects_v2(Bucket="coverage-sub-resources")
