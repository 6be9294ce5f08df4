"""Send records to a Kinesis Data Firehose delivery stream as the Kinesis Data Generator does, with
the faults a lake must survive: ``lake stream send``.

:class:`Sender` paces records (``rate`` records per second, default 100 as the KDG's "Constant"
mode; with ``speedup`` a record carrying an event time is due ``(event_time - first event time) /
speedup`` seconds after the start, and never sooner than the rate allows), and every
``batch_interval`` seconds sends what is due with ``PutRecordBatch`` in batches within Firehose's
limits (https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html: 500
records, 4 MiB per call, 1,000 KiB = 1,024,000 bytes per record; a bigger record is a
:class:`RecordTooLarge` error before anything of it is sent).

Each record is one line: the generator appends ``\\n`` (Firehose adds no delimiter: "Data delivery
format", https://docs.aws.amazon.com/firehose/latest/dev/basic-deliver.html), so the delivered
objects are newline-delimited JSON.

Failures: a record that PutRecordBatch answers with an ``ErrorCode`` (``FailedPutCount`` > 0), or
every record of a call refused with a retryable error (throttling, service unavailable), is sent
again after an exponential backoff (``backoff`` s, doubling, at most :data:`MAX_BACKOFF`, with full
jitter: the AWS Architecture Blog's "Exponential Backoff And Jitter"), up to ``max_attempts`` times;
then it is counted ``failed``, never dropped silently. Other errors (validation, no such stream)
are raised.

Faults the lake must handle, as fractions of the records: ``duplicates`` resends a record (same
bytes, so the same ``event_id``) :data:`DUPLICATE_DELAY` s after it; ``late`` holds a record back
``late_delay`` s past its due time (with ``speedup``, that is ``late_delay * speedup`` s of event
time). Draws come from ``random.Random(seed)``.

Limits: ``count`` records (the originals; duplicates come on top), or ``duration`` seconds of
generation; either way the late, duplicate and retried records still due are sent before the
end. :attr:`Sender.stats` holds the counts (:class:`Stats`).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

#: PutRecordBatch's limits (API Reference, PutRecordBatch; "Amazon Data Firehose quota").
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1_024_000
#: Seconds after its original that a duplicate is sent.
DUPLICATE_DELAY = 1.0
#: The longest wait before a retry, seconds.
MAX_BACKOFF = 10.0
#: Error codes of a whole call that are retried (the records are resent); others are raised.
RETRYABLE = {"ServiceUnavailableException", "ThrottlingException", "InternalFailure", "ServiceUnavailable",
             "LimitExceededException", "SlowDown", "RequestTimeout", "InternalServerError"}

#: Seconds of float rounding tolerated when comparing due times (n additions of 1 / rate).
_EPSILON = 1e-6


class RecordTooLarge(ValueError):
    """A record over Firehose's 1,000 KiB (1,024,000 bytes, the appended newline included)."""


@dataclass(frozen=True)
class Record:
    """One record to send: ``data`` (bytes, ending in ``\\n``), its ``event_time`` (POSIX seconds,
    or None: paced by the rate only) and a ``label`` naming it in errors (event id, template render)."""

    data: bytes
    event_time: float | None
    label: str


@dataclass
class Stats:
    """Counts of a send. ``records``: originals generated; ``sent``: records Firehose accepted
    (originals, duplicates and late ones); ``failed``: records given up after ``max_attempts``;
    ``retried``: resend attempts; ``duplicated`` / ``late``: records resent / held back;
    ``batches``: PutRecordBatch calls; ``bytes``: accepted bytes; ``elapsed``: seconds;
    ``pending``: records still waiting (non-zero only when interrupted); ``errors``: error code ->
    count of failed attempts; ``batch_log``: ``(seconds since start, records accepted)`` per call."""

    records: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    duplicated: int = 0
    late: int = 0
    batches: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    pending: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    batch_log: list[tuple[float, int]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Accepted records per second over the send."""
        return self.sent / self.elapsed if self.elapsed else 0.0

    def summary(self) -> dict[str, Any]:
        """The counts as a dict (no batch log), rate rounded to 0.1 records/s."""
        return {"records": self.records, "sent": self.sent, "failed": self.failed, "retried": self.retried,
                "duplicated": self.duplicated, "late": self.late, "batches": self.batches, "bytes": self.bytes,
                "elapsed_s": round(self.elapsed, 3), "rate_per_s": round(self.rate, 1), "pending": self.pending,
                "errors": dict(self.errors)}


def line(data: bytes | str, label: str) -> bytes:
    """``data`` as one newline-terminated record.

    :raises ValueError: when ``data`` holds a newline (it would split the record in the delivered file).
    :raises RecordTooLarge: when the record with its newline is over :data:`MAX_RECORD_BYTES`.
    """
    raw = data.encode() if isinstance(data, str) else data
    if b"\n" in raw:
        raise ValueError(f"{label}: the record holds a newline; records are newline-delimited, one per line")
    raw += b"\n"
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordTooLarge(f"{label}: the record is {len(raw):,} bytes; a Firehose record is at most 1,000 KiB "
                             f"({MAX_RECORD_BYTES:,} bytes, the newline included)")
    return raw


def event_records(events: Iterable[dict[str, Any]], event_time: Callable[[dict[str, Any]], float] | None = None,
                  id_field: str = "event_id") -> Iterator[Record]:
    """Events (dicts) as compact JSON records, each with its event time (``event_time(event)``)."""
    for event in events:
        label = f"event {event.get(id_field)}"
        yield Record(line(json.dumps(event, separators=(",", ":")), label),
                     event_time(event) if event_time else None, label)


def template_records(template: Any) -> Iterator[Record]:
    """Endless renders of a :class:`lake.stream.templates.RecordTemplate`, one record each."""
    for n in itertools.count(1):
        label = f"record template {template.path}, render {n}"
        yield Record(line(template.render(), label), None, label)


@dataclass(order=True)
class _Item:
    due: float
    seq: int
    record: Record = field(compare=False)
    attempts: int = field(default=0, compare=False)


class Sender:
    """Send ``records`` to delivery stream ``stream`` with the client ``firehose`` (module docstring).

    :param rate: records per second (> 0).
    :param speedup: event seconds per wall second (records with an event time), or None.
    :param count: at most this many records (originals); ``duration``: stop generating after this
        many seconds. Neither: until ``records`` ends (a template's never do: use one, or Ctrl-C).
    :param duplicates: fraction of records also sent a second time; ``late``: fraction held back
        ``late_delay`` seconds.
    :param progress: called with :attr:`stats` after each PutRecordBatch.
    :param clock: ``time.monotonic`` by default; ``sleep``: ``time.sleep`` (tests may pass fakes).
    :raises ValueError: a parameter out of range.
    """

    def __init__(self, firehose: Any, stream: str, records: Iterable[Record], *, rate: float = 100.0,
                 speedup: float | None = None, count: int | None = None, duration: float | None = None,
                 duplicates: float = 0.0, late: float = 0.0, late_delay: float = 60.0, seed: int | None = None,
                 batch_interval: float = 0.2, max_attempts: int = 8, backoff: float = 0.1,
                 progress: Callable[[Stats], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        for name, value in (("rate", rate), ("batch_interval", batch_interval), ("backoff", backoff)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name, value in (("duplicates", duplicates), ("late", late)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} is a fraction of the records, 0..1; got {value}")
        if speedup is not None and not speedup > 0:
            raise ValueError(f"speedup must be > 0, got {speedup}")
        if count is not None and count < 0 or duration is not None and duration < 0 or late_delay < 0:
            raise ValueError("count, duration and late_delay must be >= 0")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.firehose, self.stream = firehose, stream
        self._records = iter(records)
        self.rate, self.speedup, self.count, self.duration = rate, speedup, count, duration
        self.duplicates, self.late, self.late_delay = duplicates, late, late_delay
        self.batch_interval, self.max_attempts, self.backoff = batch_interval, max_attempts, backoff
        self.progress, self.clock, self.sleep = progress, clock, sleep
        self.rng = random.Random(seed)
        self.stats = Stats()
        self._heap: list[_Item] = []
        self._seq = itertools.count()
        self._next: Record | None = None
        self._next_due = 0.0
        self._last_due: float | None = None
        self._first_event: float | None = None
        self._exhausted = False
        self._start = 0.0

    # --- scheduling ---------------------------------------------------------------------------
    def _push(self, due: float, record: Record, attempts: int = 0) -> None:
        heapq.heappush(self._heap, _Item(due, next(self._seq), record, attempts))

    def _peek(self) -> bool:
        """Load the next original record and its due time; False when there is none."""
        if self._next is not None:
            return True
        if self._exhausted:
            return False
        if self.count is not None and self.stats.records >= self.count:
            self._exhausted = True
            return False
        record = next(self._records, None)
        if record is None:
            self._exhausted = True
            return False
        due = self._start if self._last_due is None else self._last_due + 1.0 / self.rate
        if self.speedup and record.event_time is not None:
            if self._first_event is None:
                self._first_event = record.event_time
            due = max(due, self._start + (record.event_time - self._first_event) / self.speedup)
        if self.duration is not None and due > self._start + self.duration + _EPSILON:
            self._exhausted = True
            return False
        self._next, self._next_due = record, due
        return True

    def _generate(self, now: float) -> None:
        """Schedule every original due by ``now`` (with its duplicate and lateness draws)."""
        while self._peek() and self._next_due <= now + _EPSILON:
            record, due = self._next, self._next_due
            self._next, self._last_due = None, due
            self.stats.records += 1
            if self.late and self.rng.random() < self.late:
                self.stats.late += 1
                self._push(due + self.late_delay, record)
            else:
                self._push(due, record)
            if self.duplicates and self.rng.random() < self.duplicates:
                self.stats.duplicated += 1
                self._push(due + DUPLICATE_DELAY, record)

    def _due(self, now: float) -> list[_Item]:
        out = []
        while self._heap and self._heap[0].due <= now + _EPSILON:
            out.append(heapq.heappop(self._heap))
        return out

    # --- sending ------------------------------------------------------------------------------
    def _batches(self, items: list[_Item]) -> Iterator[list[_Item]]:
        batch: list[_Item] = []
        size = 0
        for item in items:
            n = len(item.record.data)
            if batch and (len(batch) == MAX_BATCH_RECORDS or size + n > MAX_BATCH_BYTES):
                yield batch
                batch, size = [], 0
            batch.append(item)
            size += n
        if batch:
            yield batch

    def _retry(self, item: _Item, code: str, now: float) -> None:
        self.stats.errors[code] = self.stats.errors.get(code, 0) + 1
        attempts = item.attempts + 1
        if attempts >= self.max_attempts:
            self.stats.failed += 1
            return
        self.stats.retried += 1
        wait = self.rng.uniform(0, min(MAX_BACKOFF, self.backoff * 2 ** (attempts - 1)))
        self._push(now + wait, item.record, attempts)

    def _put(self, batch: list[_Item]) -> None:
        try:
            answer = self.firehose.put_record_batch(DeliveryStreamName=self.stream,
                                                    Records=[{"Data": i.record.data} for i in batch])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in RETRYABLE:
                raise
            now = self.clock()
            for item in batch:
                self._retry(item, code, now)
            return
        now = self.clock()
        accepted = 0
        for item, response in zip(batch, answer["RequestResponses"], strict=True):
            if response.get("ErrorCode"):
                self._retry(item, response["ErrorCode"], now)
            else:
                accepted += 1
                self.stats.bytes += len(item.record.data)
        self.stats.sent += accepted
        self.stats.batches += 1
        self.stats.batch_log.append((now - self._start, accepted))

    def run(self) -> Stats:
        """Send until the records (or ``count`` / ``duration``) end and nothing is pending; returns
        :attr:`stats`. On KeyboardInterrupt, ``stats.pending`` counts what was not sent, then it re-raises.

        :raises RecordTooLarge: a record over 1,000 KiB (nothing of it is sent).
        :raises botocore.exceptions.ClientError: a non-retryable error of PutRecordBatch.
        """
        self._start = tick = self.clock()
        try:
            while True:
                now = self.clock()
                self._generate(now)
                for batch in self._batches(self._due(now)):
                    self._put(batch)
                    if self.progress:
                        self.stats.elapsed = self.clock() - self._start
                        self.progress(self.stats)
                if not self._heap and not self._peek():
                    break
                upcoming = [self._heap[0].due] if self._heap else []
                if self._next is not None:
                    upcoming.append(self._next_due)
                tick = max(tick + self.batch_interval, min(upcoming))
                wait = tick - self.clock()
                if wait > 0:
                    self.sleep(wait)
        except KeyboardInterrupt:
            self.stats.pending = len(self._heap)
            raise
        finally:
            self.stats.elapsed = self.clock() - self._start
        return self.stats
