"""docker-compose.yaml: the shape issue #5 asks for, checked by parsing it; and `docker compose
config` accepts it where the docker client with the compose plugin exists."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import REPO

COMPOSE = REPO / "docker-compose.yaml"
AIRFLOW_SERVICES = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_and_mounts(compose):
    services = compose["services"]
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "localaws"}
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        env = svc["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        conn = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
        assert conn["extra"]["endpoint_url"] == "http://localaws:4566", name
        targets = {v.split(":")[1] for v in svc["volumes"] if v.startswith("./")}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/project/include",
                "/opt/airflow/project/lake"} <= targets, name
        assert svc["image"].startswith("apache/airflow:3."), name
        for source in (v.split(":")[0] for v in svc["volumes"] if v.startswith("./")):
            assert (REPO / source).is_dir(), f"{name} mounts {source}, which does not exist"
    assert services["localaws"]["ports"] == ["127.0.0.1:4566:4566"]  # loopback only on the host
    # The init service runs migrations; the long-running services wait for it.
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_openlineage_options_are_the_lakes(compose, monkeypatch):
    """Every Airflow service sends OpenLineage events as make demo does (lake.lineage.airflow_config
    for the compose file's events file), with the provider pinned as in requirements.txt."""
    from pathlib import Path

    from lake import lineage, settings

    path = "/opt/airflow/logs/openlineage-events.jsonl"
    monkeypatch.setenv("LAKE_LINEAGE_FILE", path)
    monkeypatch.delenv("LAKE_LINEAGE_TRANSPORT", raising=False)
    monkeypatch.delenv("LAKE_LINEAGE_URL", raising=False)
    monkeypatch.setattr(Path, "mkdir", lambda *a, **k: None)  # transport() makes the file's folder
    expected = lineage.airflow_config(settings.get())
    assert json.loads(expected["AIRFLOW__OPENLINEAGE__TRANSPORT"])["log_file_path"] == path
    pin = next(line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
               if line.startswith("apache-airflow-providers-openlineage=="))
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        assert {k: str(v) for k, v in env.items() if k.startswith("AIRFLOW__OPENLINEAGE__")} == expected, name
        assert pin in env["_PIP_ADDITIONAL_REQUIREMENTS"].split(), name
    volumes = {v.split(":")[1] for v in compose["services"]["airflow-scheduler"]["volumes"]}
    assert str(Path(path).parent) in volumes  # the logs volume: the folder exists in every container


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_available(), reason="no docker client with the compose plugin on this machine")
def test_docker_compose_config_accepts_it():
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
