"""OpenLineage extractors for the provider operators of the daily DAG (``[openlineage] extractors``,
set by :func:`lake.lineage.airflow_config`): what each task read and wrote, named by
:class:`lake.layout.Layout` as :mod:`lake.lineage` says, with the day's counts.

==================  ==============================  ===================================  ===============================
task                operator (extractor)            inputs                               outputs
==================  ==============================  ===================================  ===============================
wait_for_bronze     S3KeySensor (BronzeSensor...)   each key it waited for: the zip and  -
                                                    the manifest
extract             LambdaInvokeFunctionOperator    the bronze zip (``inputStatistics``  silver ``dt=<ds>`` and
                    (ExtractorLambda...)            rowCount = rows read, size = zip     quarantine ``dt=<ds>``
                                                    bytes), the manifest                 (``outputStatistics`` rowCount
                                                                                         = rows written / rejected)
transform           GlueJobOperator (GoldJob...)    silver ``dt=<ds>``, the reference    each gold table's ``dt=<ds>``
                                                    root (``--dimensions_path``)         (rowCount = the rows the Glue
                                                                                         job logged)
crawl_silver,       GlueCrawlerOperator             the crawled partitions               the catalog tables (Glue
crawl_gold          (Crawler...)                                                         names, ``symlinks``, rowCount)
data_quality.*      AthenaOperator (the provider's  the tables the SQL reads (Athena     the results folder
                    own facets)                     names, schema, symlinks)
data_quality.       @task (DataQuality...)          the gold fact table with a           -
evaluate                                            ``dataQualityAssertions`` facet:
                                                    one assertion per check (success =
                                                    no violating row, actual = rows)
==================  ==============================  ===================================  ===============================

Counts come from the run's XComs (the extractor's result, ``transform``'s ``gold_rows``,
``check_extract``, ``data_quality.evaluate``'s ``violations``), read in the task's own process after
its ``post_execute``: no AWS call. START events carry the same datasets without counts (a crawl's
inputs need the day, which a START event does not have: its outputs only). An operator of another
DAG (names that match no dataset of ``LAKE_DAILY_DATASETS``) gets nothing from these extractors, so
the provider falls back to its inlets and outlets as usual.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    input_statistics_input_dataset,
    output_statistics_output_dataset,
    symlinks_dataset,
)

from lake import contracts, events, lineage, pipeline
from lake.layout import Layout
from lake.settings import Settings
from lake.settings import get as get_settings


@cache
def _layouts(settings_json: str) -> tuple[Layout, ...]:
    s = Settings.model_validate_json(settings_json)
    return tuple(Layout(s, contracts.load(d)) for d in s.daily_dataset_names)


def layouts() -> tuple[Layout, ...]:
    """The layouts of the daily datasets (``LAKE_DAILY_DATASETS``), contracts read once per process
    and settings."""
    return _layouts(get_settings().model_dump_json())


def _input(uri: str, rows: int | None = None, size: int | None = None) -> InputDataset:
    ns, name = lineage.s3_dataset(uri)
    facets = {}
    if rows is not None:
        facets["inputStatistics"] = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
            rowCount=rows, size=size)
    return InputDataset(namespace=ns, name=name, inputFacets=facets)


def _output(uri: str, rows: int | None = None) -> OutputDataset:
    ns, name = lineage.s3_dataset(uri)
    return OutputDataset(namespace=ns, name=name, outputFacets=_stats(rows))


def _stats(rows: int | None) -> dict:
    return {} if rows is None else {
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)}


def catalog_table(L: Layout, database: str, table: str, location: str) -> dict[str, Any]:
    """A Glue table's dataset fields: ``namespace``, ``name`` (:func:`lake.lineage.glue_table`) and
    ``facets`` (``symlinks``: the Athena name, type TABLE, and the table's S3 location, type LOCATION)."""
    ns, name = lineage.glue_table(L.settings, database, table)
    a_ns, a_name = lineage.athena_table(L.settings, database, table)
    s_ns, s_name = lineage.s3_dataset(location)
    links = symlinks_dataset.SymlinksDatasetFacet(identifiers=[
        symlinks_dataset.Identifier(namespace=a_ns, name=a_name, type="TABLE"),
        symlinks_dataset.Identifier(namespace=s_ns, name=s_name, type="LOCATION")])
    return {"namespace": ns, "name": name, "facets": {"symlinks": links}}


def _ds(task_instance: Any) -> str | None:
    return task_instance.get_template_context()["ds"] if task_instance is not None else None


class _LakeExtractor(BaseExtractor):
    """One lineage for START (``task_instance`` None: no counts) and COMPLETE / FAIL."""

    def lineage(self, task_instance: Any) -> OperatorLineage | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _execute_extraction(self) -> OperatorLineage | None:
        return self.lineage(None)

    def extract_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        return self.lineage(task_instance)

    def extract_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        return self.lineage(task_instance)


class BronzeSensorExtractor(_LakeExtractor):
    """``S3KeySensor``: its inputs are the keys it waited for (rendered ``bucket_key`` in
    ``bucket_name``, or full ``s3://`` keys); a wildcard key names no dataset."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["S3KeySensor"]

    def lineage(self, task_instance: Any) -> OperatorLineage | None:
        op = self.operator
        keys = [op.bucket_key] if isinstance(op.bucket_key, str) else list(op.bucket_key)
        uris = [k if k.startswith("s3://") else f"s3://{op.bucket_name}/{k}"
                for k in keys if not getattr(op, "wildcard_match", False)]
        return OperatorLineage(inputs=[_input(u) for u in uris])


class ExtractorLambdaExtractor(_LakeExtractor):
    """``LambdaInvokeFunctionOperator`` invoking ``LAKE_LAMBDA_FUNCTION`` with a daily dataset's
    event (:meth:`lake.layout.Layout.lambda_event`): bronze zip + manifest -> silver + quarantine."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["LambdaInvokeFunctionOperator"]

    def lineage(self, task_instance: Any) -> OperatorLineage | None:
        op = self.operator
        try:
            event = json.loads(op.payload) if isinstance(op.payload, str) else dict(op.payload or {})
        except ValueError:
            return None
        L = next((x for x in layouts() if x.dataset == event.get("dataset")), None)
        if L is None or op.function_name != L.settings.lambda_function or "ds" not in event:
            return None
        ds = event["ds"]
        counts: dict[str, Any] = {}
        if task_instance is not None and (result := task_instance.xcom_pull(task_ids=task_instance.task_id)):
            try:
                counts = pipeline.parse_extract(result)
            except pipeline.ExtractCheckError:
                counts = {}
        bronze = f"s3://{L.bronze_bucket}/{L.bronze_key(ds)}"
        return OperatorLineage(
            inputs=[_input(bronze, counts.get("rows_read"), counts.get("bytes_in")),
                    _input(f"s3://{L.bronze_bucket}/{L.manifest_key(ds)}")],
            outputs=[_output(L.silver_path(ds), counts.get("rows_written")),
                     _output(L.quarantine_path(ds), counts.get("rows_rejected"))])


class GoldJobExtractor(_LakeExtractor):
    """``GlueJobOperator`` of a daily dataset's gold job (``script_args["--ds"]``): silver and the
    reference root (the job's ``--dimensions_path``: which dimensions a script reads is the
    script's own choice) -> each gold table's partition."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["GlueJobOperator"]

    def lineage(self, task_instance: Any) -> OperatorLineage | None:
        op = self.operator
        L = next((x for x in layouts() if x.glue_job == op.job_name), None)
        ds = (op.script_args or {}).get("--ds")
        if L is None or not ds:
            return None
        rows = (task_instance.xcom_pull(task_ids=task_instance.task_id, key="gold_rows") or {}
                if task_instance is not None else {})
        return OperatorLineage(
            inputs=[_input(L.silver_path(ds)), _input(L.reference_root)],
            outputs=[_output(L.gold_path(t, ds), rows.get(t)) for t in L.gold_tables])


class CrawlerExtractor(_LakeExtractor):
    """``GlueCrawlerOperator`` of a daily dataset's silver or gold crawler (``config["Name"]``): the
    day's partitions -> the catalog tables (rows: :func:`lake.events.crawled_rows`)."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["GlueCrawlerOperator"]

    def lineage(self, task_instance: Any) -> OperatorLineage | None:
        name = (self.operator.config or {}).get("Name")
        for L in layouts():
            if name in (L.silver_crawler, L.gold_crawler):
                break
        else:
            return None
        ds = _ds(task_instance)
        if name == L.silver_crawler:
            layer, tables = "silver", [(*L.silver_catalog_table, L.silver_root, L.silver_path(ds) if ds else None)]
        else:
            layer, tables = "gold", [(db, t, L.gold_location(t), L.gold_path(t, ds) if ds else None)
                                     for db, t in L.gold_catalog_tables]
        rows = events.crawled_rows(L, task_instance, layer) if task_instance is not None else {}
        return OperatorLineage(
            inputs=[_input(part) for *_, part in tables if part],
            outputs=[OutputDataset(**catalog_table(L, db, t, root), outputFacets=_stats(rows.get((db, t))))
                     for db, t, root, _ in tables])


class DataQualityExtractor(_LakeExtractor):
    """The ``data_quality.evaluate`` task (``@task``) of a daily DAG: its input, the gold fact
    table, with a ``dataQualityAssertions`` facet from XCom ``violations``
    (:func:`lake.events.record_dq`), one assertion per check. Other ``@task`` tasks: nothing."""

    TASK_ID = "data_quality.evaluate"

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def lineage(self, task_instance: Any) -> OperatorLineage | None:
        op = self.operator
        L = next((x for x in layouts() if x.daily_dag_id == op.dag_id), None)
        if L is None or op.task_id != self.TASK_ID:
            return None
        db, table = next(x for x in L.gold_catalog_tables if x[1] == L.gold_fact_table)
        facets = {}
        violations = (task_instance.xcom_pull(task_ids=task_instance.task_id, key="violations")
                      if task_instance is not None else None)
        if violations is not None:
            facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[data_quality_assertions_dataset.Assertion(
                    assertion=check, success=n == 0, actual=str(n), expected="0", severity="error")
                    for check, n in sorted(violations.items())])
        return OperatorLineage(inputs=[InputDataset(**catalog_table(L, db, table, L.gold_location(table)),
                                                    inputFacets=facets)])
