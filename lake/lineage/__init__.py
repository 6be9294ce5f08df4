"""OpenLineage for the daily DAGs: the dataset names, and the Airflow configuration that turns the
``apache-airflow-providers-openlineage`` listener on.

The provider's listener emits a START and a COMPLETE (or FAIL) ``RunEvent`` for every task and for
the DAG run. Its input and output datasets come from an extractor per operator class: the amazon
provider's ``AthenaOperator`` has its own (``get_openlineage_facets_on_complete``); the lake adds
the others in :mod:`lake.lineage.extractors`, named here from :class:`lake.layout.Layout`.

Dataset names follow the OpenLineage naming spec (https://openlineage.io/docs/spec/naming):

======================  ==============================================  =====================================
what                    namespace                                       name
======================  ==============================================  =====================================
S3 object or folder     ``s3://<bucket>``                               the key (a folder without its ``/``),
                                                                        e.g. ``flights/dt=2013-01-05``
Glue catalog table      ``arn:aws:glue:<region>:<account>``             ``table/<database>/<table>``
Athena table            ``awsathena://athena.<region>.amazonaws.com``   ``<catalog>.<database>.<table>``
                                                                        (emitted by AthenaOperator)
======================  ==============================================  =====================================

A Glue table dataset carries a ``symlinks`` facet naming the same table as Athena does and its S3
location, so a lineage server can join the crawler's output to the Athena queries' inputs.

Configuration (:func:`airflow_config`): the ``LAKE_LINEAGE_*`` settings (lake/settings.py) become
Airflow's ``[openlineage]`` options as ``AIRFLOW__OPENLINEAGE__*`` environment variables, which
``make demo`` (lake/dev/demo.py) and the tests (tests/conftest.py) set; elsewhere (MWAA: the
environment's Airflow configuration options) set the same options. This module imports no Airflow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lake.layout import split_uri
from lake.settings import Settings

#: Airflow's DAG-run default catalog for Athena (the ``awsathena`` names' first part).
ATHENA_CATALOG = "AwsDataCatalog"

#: The custom extractors, ``[openlineage] extractors`` (module path; the provider imports them).
EXTRACTORS = tuple(f"lake.lineage.extractors.{name}" for name in (
    "BronzeSensorExtractor", "ExtractorLambdaExtractor", "GoldJobExtractor", "CrawlerExtractor",
    "DataQualityExtractor"))


def s3_dataset(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/`` -> ``("s3://bucket", "key")`` (OpenLineage S3 naming; a folder's trailing
    ``/`` dropped). :raises ValueError: when not an ``s3://`` URI."""
    bucket, key = split_uri(uri)
    return f"s3://{bucket}", key.rstrip("/")


def glue_table(s: Settings, database: str, table: str) -> tuple[str, str]:
    """A Glue Data Catalog table: ``("arn:aws:glue:<region>:<account>", "table/<db>/<table>")``."""
    return f"arn:aws:glue:{s.region}:{s.account_id}", f"table/{database}/{table}"


def athena_table(s: Settings, database: str, table: str) -> tuple[str, str]:
    """The same table as Athena (and the amazon provider's AthenaOperator) names it:
    ``("awsathena://athena.<region>.amazonaws.com", "AwsDataCatalog.<db>.<table>")``."""
    return f"awsathena://athena.{s.region}.amazonaws.com", f"{ATHENA_CATALOG}.{database}.{table}"


def events_file(s: Settings, airflow_home: str | Path | None = None) -> Path:
    """The file transport's file: ``LAKE_LINEAGE_FILE``, else ``<AIRFLOW_HOME>/openlineage/events.jsonl``
    (``airflow_home``, else ``$AIRFLOW_HOME``, else ``~/airflow`` as Airflow's own default)."""
    if s.lineage_file:
        return Path(s.lineage_file)
    home = airflow_home or os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow"
    return Path(home) / "openlineage" / "events.jsonl"


def transport(s: Settings, airflow_home: str | Path | None = None) -> dict | None:
    """The OpenLineage client's transport config (``[openlineage] transport``), or None when off.

    ``LAKE_LINEAGE_TRANSPORT``: ``file`` (``{"type": "file", "log_file_path", "append": true}``: one
    JSON event a line, :func:`events_file`; its folder is created), ``console`` (events in the task
    logs), ``http`` (``{"type": "http", "url": LAKE_LINEAGE_URL, "endpoint": LAKE_LINEAGE_ENDPOINT}``,
    e.g. Marquez's ``/api/v1/lineage``), ``off``; unset: ``http`` when ``LAKE_LINEAGE_URL`` is set,
    else ``file``.

    :raises ValueError: for ``http`` without ``LAKE_LINEAGE_URL``.
    """
    kind = s.lineage_transport or ("http" if s.lineage_url else "file")
    if kind == "off":
        return None
    if kind == "console":
        return {"type": "console"}
    if kind == "http":
        if not s.lineage_url:
            raise ValueError("LAKE_LINEAGE_TRANSPORT=http needs LAKE_LINEAGE_URL (e.g. http://localhost:5000 for Marquez)")
        return {"type": "http", "url": s.lineage_url, "endpoint": s.lineage_endpoint}
    path = events_file(s, airflow_home)
    path.parent.mkdir(parents=True, exist_ok=True)
    return {"type": "file", "log_file_path": str(path), "append": True}


def airflow_config(s: Settings, airflow_home: str | Path | None = None) -> dict[str, str]:
    """Airflow's ``[openlineage]`` options for the settings, as environment variables:
    ``AIRFLOW__OPENLINEAGE__TRANSPORT`` (:func:`transport`, JSON), ``__NAMESPACE``
    (``LAKE_LINEAGE_NAMESPACE``), ``__EXTRACTORS`` (:data:`EXTRACTORS`) and ``__EXECUTE_IN_THREAD``
    (events are sent from a thread of the task process, not a fork of it: the provider's
    documented alternative that never duplicates the task runner's connection to its supervisor);
    with ``LAKE_LINEAGE_TRANSPORT=off`` only ``AIRFLOW__OPENLINEAGE__DISABLED=True``.
    Options: https://airflow.apache.org/docs/apache-airflow-providers-openlineage/stable/configurations-ref.html
    """
    config = transport(s, airflow_home)
    if config is None:
        return {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    return {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(config),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": s.lineage_namespace,
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": ";".join(EXTRACTORS),
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
    }


def read_events(path: str | Path) -> list[dict]:
    """The events a file transport wrote (one JSON object a line), in order.

    :raises ValueError: naming the file and line of a line that is not JSON.
    """
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not a JSON OpenLineage event: {exc}") from exc
    return out
