"""The Glue crawler API as localaws answers it: patches of moto's Glue crawler model and responses.

:func:`install` makes StartCrawler really crawl (:mod:`localaws.services.glue_crawler.models`),
StopCrawler stop it, the crawler's ``State`` and ``LastCrawl`` follow its crawls, and adds
UpdateCrawler and GetCrawlerMetrics (missing from moto). :func:`recover_after_restart` fails the
crawls a restart cut off.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from moto.core.responses import ActionResult
from moto.glue import models as glue_models
from moto.glue import responses as glue_responses
from moto.glue.exceptions import CrawlerNotRunningException, CrawlerRunningException

from localaws.runtime import RUNTIME
from localaws.services.glue_crawler.models import LocalCrawl, _crawl, _metrics, _now


def _start_crawler(self: glue_models.FakeCrawler) -> None:
    if self.crawls and self.crawls[-1].status in ("RUNNING", "STOPPING"):
        raise CrawlerRunningException(f"Crawler with name {self.name} has already started")
    crawl = LocalCrawl(self.name)
    self.crawls.append(crawl)
    RUNTIME.spawn(f"glue-crawler-{self.name}", _crawl, self, crawl)


def _stop_crawler(self: glue_models.FakeCrawler) -> None:
    if not self.crawls or self.crawls[-1].status != "RUNNING":
        raise CrawlerNotRunningException(f"Crawler with name {self.name} isn't running")
    crawl = self.crawls[-1]
    crawl.stop_requested = True
    crawl.stop_requested_at = time.monotonic()
    crawl.status = "STOPPING"


def _status(self: glue_models.FakeCrawler) -> str:
    if not self.crawls:
        return "READY"
    status = self.crawls[-1].status
    return status if status in ("RUNNING", "STOPPING") else "READY"


_original_as_dict = glue_models.FakeCrawler.as_dict


def _as_dict(self: glue_models.FakeCrawler) -> dict[str, Any]:
    data = _original_as_dict(self)
    data.pop("LastCrawl", None)
    finished = [c for c in self.crawls if getattr(c, "finished", False)]
    if finished:
        last = finished[-1]
        data["LastCrawl"] = {
            "Status": last.last_crawl_status,
            "LogGroup": last.log_group,
            "LogStream": last.log_stream,
            "MessagePrefix": last.message_prefix,
            "StartTime": last.start_time,
        }
        if last.error_message:
            data["LastCrawl"]["ErrorMessage"] = last.error_message
    if self.crawls and not getattr(self.crawls[-1], "finished", True):
        data["CrawlElapsedTime"] = int((_now() - self.crawls[-1].start_time).total_seconds() * 1000)
    data = {k: v for k, v in data.items() if v is not None}
    return data


_UPDATABLE = {
    "Role": "role", "DatabaseName": "database_name", "Description": "description", "Targets": "targets",
    "Schedule": "schedule", "Classifiers": "classifiers", "TablePrefix": "table_prefix",
    "SchemaChangePolicy": "schema_change_policy", "RecrawlPolicy": "recrawl_policy",
    "LineageConfiguration": "lineage_configuration", "Configuration": "configuration",
    "CrawlerSecurityConfiguration": "crawler_security_configuration",
}


def _update_crawler(self: glue_models.GlueBackend, name: str, changes: dict[str, Any]) -> None:
    """UpdateCrawler: fields present in the request replace the crawler's; others stay.

    :raises CrawlerNotFoundException / EntityNotFoundException: unknown crawler.
    :raises CrawlerRunningException: the crawler is running.
    """
    crawler = self.get_crawler(name)
    if crawler.status != "READY":
        raise CrawlerRunningException("Cannot update Crawler while running. Please stop crawl or wait until "
                                      "it completes to update.")
    for key, attr in _UPDATABLE.items():
        if key in changes:
            setattr(crawler, attr, changes[key])
    crawler.version += 1
    crawler.last_updated = _now()


def _get_crawler_metrics(self: glue_models.GlueBackend, names: list[str] | None) -> list[dict[str, Any]]:
    """GetCrawlerMetrics for ``names`` (all crawlers when empty); unknown names are skipped."""
    out = []
    for crawler in self.crawlers.values():
        if names and crawler.name not in names:
            continue
        metrics = _metrics(crawler)
        runtimes = metrics["runtimes"]
        running = crawler.status != "READY"
        out.append({
            "CrawlerName": crawler.name,
            "TimeLeftSeconds": 0.0,
            "StillEstimating": running,
            "LastRuntimeSeconds": round(runtimes[-1], 3) if runtimes else 0.0,
            "MedianRuntimeSeconds": round(statistics.median(runtimes), 3) if runtimes else 0.0,
            "TablesCreated": metrics["TablesCreated"],
            "TablesUpdated": metrics["TablesUpdated"],
            "TablesDeleted": metrics["TablesDeleted"],
        })
    return out


def _resp_update_crawler(self: glue_responses.GlueResponse) -> ActionResult:
    params = dict(self.parameters)
    self.glue_backend.update_crawler(params.pop("Name"), params)
    return ActionResult({})


def _resp_get_crawler_metrics(self: glue_responses.GlueResponse) -> ActionResult:
    metrics = self.glue_backend.get_crawler_metrics(self._get_param("CrawlerNameList") or [])
    max_results = self._get_int_param("MaxResults") or len(metrics) or 1
    start = int(self._get_param("NextToken") or 0)
    page = metrics[start:start + max_results]
    out: dict[str, Any] = {"CrawlerMetricsList": page}
    if start + max_results < len(metrics):
        out["NextToken"] = str(start + max_results)
    return ActionResult(out)


def install() -> None:
    """Patch moto's Glue crawler model and add UpdateCrawler / GetCrawlerMetrics (idempotent)."""
    glue_models.FakeCrawler.start_crawler = _start_crawler  # type: ignore[method-assign]
    glue_models.FakeCrawler.stop_crawler = _stop_crawler  # type: ignore[method-assign]
    glue_models.FakeCrawler.status = property(_status)  # type: ignore[assignment,method-assign]
    glue_models.FakeCrawler.as_dict = _as_dict  # type: ignore[method-assign]
    glue_models.GlueBackend.update_crawler = _update_crawler  # type: ignore[attr-defined]
    glue_models.GlueBackend.get_crawler_metrics = _get_crawler_metrics  # type: ignore[attr-defined]
    glue_responses.GlueResponse.update_crawler = _resp_update_crawler  # type: ignore[attr-defined]
    glue_responses.GlueResponse.get_crawler_metrics = _resp_get_crawler_metrics  # type: ignore[attr-defined]


def recover_after_restart() -> int:
    """Mark crawls that were RUNNING or STOPPING at the last snapshot as FAILED; returns how many.

    Their threads died with the previous server; the crawler is READY again and can be started.
    """
    count = 0
    for account in glue_models.glue_backends.values():
        for backend in account.values():
            for crawler in backend.crawlers.values():
                for crawl in getattr(crawler, "crawls", []):
                    if isinstance(crawl, LocalCrawl) and not crawl.finished:
                        crawl.error_message = "localaws restarted while this crawl was running"
                        crawl.status = "FAILED"
                        crawl.end_time = _now()
                        count += 1
    return count
