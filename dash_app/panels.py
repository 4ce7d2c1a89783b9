"""Panels and the callbacks that fill them.

A page is a view callback and rows of panels. The view callback reads the URL, resolves
the window (it ends at the newest data), says how fresh the data is and puts the
resolved ``View`` in a store; each row's callback reads that store, runs its queries
(through ``Gold``'s shared cache) and fills its panels. So the panels load side by side,
each with its own loading state, and a row that fails says so while the rest draw.

Every panel has a title, a tooltip that defines its numbers (``tip``), a note under it
(what is missing and why, what an estimate is), and a CSV link: the rows behind the
panel as shown, written by the browser from the panel's store (no second request).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dash import (
    ClientsideFunction,
    Dash,
    Input,
    Output,
    State,
    callback_context,
    dcc,
    html,
    no_update,
)
from dash.development.base_component import Component
from dash.exceptions import MissingCallbackContextException

from . import guard
from .figures import CONFIG, Figure, empty
from .page_parts import CELL_CHARS, HIDDEN, SHOWN, nav_ids
from .queries import Gold, Table, Unavailable
from .state import MAX_RANGE, ViewState, parse_time

log = logging.getLogger("dash_app.panels")

WIDTHS = ("full", "half", "third", "two-thirds")


@dataclass(frozen=True)
class Column:
    """A table's column: ``kind`` says how its values are shown: text (kept on one line),
    title (a page, a user, a file: wraps between words), count (1,234), ratio (three
    significant figures), bytes (a signed count), time."""

    key: str
    label: str
    kind: str = "text"
    tip: str = ""


# the columns every page's tables share
WIKI = Column("wiki", "wiki", tip="the wiki's database name; links to the wiki")
PAGE = Column("title", "page", "title", tip="links to the page")


@dataclass(frozen=True)
class Panel:
    key: str  # the component ids are the page's prefix + key
    title: str
    tip: str  # what the panel's numbers are: the tooltip of its ⓘ
    kind: str = "graph"  # graph, table or tiles
    columns: tuple[Column, ...] = ()
    width: str = "half"


@dataclass
class Cell:
    """A table cell: its text, and a link when it names a page, a user, a diff, a wiki."""

    text: str
    href: str = ""


@dataclass
class Tile:
    """A headline figure: its label, the figure, a line of context, the definition."""

    label: str
    value: str
    detail: str = ""
    tip: str = ""
    href: str = ""


@dataclass
class Result:
    """What a panel shows: a figure, a table's rows or tiles; the rows for its CSV (the
    data as shown); a note; a title when it says more than the panel's own."""

    figure: Figure | None = None
    rows: list[list[Any]] | None = None  # a table's cells: values, or Cell for links
    tiles: list[Tile] | None = None
    csv: Table | None = None
    note: str = ""
    title: str | None = None


@dataclass(frozen=True)
class View:
    """A view resolved by the page's view callback: the state from the URL, the window
    [start, end), the time it was resolved, and what the page's rows need to know
    besides (``facts``: JSON values only)."""

    state: ViewState
    start: dt.datetime
    end: dt.datetime
    now: dt.datetime
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime]:
        return self.start, self.end

    def fact_time(self, name: str) -> dt.datetime | None:
        value = self.facts.get(name)
        return parse_time(value) if isinstance(value, str) else None

    def to_store(self) -> dict[str, Any]:
        return {
            "search": self.state.to_search(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "now": self.now.isoformat(timespec="seconds"),
            "facts": self.facts,
        }

    @classmethod
    def from_store(cls, data: object) -> View | None:
        """The view a row callback was sent, or None when it is no view (the store is
        the browser's: what comes back is checked, as a URL is)."""
        if not isinstance(data, dict) or not isinstance(data.get("search"), str):
            return None
        start, end, now = (parse_time(data.get(k)) for k in ("start", "end", "now"))
        facts = data.get("facts")
        if not (start and end and now and start < end <= start + MAX_RANGE + dt.timedelta(1)):
            return None
        if not isinstance(facts, dict) or len(json.dumps(facts)) > 8_000:
            return None
        return cls(ViewState.from_search(data["search"]), start, end, now, facts)


RowFunction = Callable[[Gold, View], dict[str, Result]]


def ids(prefix: str, panel: Panel) -> dict[str, str]:
    base = prefix + panel.key
    return {
        "main": base,
        "title": f"{base}-title",
        "note": f"{base}-note",
        "rows": f"{base}-rows",
        "csv": f"{base}-csv",
        "download": f"{base}-download",
        "panel": f"{base}-panel",
    }


def layout(prefix: str, panel: Panel) -> html.Div:
    """A panel: its header (title, ⓘ with the definition, CSV), its content under a
    loading state, its note."""
    name = ids(prefix, panel)
    if panel.kind == "graph":
        # the chart is drawn by the first answer: an empty chart drawn before it cost the
        # browser ~25 ms of plotly.js a panel, beside the server's work on the answers
        content: Any = html.Div(id=name["main"], className="graph-box")
    elif panel.kind == "table":
        content = html.Div(id=name["main"], className="table-wrap")
    else:
        content = html.Div(id=name["main"], className="tiles")
    head = [
        html.H4(panel.title, id=name["title"], className="panel-title"),
        info(panel.tip),
        html.Button("CSV", id=name["csv"], className="csv", title="the rows behind this panel"),
    ]
    return html.Div(
        [
            html.Div(head, className="panel-head"),
            # the loading state is CSS on the attribute Dash sets on the content while
            # its callback runs (no component per panel to re-render: dcc.Loading cost
            # ~300 ms of the browser's time per update of a page of 18 panels)
            html.Div(content, className="loading"),
            html.Div(id=name["note"], className="empty-note"),
            dcc.Store(id=name["rows"]),
            dcc.Download(id=name["download"]),
        ],
        className=f"panel w-{panel.width}",
        id=name["panel"],
    )


def info(tip: str) -> html.Span:
    """An ⓘ that shows ``tip`` on hover, on focus and on a tap (CSS; no callback)."""
    return html.Span(
        ["i", html.Span(tip, className="tip-text")],
        className="tip",
        tabIndex="0",
        title=tip,
    )


def row(prefix: str, panels: list[Panel], heading: str = "") -> html.Section:
    parts: list[Any] = [html.H2(heading)] if heading else []
    return html.Section(
        [*parts, html.Div([layout(prefix, p) for p in panels], className="row")],
        className="section",
    )


def register_row(
    app: Dash, gold: Gold, prefix: str, name: str, panels: list[Panel], compute: RowFunction
) -> None:
    """The callback of one row: the view store in, each panel's content, title, note and
    CSV rows out. ClickHouse failing for this row is the row's note, not the page's."""
    outputs: dict[str, Any] = {}
    for panel in panels:
        n = ids(prefix, panel)
        outputs[panel.key] = {
            "panel": Output(n["panel"], "className"),
            "main": Output(n["main"], "children"),
            "title": Output(n["title"], "children"),
            "note": Output(n["note"], "children"),
            "rows": Output(n["rows"], "data"),
        }
        app.clientside_callback(
            ClientsideFunction("wiki", "csv"),
            Output(n["download"], "data"),
            Input(n["csv"], "n_clicks"),
            State(n["rows"], "data"),
            prevent_initial_call=True,
        )

    @app.callback(output=outputs, inputs={"view": Input(f"{prefix}view", "data")})
    def fill(view: Any) -> dict[str, Any]:
        return render_row(gold, panels, compute, view, prefix + name)


def render_row(
    gold: Gold, panels: list[Panel], compute: RowFunction, data: Any, name: str
) -> dict[str, Any]:
    view = View.from_store(data)
    if view is None:  # no view (the page says why in its banner): blank panels
        results = {p.key: Result(figure=empty(""), rows=[], tiles=[]) for p in panels}
    else:
        try:
            results = compute(gold, view)
        except Unavailable as exc:
            log.warning("row %s: ClickHouse %s", name, exc)
            note = f"not available: ClickHouse {exc}"
            results = {
                p.key: Result(figure=empty(note), rows=[], tiles=[], note=note) for p in panels
            }
    return {p.key: output(p, results.get(p.key) or Result(), view, name) for p in panels}


def output(panel: Panel, result: Result, view: View | None, name: str) -> dict[str, Any]:
    if panel.kind == "graph":
        main: Any = graph(result.figure or empty(result.note or ""))
    elif panel.kind == "table":
        main = table(panel.columns, result.rows or [])
    else:
        main = tiles(result.tiles or [])
    return {
        # "filled": the panel shows the answer to a view (tests wait for every panel's)
        "panel": f"panel w-{panel.width} filled" if view else f"panel w-{panel.width}",
        "main": main,
        "title": result.title or panel.title,
        "note": result.note,
        "rows": csv_rows(panel, result, view),
    }


def graph(figure: Any) -> dcc.Graph:
    """A chart; the panel's box (its id) holds it."""
    return dcc.Graph(figure=figure, config=CONFIG, className="graph")  # type: ignore[arg-type]


def table(columns: tuple[Column, ...], rows: list[list[Any]]) -> html.Table | str:
    """A table of ``rows``, numbers right-aligned and written for people; links where a
    cell names a page, a user, a diff or a wiki. Text is text: a title is never markup."""
    if not rows:
        return ""
    head = html.Thead(
        html.Tr([html.Th(c.label, title=c.tip or None, className=c.kind) for c in columns])
    )
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(_cell(value, column), className=column.kind)
                    for value, column in zip(cells, columns, strict=True)
                ]
            )
            for cells in rows
        ]
    )
    return html.Table([head, body], className="data")


def _cell(value: Any, column: Column) -> Any:
    from . import page_parts as parts

    if isinstance(value, Cell):
        text = _short(value.text)
        return (
            html.A(text, href=value.href, target="_blank", rel="noopener") if value.href else text
        )
    if value is None:
        return ""
    if column.kind == "count":
        return parts.count(value)
    if column.kind == "ratio":
        return parts.ratio(value)
    if column.kind == "bytes":
        return ("+" if value > 0 else "") + parts.count(value)
    if column.kind == "time" and isinstance(value, dt.datetime):
        return parts.when(value)
    return _short(str(value))


def _short(text: str) -> str:
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def tiles(items: list[Tile]) -> list[html.Div]:
    return [
        html.Div(
            [
                html.Div([tile.label, info(tile.tip) if tile.tip else ""], className="tile-label"),
                html.A(tile.value, href=tile.href, className="tile-value")
                if tile.href
                else html.Div(tile.value, className="tile-value"),
                html.Div(tile.detail, className="tile-detail"),
            ],
            className="tile",
        )
        for tile in items
    ]


def csv_rows(panel: Panel, result: Result, view: View | None) -> dict[str, Any] | None:
    """The panel's rows for its CSV: a table's cells as shown (links' text, their URLs in
    a column of their own), a chart's query rows; times in ISO form."""
    stamp = f"{view.start:%Y%m%dT%H%M}-{view.end:%Y%m%dT%H%M}" if view else "empty"
    filename = f"wiki-events-{panel.key}-{stamp}.csv"
    if panel.kind == "table":
        rows = result.rows or []
        links = [
            i
            for i, _ in enumerate(panel.columns)
            if any(isinstance(r[i], Cell) and r[i].href for r in rows)
        ]
        columns = [c.key for c in panel.columns] + [f"{panel.columns[i].key}_url" for i in links]
        values = [
            [_plain(v) for v in r] + [r[i].href if isinstance(r[i], Cell) else "" for i in links]
            for r in rows
        ]
        return {"filename": filename, "columns": columns, "rows": values}
    if panel.kind == "tiles":
        return {
            "filename": filename,
            "columns": ["figure", "value", "detail"],
            "rows": [[t.label, t.value, t.detail] for t in result.tiles or []],
        }
    if result.csv is None:
        return None
    return {
        "filename": filename,
        "columns": result.csv.columns,
        "rows": [[_plain(v) for v in r] for r in result.csv.rows],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Cell):
        return value.text
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def view_store(prefix: str) -> dcc.Store:
    return dcc.Store(id=f"{prefix}view")


FirstAnswer = tuple[dict[str, Any], Callable[[str], dict[str, Any]]]


def register_view(
    app: Dash, prefix: str, render: Callable[[str | None], dict[str, Any]]
) -> FirstAnswer:
    """A page's view callback: the view in the URL (and again at each tick) to
    ``view_outputs``. Not when the page is drawn: its layout holds that first answer
    (``drawn``, given what this returns)."""
    outputs = view_outputs(prefix, nav_ids(prefix))
    inputs = {
        "search": Input(f"{prefix}url", "search"),
        "tick": Input(f"{prefix}tick", "n_intervals"),
    }

    @app.callback(output=outputs, inputs=inputs, prevent_initial_call=True)
    def update(search: str | None, tick: int | None) -> dict[str, Any]:
        return render(search)

    return outputs, render


def register_page(
    app: Dash,
    gold: Gold,
    prefix: str,
    layout: Callable[[], Component],
    controls: FirstAnswer,
    render: Callable[[str | None], dict[str, Any]],
    rows: dict[str, tuple[list[Panel], str]],
    functions: dict[str, RowFunction],
) -> Callable[..., Any]:
    """A page's callbacks past its controls (``controls``: what registering them
    returned): the view, then one per row of ``rows`` (its panels and heading, as the
    page's ROWS) computed by its function in ``functions`` (the page's ROW_FUNCTIONS).
    Returns the page's layout as the pages router draws it (``drawn``)."""
    view = register_view(app, prefix, render)
    for name, (panels, _) in rows.items():
        register_row(app, gold, prefix, name, panels, functions[name])
    return drawn(layout, prefix, controls, view)


def filled(gold: Gold, resolved: dict[str, Any], *rows: RowFunction) -> dict[str, Any]:
    """A page for a view as its callbacks make it: the view callback's outputs
    (``resolved``; ``view`` as the View) and each panel's Result by its key, from each
    row's function. For tests and benchmarks."""
    view = View.from_store(resolved["view"])
    assert view is not None
    results: dict[str, Any] = {**resolved, "view": view}
    for compute in rows:
        results.update(compute(gold, view))
    return results


def drawn(layout: Callable[[], Component], prefix: str, *first: FirstAnswer) -> Callable[..., Any]:
    """``layout`` as the pages router draws it for a URL: each of ``first`` (a callback's
    outputs, and its answer for the URL's query) already in the components' properties,
    and the page's location holding the URL itself. The view and controls callbacks do
    not run when a page is drawn (prevent_initial_call), so the rows' callbacks start at
    once: one round trip before the panels, not three (router, controls, view).
    Outside the router's callback (Dash's validation layout, tests): ``layout()``."""

    def draw(**_query: Any) -> Any:
        page = layout()
        url = _router_url()
        if url is None:
            return page
        pathname, search = url
        # as the browser has them: a location whose props differ from the window's
        # would push that into the history
        values = {(f"{prefix}url", "pathname"): pathname, (f"{prefix}url", "search"): search}
        # side by side: the controls' wiki list and the view ask ClickHouse independently
        with ThreadPoolExecutor(max_workers=len(first)) as pool:
            answers = list(pool.map(lambda f: f[1](search), first))
        for (outputs, _), answer in zip(first, answers, strict=True):
            for key, value in answer.items():
                spec = outputs[key]
                pairs = zip(spec, value, strict=True) if isinstance(spec, list) else [(spec, value)]
                for out, v in pairs:
                    if v is not no_update:
                        values.setdefault((out.component_id, out.component_property), v)
        by_id = {c.id: c for c in [page, *page._traverse()] if getattr(c, "id", None)}
        for (cid, prop), value in values.items():
            setattr(by_id[cid], prop, value)  # every output is in the page's layout
        return page

    return draw


def _router_url() -> tuple[str, str] | None:
    """(pathname, search) of the URL the pages router is drawing, or None outside its
    callback."""
    try:
        inputs = callback_context.inputs
    except (MissingCallbackContextException, LookupError):  # LookupError: in a new thread
        return None
    if "_pages_location.search" not in inputs:
        return None
    return inputs.get("_pages_location.pathname") or "/", inputs["_pages_location.search"] or ""


def view_outputs(prefix: str, nav: list[str]) -> dict[str, Any]:
    """The outputs of a page's view callback."""
    return {
        "view": Output(f"{prefix}view", "data"),
        "freshness": Output(f"{prefix}freshness", "children"),
        "banner": Output(f"{prefix}banner", "children"),
        "banner-style": Output(f"{prefix}banner", "style"),
        "window": Output(f"{prefix}window", "children"),
        "tick-interval": Output(f"{prefix}tick", "interval"),
        "tick-disabled": Output(f"{prefix}tick", "disabled"),
        "nav": [Output(i, "href") for i in nav],
    }


def waiting(message: str, nav: list[str], retry_ms: int) -> dict[str, Any]:
    """A view callback's answer while there is nothing to show (no data yet, ClickHouse
    unreachable): ``message`` in the banner, the page asking again every ``retry_ms``."""
    return {
        "view": None,
        "freshness": "",
        **shown([message]),
        "window": "",
        "tick-interval": retry_ms,
        "tick-disabled": False,
        "nav": nav,
    }


def refreshing(out: dict[str, Any], every: int | None, nav: list[str]) -> dict[str, Any]:
    """A view callback's answer ``out``, the page refreshed every ``every`` seconds (never
    when None)."""
    return {**out, "tick-interval": (every or 60) * 1000, "tick-disabled": not every, "nav": nav}


def shown(messages: list[str]) -> dict[str, Any]:
    """The banner's text and style for these messages (hidden when none)."""
    return {"banner": " ".join(messages), "banner-style": SHOWN if messages else HIDDEN}


def input_rules(prefix: str) -> dict[str, guard.Check]:
    return {f"{prefix}view.data": guard.store(), f"{prefix}tick.n_intervals": guard.count()}
