"""The edits page (``/``): what Wikimedia's editors do, from the recentchange stream.

Every panel reads gold through ``Gold`` (cached, parameterised, limited in rows). A view
with no rows is a page that says so, panel by panel; when ClickHouse is unreachable or
gold is empty the page says that and keeps retrying on its own.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dash import Dash, Input, Output, dcc, html

from wiki_core.timefmt import naive_utc

from .. import controls, figures, guard
from .. import page_parts as parts
from .. import queries as q
from ..queries import Gold, Table, Unavailable
from ..state import RANGES, REFRESH, ViewState, resolution

PATH = "/"
NAME = "Edits"
TITLE = "wiki-events · edits"
ORDER = 0

PARALLEL_QUERIES = 4
# past this, panels read hourly rows, top-N lists come from topK states, and the minute
# charts show the window's last day
LONG_WINDOW = dt.timedelta(hours=24)

GRAPHS = [
    "per-minute",
    "per-hour",
    "top-wikis",
    "user-kinds",
    "type-mix",
    "bytes",
    "drill-minute",
    "drill-hour",
    "heatmap",
]
TABLES = ["top-pages", "top-editors", "spikes", "drill-views"]
TABLE_EMPTY = {
    "top-pages": "no edits in this window",
    "top-editors": "no edits in this window",
    "spikes": "no spike: no wiki's last hour is 3× its usual",
}
DRILL_VIEWS_TITLE = "Views of the pages edited in the last hour"
# the dumps are opt-in: without them the panel says so, quietly
NO_DUMPS = (
    "no page views: the page-view dumps are not loaded (they are opt-in; "
    "the Readers page says how to load them)"
)
TEXTS = ["freshness", "window", "drill-title", "drill-views-title", "banner"]
# every output of the page's callback, by name (Dash's flexible callback signature)
OUTPUTS = {
    **{g: Output(g, "figure") for g in GRAPHS},
    **{t: Output(t, "data") for t in TABLES},
    **{f"{t}-note": Output(f"{t}-note", "children") for t in TABLES},
    **{name: Output(name, "children") for name in TEXTS},
    "banner-style": Output("banner", "style"),
    "tick-interval": Output("tick", "interval"),
    "tick-disabled": Output("tick", "disabled"),
}
INPUT_RULES: dict[str, guard.Check] = {
    **controls.input_rules(),
    "tick.n_intervals": guard.count(),
}


class NoData(Exception):
    pass


def layout(**_query: Any) -> html.Div:
    """The page; the URL's query is read by the controls' callback, not here."""
    return html.Div(
        [
            controls.location(),
            dcc.Interval(id="tick", interval=parts.RETRY_MS, disabled=True),
            parts.header(PATH, "Wikimedia recent changes, live", "freshness"),
            parts.banner("banner"),
            controls.controls(),
            html.Div(id="window", className="window"),
            html.Div([parts.panel("per-minute"), parts.panel("per-hour")], className="row"),
            html.Div(
                [parts.panel(g, "32%") for g in ("top-wikis", "user-kinds", "type-mix")],
                className="row",
            ),
            html.Div([parts.panel("bytes", "99%")], className="row"),
            html.Div(
                [
                    parts.table("top-pages", "Top pages", ["wiki", "title", "edits", "byte_delta"]),
                    parts.table(
                        "top-editors",
                        "Top editors",
                        ["wiki", "user", "kind", "edits", "bytes_added", "bytes_removed"],
                    ),
                    parts.table(
                        "spikes",
                        "Spikes: last hour vs the wiki's usual for this hour",
                        ["wiki", "events", "baseline", "ratio"],
                    ),
                ],
                className="row",
            ),
            html.H2(id="drill-title", children="Drill-down"),
            html.Div(
                [parts.panel(g, "32%") for g in ("drill-minute", "drill-hour", "heatmap")],
                className="row",
            ),
            html.Div(
                [
                    parts.table(
                        "drill-views",
                        DRILL_VIEWS_TITLE,
                        ["title", "edits", "views"],
                        "99%",
                        page_size=q.DRILL_PAGES,
                    )
                ],
                className="row",
            ),
        ],
        className="page",
    )


def build_view(gold: Gold, state: ViewState) -> dict[str, Any]:
    """Everything the page shows for a view: figures, tables, texts, keyed by OUTPUTS'
    names (all but the refresh timer's). Raises Unavailable, NoData."""
    ttl = REFRESH[state.refresh] or gold.cache_seconds
    fresh = gold.run(q.FRESHNESS, ttl=ttl)
    newest, last_insert, now, total = fresh.rows[0] if fresh else (None, None, None, 0)
    if not total:
        raise NoData()
    newest = naive_utc(newest)
    start, end, range_note = state.bounded_window(newest)
    long = end - start > LONG_WINDOW
    params = q.window_params(start, end, state.wikis, state.kinds)
    # the context series: at least the last 7 days, by hour (by day past a week)
    context_start = min(start, end - RANGES["7d"])
    context = "day" if resolution(end - context_start) == "day" else "hour"
    per_bucket, per_bucket_wikis, _, drill_series = q.SERIES[context]
    bytes_bucket = "day" if resolution(end - start) == "day" else "hour"
    context_params = {**params, "start": context_start}
    # minutes for at most the window's last day: past it the context chart tells more
    minute_params = {**params, "start": max(start, end - LONG_WINDOW)}

    def run(sql: str, p: dict[str, Any] = params) -> Table:
        return gold.run(sql, p, ttl=ttl)

    queries: dict[str, tuple[str, dict[str, Any]]] = {
        "per-minute": (q.PER_MINUTE_WIKIS if state.wikis else q.PER_MINUTE, minute_params),
        "per-hour": (per_bucket_wikis if state.wikis else per_bucket, context_params),
        # past a day, hourly rows (24x fewer) for the window's shares
        "top-wikis": (q.TOP_WIKIS_HOURLY if long else q.TOP_WIKIS, params),
        "user-kinds": (q.USER_KINDS_HOURLY if long else q.USER_KINDS, params),
        "type-mix": (q.TYPE_MIX, params),
        "bytes": (q.SERIES[bytes_bucket][2], params),
        "top-pages": (_pick(state, long, q.TOP_PAGES, q.TOP_PAGES_ALL, q.TOP_PAGES_APPROX), params),
        "top-editors": (
            _pick(state, long, q.TOP_EDITORS, q.TOP_EDITORS_ALL, q.TOP_EDITORS_APPROX),
            params,
        ),
        "spikes": (
            q.SPIKES,
            {"end": end, "min_events": q.SPIKE_MIN_EVENTS, "min_ratio": q.SPIKE_MIN_RATIO},
        ),
    }
    if state.wikis:
        queries["known"] = (q.KNOWN_WIKIS, params)
    # the panels' queries run side by side: the page waits for the slowest, not the sum
    with ThreadPoolExecutor(max_workers=PARALLEL_QUERIES) as pool:
        pending = {key: pool.submit(run, sql, p) for key, (sql, p) in queries.items()}
        top = pending["top-wikis"].result()
        drill = state.wikis[0] if state.wikis else (top.rows[0][0] if top else "")
        drill_params = {"end": end, "wiki": drill, "kinds": state.kinds}
        pending["drill-minute"] = pool.submit(
            run, q.DRILL_MINUTE, {**drill_params, "start": minute_params["start"]}
        )
        pending["drill-hour"] = pool.submit(
            run, drill_series, {**drill_params, "start": context_start}
        )
        pending["heatmap"] = pool.submit(run, q.HEATMAP, {"wiki": drill})
        views = pool.submit(drill_views, gold, drill, end, state.kinds, ttl)
        got = {key: future.result() for key, future in pending.items()}
        drilled = views.result()

    scope = ", ".join(state.wikis) if state.wikis else "all wikis"
    label = f"{parts.when(start)} – {parts.when(end)} UTC"
    users = controls.USER_LABELS[state.users]
    last_day = " (the window's last 24 h)" if long else ""
    name = figures.short(drill)
    by = {"hour": "per hour", "day": "per day"}
    view: dict[str, Any] = {
        "freshness": parts.freshness_text(newest, naive_utc(last_insert), naive_utc(now)),
        "window": f"{scope} · {label} · {users}",
        "per-minute": figures.series(got["per-minute"], "minute", "Events per minute" + last_day),
        "per-hour": figures.series(
            got["per-hour"], context, f"Events {by[context]} (at least the last 7 days)"
        ),
        "top-wikis": figures.bars(
            top, "wiki", "Top wikis" + (" (all wikis)" if state.wikis else "")
        ),
        "user-kinds": figures.user_kinds(got["user-kinds"], "Bot / anonymous / registered"),
        "type-mix": figures.bars(got["type-mix"], "type", "Event types", horizontal=False),
        "bytes": figures.bytes_flow(
            got["bytes"], bytes_bucket, f"Bytes added and removed {by[bytes_bucket]}"
        ),
        "drill-title": f"Drill-down: {name}" if drill else "Drill-down",
        "drill-minute": figures.series(
            got["drill-minute"], "minute", f"{name}: events per minute{last_day}"
        ),
        "drill-hour": figures.series(got["drill-hour"], context, f"{name}: events {by[context]}"),
        "heatmap": figures.heatmap(got["heatmap"], f"{name}: average events by weekday and hour"),
        "top-pages": _ranked(got["top-pages"]),
        "top-editors": _ranked(got["top-editors"]),
        "spikes": parts.records(got["spikes"].columns, got["spikes"].rows),
        "drill-views": drilled.rows,
        "drill-views-title": f"{name}: {drilled.title}" if drill else drilled.title,
        "drill-views-note": drilled.note,
    }
    for t in TABLE_EMPTY:
        view[f"{t}-note"] = "" if view[t] else TABLE_EMPTY[t]
    messages = [range_note] if range_note else []
    known = set(got["known"].column("wiki")) if state.wikis else set()
    unknown = [w for w in state.wikis if w not in known]
    if unknown:
        messages.append(f"No wiki named {', '.join(unknown)} in gold: pick one from the list.")
    # the minute chart is the whole window up to a day, the type mix (hourly) past it
    some = got["type-mix"] if long else any(got["per-minute"].column("events"))
    every_pick_unknown = bool(state.wikis) and len(unknown) == len(state.wikis)
    if not some and not every_pick_unknown:  # (an unknown wiki is said above)
        messages.append(
            f"No events for this view ({scope} · {label} · {users}). "
            "Pick other wikis, a longer window or all editors."
        )
    view["banner"] = " ".join(messages)
    view["banner-style"] = parts.SHOWN if messages else parts.HIDDEN
    return view


def render(gold: Gold, search: str | None) -> dict[str, Any]:
    """The page's callback: every output for the view in the URL, never an exception
    for lack of data."""
    state = ViewState.from_search(search)
    every = REFRESH[state.refresh]
    try:
        view = build_view(gold, state)
    except (Unavailable, NoData) as exc:
        message = (
            "No events in gold yet. Is the loader running? `wiki-events status` shows "
            "each stage. This page checks again every few seconds."
            if isinstance(exc, NoData)
            else f"ClickHouse {exc}. Retrying every {parts.RETRY_MS // 1000} s."
        )
        return parts.failed_view(
            GRAPHS,
            TABLES,
            message,
            {"window": "", "drill-title": "Drill-down", "drill-views-title": DRILL_VIEWS_TITLE},
        )
    return {**view, "tick-interval": (every or 60) * 1000, "tick-disabled": not every}


def register_callbacks(app: Dash, gold: Gold) -> None:
    controls.register(app, gold)

    @app.callback(
        output=OUTPUTS,
        inputs={"search": Input("url", "search"), "tick": Input("tick", "n_intervals")},
    )
    def update(search: str | None, tick: int | None) -> dict[str, Any]:
        return render(gold, search)


def _pick(state: ViewState, long: bool, exact: str, candidates: str, approx: str) -> str:
    """Top pages / editors: picked wikis, exact over their rows; all wikis, topK
    candidates with exact counts up to a day, the topK bounds past it."""
    if state.wikis:
        return exact
    return approx if long else candidates


def _ranked(table: Table) -> list[dict[str, Any]]:
    """Rows for a top-N table; an approximate count (topK: count is an upper bound,
    count - error a lower one) shows as its bounds."""
    rows = parts.records(table.columns, table.rows)
    for row in rows:
        error = row.pop("error", 0)
        if error:
            row["edits"] = f"{row['edits'] - error}–{row['edits']}"
    return rows


@dataclass
class DrillViews:
    """The drill-down's "views of the pages edited in the last hour": its title, its rows
    (title, edits, views) and a note saying which hour of views is shown, or why none."""

    title: str
    note: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def drill_views(
    gold: Gold, wiki: str, end: dt.datetime, kinds: list[str] | tuple[str, ...], ttl: float = 0
) -> DrillViews:
    """The pages of ``wiki`` edited in the hours overlapping the last 60 minutes before
    ``end`` (the live edits), the most edited first, with their views in the newest hour
    of page-view dumps loaded for ``wiki`` (at most q.DRILL_LOOKBACK_HOURS back). Never
    raises for lack of dumps or of ClickHouse: the note says it."""
    first = (end - dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    edited = f"edited {parts.when(first)}–{end:%H:%M} UTC"
    title = f"views of the pages {edited}"

    def run(sql: str, p: dict[str, Any]) -> Table:
        return gold.run(sql, p, ttl=ttl or None)

    if not wiki:
        return DrillViews(DRILL_VIEWS_TITLE, "no edits in this window")
    try:
        built = run(q.READERS_BUILT, {"models": q.DRILL_VIEWS_MODELS}).column("name")
        if len(built) < len(q.DRILL_VIEWS_MODELS):
            return DrillViews(title, NO_DUMPS)
        fresh = {row[0]: row for row in run(q.DUMPS_FRESHNESS, {}).rows if row[1]}
        if "pageviews" not in fresh:
            return DrillViews(title, NO_DUMPS)
        pages = run(q.DRILL_EDITED, {"end": end, "wiki": wiki, "kinds": list(kinds)})
        if not pages:
            return DrillViews(title, f"no page of {figures.short(wiki)} {edited}")
        hours = run(q.DRILL_VIEWS_HOUR, {"end": end, "wiki": wiki}).column("hour")
        if not hours:
            since = end - dt.timedelta(hours=q.DRILL_LOOKBACK_HOURS)
            until = naive_utc(fresh["pageviews"][3])
            return DrillViews(
                title,
                f"no views: {figures.short(wiki)}'s page views are not loaded for any hour of "
                f"{parts.when(since)}–{end:%H:%M} UTC (page views are loaded up to "
                f"{parts.when(until)} UTC)",
            )
        hour = naive_utc(hours[0])
        where = {"hour": hour, "wiki": wiki}
        codes = run(q.DRILL_CODES, where).column("domain_code")
        titles = [t.replace(" ", "_") for t in pages.column("title")]
        seen = run(
            q.DRILL_VIEWS if codes else q.DRILL_VIEWS_ANY_CODE,
            {**where, "codes": codes, "pages": titles},
        )
    except Unavailable as exc:
        return DrillViews(title, f"views not available: ClickHouse {exc}")
    views = dict(zip(seen.column("page"), seen.column("views"), strict=True))
    edits = zip(pages.column("title"), pages.column("edits"), strict=True)
    rows = [(t, e, views.get(t, 0)) for t, e in edits]
    total = pages.column("pages")[0]
    shown = f"the {len(rows)} most edited of {total:,}" if total > len(rows) else f"all {total}"
    return DrillViews(
        title,
        f"views in {parts.when(hour)}–{hour + dt.timedelta(hours=1):%H:%M} UTC, the newest "
        f"hour loaded for {figures.short(wiki)}; {shown} pages edited (0: no view that hour)",
        parts.records(["title", "edits", "views"], rows),
    )
