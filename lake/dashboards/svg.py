"""Charts as inline SVG, drawn on the server: line, bar, stacked bar, heat map.

Why SVG from the server: the pages must render offline (no CDN) inside Airflow's UI and in any
iframe, and must be testable by reading the page; a server-drawn ``<svg>`` needs no JavaScript,
no bundle to vendor and no build step, scales with its ``viewBox`` (the pages work at 1280 and
768 px), and carries its numbers in ``<title>`` tooltips and ``data-*`` attributes. The project
had no SVG charting library installed; these ~150 lines draw what the five visual kinds need.

Every function takes the visual's rows (dimension columns first, then measures, as
:func:`lake.dashboards.query.visual_sql` returns them) and returns one ``<svg>`` element as text;
all text is XML-escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

W, H = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 120, 16, 48
#: Okabe-Ito colour-blind-safe palette (https://jfly.uni-koeln.de/color/), then greys.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
           "#999999", "#666666", "#BBBBBB", "#333333", "#DDDDDD", "#888888", "#444444", "#AAAAAA"]

Fmt = Callable[[Any], str]


def _svg(body: list[str], kind: str, title: str) -> str:
    return (f'<svg class="chart chart-{kind}" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
            f'<title>{escape(title)}</title>{"".join(body)}</svg>')


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda v: a + (float(v) - lo) / span * (b - a)


def _tick(v: float, fmt: Fmt) -> str:
    """An axis label: the visual's format, shortened to k/M/G when that is wider than 7 characters."""
    text = fmt(v)
    if len(text) <= 7:
        return text
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.1f}{unit}"
    return f"{v:.3g}"


def _axis_y(lo: float, hi: float, fmt: Fmt) -> tuple[list[str], Callable[[float], float]]:
    y = _scale(lo, hi, H - BOTTOM, TOP)
    out = []
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e5e5"/>'
                   f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{escape(_tick(v, fmt))}'
                   '</text>')
    return out, y


def _x_labels(labels: Sequence[Any], xs: Sequence[float]) -> list[str]:
    step = max(1, len(labels) // 8)
    return [f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" font-size="11">{escape(str(lab))}</text>'
            for i, (lab, x) in enumerate(zip(labels, xs, strict=True)) if i % step == 0]


def _legend(names: Sequence[Any]) -> list[str]:
    out = []
    for i, n in enumerate(names[:16]):
        y = TOP + 14 * i
        out.append(f'<rect x="{W - RIGHT + 10}" y="{y}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{W - RIGHT + 24}" y="{y + 9}" font-size="11">{escape(str(n))}</text>')
    return out


def _series(rows: Sequence[Sequence[Any]], has_series: bool, measures: Sequence[str]):
    """(x labels in order, {series name: {x: value}}): one series per series value, else per measure."""
    xs: list[Any] = list(dict.fromkeys(r[0] for r in rows))
    series: dict[Any, dict[Any, float]] = {}
    for r in rows:
        if has_series:
            series.setdefault(r[1], {})[r[0]] = r[2]
        else:
            for j, m in enumerate(measures):
                series.setdefault(m, {})[r[0]] = r[1 + j]
    return xs, series


def _empty(kind: str, title: str) -> str:
    return _svg([f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" font-size="14">no data</text>'], kind, title)


def line(rows, *, has_series: bool, measures: Sequence[str], fmt: Fmt, title: str) -> str:
    """One polyline per series (or per measure); points carry ``<title>`` tooltips."""
    xs, series = _series(rows, has_series, measures)
    values = [v for s in series.values() for v in s.values() if v is not None]
    if not values:
        return _empty("line", title)
    grid, y = _axis_y(min(0.0, min(values)), max(values), fmt)
    x = _scale(0, max(1, len(xs) - 1), LEFT + 8, W - RIGHT - 8)
    body = grid + _x_labels(xs, [x(i) for i in range(len(xs))])
    for k, (name, points) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        pts = [(x(i), y(points[v]), v, points[v]) for i, v in enumerate(xs) if points.get(v) is not None]
        body.append(f'<polyline class="series" data-series="{escape(str(name))}" fill="none" stroke="{colour}" '
                    f'stroke-width="2" points="{" ".join(f"{a:.1f},{b:.1f}" for a, b, *_ in pts)}"/>')
        body += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{colour}"><title>{escape(str(name))} '
                 f'{escape(str(xv))}: {escape(fmt(val))}</title></circle>' for a, b, xv, val in pts]
    return _svg(body + _legend(list(series)), "line", title)


def bars(rows, *, has_series: bool, measures: Sequence[str], fmt: Fmt, title: str, stacked: bool) -> str:
    """Bars per x: stacked (the series on top of each other) or grouped side by side."""
    xs, series = _series(rows, has_series, measures)
    names = list(series)
    if not xs:
        return _empty("bar", title)
    if stacked:
        totals = [sum((series[n].get(v) or 0) for n in names) for v in xs]
        lo, hi = 0.0, max(totals + [0])
    else:
        values = [s.get(v) or 0 for s in series.values() for v in xs]
        lo, hi = min(0.0, min(values)), max(values + [0])
    grid, y = _axis_y(lo, hi, fmt)
    slot = (W - LEFT - RIGHT) / len(xs)
    width = slot * 0.8 / (1 if stacked else len(names))
    body = grid + _x_labels(xs, [LEFT + slot * (i + 0.5) for i in range(len(xs))])
    for i, v in enumerate(xs):
        base = 0.0
        for k, n in enumerate(names):
            val = series[n].get(v) or 0
            x0 = LEFT + slot * i + slot * 0.1 + (0 if stacked else k * width)
            a, b = (base, base + val) if stacked else (0.0, val)
            top, bottom = max(y(a), y(b)), min(y(a), y(b))
            body.append(f'<rect class="bar" x="{x0:.1f}" y="{bottom:.1f}" width="{width:.1f}" '
                        f'height="{max(top - bottom, 0.5):.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                        f'<title>{escape(str(v))} {escape(str(n))}: {escape(fmt(val))}</title></rect>')
            base += val if stacked else 0
    return _svg(body + (_legend(names) if len(names) > 1 or has_series else []), "bar", title)


def heatmap(rows, *, fmt: Fmt, title: str) -> str:
    """Cells x by y, darker = more; each cell's ``<title>`` is its value."""
    if not rows:
        return _empty("heatmap", title)
    xs = sorted({r[0] for r in rows}, key=lambda v: (v is None, v))
    ys = sorted({r[1] for r in rows}, key=lambda v: (v is None, v))
    cells = {(r[0], r[1]): r[2] for r in rows}
    hi = max((v for v in cells.values() if v is not None), default=1) or 1
    cw, ch = (W - LEFT - 16) / len(xs), (H - TOP - BOTTOM) / len(ys)
    body = []
    for j, yv in enumerate(ys):
        body.append(f'<text x="{LEFT - 6}" y="{TOP + ch * (j + 0.5) + 4:.1f}" text-anchor="end" font-size="11">'
                    f'{escape(str(yv))}</text>')
        for i, xv in enumerate(xs):
            v = cells.get((xv, yv))
            shade = 0 if v is None else float(v) / hi
            body.append(f'<rect class="cell" x="{LEFT + cw * i:.1f}" y="{TOP + ch * j:.1f}" width="{cw:.1f}" '
                        f'height="{ch:.1f}" fill="rgb({int(255 - 255 * shade)},{int(255 - 141 * shade)},'
                        f'{int(255 - 77 * shade)})"><title>{escape(str(xv))} x {escape(str(yv))}: '
                        f'{escape(fmt(v)) if v is not None else "none"}</title></rect>')
    body += _x_labels(xs, [LEFT + cw * (i + 0.5) for i in range(len(xs))])
    return _svg(body, "heatmap", title)
