"""The lookup page (``/lookup``): one wiki's pages side by side, as the Pageviews tool
shows them: each page's views per hour (the page-view dumps) above its edits per hour
(the live stream), on a linear or a log scale, and a table of the window's totals.

Page-level views are silver's (``silver.pageviews``, read by its primary key: the
window's hours, the wiki's domain codes, the titles): they are kept 7 days from loading
(the dbt var ``dumps_page_level_days``), and the page says so when the window asks for
older ones. Edits are gold's (``gold.page_edits_by_page``: the rows of
``page_edits_per_hour`` sorted by page, read by its key), kept for good.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from dash import Dash, dcc, html

from wiki_core.timefmt import naive_utc

from .. import controls, figures, guard, sites
from .. import page_parts as parts
from .. import panels as pn
from .. import queries as q
from ..page_parts import DashConfig
from ..panels import PAGE, Cell, Column, Panel, Result, View
from ..queries import Gold, Table, Unavailable
from ..state import REFRESH, ViewState
from .readers import coverage

PATH = "/lookup"
NAME = "Page lookup"
TITLE = "wiki-events · page lookup"
ORDER = 2

PREFIX = "lookup-"
# without a window in the URL, the lookup shows a week (page-level views are kept 7 days)
DEFAULT_RANGE = "7d"
EDITS_ARE = "edits and page creations (the stream's types edit and new)"

CHART = Panel(
    "chart",
    "Views and edits per hour",
    "Each page's views per hour (above; people only, as the hourly dumps count them) and "
    f"its edits per hour ({EDITS_ARE}, below), one colour per page. An hour whose views "
    "are not loaded is a gap; on the log scale an hour of 0 views is one too.",
    width="full",
)
TOTALS = Panel(
    "totals",
    "The window's totals",
    "Per page: its views over the window's hours whose views are loaded, its edits over "
    "the window, and edits per 1,000 views; each page links to the wiki.",
    kind="table",
    columns=(
        PAGE,
        Column("views", "views", "count", "views in the hours loaded"),
        Column("peak", "busiest hour (UTC)", "time", "the hour with the most views"),
        Column("edits", "edits", "count", EDITS_ARE),
        Column("edits_per_1000_views", "per 1,000 views", "ratio", "edits × 1,000 / views"),
    ),
    width="full",
)
ROWS: dict[str, tuple[list[Panel], str]] = {"lookup": ([CHART, TOTALS], "")}
PANELS = [CHART, TOTALS]
INPUT_RULES: dict[str, guard.Check] = {
    **controls.input_rules(PREFIX),
    **pn.input_rules(PREFIX),
}
ASK = "Pick a wiki and type one or more page titles, | between (Cat|Dog)."


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            controls.location(PREFIX),
            dcc.Interval(id=f"{PREFIX}tick", interval=parts.RETRY_MS, disabled=True),
            pn.view_store(PREFIX),
            parts.header(PATH, PREFIX, "Pages side by side: views and edits per hour"),
            parts.banner(PREFIX),
            parts.drawer(PREFIX, controls.controls(PREFIX, users=False, lookup=True)),
            html.Div(id=f"{PREFIX}window", className="window"),
            *[pn.row(PREFIX, panels, heading) for panels, heading in ROWS.values()],
        ],
        className="page",
    )


def resolve(gold: Gold, state: ViewState, search: str, config: DashConfig) -> dict[str, Any]:
    """The view: the window ends where the loaded views end (or at the newest edit
    without dumps); a week unless the URL asks for another window."""
    ttl = REFRESH[state.refresh] or gold.cache_seconds
    built = set(gold.run(q.READERS_BUILT, {"models": q.DRILL_VIEWS_MODELS}, ttl=ttl).column("name"))
    dumps = len(built) == len(q.DRILL_VIEWS_MODELS)
    fresh = (
        {row[0]: row for row in gold.run(q.DUMPS_FRESHNESS, ttl=ttl).rows if row[1]}
        if dumps
        else {}
    )
    views_until = naive_utc(fresh["pageviews"][3]) if "pageviews" in fresh else None
    edits = gold.run(q.FRESHNESS, ttl=ttl)
    newest = naive_utc(edits.rows[0][0]) if edits and edits.rows[0][3] else None
    if "range=" not in (search or ""):
        state = ViewState.build(
            state.wikis, DEFAULT_RANGE, titles="|".join(state.titles), log=state.log
        )
    anchor = views_until - dt.timedelta(minutes=1) if views_until else newest
    start, end, range_note = state.bounded_window(anchor)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    facts = coverage(gold, views_until) if views_until else {}
    facts.update(
        dumps=bool(views_until), views_until=views_until.isoformat() if views_until else None
    )
    messages = [range_note] if range_note else []
    if not state.wikis or not state.titles:
        messages.append(ASK)
    elif not views_until:
        messages.append(
            "No page views loaded: the chart shows edits only (the Readers page says how "
            "to load the page-view dumps)."
        )
    view = View(state, start, end, now, facts)
    wiki = state.wikis[0] if state.wikis else "no wiki"
    label = f"{parts.when(start)} – {parts.when(end)} UTC"
    pills = []
    if views_until:
        behind = (now - views_until).total_seconds()
        pills.append(
            parts.pill(
                "views up to",
                behind,
                config.views,
                f"page views loaded up to {parts.when(views_until)} UTC",
                when=parts.when(views_until),
            )
        )
    if newest:
        pills.append(
            parts.pill(
                "newest edit",
                (now - newest).total_seconds(),
                config.edits,
                f"{parts.when(newest)} UTC",
            )
        )
    return {
        "view": view.to_store(),
        "freshness": pills,
        **pn.shown(messages),
        "window": f"{wiki} · {label} · {len(state.titles)} page(s)",
    }


def render(gold: Gold, search: str | None, config: DashConfig | None = None) -> dict[str, Any]:
    config = config or DashConfig()
    state = ViewState.from_search(search)
    every = REFRESH[state.refresh]
    nav = parts.nav_hrefs(PREFIX, state.to_search())
    try:
        out = resolve(gold, state, search or "", config)
    except Unavailable as exc:
        message = f"ClickHouse {exc}. Retrying every {parts.RETRY_MS // 1000} s."
        return pn.waiting(message, nav, parts.RETRY_MS)
    return pn.refreshing(out, every, nav)


def lookup_row(gold: Gold, view: View) -> dict[str, Result]:
    state = view.state
    wiki = state.wikis[0] if state.wikis else ""
    titles = list(state.titles)
    if not wiki or not titles:
        return {
            "chart": Result(figure=figures.empty(ASK)),
            "totals": Result(rows=[], note=ASK),
        }
    ttl = REFRESH[state.refresh] or gold.cache_seconds

    def run(sql: str, p: dict[str, Any]) -> Table:
        return gold.run(sql, p, ttl=ttl)

    window = {"start": view.start, "end": view.end, "wiki": wiki}
    edits = run(q.LOOKUP_EDITS, {**window, "titles": titles})
    notes = []
    views = Table(["hour", "title", "views"], [])
    if view.facts.get("dumps"):
        loaded = [naive_utc(h) for h in run(q.LOOKUP_LOADED, window).column("hour")]
        held = view.fact_time("page_rows_first")
        codes = run(q.LOOKUP_CODES, window).column("domain_code")
        kept = [h for h in loaded if held and h >= held]
        if kept and codes:
            found = run(
                q.LOOKUP_VIEWS,
                {
                    **window,
                    "start": min(kept),
                    "codes": codes,
                    "pages": [t.replace(" ", "_") for t in titles],
                },
            )
            got = {(naive_utc(h), t.replace("_", " ")): v for h, t, v in found.rows}
            # an hour whose views are loaded and kept: a page without a row had 0 views
            views = Table(
                ["hour", "title", "views"],
                [(h, t, got.get((h, t), 0)) for t in titles for h in kept],
            )
        expired = [h for h in loaded if not (held and h >= held)]
        missing = [h for h in parts.hours(view.start, view.end) if h not in set(loaded)]
        if expired:
            days = view.facts.get("page_rows_days")
            notes.append(
                f"page-level views are kept {days} days from loading: the views of "
                f"{parts.hour_ranges(expired)} UTC are gone"
            )
        if missing:
            notes.append(f"{wiki}'s views are not loaded for {parts.hour_ranges(missing)} UTC")
    else:
        notes.append("no page views loaded: edits only")
    figure = figures.lookup(views, edits, titles, view.window, state.log)
    rows = []
    for title in titles:
        per_hour = [(h, v) for h, t, v in views.rows if t == title]
        total = sum(v for _, v in per_hour)
        peak = max(per_hour, key=lambda hv: (hv[1], hv[0]))[0] if total else None
        n = sum(e for _, t, e in edits.rows if t == title)
        rows.append(
            [
                Cell(title, sites.page_url(wiki, title)),
                total if per_hour else None,
                peak,
                n,
                n * 1000 / total if total else None,
            ]
        )
    csv = Table(
        ["hour", "title", "views", "edits"],
        _joined(views, edits),
    )
    note = "; ".join(notes)
    return {
        "chart": Result(
            figure=figure, csv=csv, note=note, title=f"{wiki}: views and edits per hour"
        ),
        "totals": Result(rows=rows, note=note),
    }


def _joined(views: Table, edits: Table) -> list[tuple[Any, ...]]:
    """The chart's rows as one table: per hour and page, views (None: not loaded) and
    edits."""
    cells: dict[tuple[Any, str], list[Any]] = {}
    for h, t, v in views.rows:
        cells.setdefault((naive_utc(h), t), [None, 0])[0] = v
    for h, t, e in edits.rows:
        cells.setdefault((naive_utc(h), t), [None, 0])[1] = e
    return [
        (h, t, v, e)
        for (h, t), (v, e) in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


ROW_FUNCTIONS: dict[str, pn.RowFunction] = {"lookup": lookup_row}


def build_view(gold: Gold, search: str, config: DashConfig | None = None) -> dict[str, Any]:
    """The whole page for a URL's query, as its callbacks make it (for tests)."""
    out = resolve(gold, ViewState.from_search(search), search, config or DashConfig())
    return pn.filled(gold, out, lookup_row)


def register_callbacks(app: Dash, gold: Gold, config: DashConfig) -> Callable[..., Any]:
    """The page's callbacks; returns its layout as the pages router draws it."""
    return pn.register_page(
        app,
        gold,
        PREFIX,
        layout,
        controls.register(app, gold, PREFIX, q.WIKI_OPTIONS, single=True),
        lambda search: render(gold, search, config),
        ROWS,
        ROW_FUNCTIONS,
    )
