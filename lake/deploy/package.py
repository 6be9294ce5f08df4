"""Reproducible deployment zips.

``build_lambda()`` packs the extractor: every module of ``include/lambdas/extractor/``
(``handler.py``, the entry point, and the modules it imports, all at the zip's root),
``contracts.py`` (``lake/contracts.py`` unchanged) and ``datasets/*.json``
(``include/datasets/``). Entries are sorted, every timestamp is 1980-01-01 00:00 (the zip
epoch), permissions are 0644 and compression is deflate level 9, so the same sources always
give the same bytes and the same ``CodeSha256``. pyarrow and boto3 are not in the zip: on AWS
they come from the managed "AWS SDK for pandas" layer.

``build_registry()`` packs the delivery registry the same way: the ``*.py`` of
``include/lambdas/registry/`` (``handler.py``); boto3 is the runtime's. Its rules travel in its
environment (``lake.deploy.provision.registry``), so it ships no contract.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXTRACTOR_DIR = REPO / "include" / "lambdas" / "extractor"
REGISTRY_DIR = REPO / "include" / "lambdas" / "registry"
DATASETS_DIR = REPO / "include" / "datasets"
CONTRACTS_MODULE = Path(__file__).resolve().parents[1] / "contracts.py"
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Package:
    """A built zip: ``data`` (bytes), ``files`` (archive names, sorted), ``sha256`` (hex) and
    ``code_sha256`` (base64 of the digest, as Lambda reports ``CodeSha256``)."""

    data: bytes
    files: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def code_sha256(self) -> str:
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


def deterministic_zip(files: dict[str, bytes]) -> bytes:
    """Zip ``files`` (archive name -> bytes) with sorted entries and fixed metadata."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name], compresslevel=9)
    return buf.getvalue()


def extractor_files() -> dict[str, bytes]:
    """The extractor's files by archive name (``handler.py`` and the other ``*.py`` of
    ``include/lambdas/extractor/``, ``contracts.py``, ``datasets/*.json``)."""
    files = {path.name: path.read_bytes() for path in sorted(EXTRACTOR_DIR.glob("*.py"))}
    files["contracts.py"] = CONTRACTS_MODULE.read_bytes()
    for path in sorted(DATASETS_DIR.glob("*.json")):
        files[f"datasets/{path.name}"] = path.read_bytes()
    return files


def build_lambda(out: str | Path | None = None) -> Package:
    """Build the extractor's zip; write it to ``out`` when given.

    :raises lake.contracts.ContractError: when a contract in ``include/datasets`` is invalid
        (the zip must never ship a broken contract).
    """
    from lake import contracts

    contracts.load_all(DATASETS_DIR)
    return _package(extractor_files(), out)


def _package(files: dict[str, bytes], out: str | Path | None) -> Package:
    """The deterministic zip of ``files`` (archive name -> bytes), written to ``out`` when given."""
    package = Package(deterministic_zip(files), tuple(sorted(files)))
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(package.data)
    return package


def registry_files() -> dict[str, bytes]:
    """The registry's files by archive name (the ``*.py`` of ``include/lambdas/registry/``)."""
    return {path.name: path.read_bytes() for path in sorted(REGISTRY_DIR.glob("*.py"))}


def build_registry(out: str | Path | None = None) -> Package:
    """Build the delivery registry's zip (deterministic, as :func:`build_lambda`); write it to ``out`` when given."""
    return _package(registry_files(), out)
