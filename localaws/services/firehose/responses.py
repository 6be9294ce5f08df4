"""The Firehose API as localaws answers it: moto's, with PutRecord / PutRecordBatch buffered and
CreateDeliveryStream / UpdateDestination checked as AWS checks them.

Sources (Amazon Data Firehose API Reference and Developer Guide): "PutRecordBatch" (500 records,
4 MiB per call; per-record ``ErrorCode`` / ``ErrorMessage`` and ``FailedPutCount``), "PutRecord",
"Amazon Data Firehose quota" (1,000 KiB per record), "BufferingHints" (SizeInMBs 1-128,
IntervalInSeconds 0-900, one given means both), "Buffering hints" (zero buffering is not available
with dynamic partitioning), "Understand custom prefixes for Amazon S3 objects" (the prefix rules,
:mod:`.prefixes`). The constraint messages are the ones AWS sends (``1 validation error detected:
Value ... at 'records.97.member.data' failed to satisfy constraint: Member must have length less
than or equal to 1024000``, ``Records size exceeds 4 MB limit``, ``Slow down.``), as clients log them.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from moto.core.responses import ActionResult
from moto.firehose import models as firehose_models
from moto.firehose import responses as firehose_responses
from moto.firehose.exceptions import InvalidArgumentException, ResourceNotFoundException, ValidationException
from moto.moto_api._internal import mock_random

from localaws import faults
from localaws.services.firehose import models, prefixes

MAX_RECORDS = 500
MAX_RECORD_BYTES = 1_024_000  # 1,000 KiB
MAX_CALL_BYTES = 4 * models.MIB
COMPRESSIONS = ("UNCOMPRESSED", "GZIP")
#: Processor types whose work localaws does not do; a stream using one is refused with HTTP 501.
UNSUPPORTED_PROCESSORS = ("Lambda", "RecordDeAggregation", "Decompression", "CloudWatchLogProcessing")
THROTTLED = ("ServiceUnavailableException", f"Slow down. {faults.MARK}")

_original_create = firehose_models.FirehoseBackend.create_delivery_stream
_original_update = firehose_models.FirehoseBackend.update_destination
_original_put_batch = firehose_models.FirehoseBackend.put_record_batch


def _validation(errors: list[str]) -> ValidationException:
    count = f"{len(errors)} validation error{'s' if len(errors) != 1 else ''} detected: "
    return ValidationException(count + "; ".join(errors))


def _range(value: Any, low: int, high: int, where: str) -> str | None:
    if value is None:
        return None
    if int(value) > high:
        return (f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have value less than or "
                f"equal to {high}")
    if int(value) < low:
        return (f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have value greater than "
                f"or equal to {low}")
    return None


def _camel(name: str) -> str:
    return name[0].lower() + name[1:]


def check_destination(name: str, field: str, config: dict[str, Any]) -> None:
    """Check an S3 / ExtendedS3 destination config of stream ``name`` (``field``: its request field).

    :raises ValidationException: a BufferingHints value out of range.
    :raises InvalidArgumentException: a broken rule (prefixes, dynamic partitioning, hints).
    :raises NotImplementedError: a feature localaws does not run (HTTP 501, see docs/localaws.md).
    """
    hints = config.get("BufferingHints") or {}
    where = f"{_camel(field)}.bufferingHints"
    errors = [e for e in (_range(hints.get("SizeInMBs"), 1, 128, f"{where}.sizeInMBs"),
                          _range(hints.get("IntervalInSeconds"), 0, 900, f"{where}.intervalInSeconds")) if e]
    if errors:
        raise _validation(errors)
    if hints and ("SizeInMBs" in hints) != ("IntervalInSeconds" in hints):
        raise InvalidArgumentException(f"Firehose {name}: BufferingHints must specify both SizeInMBs and "
                                       "IntervalInSeconds, or neither")
    compression = config.get("CompressionFormat") or "UNCOMPRESSED"
    if compression not in COMPRESSIONS:
        raise NotImplementedError(f"Firehose {name}: CompressionFormat {compression} is not emulated (localaws "
                                  f"writes {', '.join(COMPRESSIONS)})")
    if (config.get("DataFormatConversionConfiguration") or {}).get("Enabled"):
        raise NotImplementedError(f"Firehose {name}: DataFormatConversionConfiguration (record format conversion) "
                                  "is not emulated")
    if (config.get("CustomTimeZone") or "UTC") != "UTC":
        raise NotImplementedError(f"Firehose {name}: CustomTimeZone {config['CustomTimeZone']} is not emulated "
                                  "(localaws evaluates timestamps in UTC)")
    if config.get("FileExtension"):
        raise NotImplementedError(f"Firehose {name}: FileExtension is not emulated (localaws writes the default "
                                  "extension)")
    if config.get("S3BackupMode") == "Enabled":
        raise NotImplementedError(f"Firehose {name}: S3BackupMode Enabled (source record backup) is not emulated")
    processing = config.get("ProcessingConfiguration") or {}
    processors = processing.get("Processors") or [] if processing.get("Enabled", True) else []
    for processor in processors:
        if processor.get("Type") in UNSUPPORTED_PROCESSORS:
            raise NotImplementedError(f"Firehose {name}: the {processor['Type']} processor is not emulated "
                                      "(localaws runs MetadataExtraction and AppendDelimiterToRecord)")
    dynamic = bool((config.get("DynamicPartitioningConfiguration") or {}).get("Enabled"))
    if dynamic:
        extraction = [p for p in processors if p.get("Type") == "MetadataExtraction"]
        if not extraction:
            raise InvalidArgumentException(f"Firehose {name}: dynamic partitioning is enabled but "
                                           "ProcessingConfiguration has no enabled MetadataExtraction processor")
        params = {p["ParameterName"]: p["ParameterValue"] for p in extraction[0].get("Parameters") or []}
        if "MetadataExtractionQuery" not in params:
            raise InvalidArgumentException(f"Firehose {name}: the MetadataExtraction processor needs the "
                                           "MetadataExtractionQuery parameter")
        engine = params.get("JsonParsingEngine", "JQ-1.6")
        if engine != "JQ-1.6":
            raise InvalidArgumentException(f"Firehose {name}: JsonParsingEngine {engine!r} is not valid; the only "
                                           "engine is JQ-1.6")
        try:
            models.compile_query(params["MetadataExtractionQuery"])
        except ValueError as exc:
            raise InvalidArgumentException(f"Firehose {name}: MetadataExtractionQuery "
                                           f"{params['MetadataExtractionQuery']!r} is not valid jq: {exc}") from None
        if int(hints.get("IntervalInSeconds", models.DEFAULT_INTERVAL_S)) == 0:
            raise InvalidArgumentException(f"Firehose {name}: zero buffering (IntervalInSeconds 0) is not available "
                                           "with dynamic partitioning")
    try:
        prefixes.validate(config.get("Prefix"), config.get("ErrorOutputPrefix"), dynamic_partitioning=dynamic)
    except prefixes.PrefixError as exc:
        raise InvalidArgumentException(str(exc)) from None


def _create(self: firehose_models.FirehoseBackend, region: str, delivery_stream_name: str, delivery_stream_type: str,
            kinesis_stream_source_configuration: dict[str, Any], delivery_stream_encryption_configuration_input: Any,
            s3_destination_configuration: dict[str, Any], extended_s3_destination_configuration: dict[str, Any],
            *args: Any) -> str:
    for field, config in (("ExtendedS3DestinationConfiguration", extended_s3_destination_configuration),
                          ("S3DestinationConfiguration", s3_destination_configuration)):
        if config:
            check_destination(delivery_stream_name, field, config)
    return _original_create(self, region, delivery_stream_name, delivery_stream_type,
                            kinesis_stream_source_configuration, delivery_stream_encryption_configuration_input,
                            s3_destination_configuration, extended_s3_destination_configuration, *args)


def _update(self: firehose_models.FirehoseBackend, delivery_stream_name: str, current_version: str,
            destination_id: str, *args: Any) -> None:
    """moto's UpdateDestination, after delivering the stream's buffers under the old configuration
    (their keys carry its version), and undone when the merged configuration breaks a rule."""
    stream = self.delivery_streams.get(delivery_stream_name)
    with models.LOCK:
        if stream is not None and stream.version_id == current_version:
            models.deliver_due(self, stream, everything=True)
        before = copy.deepcopy(stream.destinations) if stream is not None else None
        _original_update(self, delivery_stream_name, current_version, destination_id, *args)
        assert stream is not None  # moto raised ResourceNotFoundException otherwise
        dest = stream.destinations[0]
        for field in ("ExtendedS3", "S3"):
            if field in dest:
                try:
                    check_destination(delivery_stream_name, f"{field}DestinationUpdate", dest[field])
                except Exception:
                    stream.destinations = before
                    stream.version_id = current_version
                    raise
                break


def _stream(backend: firehose_models.FirehoseBackend, name: str) -> firehose_models.DeliveryStream:
    stream = backend.delivery_streams.get(name)
    if stream is None:
        raise ResourceNotFoundException(f"Firehose {name} under account {backend.account_id} not found.")
    if stream.delivery_stream_type != "DirectPut":
        raise InvalidArgumentException(f"This operation is not permitted on {stream.delivery_stream_type} delivery "
                                       f"stream type.")
    return stream


def _check_limits(records: list[dict[str, Any]], single: bool) -> None:
    errors = []
    if not single and len(records) > MAX_RECORDS:
        errors.append(f"Value '[{len(records)} records]' at 'records' failed to satisfy constraint: Member must "
                      f"have length less than or equal to {MAX_RECORDS}")
    for i, record in enumerate(records, 1):
        size = len(record["Data"])
        if size > MAX_RECORD_BYTES:
            where = "record.data" if single else f"records.{i}.member.data"
            errors.append(f"Value 'java.nio.HeapByteBuffer[pos=0 lim={size} cap={size}]' at '{where}' failed to "
                          f"satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}")
    if errors:
        raise _validation(errors)
    if sum(len(r["Data"]) for r in records) > MAX_CALL_BYTES:
        raise InvalidArgumentException("Records size exceeds 4 MB limit")


def _record_id() -> str:
    """112 hex digits, as AWS's RecordIds have, from moto's (seedable) random: one draw of 448 bits,
    not moto's ``get_random_hex`` (a choice per digit: 90% of a PutRecordBatch's time, bench/stream.py)."""
    return f"{mock_random.getrandbits(448):0112x}"


def put_records(backend: firehose_models.FirehoseBackend, name: str, records: list[dict[str, Any]],
                *, single: bool) -> dict[str, Any]:
    """Accept ``records`` into ``name``'s buffers; the PutRecordBatch answer."""
    stream = _stream(backend, name)
    for record in records:
        if isinstance(record.get("Data"), str):
            record["Data"] = record["Data"].encode()
    _check_limits(records, single)
    dest = models.destination(stream)
    if dest is None:  # not an S3 destination: moto's behaviour
        return _original_put_batch(backend, name, records)
    responses: list[dict[str, str]] = []
    accepted = size = 0
    with models.LOCK:
        for record in records:
            if not single and faults.firehose_record_fails(name):
                responses.append({"ErrorCode": THROTTLED[0], "ErrorMessage": THROTTLED[1]})
                continue
            models.add(backend, stream, dest, record["Data"], time.time())
            responses.append({"RecordId": _record_id()})
            accepted += 1
            size += len(record["Data"])
        if dest.interval == 0:
            models.deliver_due(backend, stream, everything=True)
        models.incoming(backend, stream, accepted, size)
    return {"FailedPutCount": len(records) - accepted, "Encrypted": False, "RequestResponses": responses}


def _put_record_batch(self: firehose_responses.FirehoseResponse) -> tuple[str, dict[str, Any]]:
    result = put_records(self.firehose_backend, self._get_param("DeliveryStreamName"),
                         self._get_param("Records") or [], single=False)
    # The answer is flat JSON: written here, with the headers moto's serializer gives, because that
    # serializer walks the shape once per record (60% of a 500-record call's time, bench/stream.py).
    _, headers, _ = self.serialized(ActionResult({}))
    return json.dumps(result, separators=(",", ":")), headers


def _put_record(self: firehose_responses.FirehoseResponse) -> ActionResult:
    result = put_records(self.firehose_backend, self._get_param("DeliveryStreamName"), [self._get_param("Record")],
                         single=True)
    return ActionResult({"RecordId": result["RequestResponses"][0]["RecordId"], "Encrypted": False})


def _create_delivery_stream(self: firehose_responses.FirehoseResponse) -> ActionResult:
    return _original_create_response(self)


def _update_destination(self: firehose_responses.FirehoseResponse) -> ActionResult:
    return _original_update_response(self)


_original_create_response = firehose_responses.FirehoseResponse.create_delivery_stream
_original_update_response = firehose_responses.FirehoseResponse.update_destination


def install() -> None:
    """Patch moto's Firehose backend and responses (idempotent)."""
    firehose_models.FirehoseBackend.create_delivery_stream = _create  # type: ignore[method-assign]
    firehose_models.FirehoseBackend.update_destination = _update  # type: ignore[method-assign]
    responses = firehose_responses.FirehoseResponse
    responses.put_record = _put_record  # type: ignore[method-assign]
    responses.put_record_batch = _put_record_batch  # type: ignore[method-assign]
    responses.create_delivery_stream = _create_delivery_stream  # type: ignore[method-assign]
    responses.update_destination = _update_destination  # type: ignore[method-assign]
