"""The Lake plugin: dashboards in the Airflow UI.

An ``AirflowPlugin`` with a FastAPI app mounted at ``/lake`` in Airflow 3's API server
(``fastapi_apps``) and an external view "Lake" in the navigation (``external_views``, shown in the
UI's frame at ``/plugin/lake``). The app is ``lake.dashboards.web`` (routes, login, pages); it reads
the dashboards' Parquet cache (``lake_dashboards_refresh``) through the ``aws_default`` connection.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from lake.dashboards import web
from lake.settings import get as get_settings


def _s3():
    """An S3 client from the ``aws_default`` connection (endpoint, credentials, region)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_default", region_name=get_settings().region).get_conn()


app = web.create_app(web.Reader(_s3, get_settings()))


class LakePlugin(AirflowPlugin):
    """Mounts the Lake app at ``/lake`` and adds "Lake" to the navigation."""

    name = "lake"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{"app": app, "url_prefix": "/lake", "name": "Lake dashboards"}]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {"name": "Lake", "href": "/lake/", "destination": "nav", "url_route": "lake", "nav_top_level": True}]
