"""DynamoDB: moto's, with UpdateTimeToLive answering as AWS does.

moto's ``update_time_to_live`` accepts any call: enabling TTL that is already enabled, disabling it
when disabled, or moving it to another attribute while enabled, and answers a missing table with
``ResourceNotFound`` (not DynamoDB's ``ResourceNotFoundException``). AWS refuses the first three
with ``ValidationException`` (API reference, UpdateTimeToLive: "the operation is not idempotent";
messages "TimeToLive is already enabled", "TimeToLive is already disabled", "TimeToLive is active
on a different AttributeName: current AttributeName is <name>"), so a client that provisions a
table twice must read ``DescribeTimeToLive`` first, here as on AWS
(https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTimeToLive.html).
PITR (UpdateContinuousBackups), global secondary indexes, on-demand billing and conditional
writes are moto's unchanged. TTL never deletes items here; AWS deletes expired items "within a few
days" of their expiry and documents no bound, so a reader must filter on the TTL attribute anyway.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.exceptions import MockValidationException, ResourceNotFoundException
from moto.dynamodb.responses import DynamoHandler

_original_update_time_to_live = DynamoHandler.update_time_to_live
_installed = False


def _update_time_to_live(self: DynamoHandler) -> Any:
    """moto's UpdateTimeToLive handler, after AWS's checks (module docstring)."""
    table_name, ttl_spec = self.body.get("TableName"), self.body.get("TimeToLiveSpecification") or {}
    try:
        table = self.dynamodb_backend.get_table(table_name)
    except Exception as exc:  # moto raises its ResourceNotFoundException or a JsonRESTError
        raise ResourceNotFoundException(table_name=table_name) from exc
    status, current = table.ttl.get("TimeToLiveStatus", "DISABLED"), table.ttl.get("AttributeName")
    enabled = ttl_spec.get("Enabled")
    if enabled and status in ("ENABLED", "ENABLING"):
        if current and current != ttl_spec.get("AttributeName"):
            raise MockValidationException(f"TimeToLive is active on a different AttributeName: current AttributeName "
                                          f"is {current}")
        raise MockValidationException("TimeToLive is already enabled")
    if enabled is False and status in ("DISABLED", "DISABLING"):
        raise MockValidationException("TimeToLive is already disabled")
    return _original_update_time_to_live(self)


def install() -> None:
    """Patch moto's DynamoDB handler (idempotent)."""
    global _installed
    if _installed:
        return
    DynamoHandler.update_time_to_live = _update_time_to_live  # type: ignore[method-assign]
    _installed = True
