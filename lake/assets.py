"""The lake's data assets, declared once: what the daily DAG's tasks read and write.

Used as the tasks' inlets/outlets so Airflow's UI shows the lineage bronze -> silver (+
quarantine) -> gold -> catalog tables. URIs are the data's real locations (``s3://``, from
:class:`lake.layout.Layout`) and, for catalog tables, ``glue://<database>/<table>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk import Asset

from lake.layout import Layout


@dataclass(frozen=True)
class LakeAssets:
    """The assets of one fact dataset (fields named by layer; ``gold`` and ``catalog_gold``
    hold one asset per gold table of the contract, in contract order)."""

    bronze: Asset
    silver: Asset
    quarantine: Asset
    gold: tuple[Asset, ...]
    catalog_silver: Asset
    catalog_gold: tuple[Asset, ...]


def _catalog(database: str, table: str) -> Asset:
    return Asset(name=f"{database}.{table}", uri=f"glue://{database}/{table}", group="catalog")


def for_layout(layout: Layout) -> LakeAssets:
    """The assets of the layout's dataset (no I/O)."""
    d = layout.dataset
    return LakeAssets(
        bronze=Asset(name=f"bronze.{d}", uri=layout.bronze_root, group="bronze"),
        silver=Asset(name=f"silver.{d}", uri=layout.silver_root, group="silver"),
        quarantine=Asset(name=f"quarantine.{d}", uri=layout.quarantine_root, group="quarantine"),
        gold=tuple(Asset(name=f"gold.{t}", uri=layout.gold_location(t), group="gold") for t in layout.gold_tables),
        catalog_silver=_catalog(*layout.silver_catalog_table),
        catalog_gold=tuple(_catalog(db, t) for db, t in layout.gold_catalog_tables),
    )


def dashboard_cache(layout: Layout, dashboard: str) -> Asset:
    """The cached Parquet of one dashboard (what ``lake_dashboards_refresh`` writes):
    ``s3://<artifacts>/dashboards/<dashboard>/``."""
    return Asset(name=f"dashboards.{dashboard}", uri=f"{layout.dashboards_root}{dashboard}/", group="dashboards")
