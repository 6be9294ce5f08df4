"""Helpers of the lake tests: a real day replayed into bronze, the extractor's event for it."""

from __future__ import annotations

from datetime import date

from lake import contracts, source
from lake.layout import Layout
from lake.settings import Settings


def replay_day(s3, bucket: str, day: str) -> dict:
    """Replay the real flights of ``day`` (``YYYY-MM-DD``) into ``bucket``; returns its manifest."""
    flights = contracts.load("flights")
    d = date.fromisoformat(day)
    return source.replay(flights, d, d, bucket=bucket, s3=s3)[0]


def extractor_event(buckets: dict[str, str], ds: str, **extra) -> dict:
    """The extractor's event for day ``ds`` on the ``buckets`` fixture's buckets (silver under
    ``silver/``, quarantine under ``quarantine/``) from the layout, plus ``extra`` keys."""
    s = Settings(bronze_bucket=buckets["bronze"], silver_bucket=buckets["silver"], silver_prefix="silver",
                 quarantine_prefix="quarantine")
    return {**Layout(s, contracts.load("flights")).lambda_event(ds), **extra}
