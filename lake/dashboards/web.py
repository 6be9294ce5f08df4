"""The Lake pages: a FastAPI app (mounted at ``/lake`` in Airflow's API server by plugins/lake_plugin.py).

Routes (``<d>`` a dashboard of include/dashboards, ``<v>`` one of its visuals; filters in the query
string as :mod:`lake.dashboards.query` describes, e.g. ``?dates_from=2013-01-02&origin=JFK``):

=================================================  ===============================================
``GET /lake/``                                     the dashboards
``GET /lake/dashboards/<d>``                       the page: filters, every visual, the cache's age
``GET /lake/dashboards/<d>/visuals/<v>``           one visual alone (a stable URL for an iframe)
``GET /lake/dashboards/<d>/visuals/<v>.csv``       its rows as CSV (header row first)
``GET /lake/api/dashboards/<d>/visuals/<v>``       ``{"columns": [...], "rows": [[...], ...]}``
=================================================  ===============================================

Every route requires an Airflow login: the UI's session (its ``_token`` cookie) or the API's
bearer token (``POST /auth/token``), checked by Airflow's own ``get_user`` dependency
(``airflow.api_fastapi.core_api.security``); anything else is 401. An unknown dashboard or visual
is 404, an ill-formed filter value 400. A dashboard's YAML is checked again whenever its file
changes (an edit shows on reload). The rows come from :class:`Reader`: the local mirror of the
cached Parquet loaded into an in-memory DuckDB table (SPICE's in-memory copy), never Athena.
"""

from __future__ import annotations

import contextvars
import csv
import io
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import duckdb
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lake import layout
from lake.dashboards import cache, query, runs, spec, svg
from lake.settings import Settings

FORMATS: dict[str, Callable[[Any], str]] = {
    "integer": lambda v: f"{v:,.0f}",
    "percent": lambda v: f"{v:.1%}",
    "money": lambda v: f"{v:,.2f}",
    "number": lambda v: f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v),
}


def fmt(kind: str) -> Callable[[Any], str]:
    """The display form of a value for a visual's ``format`` (None shows as an en dash)."""
    f = FORMATS[kind]
    return lambda v: "–" if v is None else f(v) if isinstance(v, (int, float)) else str(v)


def plain(v: Any) -> Any:
    """A value as JSON: dates as ISO text, decimals as floats."""
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if v is not None and not isinstance(v, (int, float, str, bool)):
        return float(v) if hasattr(v, "__float__") else str(v)
    return v


#: The live datasets already read for the current request (set per request by :func:`create_app`'s
#: middleware): one page shows one reading of Airflow's runs, however long it takes to render.
_request_reads: contextvars.ContextVar[set | None] = contextvars.ContextVar("lake_request_reads", default=None)


class Reader:
    """The dashboards' rows for one process: a :class:`~lake.dashboards.cache.Mirror` per cached
    dashboard dataset (under ``directory``) and DuckDB over its files; a dataset read live
    (``source: airflow_runs``) is read again through ``runs`` at most every ``min_interval`` seconds.

    :param s3: a boto3 S3 client, or a callable making one (called at first use).
    :param read_runs: ``(dag id -> lake dataset, limit) -> Arrow table`` of
        :data:`lake.dashboards.runs.COLUMNS` (default :func:`lake.dashboards.runs.read`: Airflow's
        metadata database).
    """

    def __init__(self, s3: Any, settings: Settings, directory: Path | None = None, min_interval: float = 5.0,
                 read_runs: Callable[[dict[str, str], int], Any] | None = None):
        self._s3, self.settings = s3, settings
        self.directory = Path(directory or tempfile.mkdtemp(prefix="lake-dashboards-"))
        self.min_interval = min_interval
        self._runs = read_runs or runs.read
        self._mirrors: dict[tuple[str, str], cache.Mirror] = {}
        self._tables: dict[tuple[str, str], tuple[tuple, duckdb.DuckDBPyConnection]] = {}
        #: (dashboard, dataset) -> (monotonic time, UTC time) of its last live read
        self._read: dict[tuple[str, str], tuple[float, datetime]] = {}
        self._lock = threading.Lock()

    def dags(self, ds: spec.RunsDataset) -> dict[str, str]:
        """A live dataset's daily DAGs: DAG id -> lake dataset (its ``lake_datasets``, default every
        ``LAKE_DAILY_DATASETS``)."""
        names = ds.lake_datasets or list(self.settings.daily_dataset_names)
        return {layout.for_dataset(self.settings, n).daily_dag_id: n for n in names}

    @staticmethod
    def live(dash: spec.Dashboard) -> bool:
        """Whether every dataset of the dashboard is read live (none is cached)."""
        return all(isinstance(ds, spec.RunsDataset) for ds in dash.datasets.values())

    def mirror(self, dash: spec.Dashboard, dataset: str) -> cache.Mirror:
        key = (dash.name, dataset)
        if key not in self._mirrors:
            if callable(self._s3):
                self._s3 = self._s3()
            lay = layout.for_dataset(self.settings, dash.datasets[dataset].lake_dataset)
            self._mirrors[key] = cache.Mirror(self._s3, self.settings.artifacts_bucket,
                                              lay.dashboard_prefix(dash.name, dataset),
                                              self.directory / dash.name / dataset, self.min_interval)
        return self._mirrors[key]

    def updated(self, dash: spec.Dashboard) -> datetime | None:
        """When the dashboard's cache last changed (the newest cached object), after a sync."""
        times = []
        for name, ds in dash.datasets.items():
            if isinstance(ds, spec.RunsDataset):
                self.table(dash, name)
                times.append(self._read[(dash.name, name)][1])
            else:
                m = self.mirror(dash, name)
                m.sync()
                times.append(m.updated)
        return max((t for t in times if t), default=None)

    def rows(self, dash: spec.Dashboard, visual: str, params: dict[str, list[str]]) -> tuple[list[str], list[list]]:
        """The visual's ``(columns, rows)`` for the filters in ``params`` (no cache yet: no rows).

        :raises query.FilterError: an ill-formed filter value.
        """
        v = dash.visuals[visual]
        columns = v.dimensions() + list(v.measures())
        dataset = dash.dataset_of(visual)
        values = query.parse_filters(dash, dataset, params)
        con = self.table(dash, dataset)
        if con is None:
            return columns, []
        sql, args = query.visual_sql(dash, visual, "rows", values)
        cur = con.cursor()
        try:
            return columns, [[plain(x) for x in r] for r in cur.execute(sql, args).fetchall()]
        finally:
            cur.close()

    def table(self, dash: spec.Dashboard, dataset: str) -> duckdb.DuckDBPyConnection | None:
        """An in-memory DuckDB holding the dataset as table ``rows`` (the cached files plus the
        calculated fields), loaded again when a cached object or the dataset's definition changed;
        None while the cache is empty. A live dataset is read again once ``min_interval`` has passed."""
        ds = dash.datasets[dataset]
        if isinstance(ds, spec.RunsDataset):
            return self._live_table(dash, dataset, ds)
        m = self.mirror(dash, dataset)
        files = m.sync()
        if not files:
            return None
        ds = dash.datasets[dataset]
        version = (tuple(sorted(m.etags.items())), ds.query, tuple(ds.calculated.items()))
        with self._lock:
            held = self._tables.get((dash.name, dataset))
            if held is None or held[0] != version:
                con = duckdb.connect()
                con.execute(f"CREATE TABLE rows AS {query.dataset_sql(ds, files)}")
                if held is not None:
                    held[1].close()
                held = self._tables[(dash.name, dataset)] = (version, con)
            return held[1]

    def _live_table(self, dash: spec.Dashboard, dataset: str, ds: spec.RunsDataset) -> duckdb.DuckDBPyConnection:
        key = (dash.name, dataset)
        definition = (ds.limit, tuple(ds.lake_datasets), tuple(ds.calculated.items()))
        done = _request_reads.get()
        with self._lock:
            held, read = self._tables.get(key), self._read.get(key)
            due = read is None or time.monotonic() - read[0] >= self.min_interval
            if held is None or held[0] != definition or due and not (done is not None and key in done):
                arrow = self._runs(self.dags(ds), ds.limit)
                con = duckdb.connect()
                con.register("airflow_runs", arrow)
                con.execute(f"CREATE TABLE rows AS {query.calculated_sql(ds, 'SELECT * FROM airflow_runs')}")
                con.unregister("airflow_runs")
                if held is not None:
                    held[1].close()
                held = self._tables[key] = (definition, con)
                self._read[key] = (time.monotonic(), datetime.now(UTC))
            if done is not None:
                done.add(key)
            return held[1]

    def options(self, dash: spec.Dashboard, name: str) -> list[str]:
        """The values a select filter offers: the column's distinct values over the datasets it filters."""
        f = dash.filters[name]
        out: set[str] = set()
        for ds, d in dash.datasets.items():
            if f.column in d.fields and (con := self.table(dash, ds)) is not None:
                cur = con.cursor()
                try:
                    out |= {str(r[0]) for r in cur.execute(
                        f"SELECT DISTINCT {query.ident(f.column)} FROM rows WHERE {query.ident(f.column)} IS NOT NULL"
                    ).fetchall()}
                finally:
                    cur.close()
        return sorted(out)


_bearer = HTTPBearer(auto_error=False)


async def airflow_user(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Any:
    """The logged-in Airflow user (Airflow's ``get_user``: a bearer token first, else the UI's
    ``_token`` cookie). :raises HTTPException: 401 without a valid one (Airflow answers 403 for a
    malformed token; here that is 401 too: no login)."""
    from airflow.api_fastapi.core_api.security import get_user

    try:
        return await get_user(request, None, creds)
    except HTTPException as exc:
        if exc.status_code in (401, 403):
            raise HTTPException(401, detail="Not authenticated: log in to Airflow",
                                headers={"WWW-Authenticate": "Bearer"}) from exc
        raise


CSS = """
body{font-family:system-ui,sans-serif;margin:0;padding:16px;color:#222;background:#fafafa}
a{color:#0060a0} h1{font-size:1.4rem;margin:0 0 4px} .sub{color:#666;font-size:.85rem;margin-bottom:12px}
form.filters{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-end;margin-bottom:16px}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;gap:2px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px;min-width:0}
.card.wide{grid-column:1/-1} .card h2{font-size:.95rem;margin:0 0 6px}
.kpi .value{font-size:2rem;font-weight:600} .links{font-size:.75rem;margin-top:6px}
svg.chart{width:100%;height:auto;display:block} table{border-collapse:collapse;width:100%;font-size:.8rem}
td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left} td.num{text-align:right}
.scroll{overflow-x:auto}
@media (max-width:800px){.grid{grid-template-columns:1fr} body{padding:8px}}
"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            f"content='width=device-width,initial-scale=1'><title>{escape(title)}</title><style>{CSS}</style>"
            f"</head><body>{body}</body></html>")


def render_visual(dash: spec.Dashboard, name: str, columns: list[str], rows: list[list]) -> str:
    """One visual's inner HTML: a KPI number, a table, or an SVG chart."""
    v = dash.visuals[name]
    f = fmt(v.format)
    title = v.title or name
    if v.kind == "kpi":
        value = rows[0][0] if rows else None
        return f'<div class="value" data-value="{escape(str(value))}">{escape(f(value))}</div>'
    if v.kind == "table":
        dims = len(v.dimensions())
        index = {c: i for i, c in enumerate(columns)}
        hidden = {index[u] for u in v.links.values()}
        links = {index[c]: index[u] for c, u in v.links.items()}

        def cell(r: list, i: int, x: Any) -> str:
            text = escape(f(x) if i >= dims else "–" if x is None else str(x))
            if i in links and r[links[i]]:
                text = f'<a href="{escape(str(r[links[i]]))}" target="_top">{text}</a>'
            return f'<td class="{"num" if i >= dims else "dim"}" data-value="{escape(str(x))}">{text}</td>'

        head = "".join(f"<th>{escape(c)}</th>" for i, c in enumerate(columns) if i not in hidden)
        body = "".join("<tr>" + "".join(cell(r, i, x) for i, x in enumerate(r) if i not in hidden) + "</tr>"
                       for r in rows)
        return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    if v.kind == "heatmap":
        return svg.heatmap(rows, fmt=f, title=title)
    has_series = getattr(v, "series", None) is not None
    if v.kind == "line":
        return svg.line(rows, has_series=has_series, measures=list(v.measures()), fmt=f, title=title)
    return svg.bars(rows, has_series=has_series, measures=list(v.measures()), fmt=f, title=title,
                    stacked=v.kind == "stacked_bar")


def create_app(reader: Reader, directory: Path | None = None) -> FastAPI:
    """The Lake app over ``reader``'s cache and the dashboards in ``directory`` (default
    include/dashboards). Its routes depend on :func:`airflow_user`."""
    app = FastAPI(title="Lake dashboards", dependencies=[Depends(airflow_user)])

    @app.middleware("http")
    async def one_reading_per_request(request: Request, call_next):
        token = _request_reads.set(set())
        try:
            return await call_next(request)
        finally:
            _request_reads.reset(token)

    loaded: dict[str, tuple[float, spec.Dashboard]] = {}

    def load(name: str) -> spec.Dashboard:
        """The dashboard, checked again whenever its file changed (an edit shows on reload)."""
        if name not in spec.names(directory):
            raise HTTPException(404, detail=f"no dashboard {name!r}")
        mtime = (Path(directory or spec.default_directory()) / f"{name}.yaml").stat().st_mtime_ns
        if name not in loaded or loaded[name][0] != mtime:
            loaded[name] = (mtime, spec.load(name, directory))
        return loaded[name][1]

    def visual_of(name: str, visual: str) -> spec.Dashboard:
        dash = load(name)
        if visual not in dash.visuals:
            raise HTTPException(404, detail=f"dashboard {name!r} has no visual {visual!r}")
        return dash

    def params(request: Request) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in request.query_params.multi_items():
            out.setdefault(k, []).append(v)
        return out

    def rows(dash, visual, request):
        try:
            return reader.rows(dash, visual, params(request))
        except query.FilterError as exc:
            raise HTTPException(400, detail=str(exc)) from exc

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        items = "".join(f'<li><a href="{base(request)}/dashboards/{n}">{escape(load(n).title)}</a></li>'
                        for n in spec.names(directory))
        return _page("Lake", f"<h1>Lake</h1><div class=sub>Dashboards over the lake's gold tables</div><ul>{items}</ul>")

    @app.get("/api/dashboards/{name}/visuals/{visual}")
    def api(name: str, visual: str, request: Request):
        dash = visual_of(name, visual)
        columns, data = rows(dash, visual, request)
        return JSONResponse({"columns": columns, "rows": data})

    @app.get("/dashboards/{name}/visuals/{visual}.csv")
    def csv_(name: str, visual: str, request: Request):
        dash = visual_of(name, visual)
        columns, data = rows(dash, visual, request)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        w.writerows(data)
        return Response(buf.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}-{visual}.csv"'})

    def card(dash, visual, request, alone=False) -> str:
        v = dash.visuals[visual]
        columns, data = rows(dash, visual, request)
        qs = urlencode(list(request.query_params.multi_items()))
        suffix = f"?{qs}" if qs else ""
        root = f"{base(request)}/dashboards/{dash.name}/visuals/{visual}"
        links = (f'<div class=links><a class=embed href="{root}{suffix}">embed</a> · <a class=csv href="{root}.csv{suffix}">'
                 f'CSV</a> · <a class=json href="{base(request)}/api/dashboards/{dash.name}/visuals/{visual}{suffix}">'
                 f"JSON</a></div>")
        wide = " wide" if v.kind in ("table", "heatmap", "line", "stacked_bar") and not alone else ""
        return (f'<section class="card {v.kind}{wide}" id="visual-{visual}" data-visual="{visual}" data-kind="{v.kind}">'
                f"<h2>{escape(v.title or visual)}</h2>{render_visual(dash, visual, columns, data)}{links}</section>")

    def filters_form(dash, request) -> str:
        p = params(request)
        out = []
        for n, f in dash.filters.items():
            label = escape(f.label or n)
            if f.kind == "date_range":
                for suffix, word in (("_from", "from"), ("_to", "to")):
                    val = escape((p.get(n + suffix) or [""])[-1])
                    out.append(f'<label>{label} {word}<input type=date name="{n}{suffix}" value="{val}"></label>')
            else:
                chosen = set(p.get(n, []))
                opts = "".join(f'<option value="{escape(o)}"{" selected" if o in chosen else ""}>{escape(o)}</option>'
                               for o in reader.options(dash, n))
                out.append(f'<label>{label}<select name="{n}" multiple size=4>{opts}</select></label>')
        return (f'<form class=filters method=get>{"".join(out)}<button type=submit>Apply</button>'
                f' <a href="{base(request)}/dashboards/{dash.name}">reset</a></form>')

    def age(dash) -> str:
        updated = reader.updated(dash)
        if reader.live(dash):
            return (f'read live from Airflow at <time datetime="{updated.isoformat()}">{updated:%Y-%m-%d %H:%M:%S} UTC'
                    f"</time> (at most {reader.min_interval:g} s old)")
        if updated is None:
            return "cache: empty (no refresh yet: lake_dashboards_refresh runs after the daily DAGs)"
        minutes = (datetime.now(UTC) - updated).total_seconds() / 60
        return f'cache updated <time datetime="{updated.isoformat()}">{updated:%Y-%m-%d %H:%M} UTC</time> ({minutes:.0f} min ago)'

    @app.get("/dashboards/{name}", response_class=HTMLResponse)
    def page(name: str, request: Request):
        started = time.perf_counter()
        dash = load(name)
        cards = "".join(card(dash, v, request) for v in dash.visuals)
        body = (f'<h1>{escape(dash.title)}</h1><div class=sub>{escape(dash.description)} · <span class=age>{age(dash)}'
                f'</span> · <a href="{base(request)}/">all dashboards</a></div>{filters_form(dash, request)}'
                f'<div class=grid>{cards}</div>')
        html = _page(f"{dash.title} · Lake", body)
        return HTMLResponse(html, headers={"Server-Timing": f"render;dur={(time.perf_counter() - started) * 1000:.1f}"})

    @app.get("/dashboards/{name}/visuals/{visual}", response_class=HTMLResponse)
    def visual_page(name: str, visual: str, request: Request):
        dash = visual_of(name, visual)
        return _page(f"{dash.visuals[visual].title or visual} · {dash.title}",
                     f'<div class=sub class=age>{age(dash)}</div>{card(dash, visual, request, alone=True)}')

    return app
