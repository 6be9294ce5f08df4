"""The CloudTrail event store: bounded, newest last, kept on disk in the state directory.

Events are not part of the state snapshot (``state.pickle``): a snapshot is written for every
durable write, and pickling a growing event history each time would make every write slower.
Each event is appended as one JSON line to ``<state-dir>/cloudtrail/events.jsonl`` before the call
is answered (``write`` + ``flush``: a killed localaws loses nothing it answered; a machine crash
can lose what the OS had not yet written). At start the file is read back, events older than the
retention are dropped and the file is rewritten with what is kept; it is rewritten again whenever
it has grown by the max count.

Bounds (AWS keeps 90 days of management events for LookupEvents, "Working with CloudTrail Event
history", https://docs.aws.amazon.com/awscloudtrail/latest/userguide/view-cloudtrail-events.html):

* ``LOCALAWS_CLOUDTRAIL_RETENTION_DAYS`` (default 90): older events are dropped;
* ``LOCALAWS_CLOUDTRAIL_MAX_EVENTS`` (default :data:`DEFAULT_MAX_EVENTS`): beyond it the oldest are
  dropped (a localaws bound, AWS has none: an event takes ~1.4 KB on disk and ~3 KB of memory, and
  LookupEvents scans the kept events);
* ``LOCALAWS_CLOUDTRAIL=0`` turns recording off.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from localaws.runtime import _env_float, log

FILE = Path("cloudtrail") / "events.jsonl"
#: Events kept at most (``LOCALAWS_CLOUDTRAIL_MAX_EVENTS``): ~30 MB on disk, ~60 MB of memory.
DEFAULT_MAX_EVENTS = 20_000


class EventStore:
    """Recorded events (dicts made by :func:`localaws.services.cloudtrail.records.build`, each
    with a ``seq`` number), oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: deque[dict[str, Any]] = deque()
        self._seq = 0
        self._file: IO[str] | None = None
        self._path: Path | None = None
        self._appended = 0
        self.configure()

    def configure(self, max_events: int | None = None, retention_days: float | None = None,
                  enabled: bool | None = None) -> None:
        """Set the bounds (``None``: from the environment, see the module docstring).

        :raises ValueError: a bound that is not a positive number.
        """
        self.max_events = int(max_events if max_events is not None
                              else _env_float("LOCALAWS_CLOUDTRAIL_MAX_EVENTS", DEFAULT_MAX_EVENTS))
        self.retention_days = (retention_days if retention_days is not None
                               else _env_float("LOCALAWS_CLOUDTRAIL_RETENTION_DAYS", 90.0))
        if self.max_events <= 0 or self.retention_days <= 0:
            raise ValueError(f"CloudTrail bounds must be positive: max events {self.max_events}, "
                             f"retention {self.retention_days:g} days")
        self.enabled = enabled if enabled is not None else os.environ.get("LOCALAWS_CLOUDTRAIL", "1") != "0"
        with self._lock:
            self._trim(time.time())

    # -- lifecycle
    def open(self, state_dir: Path | None) -> None:
        """Start recording; with a state dir, load its events and append new ones to its file."""
        with self._lock:
            self._events.clear()
            self._seq = 0
            self._path = state_dir / FILE if state_dir else None
            if self._path is None:
                return
            self._path.parent.mkdir(parents=True, exist_ok=True)
            bad = 0
            if self._path.exists():
                with open(self._path, encoding="utf-8") as fh:
                    for number, line in enumerate(fh, 1):
                        try:
                            event = json.loads(line)
                            self._seq = max(self._seq, int(event["seq"]))
                        except (ValueError, KeyError, TypeError):
                            bad += 1  # a line cut short by a kill mid-write
                            continue
                        self._events.append(event)
            if bad:
                log.warning("%s: %d unreadable CloudTrail event line(s) skipped", self._path, bad)
            self._trim(time.time())
            self._rewrite()
            if self._events:
                log.info("restored %d CloudTrail events from %s", len(self._events), self._path)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._path = None

    def _rewrite(self) -> None:
        assert self._path is not None
        if self._file is not None:
            self._file.close()
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(event, separators=(",", ":"), default=str) + "\n" for event in self._events)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)
        self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for appends, closed in close()
        self._appended = 0

    # -- writing
    def append(self, event: dict[str, Any]) -> None:
        """Keep ``event`` (gives it the next ``seq``); on disk before this returns, with a state dir."""
        with self._lock:
            self._seq += 1
            event["seq"] = self._seq
            self._events.append(event)
            self._trim(event["time"])
            if self._file is not None:
                self._file.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
                self._file.flush()
                self._appended += 1
                if self._appended >= self.max_events:
                    self._rewrite()

    def _trim(self, now: float) -> None:
        while len(self._events) > self.max_events:
            self._events.popleft()
        horizon = now - self.retention_days * 86400
        while self._events and self._events[0]["time"] < horizon:
            self._events.popleft()

    # -- reading
    def newest_first(self) -> Iterator[dict[str, Any]]:
        """The kept events within the retention, newest first (a copy: safe while recording goes on)."""
        with self._lock:
            self._trim(time.time())
            events = list(self._events)
        return reversed(events)

    def __len__(self) -> int:
        return len(self._events)


STORE = EventStore()
