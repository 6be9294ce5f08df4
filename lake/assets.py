"""The lake's data assets, declared once: what the daily DAG's tasks read and write.

Used as the tasks' inlets/outlets so Airflow's UI shows the lineage bronze -> silver (+
quarantine) -> gold -> catalog tables. URIs are the data's real locations (``s3://``) and, for
catalog tables, ``glue://<database>/<table>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk import Asset

from lake.settings import Settings


@dataclass(frozen=True)
class LakeAssets:
    """The assets of one fact dataset (fields named by layer)."""

    bronze: Asset
    silver: Asset
    quarantine: Asset
    gold_fact: Asset
    gold_daily: Asset
    catalog_silver: Asset
    catalog_gold_fact: Asset
    catalog_gold_daily: Asset


def for_settings(s: Settings) -> LakeAssets:
    """The assets for the settings' dataset and buckets (no I/O)."""
    d = s.dataset
    return LakeAssets(
        bronze=Asset(name=f"bronze.{d}", uri=f"s3://{s.bronze_bucket}/{d}/", group="bronze"),
        silver=Asset(name=f"silver.{d}", uri=s.silver_path, group="silver"),
        quarantine=Asset(name=f"quarantine.{d}", uri=f"s3://{s.silver_bucket}/{s.quarantine_prefix}/{d}/",
                         group="quarantine"),
        gold_fact=Asset(name=f"gold.{d}", uri=f"{s.gold_path}{d}/", group="gold"),
        gold_daily=Asset(name="gold.carrier_daily", uri=f"{s.gold_path}carrier_daily/", group="gold"),
        catalog_silver=Asset(name=f"{s.silver_database}.{d}", uri=f"glue://{s.silver_database}/{d}", group="catalog"),
        catalog_gold_fact=Asset(name=f"{s.gold_database}.{d}", uri=f"glue://{s.gold_database}/{d}", group="catalog"),
        catalog_gold_daily=Asset(name=f"{s.gold_database}.carrier_daily", uri=f"glue://{s.gold_database}/carrier_daily",
                                 group="catalog"),
    )
