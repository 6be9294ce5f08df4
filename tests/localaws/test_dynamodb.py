"""DynamoDB through boto3: what the delivery registry relies on, and UpdateTimeToLive's refusals (AWS API reference)."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


def _table(ddb) -> str:
    name = f"ttl-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "dataset", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[{"IndexName": "by_dataset", "Projection": {"ProjectionType": "ALL"},
                                              "KeySchema": [{"AttributeName": "dataset", "KeyType": "HASH"}]}])
    return name


def _error(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_update_time_to_live_is_not_idempotent_as_on_aws(aws_client):
    ddb = aws_client("dynamodb")
    name = _table(ddb)
    on = {"Enabled": True, "AttributeName": "ttl"}
    assert ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=on)["TimeToLiveSpecification"] == on
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    assert _error(ddb.update_time_to_live, TableName=name, TimeToLiveSpecification=on) == (
        "ValidationException", "TimeToLive is already enabled")
    assert _error(ddb.update_time_to_live, TableName=name,
                  TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}) == (
        "ValidationException", "TimeToLive is active on a different AttributeName: current AttributeName is ttl")
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": False, "AttributeName": "ttl"})
    assert _error(ddb.update_time_to_live, TableName=name,
                  TimeToLiveSpecification={"Enabled": False, "AttributeName": "ttl"}) == (
        "ValidationException", "TimeToLive is already disabled")
    code, _ = _error(ddb.update_time_to_live, TableName="no-such-table", TimeToLiveSpecification=on)
    assert code == "ResourceNotFoundException"


def test_point_in_time_recovery_and_a_conditional_put(aws_client):
    ddb = aws_client("dynamodb")
    name = _table(ddb)
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    item = {"pk": {"S": "s3://b/k"}, "dataset": {"S": "flights"}}
    ddb.put_item(TableName=name, Item=item, ConditionExpression="attribute_not_exists(pk)")
    assert _error(ddb.put_item, TableName=name, Item={**item, "n": {"N": "2"}},
                  ConditionExpression="attribute_not_exists(pk)")[0] == "ConditionalCheckFailedException"
    got = ddb.query(TableName=name, IndexName="by_dataset", KeyConditionExpression="dataset = :d",
                    ExpressionAttributeValues={":d": {"S": "flights"}})["Items"]
    assert got == [item]
