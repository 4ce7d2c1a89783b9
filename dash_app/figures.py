"""Figures for the panels, from query results. A panel without events (no rows, or only
the zeros that fill quiet buckets) is an empty chart that says so.

Figures are plain dicts in plotly.js's own shape, not ``plotly.graph_objects``: building
and validating the graph objects of a page's nine charts cost ~140 ms of Python per page
(measured in bench/), the dicts well under 1 ms, and Dash sends either as the same JSON.
"""

from __future__ import annotations

from typing import Any

import plotly.colors
import plotly.io as pio

from .queries import Table

Figure = dict[str, Any]

COLORS = {"bot": "#9467bd", "anonymous": "#ff7f0e", "registered": "#1f77b4"}
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# resolved once: plotly.js knows no template names, the figure carries the template
TEMPLATE = pio.templates["plotly_white"].to_plotly_json()
# plotly.py's Blues, light to dark (plotly.js's own "Blues" runs the other way)
BLUES = plotly.colors.make_colorscale(plotly.colors.sequential.Blues)
EMPTY = "no events in this window"
LABEL_CHARS = 40  # longest label drawn on an axis; longer ones end in "…"


def short(text: Any, limit: int = LABEL_CHARS) -> str:
    """Text cut to ``limit`` characters: a name of thousands of characters in the data
    must not stretch a chart or a table."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def empty(title: str, note: str = EMPTY) -> Figure:
    """A chart with nothing in it but its title and the reason."""
    return _figure([], title, True, note=note)


def _figure(
    traces: list[dict[str, Any]], title: str, empty: bool, note: str = EMPTY, **layout: Any
) -> Figure:
    figure: Figure = {
        "data": traces,
        "layout": {
            "title": {"text": title, "x": 0.01, "font": {"size": 15}},
            "template": TEMPLATE,
            "margin": {"l": 50, "r": 20, "t": 45, "b": 40},
            "height": 300,
            "showlegend": not empty,
            **layout,
        },
    }
    if empty:  # no lines of zeros, no axes: only the title and why the chart is empty
        figure["data"] = []
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


def series(table: Table, x: str, title: str, color: str = "#1f77b4") -> Figure:
    events = table.column("events")
    trace = {
        "type": "scatter",
        "x": table.column(x),
        "y": events,
        "mode": "lines",
        "line": {"color": color, "width": 2},
        "fill": "tozeroy",
        "name": "events",
    }
    return _figure([trace], title, not any(events))


def bars(table: Table, label: str, title: str, horizontal: bool = True) -> Figure:
    labels, values = [short(v) for v in table.column(label)], table.column("events")
    if horizontal:
        bar = {"type": "bar", "x": values[::-1], "y": labels[::-1], "orientation": "h"}
    else:
        bar = {"type": "bar", "x": labels, "y": values}
    figure = _figure([{**bar, "name": "events"}], title, not any(values))
    figure["layout"]["showlegend"] = False
    return figure


def user_kinds(table: Table, title: str) -> Figure:
    kinds, values = table.column("user_kind"), table.column("events")
    trace = {
        "type": "pie",
        "labels": kinds,
        "values": values,
        "hole": 0.45,
        "sort": False,
        "marker": {"colors": [COLORS.get(k, "#7f7f7f") for k in kinds]},
    }
    return _figure([trace], title, not any(values))


def bytes_flow(table: Table, x: str, title: str) -> Figure:
    buckets, added, removed = table.column(x), table.column("added"), table.column("removed")
    traces = [
        {"type": "bar", "x": buckets, "y": added, "name": "added", "marker": {"color": "#2ca02c"}},
        {
            "type": "bar",
            "x": buckets,
            "y": [-v for v in removed],
            "name": "removed",
            "marker": {"color": "#d62728"},
        },
    ]
    return _figure(
        traces,
        title,
        not any(added) and not any(removed),
        barmode="relative",
        yaxis={"title": {"text": "bytes"}},
    )


def heatmap(table: Table, title: str) -> Figure:
    grid: list[list[Any]] = [[0.0] * 24 for _ in range(7)]
    for weekday, hour, avg in table.rows:
        grid[int(weekday) - 1][int(hour)] = float(avg)
    trace = {
        "type": "heatmap",
        "z": grid,
        "x": list(range(24)),
        "y": WEEKDAYS,
        "colorscale": BLUES,
        "colorbar": {"title": {"text": "avg/h"}},
        "hovertemplate": "%{y} %{x}:00 UTC: %{z:.1f}<extra></extra>",
    }
    return _figure(
        [trace],
        title,
        not table,
        note="no events of this wiki yet",  # the wiki's usual week, not the window
        xaxis={"title": {"text": "hour of day (UTC)"}},
        yaxis={"autorange": "reversed"},
    )


# -- the readers page ----------------------------------------------------------------------

ACCESS_COLORS = {"desktop": "#1f77b4", "mobile": "#ff7f0e", "other": "#7f7f7f"}


def views_by_access(table: Table, x: str, title: str, window: tuple[Any, Any]) -> Figure:
    """Views per bucket as bars, desktop, mobile and other (access unknown) stacked: their
    top is the total. The axis spans the whole window: a bucket whose file is not loaded
    is a gap, not a zero."""
    buckets = table.column(x)
    traces = [
        {
            "type": "bar",
            "x": buckets,
            "y": table.column(access),
            "name": access,
            "marker": {"color": ACCESS_COLORS[access]},
        }
        for access in _accesses(table)
    ]
    return _figure(
        traces,
        title,
        not any(table.column("total")),
        note=EMPTY_VIEWS,
        barmode="stack",
        xaxis={"range": list(window)},
    )


def _accesses(table: Table) -> list[str]:
    """desktop and mobile, and other only when some views have no known access."""
    return ["desktop", "mobile"] + (["other"] if any(table.column("other")) else [])


def by_key(
    table: Table, x: str, key: str, value: str, title: str, kind: str = "lines", note: str = ""
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
    traces = [{**trace, "x": xs, "y": ys, "name": name} for name, (xs, ys) in series.items()]
    layout = {"barmode": "stack"} if kind == "bars" else {}
    empty = not any(table.column(value))
    return _figure(traces, title, empty, note=note or EMPTY_VIEWS, **layout)


def access_bars(table: Table, title: str) -> Figure:
    """Views per wiki, desktop, mobile and other stacked, busiest on top."""
    wikis = [short(w) for w in table.column("wiki")][::-1]
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "x": table.column(access)[::-1],
            "y": wikis,
            "name": access,
            "marker": {"color": ACCESS_COLORS[access]},
        }
        for access in _accesses(table)
    ]
    empty = not any(table.column("total"))
    return _figure(traces, title, empty, note=EMPTY_VIEWS, barmode="stack")


def edits_and_views(table: Table, title: str) -> Figure:
    """Views per hour (bars, left axis) and the live stream's edits (line, right axis)."""
    hours, views, edits = table.column("hour"), table.column("views"), table.column("edits")
    traces = [
        {"type": "bar", "x": hours, "y": views, "name": "views", "marker": {"color": "#aec7e8"}},
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": hours,
            "y": edits,
            "name": "edits",
            "yaxis": "y2",
            "line": {"color": "#d62728", "width": 2},
        },
    ]
    return _figure(
        traces,
        title,
        not any(views) and not any(edits),
        note="no edits and no views in this window",
        yaxis={"title": {"text": "views"}},
        yaxis2={
            "title": {"text": "edits"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
        },
        legend={"orientation": "h", "y": -0.15},
    )


EMPTY_VIEWS = "no views in this window"
