"""What one daily run costs on AWS: the published prices, in one place, and the estimate.

Prices are AWS's on-demand list prices for us-east-1 (x86 Lambda), as published on the pages in
:data:`SOURCES` (read 2026-12); other regions differ by a few percent. Change them here only.

==========================  ===================================  =========================================
what                        price (USD)                          billing rule (source)
==========================  ===================================  =========================================
Athena SQL query            5.00 per TB scanned                  bytes scanned rounded up to the MB, at least
                                                                 10 MB per query; DDL and failed queries free
                                                                 (athena)
Glue Spark job (Glue 5.0)   0.44 per DPU-hour                    per second, 1-minute minimum per run (Glue
                                                                 2.0 and later); G.1X = 1 DPU, G.2X = 2 (glue)
Lambda duration             0.0000166667 per GB-second           duration rounded up to the ms x memory (GB)
Lambda requests             0.20 per million                     each invocation (lambda)
==========================  ===================================  =========================================

Units: TB = 2**40 bytes and MB = 2**20 bytes (AWS bills data in binary units: its pricing
calculator converts with 1024); GB of Lambda memory = MB / 1024. Not counted: the crawlers (0.44
per DPU-hour with a 10-minute minimum, but AWS reports no DPU usage per crawl), S3 requests and
storage, CloudWatch, SNS (cents per month at this volume).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

#: Where each price comes from.
SOURCES = {
    "athena": "https://aws.amazon.com/athena/pricing/",
    "glue": "https://aws.amazon.com/glue/pricing/",
    "lambda": "https://aws.amazon.com/lambda/pricing/",
}
MB = 2**20
TB = 2**40
ATHENA_USD_PER_TB = 5.00
ATHENA_MIN_BYTES_PER_QUERY = 10 * MB
GLUE_USD_PER_DPU_HOUR = 0.44
GLUE_MIN_SECONDS = 60
#: DPUs per worker of each Glue worker type (glue pricing page, "Worker types").
GLUE_DPU_PER_WORKER = {"G.025X": 0.25, "G.1X": 1, "G.2X": 2, "G.4X": 4, "G.8X": 8}
LAMBDA_USD_PER_GB_SECOND = 0.0000166667
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000


def athena_billed_bytes(scanned: int) -> int:
    """Bytes Athena bills for one SQL query that scanned ``scanned`` bytes: rounded up to the MB,
    at least 10 MB."""
    if scanned < 0:
        raise ValueError(f"bytes scanned must be >= 0, got {scanned}")
    return max(math.ceil(scanned / MB) * MB, ATHENA_MIN_BYTES_PER_QUERY)


def athena_usd(scanned_per_query: Iterable[int]) -> float:
    """USD of a set of Athena SQL queries (one ``DataScannedInBytes`` each; DDL and failed
    queries must not be passed: they are free)."""
    return sum(athena_billed_bytes(b) for b in scanned_per_query) / TB * ATHENA_USD_PER_TB


def glue_dpu_hours(execution_seconds: float, workers: int, worker_type: str = "G.1X") -> float:
    """DPU-hours of one Glue 5.0 job run: workers x DPU per worker x max(seconds, 60) / 3600.

    :raises ValueError: for a worker type not in :data:`GLUE_DPU_PER_WORKER`.
    """
    if worker_type not in GLUE_DPU_PER_WORKER:
        raise ValueError(f"unknown Glue worker type {worker_type!r}; known: {sorted(GLUE_DPU_PER_WORKER)}")
    seconds = max(math.ceil(execution_seconds), GLUE_MIN_SECONDS)
    return workers * GLUE_DPU_PER_WORKER[worker_type] * seconds / 3600


def glue_usd(execution_seconds: float, workers: int, worker_type: str = "G.1X") -> float:
    """USD of one Glue job run (:func:`glue_dpu_hours` x the DPU-hour price)."""
    return glue_dpu_hours(execution_seconds, workers, worker_type) * GLUE_USD_PER_DPU_HOUR


def lambda_gb_seconds(seconds: float, memory_mb: int) -> float:
    """GB-seconds of one invocation: duration rounded up to the millisecond x memory / 1024."""
    return math.ceil(seconds * 1000) / 1000 * memory_mb / 1024


def lambda_usd(seconds: float, memory_mb: int, requests: int = 1) -> float:
    """USD of ``requests`` invocations that ran ``seconds`` in all with ``memory_mb`` of memory."""
    return lambda_gb_seconds(seconds, memory_mb) * LAMBDA_USD_PER_GB_SECOND + requests * LAMBDA_USD_PER_REQUEST


def estimate(athena_scanned: list[int], glue_seconds: float | None, glue_workers: int, glue_worker_type: str,
             lambda_seconds: float | None, lambda_memory_mb: int) -> dict[str, Any]:
    """The estimated cost of one run, from what it used.

    :param athena_scanned: ``DataScannedInBytes`` of each of the run's SQL queries.
    :param glue_seconds: the Glue job run's ``ExecutionTime`` (s); None when it did not run.
    :param lambda_seconds: the extractor's duration (s); None when it did not run.
    :returns: ``{"athena_queries", "athena_bytes_scanned", "athena_bytes_billed", "athena_usd",
        "glue_dpu_hours", "glue_usd", "lambda_gb_seconds", "lambda_usd", "total_usd"}`` (USD
        as floats, not rounded).
    """
    out: dict[str, Any] = {
        "athena_queries": len(athena_scanned), "athena_bytes_scanned": int(sum(athena_scanned)),
        "athena_bytes_billed": sum(athena_billed_bytes(b) for b in athena_scanned),
        "athena_usd": athena_usd(athena_scanned),
        "glue_dpu_hours": glue_dpu_hours(glue_seconds, glue_workers, glue_worker_type) if glue_seconds is not None
        else 0.0,
        "lambda_gb_seconds": lambda_gb_seconds(lambda_seconds, lambda_memory_mb) if lambda_seconds is not None
        else 0.0,
    }
    out["glue_usd"] = out["glue_dpu_hours"] * GLUE_USD_PER_DPU_HOUR
    out["lambda_usd"] = (lambda_usd(lambda_seconds, lambda_memory_mb) if lambda_seconds is not None else 0.0)
    out["total_usd"] = out["athena_usd"] + out["glue_usd"] + out["lambda_usd"]
    return out


def line(cost: dict[str, Any]) -> str:
    """The run summary's cost line, e.g. ``estimated cost $0.0147: Athena 9 queries, 1.2 MB scanned
    (90 MB billed) $0.0004, Glue 0.0333 DPU-h $0.0147, Lambda 4.1 GB-s $0.0001``."""
    return (f"estimated cost ${cost['total_usd']:.4f}: Athena {cost['athena_queries']} queries, "
            f"{cost['athena_bytes_scanned'] / MB:.1f} MB scanned ({cost['athena_bytes_billed'] / MB:.0f} MB billed) "
            f"${cost['athena_usd']:.4f}, Glue {cost['glue_dpu_hours']:.4f} DPU-h ${cost['glue_usd']:.4f}, "
            f"Lambda {cost['lambda_gb_seconds']:.1f} GB-s ${cost['lambda_usd']:.4f} (prices: lake/cost.py)")
