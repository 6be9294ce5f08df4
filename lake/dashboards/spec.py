"""Dashboards as code: the model of ``include/dashboards/<name>.yaml``, loaded and checked.

A dashboard file declares (an example: include/dashboards/flights.yaml)::

    title: Flights
    datasets:                      # each: one Athena query over gold tables, cached as Parquet
      <dataset>:
        lake_dataset: flights      # the contract (include/datasets/) whose gold tables it reads
        query: SELECT dt, carrier, ... FROM gold.flights   # Trino; tables as gold.<gold table>
        calculated: {<name>: <expression over the query's columns and earlier fields>}
      <dataset>:                   # or: the daily DAGs' runs, live from Airflow (lake/dashboards/runs.py)
        source: airflow_runs
        lake_datasets: [flights, sales]   # default: every LAKE_DAILY_DATASETS
    filters:
      <filter>: {kind: date_range | select, column: <column>, label: ...}
    visuals:
      <visual>: {kind: kpi | line | bar | stacked_bar | table | heatmap, dataset: <dataset>, ...}

Visual encodings (dimensions are column names; measures are aggregate expressions, by name):

=============  ====================================================================
kind           fields
=============  ====================================================================
kpi            ``value`` (a measure), ``format``
line, bar,     ``x`` (dimension), ``series`` (dimension, optional), ``y`` ({name: measure}),
stacked_bar    ``format``
table          ``group_by`` (dimensions), ``measures`` ({name: measure}), ``having``
               (aggregate condition), ``order_by`` (output names, ``-name`` descending), ``limit``,
               ``links`` ({shown dimension: dimension holding its URL}; the URL column is hidden
               on the page, kept in the CSV and JSON)
heatmap        ``x``, ``y`` (dimensions), ``value`` (a measure), ``format``
=============  ====================================================================

Rules checked (beyond the shapes): names are identifiers; a query is one SELECT whose every output
is named (no ``*``), which reads only ``gold.<t>`` for gold tables ``t`` of its lake dataset's
contract and outputs the contract's partition column (``dt``); expressions follow
:mod:`lake.dashboards.expr`; a filter's column is a column of at least one dataset; a visual's
dimensions are its dataset's columns or calculated fields. :func:`check_file` reports every problem
as a :class:`Problem` with the file, the line and the field (e.g. ``visuals.delays.y.late``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError
from sqlglot import exp

from lake import contracts
from lake.dashboards import expr, runs

NAME = r"^[a-z][a-z0-9_]*$"
#: The schema name that stands for the gold database in a dataset's query.
GOLD_SCHEMA = "gold"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dataset(_Model):
    """One cached dataset: the query's outputs (:attr:`columns`) plus calculated fields."""

    source: Literal["athena"] = "athena"
    lake_dataset: str
    query: str
    calculated: dict[str, str] = Field(default_factory=dict)

    @cached_property
    def tree(self) -> exp.Select:
        """The query's sqlglot tree. :raises ValueError: when it is not a single SELECT."""
        tree = sqlglot.parse_one(self.query, read=expr.DIALECT)
        if not isinstance(tree, exp.Select):
            raise TypeError(f"the query must be one SELECT, not {type(tree).__name__}")
        return tree

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The query's output column names, in order."""
        return tuple(p.alias_or_name for p in self.tree.expressions)

    @property
    def fields(self) -> tuple[str, ...]:
        """Every name a visual may use: the query's columns, then the calculated fields."""
        return self.columns + tuple(self.calculated)


class RunsDataset(_Model):
    """The daily DAGs' runs, read live from Airflow's metadata database (:mod:`lake.dashboards.runs`,
    which says why): ``source: airflow_runs``, columns :data:`lake.dashboards.runs.COLUMNS`, plus
    calculated fields. ``lake_datasets``: whose daily DAGs (default: every ``LAKE_DAILY_DATASETS``);
    ``limit``: the newest runs read per DAG."""

    source: Literal["airflow_runs"]
    lake_datasets: list[str] = Field(default_factory=list)
    limit: int = Field(400, ge=1, le=10_000)
    calculated: dict[str, str] = Field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(runs.COLUMNS)

    @property
    def fields(self) -> tuple[str, ...]:
        return self.columns + tuple(self.calculated)


def _source(v: Any) -> str:
    return (v.get("source") if isinstance(v, dict) else getattr(v, "source", None)) or "athena"


AnyDataset = Annotated[Annotated[Dataset, Tag("athena")] | Annotated[RunsDataset, Tag("airflow_runs")],
                       Discriminator(_source)]


class DateRangeFilter(_Model):
    """``?<name>_from=YYYY-MM-DD&<name>_to=YYYY-MM-DD`` (inclusive, either optional)."""

    kind: Literal["date_range"]
    column: str
    label: str = ""


class SelectFilter(_Model):
    """``?<name>=v1&<name>=v2``: rows whose column is one of the values."""

    kind: Literal["select"]
    column: str
    label: str = ""


Filter = Annotated[DateRangeFilter | SelectFilter, Field(discriminator="kind")]
Format = Literal["integer", "number", "percent", "money"]


class _Visual(_Model):
    title: str = ""
    dataset: str | None = None
    format: Format = "number"

    def dimensions(self) -> list[str]:
        """The visual's GROUP BY columns, in output order."""
        return []

    def measures(self) -> dict[str, str]:
        """The visual's measures: output name -> aggregate expression."""
        return {}


class Kpi(_Visual):
    kind: Literal["kpi"]
    value: str

    def measures(self) -> dict[str, str]:
        return {"value": self.value}


class XY(_Visual):
    kind: Literal["line", "bar", "stacked_bar"]
    x: str
    series: str | None = None
    y: dict[str, str] = Field(min_length=1)

    def dimensions(self) -> list[str]:
        return [self.x] + ([self.series] if self.series else [])

    def measures(self) -> dict[str, str]:
        return dict(self.y)


class Table(_Visual):
    kind: Literal["table"]
    group_by: list[str] = Field(min_length=1)
    measures_: dict[str, str] = Field(alias="measures", min_length=1)
    having: str | None = None
    order_by: list[str] = Field(default_factory=list)
    limit: int = Field(100, ge=1, le=10_000)
    links: dict[str, str] = Field(default_factory=dict)

    def dimensions(self) -> list[str]:
        return list(self.group_by)

    def measures(self) -> dict[str, str]:
        return dict(self.measures_)


class Heatmap(_Visual):
    kind: Literal["heatmap"]
    x: str
    y: str
    value: str

    def dimensions(self) -> list[str]:
        return [self.x, self.y]

    def measures(self) -> dict[str, str]:
        return {"value": self.value}


Visual = Annotated[Kpi | XY | Table | Heatmap, Field(discriminator="kind")]


class Dashboard(_Model):
    """A dashboard (the module docstring gives the file's shape). ``name`` is the file's stem."""

    name: str = Field(pattern=NAME)
    title: str
    description: str = ""
    datasets: dict[str, AnyDataset] = Field(min_length=1)
    filters: dict[str, Filter] = Field(default_factory=dict)
    visuals: dict[str, Visual] = Field(min_length=1)

    def dataset_of(self, visual: str) -> str:
        """The dataset a visual reads (its ``dataset``, else the dashboard's only one)."""
        return self.visuals[visual].dataset or next(iter(self.datasets))

    def filters_for(self, dataset: str) -> dict[str, Filter]:
        """The filters that apply to a dataset (those whose column it has)."""
        fields = set(self.datasets[dataset].fields)
        return {n: f for n, f in self.filters.items() if f.column in fields}


@dataclass(frozen=True)
class Problem:
    """One error in a dashboard file: where (file, 1-based line, dotted field) and what."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field or '(file)'}: {self.message}"


class DashboardError(ValueError):
    """A dashboard file with problems (:attr:`problems`; the message lists them one a line)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


def default_directory() -> Path:
    """``include/dashboards`` of the project (next to ``include/datasets``)."""
    return contracts.default_directory().parent / "dashboards"


def _line(node: yaml.Node | None, loc: tuple) -> int:
    """1-based line of the field at ``loc`` in the composed YAML (its key's line; for a missing
    field, the line of the deepest mapping that exists)."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _semantic(d: Dashboard, known: dict[str, contracts.Contract]) -> list[tuple[tuple, str]]:
    """The rules beyond the shapes (module docstring): ``(loc, message)`` per problem."""
    out: list[tuple[tuple, str]] = []
    names = re.compile(NAME)
    for group in ("datasets", "filters", "visuals"):
        for n in getattr(d, group):
            if not names.match(n):
                out.append(((group, n), f"{n!r} is not a name (lower case letters, digits, _)"))
    fields: dict[str, set[str]] = {}
    facts = sorted(k for k, c in known.items() if c.kind == "fact")
    for name, ds in d.datasets.items():
        loc = ("datasets", name)
        if isinstance(ds, RunsDataset):
            for i, lake_ds in enumerate(ds.lake_datasets):
                if lake_ds not in facts:
                    out.append((loc + ("lake_datasets", i), f"no fact dataset {lake_ds!r}; facts: {', '.join(facts)}"))
            fields[name] = _check_calculated(ds, loc, out)
            continue
        contract = known.get(ds.lake_dataset)
        if contract is None or contract.kind != "fact":
            out.append((loc + ("lake_dataset",), f"no fact dataset {ds.lake_dataset!r}; facts: {', '.join(facts)}"))
            continue
        try:
            tree = ds.tree
        except (TypeError, sqlglot.errors.ParseError) as exc:
            out.append((loc + ("query",), f"does not parse: {str(exc).splitlines()[0]}"))
            continue
        gold = set(contract.gold.get("tables", {}))
        for table in tree.find_all(exp.Table):
            if table.db != GOLD_SCHEMA or table.name not in gold or table.catalog:
                out.append((loc + ("query",), (f"reads {table.sql(expr.DIALECT)}; only {GOLD_SCHEMA}.<t> for the "
                            f"gold tables of {contract.name}: {', '.join(sorted(gold))}")))
        for p in tree.expressions:
            if isinstance(p, exp.Star) or p.find(exp.Star) and not p.find(exp.Count):
                out.append((loc + ("query",), "name every output column (no *)"))
            elif not isinstance(p, (exp.Alias, exp.Column)):
                out.append((loc + ("query",), f"output {p.sql(expr.DIALECT)!r} needs a name (AS <name>)"))
        if len(set(ds.columns)) != len(ds.columns):
            out.append((loc + ("query",), f"duplicate output columns: {list(ds.columns)}"))
        if contract.partition_name not in ds.columns:
            out.append((loc + ("query",), (f"must output the partition column {contract.partition_name!r} "
                        "(the cache holds one Parquet object per partition)")))
        fields[name] = _check_calculated(ds, loc, out)
    for name, f in d.filters.items():
        if fields and not any(f.column in cols for cols in fields.values()):
            out.append((("filters", name, "column"), f"no dataset has column {f.column!r}"))
    for name, v in d.visuals.items():
        loc = ("visuals", name)
        if v.dataset is None and len(d.datasets) > 1:
            out.append((loc, f"name its dataset (one of {', '.join(d.datasets)})"))
            continue
        ds_name = d.dataset_of(name)
        if ds_name not in d.datasets:
            out.append((loc + ("dataset",), f"no dataset {ds_name!r}; datasets: {', '.join(d.datasets)}"))
            continue
        cols = fields.get(ds_name)
        if cols is None:
            continue
        dim_fields = {"kpi": [], "line": ["x", "series"], "bar": ["x", "series"], "stacked_bar": ["x", "series"],
                      "table": ["group_by"], "heatmap": ["x", "y"]}[v.kind]
        for field in dim_fields:
            values = getattr(v, field)
            for i, col in enumerate(values if isinstance(values, list) else [values]):
                if col is not None and col not in cols:
                    where = loc + (field, i) if isinstance(values, list) else loc + (field,)
                    out.append((where, f"unknown column {col!r}; {ds_name}'s fields: {', '.join(sorted(cols))}"))
        measure_field = {"kpi": "value", "heatmap": "value", "table": "measures"}.get(v.kind, "y")
        for m, text in v.measures().items():
            try:
                expr.parse(text, cols, aggregate=True)
            except expr.ExpressionError as exc:
                out.append((loc + ((measure_field,) if measure_field == "value" else (measure_field, m)), str(exc)))
        if isinstance(v, Table):
            if v.having:
                try:
                    expr.parse(v.having, cols, aggregate=True)
                except expr.ExpressionError as exc:
                    out.append((loc + ("having",), str(exc)))
            for shown, url in v.links.items():
                for col in (shown, url):
                    if col not in v.group_by:
                        out.append((loc + ("links", shown), f"{col!r} is not in the table's group_by"))
            outputs = set(v.group_by) | set(v.measures_)
            for i, o in enumerate(v.order_by):
                if o.lstrip("-") not in outputs:
                    out.append((loc + ("order_by", i), f"{o!r} is not an output of the table ({', '.join(sorted(outputs))})"))
    return out


def _check_calculated(ds: Dataset | RunsDataset, loc: tuple, out: list[tuple[tuple, str]]) -> set[str]:
    """Check a dataset's calculated fields (each over the columns and the fields before it), adding
    problems to ``out``; returns every field name the dataset then has."""
    known_cols = set(ds.columns)
    for field, text in ds.calculated.items():
        if field in known_cols:
            out.append((loc + ("calculated", field), f"{field!r} is already a column"))
        try:
            expr.parse(text, known_cols, aggregate=False)
        except expr.ExpressionError as exc:
            out.append((loc + ("calculated", field), str(exc)))
        known_cols.add(field)
    return known_cols


def check_text(text: str, file: str, name: str | None = None,
               known: dict[str, contracts.Contract] | None = None) -> tuple[Dashboard | None, list[Problem]]:
    """Load and check one dashboard file's text.

    :param text: the YAML text; ``file`` names it in the problems; ``name`` defaults to its stem.
    :param known: the contracts by name (default: :func:`lake.contracts.load_all`).
    :returns: the dashboard (``None`` when the shapes are wrong) and every problem found.
    """
    name = name or Path(file).stem
    try:
        node = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [Problem(file, (mark.line + 1) if mark else 1, "", f"not YAML: {exc}")]
    if not isinstance(doc, dict):
        return None, [Problem(file, 1, "", "a dashboard file is a mapping (title, datasets, filters, visuals)")]
    try:
        dash = Dashboard.model_validate({**doc, "name": name})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _clean_loc(doc, err["loc"])
            problems.append(Problem(file, _line(node, loc), ".".join(map(str, loc)), err["msg"]))
        return None, problems
    problems = [Problem(file, _line(node, loc), ".".join(map(str, loc)), msg)
                for loc, msg in _semantic(dash, known if known is not None else contracts.load_all())]
    return dash, problems


def _clean_loc(doc: dict, loc: tuple) -> tuple:
    """A pydantic error location as the file's keys: union tags (``kpi``, ``select``, ...) dropped."""
    out: list = []
    node: object = doc
    for part in loc:
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and part in (node.get("kind"), _source(node)):
            continue  # the discriminated union's tag
        else:
            node = None  # a missing or extra field: name it and stop
        out.append(part)
    return tuple(out)


def check_file(path: str | Path, known: dict[str, contracts.Contract] | None = None) -> tuple[Dashboard | None, list[Problem]]:
    """:func:`check_text` of a file (the problems name it as given)."""
    p = Path(path)
    return check_text(p.read_text(), str(path), p.stem, known)


def load(name: str, directory: str | Path | None = None) -> Dashboard:
    """The dashboard ``<directory>/<name>.yaml`` (default :func:`default_directory`).

    :raises DashboardError: when the file has problems; :raises FileNotFoundError: no such file.
    """
    path = Path(directory or default_directory()) / f"{name}.yaml"
    dash, problems = check_file(path)
    if problems or dash is None:
        raise DashboardError(problems)
    return dash


def names(directory: str | Path | None = None) -> list[str]:
    """The dashboards' names (the YAML files' stems), sorted."""
    return sorted(p.stem for p in Path(directory or default_directory()).glob("*.yaml"))


def check_all(directory: str | Path | None = None) -> list[Problem]:
    """Every problem of every dashboard file in ``directory`` (default :func:`default_directory`)."""
    known = contracts.load_all()
    problems: list[Problem] = []
    for n in names(directory):
        problems += check_file(Path(directory or default_directory()) / f"{n}.yaml", known)[1]
    return problems
