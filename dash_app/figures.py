"""Figures for the panels, from query results. A panel without data (no rows, or only
the zeros that fill quiet buckets) is an empty chart that says why.

Figures are plain dicts in plotly.js's own shape, not ``plotly.graph_objects``: building
and validating the graph objects of a page's charts cost ~140 ms of Python per page
(measured in bench/), the dicts well under 1 ms, and Dash sends either as the same JSON.

Every chart follows the same rules: its title is the panel's (HTML, above the chart,
where the chart's toolbar cannot cover it), value axes start at zero, a chart of the
window spans the whole window (``window``), daily buckets get one tick per day (or per
few days), bytes are written with their unit (``100 GB``, not ``100B``), and no chart has
two value axes: views and edits are two charts sharing a time axis.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import plotly.colors
import plotly.io as pio

from . import sites
from .queries import Table

Figure = dict[str, Any]

COLORS = {"bot": "#9467bd", "anonymous": "#ff7f0e", "registered": "#1f77b4"}
KIND_LABELS = {"registered": "registered", "anonymous": "anonymous", "bot": "bots"}
TYPE_LABELS = {
    "edit": "edits",
    "new": "page creations",
    "log": "log actions",
    "categorize": "categorizations",
    "external": "external (Wikidata)",
    "flow": "Flow",
    "other": "other",
}
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# resolved once: plotly.js knows no template names, the figure carries the template. Only
# the parts for what these charts draw: the whole of it is ~7 KB of JSON in every figure,
# walked by plotly.py's encoder and sent for each (~20 % of a cold page's Python time)
TRACES = ("scatter", "bar", "heatmap", "pie")
_WHITE = pio.templates["plotly_white"].to_plotly_json()
TEMPLATE = {
    "data": {k: v for k, v in _WHITE["data"].items() if k in TRACES},
    "layout": {
        k: v
        for k, v in _WHITE["layout"].items()
        if k not in ("polar", "ternary", "scene", "geo", "mapbox", "map")
    },
}
# plotly.py's Blues, light to dark (plotly.js's own "Blues" runs the other way)
BLUES = plotly.colors.make_colorscale(plotly.colors.sequential.Blues)
EMPTY = "no events in this window"
EMPTY_VIEWS = "no views in this window"
LABEL_CHARS = 40  # longest label drawn on an axis; longer ones end in "…"
HEIGHT = 280
DAY_MS = 86_400_000
# the config every chart gets: it resizes with its panel (phones), no toolbar (the CSV
# link gives the data; drag to zoom and double-click to reset still work)
CONFIG = {"displayModeBar": False, "responsive": True, "displaylogo": False}


def short(text: Any, limit: int = LABEL_CHARS) -> str:
    """Text cut to ``limit`` characters: a name of thousands of characters in the data
    must not stretch a chart or a table."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def empty(note: str = EMPTY) -> Figure:
    """A chart with nothing in it but the reason."""
    return _figure([], True, note=note)


def _figure(traces: list[dict[str, Any]], empty: bool, note: str = EMPTY, **layout: Any) -> Figure:
    figure: Figure = {
        "data": traces,
        "layout": {
            "template": TEMPLATE,
            "margin": {"l": 48, "r": 12, "t": 8, "b": 32},
            "height": HEIGHT,
            "autosize": True,
            "showlegend": not empty,
            "legend": {"orientation": "h", "y": -0.18, "x": 0},
            "hovermode": "x unified",
            **layout,
        },
    }
    axis = figure["layout"].setdefault("yaxis", {})
    if axis.get("type") != "log":
        axis.setdefault("rangemode", "tozero")
    if empty:  # no lines of zeros, no axes: only why the chart is empty
        figure["data"] = []
        for key in ("shapes", "yaxis2"):  # (drawn on axes an empty chart has not)
            figure["layout"].pop(key, None)
        figure["layout"]["xaxis"] = figure["layout"]["yaxis"] = {"visible": False}
        figure["layout"]["annotations"] = [
            {
                "text": note,
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"size": 14, "color": "#888"},
            }
        ]
    return figure


def time_axis(bucket: str, window: tuple[dt.datetime, dt.datetime] | None = None) -> dict[str, Any]:
    """A time axis over ``window``: by day, one labelled tick per day (or per few days,
    at most ~10), centred on its day; by minute or hour, plotly's own ticks."""
    axis: dict[str, Any] = {"type": "date"}
    if window:
        axis["range"] = [_iso(window[0]), _iso(window[1])]
    if bucket == "day":
        days = max(1, (window[1] - window[0]).days if window else 7)
        axis.update(
            tickformat="%b %-d", dtick=DAY_MS * math.ceil(days / 10), ticklabelmode="period"
        )
    return axis


def _iso(when: dt.datetime | dt.date) -> str:
    return when.isoformat(sep=" ") if isinstance(when, dt.datetime) else when.isoformat()


def _period(bucket: str) -> dict[str, Any]:
    """A daily trace's points are days: drawn across the day, not at its midnight."""
    return {"xperiod": DAY_MS, "xperiodalignment": "middle"} if bucket == "day" else {}


def by_kind(
    table: Table,
    x: str,
    kinds: list[str],
    window: tuple[dt.datetime, dt.datetime],
    shade: tuple[dt.datetime, dt.datetime] | None = None,
) -> Figure:
    """Events per bucket, stacked by who made them (the kinds the editors filter keeps),
    over the whole window; ``shade`` marks a part of it (the window, on the context
    chart)."""
    buckets = table.column(x)
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "stackgroup": "kinds",
            "x": buckets,
            "y": table.column(kind),
            "name": KIND_LABELS[kind],
            "line": {"color": COLORS[kind], "width": 1},
            **_period(x),
        }
        for kind in ("registered", "anonymous", "bot")
        if kind in kinds
    ]
    total = sum(sum(table.column(kind)) for kind in kinds)
    layout: dict[str, Any] = {"xaxis": time_axis(x, window), "yaxis": {"title": {"text": "events"}}}
    if shade:
        layout["shapes"] = [
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": _iso(shade[0]),
                "x1": _iso(shade[1]),
                "y0": 0,
                "y1": 1,
                "fillcolor": "#1f4e8c",
                "opacity": 0.08,
                "line": {"width": 0},
            }
        ]
    return _figure(traces, not total, **layout)


def series(
    table: Table, x: str, y: str, window: tuple[dt.datetime, dt.datetime], color: str = "#1f77b4"
) -> Figure:
    values = table.column(y)
    trace = {
        "type": "scatter",
        "x": table.column(x),
        "y": values,
        "mode": "lines",
        "line": {"color": color, "width": 2},
        "fill": "tozeroy",
        "name": y,
        **_period(x),
    }
    figure = _figure([trace], not any(values), xaxis=time_axis(x, window))
    figure["layout"]["showlegend"] = False
    return figure


def wiki_bars(table: Table, value: str = "events") -> Figure:
    """Wikis by a value, busiest on top; each wiki's name links to the wiki."""
    wikis, values = [str(w) for w in table.column("wiki")], table.column(value)
    trace = {"type": "bar", "x": values[::-1], "y": wikis[::-1], "orientation": "h", "name": value}
    figure = _figure(
        [trace],
        not any(values),
        yaxis={
            "tickvals": wikis[::-1],
            "ticktext": [link_label(w) for w in wikis[::-1]],
            "automargin": True,
        },
        xaxis={"rangemode": "tozero"},
        hovermode="closest",
    )
    figure["layout"]["showlegend"] = False
    return figure


def link_label(wiki: str) -> str:
    """A wiki's name for an axis, linking to the wiki (plotly draws ``<a>`` in labels)."""
    url, name = sites.wiki_url(wiki), short(wiki)
    return f'<a href="{url}" target="_blank">{name}</a>' if url else name


def user_kinds(table: Table) -> Figure:
    kinds, values = table.column("user_kind"), table.column("events")
    trace = {
        "type": "pie",
        "labels": [KIND_LABELS.get(k, k) for k in kinds],
        "values": values,
        "hole": 0.45,
        "sort": False,
        "marker": {"colors": [COLORS.get(k, "#7f7f7f") for k in kinds]},
        "texttemplate": "%{label}<br>%{percent:.1%}",
        "textposition": "inside",
    }
    return _figure([trace], not any(values), hovermode="closest")


def type_mix(table: Table) -> Figure:
    types, values = table.column("type"), table.column("events")
    trace = {
        "type": "bar",
        "x": [TYPE_LABELS.get(t, t) for t in types],
        "y": values,
        "name": "events",
        "customdata": types,
    }
    figure = _figure([trace], not any(values), hovermode="closest")
    figure["layout"]["showlegend"] = False
    return figure


def bytes_flow(table: Table, x: str, window: tuple[dt.datetime, dt.datetime]) -> Figure:
    buckets, added, removed = table.column(x), table.column("added"), table.column("removed")
    traces = [
        {
            "type": "bar",
            "x": buckets,
            "y": added,
            "name": "added",
            "marker": {"color": "#2ca02c"},
            "hovertemplate": "%{y:.3~s}B",
            **_period(x),
        },
        {
            "type": "bar",
            "x": buckets,
            "y": [-v for v in removed],
            "name": "removed",
            "marker": {"color": "#d62728"},
            "hovertemplate": "%{y:.3~s}B",
            **_period(x),
        },
    ]
    return _figure(
        traces,
        not any(added) and not any(removed),
        barmode="relative",
        xaxis=time_axis(x, window),
        yaxis=bytes_axis(),
    )


def bytes_axis() -> dict[str, Any]:
    """A value axis in bytes, with SI units: 100GB, 1.5MB (plotly's "s" alone writes
    100G, and 100B for a hundred billion)."""
    return {"tickformat": ".3~s", "ticksuffix": "B", "rangemode": "tozero"}


def heatmap(table: Table) -> Figure:
    grid: list[list[Any]] = [[0.0] * 24 for _ in range(7)]
    for weekday, hour, avg in table.rows:
        grid[int(weekday) - 1][int(hour)] = float(avg)
    trace = {
        "type": "heatmap",
        "z": grid,
        "x": list(range(24)),
        "y": WEEKDAYS,
        "colorscale": BLUES,
        "colorbar": {"title": {"text": "avg/h"}, "thickness": 10},
        "hovertemplate": "%{y} %{x}:00 UTC: %{z:.1f} events<extra></extra>",
    }
    return _figure(
        [trace],
        not table,
        note="no events of this wiki yet",  # the wiki's usual week, not the window
        xaxis={"title": {"text": "hour of day (UTC)"}, "dtick": 3},
        yaxis={"autorange": "reversed"},
        hovermode="closest",
    )


# -- the readers page ----------------------------------------------------------------------

ACCESS_COLORS = {"desktop": "#1f77b4", "mobile": "#ff7f0e", "other": "#7f7f7f"}
ACCESS_LABELS = {
    "desktop": "desktop",
    "mobile": "mobile",
    "other": "unknown access (Wikifunctions)",
}


def views_by_access(table: Table, x: str, window: tuple[Any, Any], note: str) -> Figure:
    """Views per bucket as bars, desktop, mobile and other (access unknown) stacked: their
    top is the total. The axis spans the whole window: a bucket whose file is not loaded
    is a gap, not a zero."""
    buckets = table.column(x)
    traces = [
        {
            "type": "bar",
            "x": buckets,
            "y": table.column(access),
            "name": ACCESS_LABELS[access],
            "marker": {"color": ACCESS_COLORS[access]},
            **_period(x),
        }
        for access in _accesses(table)
    ]
    return _figure(
        traces,
        not any(table.column("total")),
        note=note,
        barmode="stack",
        xaxis=time_axis(x, window),
        yaxis={"title": {"text": "views"}},
    )


def _accesses(table: Table) -> list[str]:
    """desktop and mobile, and other only when some views have no known access."""
    return ["desktop", "mobile"] + (["other"] if any(table.column("other")) else [])


def by_key(
    table: Table,
    x: str,
    key: str,
    value: str,
    window: tuple[Any, Any],
    kind: str = "lines",
    note: str = EMPTY_VIEWS,
    in_bytes: bool = False,
) -> Figure:
    """One trace per distinct ``key`` (a wiki, a media type): lines, or stacked bars."""
    series: dict[str, tuple[list[Any], list[Any]]] = {}
    for bucket, name, amount in zip(
        table.column(x), table.column(key), table.column(value), strict=True
    ):
        xs, ys = series.setdefault(short(name), ([], []))
        xs.append(bucket)
        ys.append(amount)
    trace: dict[str, Any] = (
        {"type": "bar"} if kind == "bars" else {"type": "scatter", "mode": "lines+markers"}
    )
    if in_bytes:
        trace["hovertemplate"] = "%{y:.3~s}B"
    traces = [
        {**trace, "x": xs, "y": ys, "name": name, **_period(x)} for name, (xs, ys) in series.items()
    ]
    layout: dict[str, Any] = {"barmode": "stack"} if kind == "bars" else {}
    layout["xaxis"] = time_axis(x, window)
    if in_bytes:
        layout["yaxis"] = bytes_axis()
    return _figure(traces, not any(table.column(value)), note=note, **layout)


def access_bars(table: Table, note: str) -> Figure:
    """Views per wiki, desktop, mobile and other stacked, busiest on top."""
    wikis = [str(w) for w in table.column("wiki")][::-1]
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "x": table.column(access)[::-1],
            "y": wikis,
            "name": ACCESS_LABELS[access],
            "marker": {"color": ACCESS_COLORS[access]},
        }
        for access in _accesses(table)
    ]
    return _figure(
        traces,
        not any(table.column("total")),
        note=note,
        barmode="stack",
        yaxis={"tickvals": wikis, "ticktext": [link_label(w) for w in wikis], "automargin": True},
        hovermode="closest",
    )


def edits_and_views(table: Table, window: tuple[Any, Any]) -> Figure:
    """Views per hour (bars, above) and the live stream's edits (bars, below): two charts
    on one time axis, each with its own axis from zero (no second axis on one chart,
    whose ticks never line up)."""
    hours, views, edits = table.column("hour"), table.column("views"), table.column("edits")
    traces = [
        {
            "type": "bar",
            "x": hours,
            "y": views,
            "name": "views",
            "marker": {"color": "#6baed6"},
            "yaxis": "y",
        },
        {
            "type": "bar",
            "x": hours,
            "y": edits,
            "name": "edits",
            "marker": {"color": "#d62728"},
            "xaxis": "x",
            "yaxis": "y2",
        },
    ]
    return _figure(
        traces,
        not any(views) and not any(edits),
        note="no edits and no views in this window",
        height=HEIGHT + 60,
        xaxis={**time_axis("hour", window), "anchor": "y2"},
        yaxis={"title": {"text": "views"}, "domain": [0.42, 1], "rangemode": "tozero"},
        yaxis2={"title": {"text": "edits"}, "domain": [0, 0.34], "rangemode": "tozero"},
    )


# -- the lookup page -----------------------------------------------------------------------


def lookup(
    views: Table, edits: Table, titles: list[str], window: tuple[Any, Any], log: bool
) -> Figure:
    """Each page's views per hour (lines, above; log scale when asked) and edits per hour
    (bars, below), one colour per page."""
    palette = plotly.colors.qualitative.Plotly
    traces: list[dict[str, Any]] = []
    for i, title in enumerate(titles):
        color = palette[i % len(palette)]
        rows = [(h, v) for h, t, v in views.rows if t == title]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": [h for h, _ in rows],
                "y": [v for _, v in rows],
                "name": short(title),
                "legendgroup": title,
                "line": {"color": color},
                "yaxis": "y",
            }
        )
        changed = [(h, n) for h, t, n in edits.rows if t == title]
        traces.append(
            {
                "type": "bar",
                "x": [h for h, _ in changed],
                "y": [n for _, n in changed],
                "name": f"{short(title)}: edits",
                "legendgroup": title,
                "showlegend": False,
                "marker": {"color": color},
                "yaxis": "y2",
            }
        )
    empty = not any(views.column("views")) and not any(edits.column("edits"))
    views_axis: dict[str, Any] = {"title": {"text": "views per hour"}, "domain": [0.42, 1]}
    if log:
        views_axis["type"] = "log"
    else:
        views_axis["rangemode"] = "tozero"
    return _figure(
        traces,
        empty,
        note="no views and no edits of these pages in this window",
        height=HEIGHT + 120,
        barmode="group",
        xaxis={**time_axis("hour", window), "anchor": "y2"},
        yaxis=views_axis,
        yaxis2={"title": {"text": "edits"}, "domain": [0, 0.3], "rangemode": "tozero"},
    )
