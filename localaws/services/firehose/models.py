"""Firehose buffers and their delivery to S3 (DirectPut streams with an S3 / ExtendedS3 destination).

State lives on moto's ``DeliveryStream`` (``localaws_buffers``: partition id -> :class:`Buffer`), so
it is snapshotted with the Firehose backend (localaws/persistence.py) in the same pickle as S3:
a snapshot holds a record either in a buffer or in a delivered object, never both, never neither.
A PutRecordBatch that changes state is answered after its snapshot is on disk (localaws/server.py),
so an acknowledged record survives a kill -9 and is delivered after the restart.

Delivery, as the Amazon Data Firehose Developer Guide describes it:

* "Buffering hints": an object is written when the buffer reaches SizeInMBs (default 5 MiB) or
  IntervalInSeconds (default 300 s) has passed since its first record, whichever comes first;
  IntervalInSeconds 0 is zero buffering (localaws: delivered at the end of each put call).
  Records are concatenated as sent, without delimiters ("Data delivery format").
* "Partition streaming data" (dynamic partitioning): one buffer per evaluated partition; records whose
  MetadataExtraction query fails go to ErrorOutputPrefix with error-output-type
  ``partitioning-failed``, one JSON error record per line (``attemptsMade``, ``arrivalTimestamp``,
  ``errorCode`` ``DynamicPartitioning.MetadataExtractionFailed``, ``errorMessage``,
  ``attemptEndingTimestamp``, ``rawData`` base64), the format of "Handle data delivery failure".
* CompressionFormat GZIP: the object is gzip, its key ends with ``.gz``.
* "Monitor with CloudWatch metrics": IncomingRecords, IncomingBytes, DeliveryToS3.Records,
  DeliveryToS3.Bytes, DeliveryToS3.Success, DeliveryToS3.DataFreshness in namespace
  ``AWS/Firehose``, dimension DeliveryStreamName, put in moto's CloudWatch backend.

A delivery that fails (the bucket is gone) keeps the buffer and is retried, as Firehose retries
for up to 24 hours; DeliveryToS3.Success is then 0.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from moto.cloudwatch.models import cloudwatch_backends
from moto.firehose.models import DeliveryStream, FirehoseBackend, firehose_backends
from moto.moto_api._internal import mock_random
from moto.s3.models import s3_backends

from localaws.runtime import log
from localaws.services.firehose import prefixes

MIB = 1024 * 1024
DEFAULT_SIZE_MB = 5
DEFAULT_INTERVAL_S = 300
#: Seconds between two delivery attempts of a buffer whose delivery failed.
RETRY_SECONDS = 1.0
#: How often the background thread looks for buffers whose interval has passed.
TICK_SECONDS = 0.1
PARTITIONING_FAILED = "partitioning-failed"
PARTITIONING_ERROR_CODE = "DynamicPartitioning.MetadataExtractionFailed"
NAMESPACE = "AWS/Firehose"

#: Serialises buffer changes and deliveries (requests run on many threads; the flusher on one).
LOCK = threading.RLock()
_compiled: dict[str, Any] = {}


@dataclass
class Buffer:
    """Records waiting for one object: their bytes and arrival times (epoch seconds). ``bucket`` and
    ``key`` are fixed when the first record arrives (the key's timestamps are that record's arrival),
    so a delivery repeated after a restart writes the same object."""

    bucket: str
    key: str
    records: list[bytes] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    size: int = 0
    error: bool = False
    retry_at: float = 0.0
    failures: int = 0

    @property
    def first_arrival(self) -> float:
        return self.arrivals[0]


@dataclass(frozen=True)
class Destination:
    """What delivery needs of a stream's S3 / ExtendedS3 destination description."""

    bucket: str
    prefix: str
    error_prefix: str | None
    size_bytes: int
    interval: int
    compression: str
    dynamic_partitioning: bool
    query: str | None
    delimiter: bytes | None


def destination(stream: DeliveryStream) -> Destination | None:
    """The S3 destination of ``stream`` (ExtendedS3 first), or ``None`` for other destinations."""
    dest = stream.destinations[0]
    config = dest.get("ExtendedS3") or dest.get("S3")
    if config is None:
        return None
    hints = config.get("BufferingHints") or {}
    dynamic = bool((config.get("DynamicPartitioningConfiguration") or {}).get("Enabled"))
    query, delimiter = None, None
    processing = config.get("ProcessingConfiguration") or {}
    if processing.get("Enabled", True):
        for processor in processing.get("Processors") or []:
            params = {p["ParameterName"]: p["ParameterValue"] for p in processor.get("Parameters") or []}
            if processor.get("Type") == "MetadataExtraction":
                query = params.get("MetadataExtractionQuery")
            elif processor.get("Type") == "AppendDelimiterToRecord":
                delimiter = unescape(params.get("Delimiter", "\\n"))
    return Destination(
        bucket=config["BucketARN"].split(":")[-1],
        prefix=config.get("Prefix") or "",
        error_prefix=config.get("ErrorOutputPrefix") or None,
        size_bytes=int(hints.get("SizeInMBs", DEFAULT_SIZE_MB)) * MIB,
        interval=int(hints.get("IntervalInSeconds", DEFAULT_INTERVAL_S)),
        compression=config.get("CompressionFormat") or "UNCOMPRESSED",
        dynamic_partitioning=dynamic,
        query=query if dynamic else None,
        delimiter=delimiter,
    )


def unescape(text: str) -> bytes:
    """An AppendDelimiterToRecord ``Delimiter`` (``\\n`` written as two characters) as bytes."""
    return text.encode().decode("unicode_escape").encode()


def compile_query(query: str) -> Any:
    """The jq program of a MetadataExtractionQuery (cached). :raises ValueError: not valid jq."""
    program = _compiled.get(query)
    if program is None:
        import jq

        program = _compiled[query] = jq.compile(query)
    return program


def buffers(stream: DeliveryStream) -> dict[str, Buffer]:
    if "localaws_buffers" not in stream.__dict__:
        stream.localaws_buffers = {}
    return stream.localaws_buffers


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _new_key(stream: DeliveryStream, dest: Destination, arrival: float, *, partition_keys: dict[str, str] | None,
             error_type: str | None) -> str:
    when = _utc(arrival)
    if error_type:
        prefix = prefixes.effective_error_prefix(dest.prefix, dest.error_prefix)
    else:
        prefix = prefixes.effective_prefix(dest.prefix, dynamic_partitioning=dest.dynamic_partitioning)
    evaluated = prefixes.evaluate(prefix, when, partition_keys=partition_keys, error_output_type=error_type)
    extension = ".gz" if dest.compression == "GZIP" else ""
    return evaluated + prefixes.suffix(stream.delivery_stream_name, stream.version_id, when,
                                       str(mock_random.uuid4())) + extension


@functools.cache
def partition_key_names(prefix: str) -> tuple[str, ...]:
    """The ``!{partitionKeyFromQuery:k}`` names of ``prefix`` (once per prefix, not per record)."""
    return tuple(sorted({v for n, v in prefixes.expressions(prefix) if n == "partitionKeyFromQuery"}))


def is_json(data: bytes) -> bool:
    """Whether ``data`` is JSON text as Python's json reads it: orjson first (about 5x faster), json
    for what orjson alone refuses (NaN, Infinity, integers beyond 64 bits), so the verdict is json's."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            json.loads(data)
        except ValueError:
            return False
    return True


def partition(dest: Destination, data: bytes) -> tuple[dict[str, str] | None, str | None]:
    """(partition keys, None) for a record, or (None, error message) when its query fails."""
    if dest.query is None:
        return {}, None
    if not is_json(data):  # the check only: jq parses the text itself (twice as fast as from Python values)
        return None, "Non JSON record provided"
    try:
        result = compile_query(dest.query).input_text(data.decode()).first()
    except Exception as exc:  # noqa: BLE001 - jq's runtime errors are ValueError; any failure is the record's
        return None, f"MetadataExtractionQuery failed on the record: {exc}"
    if not isinstance(result, dict):
        return None, f"MetadataExtractionQuery result is not a JSON object: {json.dumps(result)}"
    keys: dict[str, str] = {}
    for name in partition_key_names(dest.prefix):
        value = result.get(name)
        if value is None or value == "":
            return None, f"The partition key '{name}' is missing or null in the MetadataExtractionQuery result"
        keys[name] = value if isinstance(value, str) else json.dumps(value)
    return keys, None


@functools.lru_cache(maxsize=4096)
def _bucket_id(items: tuple[tuple[str, str], ...]) -> str:
    """A data buffer's id from its sorted partition keys (``data:`` + their JSON), memoised: a
    stream has few partitions, and json.dumps was 10% of a partitioned record's cost."""
    return "data:" + json.dumps(dict(items), sort_keys=True)


def error_record(data: bytes, arrival: float, message: str) -> bytes:
    """One error record, newline-terminated ("Handle data delivery failure" format)."""
    now_ms = int(time.time() * 1000)
    return (json.dumps({
        "attemptsMade": 1,
        "arrivalTimestamp": int(arrival * 1000),
        "errorCode": PARTITIONING_ERROR_CODE,
        "errorMessage": message,
        "attemptEndingTimestamp": now_ms,
        "rawData": base64.b64encode(data).decode(),
    }, separators=(",", ":")) + "\n").encode()


def add(backend: FirehoseBackend, stream: DeliveryStream, dest: Destination, data: bytes, arrival: float) -> None:
    """Buffer one accepted record (partitioned if dynamic partitioning is on); deliver what is full."""
    keys, failure = partition(dest, data)
    if failure is not None:
        bucket_id, payload, error_type = f"error:{PARTITIONING_FAILED}", error_record(data, arrival, failure), \
            PARTITIONING_FAILED
        log.info("firehose %s: a record (%d bytes) failed partitioning: %s; it goes to the error prefix",
                 stream.delivery_stream_name, len(data), failure)
    else:
        bucket_id = _bucket_id(tuple(sorted(keys.items())))
        payload = data + (dest.delimiter or b"")
        error_type = None
    held = buffers(stream)
    buffer = held.get(bucket_id)
    if buffer is not None and buffer.size + len(payload) > dest.size_bytes:
        deliver(backend, stream, dest, bucket_id)
        buffer = held.get(bucket_id)
    if buffer is None:
        buffer = held[bucket_id] = Buffer(dest.bucket, _new_key(stream, dest, arrival, partition_keys=keys,
                                                                error_type=error_type),
                                          error=error_type is not None)
    buffer.records.append(payload)
    buffer.arrivals.append(arrival)
    buffer.size += len(payload)
    if buffer.size >= dest.size_bytes:
        deliver(backend, stream, dest, bucket_id)


def deliver(backend: FirehoseBackend, stream: DeliveryStream, dest: Destination, bucket_id: str) -> bool:
    """Write buffer ``bucket_id`` of ``stream`` as one S3 object; True when delivered (the buffer is
    then gone), False when the write failed (the buffer stays, retried after :data:`RETRY_SECONDS`)."""
    buffer = buffers(stream)[bucket_id]
    body = b"".join(buffer.records)
    if dest.compression == "GZIP":
        body = gzip.compress(body, mtime=int(buffer.first_arrival))
    name = stream.delivery_stream_name
    try:
        s3_backends[backend.account_id][backend.partition].put_object(buffer.bucket, buffer.key, body)
    except Exception as exc:  # noqa: BLE001 - Firehose keeps the data and retries whatever the cause
        buffer.failures += 1
        buffer.retry_at = time.time() + RETRY_SECONDS
        if buffer.failures == 1:
            log.warning("firehose %s: cannot deliver %d records to s3://%s/%s (%s); retrying every %.0f s",
                        name, len(buffer.records), buffer.bucket, buffer.key, exc, RETRY_SECONDS)
        _metrics(backend, name, [("DeliveryToS3.Success", 0.0, "None")])
        return False
    del buffers(stream)[bucket_id]
    now = time.time()
    log.info("firehose %s: delivered %d records (%d bytes) to s3://%s/%s", name, len(buffer.records), len(body),
             buffer.bucket, buffer.key)
    if not buffer.error:
        _metrics(backend, name, [("DeliveryToS3.Records", float(len(buffer.records)), "Count"),
                                 ("DeliveryToS3.Bytes", float(len(body)), "Bytes"),
                                 ("DeliveryToS3.Success", 1.0, "None"),
                                 ("DeliveryToS3.DataFreshness", max(0.0, now - buffer.first_arrival), "Seconds")])
    return True


def deliver_due(backend: FirehoseBackend, stream: DeliveryStream, *, everything: bool = False) -> int:
    """Deliver the buffers of ``stream`` whose interval has passed (``everything``: all); returns how many."""
    dest = destination(stream)
    if dest is None:
        return 0
    now = time.time()
    done = 0
    for bucket_id, buffer in list(buffers(stream).items()):
        if not everything and (now - buffer.first_arrival < dest.interval or now < buffer.retry_at):
            continue
        done += deliver(backend, stream, dest, bucket_id)
    return done


def incoming(backend: FirehoseBackend, stream: DeliveryStream, records: int, size: int) -> None:
    _metrics(backend, stream.delivery_stream_name, [("IncomingRecords", float(records), "Count"),
                                                    ("IncomingBytes", float(size), "Bytes")])


def _metrics(backend: FirehoseBackend, stream_name: str, values: list[tuple[str, float, str]]) -> None:
    """Put ``(metric, value, unit)`` in moto's CloudWatch backend of the stream's account and region."""
    stamp = datetime.now(UTC).replace(tzinfo=None)
    data = [{"MetricName": metric, "Value": value, "Unit": unit, "Timestamp": stamp,
             "Dimensions": [{"Name": "DeliveryStreamName", "Value": stream_name}]} for metric, value, unit in values]
    cloudwatch_backends[backend.account_id][backend.region_name].put_metric_data(NAMESPACE, data)


def _streams() -> list[tuple[FirehoseBackend, DeliveryStream]]:
    out = []
    for account in list(firehose_backends.values()):
        for backend in list(account.values()):
            for stream in list(backend.delivery_streams.values()):
                if stream.__dict__.get("localaws_buffers"):
                    out.append((backend, stream))
    return out


def buffered_records() -> int:
    """Records held in buffers, over every stream."""
    with LOCK:
        return sum(len(b.records) for _, s in _streams() for b in buffers(s).values())


class Flusher:
    """The background delivery of buffers whose interval has passed, and the delivery of every
    buffer at stop.

    :param guard: a context manager factory held around each delivery (localaws/server.py passes
        its snapshot lock's shared side, so a snapshot never sees half a delivery).
    :param delivered: called (outside ``guard``) after deliveries, to make them durable.
    """

    def __init__(self) -> None:
        self._guard: Callable[[], AbstractContextManager[Any]] = nullcontext
        self._delivered: Callable[[], None] = lambda: None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, guard: Callable[[], AbstractContextManager[Any]], delivered: Callable[[], None]) -> None:
        self._guard, self._delivered = guard, delivered
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="localaws-firehose", daemon=True)
        self._thread.start()

    def tick(self, *, everything: bool = False) -> int:
        """Deliver what is due (``everything``: all buffers) now; returns the objects written."""
        done = 0
        with self._guard(), LOCK:
            for backend, stream in _streams():
                done += deliver_due(backend, stream, everything=everything)
        return done

    def _loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                if self.tick():
                    self._delivered()
            except Exception:  # noqa: BLE001 - keep delivering; the next tick tries again
                log.exception("firehose delivery failed")

    def stop(self) -> int:
        """Stop the thread and deliver every buffer (localaws stop); returns the objects written."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._guard = nullcontext
        done = self.tick(everything=True)
        if done:
            log.info("firehose: delivered %d buffered object(s) at stop", done)
        return done


FLUSHER = Flusher()
