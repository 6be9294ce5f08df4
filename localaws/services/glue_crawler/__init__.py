"""localaws's Glue crawlers: S3 targets -> tables and partitions in moto's Glue catalog.

StartCrawler runs the crawl on a background thread. It lists each ``S3Targets`` path in moto's
in-memory S3 (never over HTTP), groups the objects into tables, infers each table's schema and
writes tables and partitions into the Glue catalog that ``GetTable`` and Athena read. States:
RUNNING -> STOPPING -> READY, ``LastCrawl.Status`` SUCCEEDED / FAILED / CANCELLED.

A package in moto's layout:

* :mod:`.inference` - what one object holds (Parquet, CSV/TSV/pipe, JSON, gzip'ed) and one
  schema for a table's objects;
* :mod:`.grouping` - the objects under a target -> tables and partitions (AWS's layout rules);
* :mod:`.models` - the crawl (:class:`LocalCrawl`) and writing its tables into the catalog;
  ``models.MIN_CRAWL_SECONDS`` makes every crawl last at least that long (for tests);
* :mod:`.responses` - the API: :func:`install` patches moto's crawler model and responses,
  :func:`recover_after_restart` fails crawls a restart cut off.

docs/localaws.md ("Glue crawlers") documents the behaviour.
"""

from localaws.services.glue_crawler.models import LocalCrawl
from localaws.services.glue_crawler.responses import install, recover_after_restart

__all__ = ["LocalCrawl", "install", "recover_after_restart"]
