"""Dashboards over the lake's gold tables: the files (spec, expr), the reading side's SQL (query),
the SPICE-like Parquet cache (cache). See docs/dashboards.md."""
