"""Layout pieces every page uses: the header with the navigation and the page's freshness
line, the message banner, panels and tables, and the texts they show.

A page builds its layout from these functions (ids are the page's own), so the pages look
and behave alike: ``header`` lists every registered page (``dash.page_registry``), a
new page shows up in the navigation by being registered.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import dash_table, dcc, html

from wiki_core.timefmt import age_text

from . import figures

RETRY_MS = 5_000
# a table cell shows at most this much of a title or user name (titles are <= 255 bytes;
# longer is bad data, and must not stretch the page)
CELL_CHARS = 300
HIDDEN = {"display": "none"}
SHOWN = {"display": "block"}


def header(active: str, subtitle: str, freshness_id: str) -> html.Div:
    """The title, a link per page (``active``: the path of the page shown) and the
    page's freshness line (filled by the page's callback)."""
    links = [
        dcc.Link(
            page["name"],
            href=page["relative_path"],
            className="nav-link active" if page["path"] == active else "nav-link",
        )
        for page in dash.page_registry.values()
        if not page["module"].endswith("not_found_404")
    ]
    return html.Div(
        [
            html.H1("wiki-events"),
            html.Nav(links, className="nav"),
            html.Div(subtitle, className="subtitle"),
            freshness_line(freshness_id),
        ],
        className="header",
    )


def freshness_line(component_id: str) -> html.Div:
    """How current the page's data is; ``freshness_text`` (or a page's own) fills it."""
    return html.Div(id=component_id, className="freshness")


def freshness_text(
    newest: dt.datetime | None, last_insert: dt.datetime | None, now: dt.datetime | None
) -> str:
    if not (newest and now):
        return "no events yet"
    age = (now - newest).total_seconds()
    text = f"newest event {age_text(age)} ago ({when(newest)} UTC)"
    if last_insert:
        text += f" · last insert {age_text((now - last_insert).total_seconds())} ago"
        text += f" · ingestion lag {age_text((last_insert - newest).total_seconds())}"
    return text


def banner(component_id: str) -> html.Div:
    """A message across the page (no data, ClickHouse down, a range cut); hidden when
    there is nothing to say."""
    return html.Div(id=component_id, className="banner", style=HIDDEN)


def panel(graph_id: str, width: str = "49%") -> html.Div:
    return html.Div(
        dcc.Graph(id=graph_id, config={"displaylogo": False}),
        className="panel",
        style={"width": width},
    )


def table(
    table_id: str, title: str, columns: list[str], width: str = "32%", page_size: int = 10
) -> html.Div:
    """A top-N table under its title (id ``<table_id>-title``), and below it a note (id
    ``<table_id>-note``) for when it is empty."""
    return html.Div(
        [
            html.H4(title, id=f"{table_id}-title"),
            dash_table.DataTable(  # type: ignore[attr-defined]
                id=table_id,
                columns=[{"name": c.replace("_", " "), "id": c} for c in columns],
                data=[],
                page_size=page_size,
                style_cell={
                    "fontFamily": "inherit",
                    "fontSize": 13,
                    "textAlign": "left",
                    "maxWidth": 360,
                    "overflow": "hidden",
                    "textOverflow": "ellipsis",
                },
                style_header={"fontWeight": "bold"},
                style_table={"overflowX": "auto"},
            ),
            html.Div(id=f"{table_id}-note", className="empty-note"),
        ],
        className="panel",
        style={"width": width},
    )


def records(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows for a DataTable: floats rounded, text cut to CELL_CHARS."""
    return [{c: _cell(v) for c, v in zip(columns, row, strict=True)} for row in rows]


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, str):
        return figures.short(value, CELL_CHARS)
    return value


def failed_view(
    graphs: list[str], tables: list[str], message: str, texts: dict[str, str]
) -> dict[str, Any]:
    """A page's outputs when it has nothing to show (no data yet, ClickHouse down):
    blank charts and tables, ``message`` in the banner, ``texts`` for the page's other
    outputs, and the retry timer on."""
    blank = figures.empty("", "no data")
    return {
        **{g: blank for g in graphs},
        **{t: [] for t in tables},
        **{f"{t}-note": "" for t in tables},
        "freshness": "",
        **texts,
        "banner": message,
        "banner-style": SHOWN,
        "tick-interval": RETRY_MS,
        "tick-disabled": False,
    }


def when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
