"""Dataset contracts: what a dataset's files look like and what a valid row is.

A contract is a JSON file under ``include/datasets/<name>.json``. This module reads and checks
them with the standard library only, so the extractor's Lambda zip bundles it unchanged (as
``contracts.py`` next to ``handler.py``, with the JSON files under ``datasets/``).

A contract holds:

* ``columns``: ordered list of ``{"name", "type", "required", "min", "max", "format",
  "description"}``. ``type`` is one of :data:`TYPES`. The source file's header must name exactly
  these columns, each once, in any order (columns are matched by name; silver keeps this order;
  a missing, unexpected or repeated column fails the file). ``required`` columns must be
  non-null; ``min``/``max`` are hard bounds (inclusive) a value must meet to be loaded;
  ``format`` is the strptime format of a ``timestamp``/``date`` column.
* ``partition_key``: the Hive partition of the silver/gold tables (``dt``, a date ``YYYY-MM-DD``).
* ``source``: how the source delivers a day: ``prefix``, ``file_name``, ``member_name`` and
  ``manifest_name`` templates with the placeholders ``{date}`` (``YYYY-MM-DD``) and
  ``{yyyymmdd}``; CSV ``delimiter`` and ``null_values``; ``day_columns`` (which columns hold the
  row's year/month/day, checked against the day of the file); ``local_timestamps`` (column ->
  IANA zone of its local clock, used when a replay shifts dates); ``replay`` (the packaged file
  the replay reads).
* ``start_date`` (facts with a daily DAG, streams with an hourly one): the DAG's first day, ``YYYY-MM-DD``.
* ``unique_key``, ``dimensions`` (``{"dataset", "role", "on": {fact column: dimension column},
  "enforce"}``: ``enforce`` means every non-null key must exist in the dimension; a dimension
  reached through another one, as TPC-H's nation through customer, names that one in ``via``
  and its ``on`` keys are that dimension's columns, e.g. ``{"dataset": "nation", "via":
  "customer", "on": {"c_nationkey": "n_nationkey"}}``; such a dimension cannot be ``enforce``:
  the fact's checks see only its own columns) and ``gold``: ``tables`` (name -> keys and
  not-null columns checked by the Athena data-quality queries; the first is the fact's gold
  table), ``plausible`` bounds, and ``headline``: which report rows make the run summary's
  headline (see ``lake.pipeline.headline_for``).

The rule for ``required`` in ``flights``: a column is required when a row without it cannot be
placed or identified (date, carrier, flight number, airports, scheduled times, distance).
Columns that are null for cancelled or diverted flights (dep_time, dep_delay, arr_time,
arr_delay, air_time, tailnum) are optional: cancelled flights must reach gold so they are
counted (cancelled = ``dep_time`` is null).
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

#: Column types a contract may use, with their Athena (Trino/Hive DDL) spelling.
TYPES: dict[str, str] = {
    "int8": "tinyint",
    "int16": "smallint",
    "int32": "int",
    "int64": "bigint",
    "float64": "double",
    "string": "string",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
INTEGER_TYPES = {"int8": (-(2**7), 2**7 - 1), "int16": (-(2**15), 2**15 - 1), "int32": (-(2**31), 2**31 - 1),
                 "int64": (-(2**63), 2**63 - 1)}
KINDS = ("fact", "dimension", "stream")
_PLACEHOLDERS = {"date", "yyyymmdd"}
_ENV_DIR = "LAKE_DATASETS_DIR"


class ContractError(ValueError):
    """A contract file is missing, is not valid JSON, or breaks a rule of this module."""


@dataclass(frozen=True)
class Column:
    """One column: ``name``, ``type`` (a key of :data:`TYPES`), ``required`` (non-null),
    inclusive hard bounds ``min``/``max`` (numbers, or None), strptime ``format`` for dates and
    timestamps, and a ``description``."""

    name: str
    type: str
    required: bool = False
    min: float | None = None
    max: float | None = None
    format: str | None = None
    description: str = ""

    @property
    def athena_type(self) -> str:
        """The column's type in Athena DDL (``int``, ``string``, ``timestamp`` ...)."""
        return TYPES[self.type]


@dataclass(frozen=True)
class Dimension:
    """A reference from a fact to a dimension dataset: ``on`` maps fact columns (or, with
    ``via``, the columns of the dimension ``via``) to dimension columns; ``enforce`` asks the
    data-quality checks to require every key to be known."""

    dataset: str
    role: str
    on: dict[str, str]
    enforce: bool = False
    via: str | None = None


@dataclass(frozen=True)
class Source:
    """How the source delivers the dataset (see the module docstring for the fields)."""

    format: str
    compression: str
    prefix: str
    file_name: str = ""
    member_name: str | None = None
    manifest_name: str | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    header: bool = True
    null_values: tuple[str, ...] = ("",)
    allow_empty: bool = False
    day_columns: dict[str, str] = field(default_factory=dict)
    local_timestamps: dict[str, str] = field(default_factory=dict)
    replay: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Contract:
    """A dataset contract (``include/datasets/<name>.json``), checked by :func:`parse`."""

    name: str
    kind: str
    description: str
    grain: str
    schedule: str
    columns: tuple[Column, ...]
    source: Source
    partition_key: dict[str, str] | None = None
    unique_key: tuple[str, ...] = ()
    dimensions: tuple[Dimension, ...] = ()
    silver: dict[str, Any] = field(default_factory=dict)
    gold: dict[str, Any] = field(default_factory=dict)
    start_date: date | None = None
    stream: dict[str, Any] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        """Column names in source-header order."""
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        """Names of the columns that must be non-null, in column order."""
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        """The column called ``name``. :raises KeyError: when there is none."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"dataset {self.name} has no column {name!r}")

    @property
    def table(self) -> str:
        """Name of the silver table and of its folder (``silver.table``, default the dataset name)."""
        return str(self.silver.get("table", self.name))

    @property
    def partition_name(self) -> str:
        """Name of the Hive partition column (``dt``)."""
        return (self.partition_key or {}).get("name", "dt")

    def _fill(self, template: str, day: date | str) -> str:
        d = day if isinstance(day, date) else date.fromisoformat(str(day))
        return template.format(date=d.isoformat(), yyyymmdd=d.strftime("%Y%m%d"))

    def day_keys(self, date_text: str, yyyymmdd_text: str) -> tuple[str, str]:
        """Bronze keys (file, manifest) with ``{date}`` and ``{yyyymmdd}`` replaced by the given
        texts, unchecked: e.g. the Jinja forms ``"{{ ds }}"``/``"{{ ds_nodash }}"`` an S3 sensor
        renders. :raises ContractError: when the source has no manifest."""
        if not self.source.manifest_name:
            raise ContractError(f"dataset {self.name}: source has no manifest_name")
        return tuple(template.format(date=date_text, yyyymmdd=yyyymmdd_text)  # type: ignore[return-value]
                     for template in (self.source.prefix + self.source.file_name,
                                      self.source.prefix + self.source.manifest_name))

    def source_key(self, day: date | str) -> str:
        """Bronze object key of ``day``'s file, e.g. ``flights/ingest_date=2013-01-05/flights_20130105.csv.zip``."""
        return self._fill(self.source.prefix + self.source.file_name, day)

    def manifest_key(self, day: date | str) -> str:
        """Bronze object key of ``day``'s manifest. :raises ContractError: when the source has none."""
        if not self.source.manifest_name:
            raise ContractError(f"dataset {self.name}: source has no manifest_name")
        return self._fill(self.source.prefix + self.source.manifest_name, day)

    def member_name(self, day: date | str) -> str:
        """Name of the CSV inside ``day``'s zip, e.g. ``flights_20130105.csv``."""
        return self._fill(self.source.member_name or self.source.file_name, day)

    def partition_prefix(self, day: date | str, prefix: str = "") -> str:
        """Key prefix of ``day``'s partition: ``[prefix/]<table>/dt=YYYY-MM-DD/``."""
        d = day if isinstance(day, date) else date.fromisoformat(str(day))
        return self.partition_path(d.isoformat(), prefix)

    def partition_path(self, value: str, prefix: str = "") -> str:
        """Key prefix of the partition ``value`` (unchecked text, e.g. ``"{{ ds }}"``):
        ``[prefix/]<table>/<partition_name>=<value>/``."""
        return f"{self.table_path(prefix)}{self.partition_name}={value}/"

    def table_path(self, prefix: str = "") -> str:
        """Key prefix of the table's folder: ``[prefix/]<table>/``."""
        base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        return f"{base}{self.table}/"


def _fail(name: str, message: str) -> ContractError:
    return ContractError(f"dataset contract {name}: {message}")


def _check_template(name: str, what: str, template: str | None) -> None:
    if template is None:
        return
    for _, fname, _, _ in string.Formatter().parse(template):
        if fname is not None and fname not in _PLACEHOLDERS:
            raise _fail(name, f"source.{what} {template!r} uses {{{fname}}}; allowed: {sorted(_PLACEHOLDERS)}")


def parse(doc: dict[str, Any]) -> Contract:
    """Build a :class:`Contract` from a decoded JSON document and check it.

    :raises ContractError: unknown kind or column type, duplicate columns, a required, key,
        day or dimension column that does not exist, ``min`` > ``max``, a template placeholder
        other than ``{date}``/``{yyyymmdd}``, a fact without a partition key or manifest, a
        ``via`` dimension not listed before, or enforced.
    """
    name = doc.get("name")
    if not name or not isinstance(name, str):
        raise ContractError("dataset contract without a name")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise _fail(name, f"kind {kind!r} is not one of {KINDS}")
    raw_cols = doc.get("columns") or []
    if not raw_cols:
        raise _fail(name, "no columns")
    columns = []
    for raw in raw_cols:
        unknown = set(raw) - {"name", "type", "required", "min", "max", "format", "description"}
        if unknown:
            raise _fail(name, f"column {raw.get('name')!r} has unknown keys {sorted(unknown)}")
        col = Column(**raw)
        if col.type not in TYPES:
            raise _fail(name, f"column {col.name!r} has type {col.type!r}; allowed: {sorted(TYPES)}")
        if col.min is not None and col.max is not None and col.min > col.max:
            raise _fail(name, f"column {col.name!r} has min {col.min} > max {col.max}")
        if col.type in ("timestamp", "date") and not col.format:
            raise _fail(name, f"column {col.name!r} of type {col.type} needs a strptime format")
        columns.append(col)
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise _fail(name, f"duplicate column names in {names}")
    src = dict(doc.get("source") or {})
    if "null_values" in src:
        src["null_values"] = tuple(src["null_values"])
    try:
        source = Source(**src)
    except TypeError as exc:
        raise _fail(name, f"source: {exc}") from exc
    for what in ("prefix", "file_name", "member_name", "manifest_name"):
        _check_template(name, what, getattr(source, what))
    for role, col in source.day_columns.items():
        if role not in ("year", "month", "day") or col not in names:
            raise _fail(name, f"source.day_columns {role!r}: {col!r} must map year/month/day to a column")
    for col in source.local_timestamps:
        if col not in names:
            raise _fail(name, f"source.local_timestamps names unknown column {col!r}")
    unique_key = tuple(doc.get("unique_key") or ())
    for col in unique_key:
        if col not in names:
            raise _fail(name, f"unique_key column {col!r} does not exist")
    dims = []
    for raw in doc.get("dimensions") or []:
        dim = Dimension(**raw)
        if dim.via is not None:  # its columns are checked against the via dimension by load_all
            if dim.via not in {d.dataset for d in dims}:
                raise _fail(name, f"dimension {dim.dataset} ({dim.role}) is reached via {dim.via!r}, "
                                  f"which is not listed before it")
            if dim.enforce:
                raise _fail(name, f"dimension {dim.dataset} ({dim.role}) is reached via {dim.via}: it cannot be "
                                  f"enforced by the fact's checks")
        else:
            for fact_col in dim.on:
                if fact_col not in names:
                    raise _fail(name, f"dimension {dim.dataset} ({dim.role}) joins on unknown column {fact_col!r}")
        dims.append(dim)
    partition_key = doc.get("partition_key")
    start_date = None
    if doc.get("start_date") is not None:
        try:
            start_date = date.fromisoformat(str(doc["start_date"]))
        except ValueError as exc:
            raise _fail(name, f"start_date {doc['start_date']!r} is not a date YYYY-MM-DD") from exc
    if kind == "fact":
        if not partition_key or not partition_key.get("name"):
            raise _fail(name, "a fact needs a partition_key")
        if not source.manifest_name:
            raise _fail(name, "a fact's source needs a manifest_name")
    stream = dict(doc.get("stream") or {})
    if kind == "stream":
        _check_stream(name, stream, {c.name: c for c in columns})
    elif stream:
        raise _fail(name, f"only a stream dataset has a 'stream' section (kind is {kind})")
    return Contract(
        name=name,
        kind=kind,
        description=doc.get("description", ""),
        grain=doc.get("grain", ""),
        schedule=doc.get("schedule", ""),
        columns=tuple(columns),
        source=source,
        partition_key=partition_key,
        unique_key=unique_key,
        dimensions=tuple(dims),
        silver=dict(doc.get("silver") or {}),
        gold=dict(doc.get("gold") or {}),
        start_date=start_date,
        stream=stream,
    )


def _check_stream(name: str, stream: dict[str, Any], columns: dict[str, Column]) -> None:
    for role in ("event_id", "event_time"):
        if stream.get(role) not in columns:
            raise _fail(name, f"stream.{role} {stream.get(role)!r} must name a column")
    if columns[stream["event_time"]].type != "timestamp":
        raise _fail(name, f"stream.event_time column {stream['event_time']!r} must be a timestamp")
    keys = stream.get("partition_keys")
    if not keys or not isinstance(keys, dict) or not all(isinstance(v, str) and v for v in keys.values()):
        raise _fail(name, "stream.partition_keys must map partition names to jq expressions")


def default_directory() -> Path:
    """Where contracts live: ``$LAKE_DATASETS_DIR``, else ``datasets/`` next to this module (the
    Lambda zip's layout), else the repository's ``include/datasets``."""
    env = os.environ.get(_ENV_DIR)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / "datasets", here.parent / "include" / "datasets"):
        if candidate.is_dir():
            return candidate
    raise ContractError(f"no datasets directory next to {here} and {_ENV_DIR} is not set")


def load(name: str, directory: str | Path | None = None) -> Contract:
    """Load and check the contract ``<directory>/<name>.json``.

    :raises ContractError: when the file is missing, is not JSON, or is not a valid contract.
    """
    path = Path(directory) if directory else default_directory()
    file = path / f"{name}.json"
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ContractError(f"dataset contract {name}: no file {file}") from exc
    except json.JSONDecodeError as exc:
        raise ContractError(f"dataset contract {name}: {file} is not valid JSON: {exc}") from exc
    contract = parse(doc)
    if contract.name != name:
        raise ContractError(f"dataset contract {file} is named {contract.name!r}, expected {name!r}")
    return contract


def load_all(directory: str | Path | None = None) -> dict[str, Contract]:
    """Every contract in the directory, by name, with cross-references checked.

    :raises ContractError: as :func:`load`, and when a fact refers to a dimension dataset that
        has no contract, or joins on a column the dimension (or its ``via`` dimension) does not have.
    """
    path = Path(directory) if directory else default_directory()
    contracts = {p.stem: load(p.stem, path) for p in sorted(path.glob("*.json"))}
    for contract in contracts.values():
        for dim in contract.dimensions:
            target = contracts.get(dim.dataset)
            if target is None:
                raise _fail(contract.name, f"dimension {dim.dataset!r} has no contract in {path}")
            for dim_col in dim.on.values():
                if dim_col not in target.column_names:
                    raise _fail(contract.name, f"dimension {dim.dataset} has no column {dim_col!r}")
            if dim.via is not None:
                via = contracts.get(dim.via)
                for via_col in dim.on:
                    if via is None or via_col not in via.column_names:
                        raise _fail(contract.name, f"dimension {dim.dataset} ({dim.role}): {dim.via} has no "
                                                   f"column {via_col!r}")
    return contracts
