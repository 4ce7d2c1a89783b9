"""The edits page (``/``): what Wikimedia's editors do, from the recentchange stream.

A view callback resolves the window (it ends at the newest event) and the freshness;
a callback per row of panels fills them from gold (``Gold``: cached, parameterised,
limited in rows), side by side. A view with no rows is a page that says so, panel by
panel; when ClickHouse is unreachable or gold is empty the page says that and keeps
retrying on its own.

Words mean one thing on every page: an **edit** is an edit or a page creation (types
``edit`` and ``new``), a log entry is an **action**, an **event** is anything the stream
reports (edits, actions, categorizations, Wikidata's external changes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dash import Dash, dcc, html

from wiki_core.timefmt import naive_utc

from .. import controls, figures, guard, sites
from .. import page_parts as parts
from .. import panels as pn
from .. import queries as q
from ..page_parts import DashConfig
from ..panels import PAGE, WIKI, Cell, Column, Panel, Result, Tile, View
from ..queries import Gold, Table, Unavailable
from ..state import RANGES, REFRESH, ViewState, resolution

PATH = "/"
NAME = "Edits"
TITLE = "wiki-events · edits"
ORDER = 0

PREFIX = ""
# past this, the shares read hourly rows (24x fewer than minute rows)
LONG_WINDOW = dt.timedelta(hours=24)
# up to this, a window's totals read its minutes alone (past it, its whole hours too)
MINUTES_WINDOW = dt.timedelta(hours=6)
WEEK = RANGES["7d"]
BY = {"minute": "per minute", "hour": "per hour", "day": "per day"}
EVENTS_ARE = (
    "every change the stream reports: edits, page creations, log actions, "
    "categorizations and Wikidata's external changes"
)
EDITS_ARE = "edits and page creations (the stream's types edit and new)"

NOW = Panel(
    "now",
    "Now",
    "The window's last minutes: edits per minute against the usual for this weekday and "
    "hour, the bots' share of the last hour's edits, the wikis edited in it, and the views "
    f"of the newest hour of page-view dumps loaded. An edit: {EDITS_ARE}.",
    kind="tiles",
    width="full",
)
ACTIVITY = Panel(
    "activity",
    "Events",
    f"Events, {EVENTS_ARE}, over the window by who made them: per minute up to a day, "
    "per hour up to a week, then per day. The wikis and editors filters apply.",
)
CONTEXT = Panel(
    "context",
    "The last 7 days",
    "The same events over the 7 days that end with the window (or the window, when it is "
    "longer), per hour (per day past a week); the window is shaded. Filters apply.",
)
TOP_WIKIS = Panel(
    "top-wikis",
    "Top wikis",
    "Events per wiki in the window, the 15 busiest; each name links to the wiki. The "
    "editors filter applies; the wiki filter does not: every wiki is ranked.",
    width="third",
)
USER_KINDS = Panel(
    "user-kinds",
    "Who made the events",
    "The window's events by who made them: bots (the bot flag), anonymous (an IP "
    "address or a temporary account) and registered users. Both filters apply.",
    width="third",
)
TYPE_MIX = Panel(
    "type-mix",
    "Event types",
    "The window's events by type: edits, page creations, log actions (moves, blocks, "
    "uploads...), categorizations, external (Wikidata). Both filters apply.",
    width="third",
)
BYTES = Panel(
    "bytes",
    "Bytes added and removed",
    "Text added (the growth of pages) and removed, per hour (per day past a week), "
    "summed over every change with a size: the hours overlapping the window. Both "
    "filters apply.",
    width="full",
)
TOP_PAGES = Panel(
    "top-pages",
    "Top pages",
    f"The 10 pages with the most edits ({EDITS_ARE}) in the window, with their net change "
    "in bytes. Exact: the candidates come from hourly top-k summaries, their edits are "
    "counted exactly and ranked by that count. Both filters apply.",
    kind="table",
    columns=(
        WIKI,
        PAGE,
        Column("edits", "edits", "count", EDITS_ARE),
        Column("byte_delta", "bytes", "bytes", "the net change of the page's size"),
    ),
)
TOP_EDITORS = Panel(
    "top-editors",
    "Top editors",
    f"The 10 users with the most edits ({EDITS_ARE}) in the window, with their log "
    "actions beside (not counted as edits). Exact, as the top pages. Both filters apply.",
    kind="table",
    columns=(
        WIKI,
        Column("user", "user", "title", tip="links to the user's contributions"),
        Column("kind", "kind", tip="bot, anonymous or registered"),
        Column("edits", "edits", "count", EDITS_ARE),
        Column("actions", "actions", "count", "log actions: moves, blocks, uploads..."),
        Column("bytes_added", "added", "count", "bytes added"),
        Column("bytes_removed", "removed", "count", "bytes removed"),
    ),
)
NOTABLE = Panel(
    "notable",
    "Notable edits",
    "The window's latest edits and page creations that changed the page by at least "
    "2,000 bytes either way (the dbt var notable_bytes), newest first: the page, the user "
    "and the change, each a link (the change opens the diff). Both filters apply.",
    kind="table",
    columns=(
        Column("time", "time (UTC)", "time"),
        WIKI,
        PAGE,
        Column("user", "user", "title", tip="links to the user's contributions"),
        Column("change", "change", tip="bytes added (+) or removed (-); links to the diff"),
        Column("type", "type"),
        Column("kind", "kind"),
    ),
    width="two-thirds",
)
SPIKES = Panel(
    "spikes",
    "Spikes",
    "Wikis whose last hour has at least 3× their usual events for this weekday and hour "
    f"(the average of the other weeks observed among the last {q.USUAL_WEEKS}) and at "
    f"least {q.SPIKE_MIN_EVENTS} events. Both filters apply.",
    kind="table",
    columns=(
        WIKI,
        Column("events", "events", "count", "events in the window's last 60 minutes"),
        Column("baseline", "usual", "ratio", "the wiki's average for this weekday and hour"),
        Column("ratio", "ratio", "ratio", "events / usual"),
    ),
    width="third",
)
DRILL_ACTIVITY = Panel(
    "drill-activity",
    "Drill-down: events",
    "The drill-down wiki (the first picked, else the busiest of the window): its events "
    "over the window by who made them. The editors filter applies.",
    width="third",
)
DRILL_CONTEXT = Panel(
    "drill-context",
    "Drill-down: the last 7 days",
    "The drill-down wiki's events over the 7 days that end with the window, the window "
    "shaded. The editors filter applies.",
    width="third",
)
HEATMAP = Panel(
    "heatmap",
    "Drill-down: a usual week",
    "The drill-down wiki's average events per weekday and hour (UTC) over the weeks "
    f"observed among the last {q.USUAL_WEEKS}: all editors, whatever the window and the "
    "editors filter.",
    width="third",
)
DRILL_VIEWS_TITLE = "Views of the pages edited in the last hour"
DRILL_VIEWS = Panel(
    "drill-views",
    DRILL_VIEWS_TITLE,
    f"The drill-down wiki's {q.DRILL_PAGES} most edited pages of the hours overlapping "
    "the window's last 60 minutes, with their views in the newest hour of page-view "
    "dumps loaded for the wiki (the dumps lag the stream by hours); 0: no view that hour.",
    kind="table",
    columns=(
        PAGE,
        Column("edits", "edits", "count", EDITS_ARE),
        Column("views", "views", "count", "views in the hour the note names"),
    ),
    width="full",
)
ROWS: dict[str, tuple[list[Panel], str]] = {
    "now": ([NOW], ""),
    "activity": ([ACTIVITY, CONTEXT], ""),
    "mix": ([TOP_WIKIS, USER_KINDS, TYPE_MIX], ""),
    "bytes": ([BYTES], ""),
    "top": ([TOP_PAGES, TOP_EDITORS], "Pages and editors"),
    "notable": ([NOTABLE, SPIKES], ""),
    "drill": ([DRILL_ACTIVITY, DRILL_CONTEXT, HEATMAP], "Drill-down"),
    "drill-views": ([DRILL_VIEWS], ""),
}
PANELS = [panel for panels, _ in ROWS.values() for panel in panels]
EMPTY_TABLE = {
    "top-pages": "no edits in this window",
    "top-editors": "no edits in this window",
    "notable": "no notable edit in this window",
    "spikes": "no spike: no wiki's last hour is 3× its usual",
}
# the dumps are opt-in: without them the panel says so, quietly
NO_DUMPS = (
    "no page views: the page-view dumps are not loaded (they are opt-in; "
    "the Readers page says how to load them)"
)
INPUT_RULES: dict[str, guard.Check] = {
    **controls.input_rules(PREFIX),
    **pn.input_rules(PREFIX),
}


class NoData(Exception):
    pass


def layout(**_query: Any) -> html.Div:
    """The page, unfilled: `register_callbacks` returns it drawn for a URL (panels.drawn)."""
    return html.Div(
        [
            controls.location(PREFIX),
            dcc.Interval(id=f"{PREFIX}tick", interval=parts.RETRY_MS, disabled=True),
            pn.view_store(PREFIX),
            parts.header(PATH, PREFIX, "Wikimedia recent changes, live"),
            parts.banner(PREFIX),
            parts.drawer(PREFIX, controls.controls(PREFIX)),
            html.Div(id=f"{PREFIX}window", className="window"),
            *[pn.row(PREFIX, panels, heading) for panels, heading in ROWS.values()],
        ],
        className="page",
    )


# -- the view: window, freshness, banner ---------------------------------------------------


def resolve(gold: Gold, state: ViewState, config: DashConfig) -> dict[str, Any]:
    """The view callback's outputs for ``state``: the resolved View (its store), the
    freshness pills, the banner, the window line. Raises Unavailable, NoData."""
    ttl = REFRESH[state.refresh] or gold.cache_seconds
    fresh = gold.run(q.FRESHNESS, ttl=ttl)
    newest, last_insert, now, total, first = fresh.rows[0] if fresh else (None,) * 5
    if not total:
        raise NoData()
    newest, last_insert, now = naive_utc(newest), naive_utc(last_insert), naive_utc(now)
    first = naive_utc(first)
    start, end, range_note = state.bounded_window(newest)
    params = q.window_params(start, end, state.wikis, state.kinds)
    counting = _for_window(
        end - start, q.EVENTS_IN_VIEW, q.EVENTS_IN_VIEW_HOURS, q.EVENTS_IN_VIEW_HOURLY
    )
    answers = gold.run_all(
        [(q.HOURS_WITH_EVENTS, params), (counting, params), (q.KNOWN_WIKIS, params)], ttl=ttl
    )
    hours = answers[0].column("hour")
    in_view = answers[1].rows[0][0] if answers[1] else 0
    known = set(answers[2].column("wiki")) if state.wikis else set()

    scope = ", ".join(state.wikis) if state.wikis else "all wikis"
    label = f"{parts.when(start)} – {parts.when(end)} UTC"
    users = controls.USER_LABELS[state.users]
    expected = parts.hours(start, end)
    seen = {naive_utc(h) for h in hours}
    missing = [h for h in expected if h not in seen]
    window = f"{scope} · {label} · {users}"
    if seen and missing:
        window += (
            f" · the stream delivered events in {len(expected) - len(missing)} of the "
            f"window's {len(expected)} hours; none in {parts.hour_ranges(missing)} UTC"
        )
    messages = [range_note] if range_note else []
    unknown = [w for w in state.wikis if w not in known]
    if unknown:
        messages.append(f"No wiki named {', '.join(unknown)} in gold: pick one from the list.")
    every_pick_unknown = bool(state.wikis) and len(unknown) == len(state.wikis)
    if not in_view and not every_pick_unknown and "in the future" not in range_note:
        if first and end <= first:
            messages.append(
                f"No events for this view: the stream's events in gold begin "
                f"{parts.when(first)} UTC, after this window."
            )
        else:
            messages.append(
                f"No events for this view ({scope} · {label} · {users}). "
                "Pick other wikis, a longer window or all editors."
            )
    age = (now - newest).total_seconds() if newest and now else None
    detail = f"newest event {parts.when(newest)} UTC" if newest else "no event"
    if last_insert and now:
        detail += (
            f"; last insert {parts.age_text_of(now - last_insert)} ago; ingestion lag "
            f"{parts.age_text_of(last_insert - newest)}"
        )
    pills: list[Any] = [parts.pill("newest event", age, config.edits, detail)]
    if newest and last_insert:
        badge = parts.replay_badge(newest, last_insert, config.replay_lag)
        if badge is not None:
            pills.append(badge)
    view = View(state, start, end, now, {"newest": newest.isoformat() if newest else None})
    return {
        "view": view.to_store(),
        "freshness": pills,
        **pn.shown(messages),
        "window": window,
    }


def render(gold: Gold, search: str | None, config: DashConfig | None = None) -> dict[str, Any]:
    """The view callback: every output for the view in the URL, never an exception for
    lack of data."""
    config = config or DashConfig()
    state = ViewState.from_search(search)
    every = REFRESH[state.refresh]
    nav = parts.nav_hrefs(PREFIX, state.to_search())
    try:
        out = resolve(gold, state, config)
    except (Unavailable, NoData) as exc:
        message = (
            "No events in gold yet. Is the loader running? `wiki-events status` shows "
            "each stage. This page checks again every few seconds."
            if isinstance(exc, NoData)
            else f"ClickHouse {exc}. Retrying every {parts.RETRY_MS // 1000} s."
        )
        return pn.waiting(message, nav, parts.RETRY_MS)
    return pn.refreshing(out, every, nav)


# -- the rows ------------------------------------------------------------------------------


def _params(view: View) -> dict[str, Any]:
    return q.window_params(view.start, view.end, view.state.wikis, view.state.kinds)


def _ttl(gold: Gold, view: View) -> float:
    return REFRESH[view.state.refresh] or gold.cache_seconds


def _run(gold: Gold, view: View, sql: str, params: dict[str, Any]) -> Table:
    return gold.run(sql, params, ttl=_ttl(gold, view))


def _run_all(gold: Gold, view: View, *queries: tuple[str, dict[str, Any]]) -> list[Table]:
    return gold.run_all(queries, ttl=_ttl(gold, view))


def now_row(gold: Gold, view: View) -> dict[str, Result]:
    """The headline figures at the window's end."""
    p = _params(view)
    got, usual, built = _run_all(
        gold,
        view,
        (q.NOW, p),
        (q.NOW_USUAL, p),
        (q.READERS_BUILT, {"models": ["pageviews_hour_wiki"]}),
    )
    per_minute, bot_edits, hour_edits, active = got.rows[0] if got else (0, 0, 0, 0)
    weeks, usual_per_minute = usual.rows[0] if usual else (0, 0.0)
    slot = view.end - dt.timedelta(minutes=1)
    slot_name = f"{figures.WEEKDAYS[slot.weekday()]} {slot:%H}:00 UTC"
    if weeks:
        versus = f"usual for {slot_name}: {parts.ratio(usual_per_minute)} ({weeks} weeks)"
        if weeks == 1:
            versus = versus.replace("1 weeks", "1 week")
    else:
        versus = f"usual for {slot_name}: not known yet (no other week observed)"
    share = f"{parts.ratio(100 * bot_edits / hour_edits)}%" if hour_edits else "–"
    picked = f" of the {len(view.state.wikis)} picked" if view.state.wikis else ""
    items = [
        Tile(
            "Edits per minute",
            parts.ratio(per_minute),
            f"the last {q.NOW_MINUTES} min; {versus}",
            f"{EDITS_ARE}, per minute, over the window's last {q.NOW_MINUTES} minutes; the "
            "usual: this weekday and hour's average in the other weeks observed (among the "
            f"last {q.USUAL_WEEKS}). Both filters apply.",
        ),
        Tile(
            "Bots' share",
            share,
            f"of the last hour's {parts.count(hour_edits)} edits · all editors",
            "The bots' edits in the window's last 60 minutes, of everyone's: the editors "
            "filter does not apply (it is the split). The wiki filter applies.",
        ),
        Tile(
            "Active wikis",
            parts.count(active),
            f"with an edit in the last hour{picked}",
            "Wikis with at least one edit in the window's last 60 minutes. Both filters apply.",
        ),
        _views_tile(gold, view, bool(built)),
    ]
    return {"now": Result(tiles=items)}


def _views_tile(gold: Gold, view: View, built: bool) -> Tile:
    tip = (
        "Page views of the newest hour the page-view dumps have loaded (they lag the "
        "stream by hours), for the picked wikis. Links to the Readers page."
    )
    got = (
        _run(gold, view, q.NOW_VIEWS, {"wikis": list(view.state.wikis)}) if built else Table([], [])
    )
    if not got:
        return Tile("Views, newest loaded hour", "–", "page views not loaded", tip, "/readers")
    hour, views = got.rows[0]
    hour = naive_utc(hour)
    return Tile(
        "Views, newest loaded hour",
        parts.count(views),
        f"{parts.span(hour, hour + dt.timedelta(hours=1))} UTC",
        tip,
        "/readers" + parts.shared_query(view.state.to_search()),
    )


def _buckets(view: View) -> tuple[str, dt.datetime, str]:
    """The window's bucket, the context's start and its bucket."""
    bucket = resolution(view.end - view.start)
    context_start = min(view.start, view.end - WEEK)
    context = "day" if view.end - context_start > WEEK else "hour"
    return bucket, context_start, context


def _activity(
    view: View, wiki: str | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], str, str, tuple[dt.datetime, dt.datetime]]:
    """The queries of the window's series and of its context's (for all wikis, the
    picked ones or one), their buckets and the context's span."""
    bucket, context_start, context = _buckets(view)
    p = {**_params(view), "wiki": wiki}
    picked = 1 if view.state.wikis else 0
    if bucket == "minute":
        sql = q.DRILL_MINUTE if wiki else (q.PER_MINUTE_WIKIS if picked else q.PER_MINUTE)
    else:
        sql = q.SERIES[bucket][3 if wiki else picked]
    queries = [(sql, p), (q.SERIES[context][3 if wiki else picked], {**p, "start": context_start})]
    return queries, bucket, context, (context_start, view.end)


def activity_row(gold: Gold, view: View) -> dict[str, Result]:
    queries, bucket, context, span = _activity(view)
    main, ctx = _run_all(gold, view, *queries)
    kinds = view.state.kinds
    return {
        "activity": Result(
            figure=figures.by_kind(main, bucket, kinds, view.window),
            csv=main,
            title=f"Events {BY[bucket]}",
        ),
        "context": Result(
            figure=figures.by_kind(ctx, context, kinds, span, shade=view.window),
            csv=ctx,
            title=_context_title(view),
        ),
    }


def _context_title(view: View) -> str:
    if view.end - view.start >= WEEK:
        return f"The window, {BY[_buckets(view)[2]]}"
    return f"The last 7 days, {BY[_buckets(view)[2]]} (the window shaded)"


def _long(view: View) -> bool:
    return view.end - view.start > LONG_WINDOW


def _for_window(span: dt.timedelta, minutes: str, hours: str, hourly: str) -> str:
    """A window's totals (queries._totals): from its minutes up to MINUTES_WINDOW, its
    whole hours and ragged minutes up to a day (both exact), the hours overlapping it
    past a day."""
    return minutes if span <= MINUTES_WINDOW else hours if span <= LONG_WINDOW else hourly


def _top_wikis(view: View) -> str:
    span = view.end - view.start
    return _for_window(span, q.TOP_WIKIS, q.TOP_WIKIS_HOURS, q.TOP_WIKIS_HOURLY)


def _user_kinds(view: View) -> str:
    span = view.end - view.start
    return _for_window(span, q.USER_KINDS, q.USER_KINDS_HOURS, q.USER_KINDS_HOURLY)


def mix_row(gold: Gold, view: View) -> dict[str, Result]:
    p = _params(view)
    long = _long(view)
    top, kinds, types = _run_all(
        gold,
        view,
        (_top_wikis(view), p),
        (_user_kinds(view), p),
        (q.TYPE_MIX, p),
    )
    hourly = " (the hours overlapping the window)" if long else ""
    top_note = (
        "every wiki is ranked: the wiki filter does not apply here" if view.state.wikis else ""
    )
    kinds_note = (
        f"{controls.USER_LABELS[view.state.users]}: the editors filter applies"
        if view.state.users != "all"
        else ""
    )
    return {
        "top-wikis": Result(figure=figures.wiki_bars(top), csv=top, note=top_note + hourly),
        "user-kinds": Result(figure=figures.user_kinds(kinds), csv=kinds, note=kinds_note),
        "type-mix": Result(
            figure=figures.type_mix(types), csv=types, note="the hours overlapping the window"
        ),
    }


def bytes_row(gold: Gold, view: View) -> dict[str, Result]:
    bucket = "day" if resolution(view.end - view.start) == "day" else "hour"
    got = _run(gold, view, q.SERIES[bucket][2], _params(view))
    return {
        "bytes": Result(
            figure=figures.bytes_flow(got, bucket, view.window),
            csv=got,
            title=f"Bytes added and removed {BY[bucket]}",
        )
    }


def top_row(gold: Gold, view: View) -> dict[str, Result]:
    p = _params(view)
    if view.state.wikis:
        top = (q.TOP_PAGES, q.TOP_EDITORS)
    elif _long(view):
        top = (q.TOP_PAGES_ALL_LONG, q.TOP_EDITORS_ALL_LONG)
    else:
        top = (q.TOP_PAGES_ALL, q.TOP_EDITORS_ALL)
    pages, editors = _run_all(gold, view, (top[0], p), (top[1], p))
    page_rows = [
        [_wiki(w), Cell(sites.display_title(t), sites.page_url(w, t)), n, delta]
        for w, t, n, delta in pages.rows
    ]
    editor_rows = [
        [_wiki(w), Cell(u, sites.user_url(w, u)), kind, n, actions, added, removed]
        for w, u, kind, n, actions, added, removed in editors.rows
    ]
    return {
        "top-pages": Result(rows=page_rows, note="" if page_rows else EMPTY_TABLE["top-pages"]),
        "top-editors": Result(
            rows=editor_rows, note="" if editor_rows else EMPTY_TABLE["top-editors"]
        ),
    }


def _wiki(wiki: str) -> Cell:
    return Cell(wiki, sites.wiki_url(wiki))


def notable_row(gold: Gold, view: View) -> dict[str, Result]:
    spiking = {
        "end": view.end,
        "wikis": list(view.state.wikis),
        "kinds": view.state.kinds,
        "min_events": q.SPIKE_MIN_EVENTS,
        "min_ratio": q.SPIKE_MIN_RATIO,
    }
    got, spikes = _run_all(gold, view, (q.NOTABLE, _params(view)), (q.SPIKES, spiking))
    rows = [
        [
            naive_utc(when),
            _wiki(wiki),
            Cell(sites.display_title(title), sites.page_url(wiki, title)),
            Cell(user, sites.user_url(wiki, user)),
            Cell(("+" if delta > 0 else "") + parts.count(delta), sites.diff_url(wiki, old, new)),
            "new page" if kind == "new" else "edit",
            user_kind,
        ]
        for when, wiki, kind, title, user, user_kind, delta, old, new in got.rows
    ]
    spike_rows = [[_wiki(w), n, usual, ratio] for w, n, usual, ratio in spikes.rows]
    return {
        "notable": Result(rows=rows, note="" if rows else EMPTY_TABLE["notable"]),
        "spikes": Result(rows=spike_rows, note="" if spike_rows else EMPTY_TABLE["spikes"]),
    }


def drill_wiki(gold: Gold, view: View) -> str:
    """The first picked wiki, else the window's busiest (top wikis' first)."""
    if view.state.wikis:
        return view.state.wikis[0]
    top = _run(gold, view, _top_wikis(view), _params(view))
    return str(top.rows[0][0]) if top else ""


def drill_row(gold: Gold, view: View) -> dict[str, Result]:
    wiki = drill_wiki(gold, view)
    if not wiki:
        note = "no events in this window"
        return {
            "drill-activity": Result(figure=figures.empty(note)),
            "drill-context": Result(figure=figures.empty(note)),
            "heatmap": Result(figure=figures.empty(note)),
        }
    queries, bucket, context, span = _activity(view, wiki)
    main, ctx, heat = _run_all(gold, view, *queries, (q.HEATMAP, {"wiki": wiki, "end": view.end}))
    name = figures.short(wiki)
    kinds = view.state.kinds
    return {
        "drill-activity": Result(
            figure=figures.by_kind(main, bucket, kinds, view.window),
            csv=main,
            title=f"{name}: events {BY[bucket]}",
        ),
        "drill-context": Result(
            figure=figures.by_kind(ctx, context, kinds, span, shade=view.window),
            csv=ctx,
            title=f"{name}: {_context_title(view)[0].lower()}{_context_title(view)[1:]}",
        ),
        "heatmap": Result(
            figure=figures.heatmap(heat),
            csv=heat,
            title=f"{name}: average events by weekday and hour",
        ),
    }


def drill_views_row(gold: Gold, view: View) -> dict[str, Result]:
    wiki = drill_wiki(gold, view)
    if not wiki:
        return {"drill-views": Result(rows=[], note="no events in this window")}
    views = drill_views(gold, wiki, view.end, view.state.kinds, REFRESH[view.state.refresh])
    name = figures.short(wiki)
    return {"drill-views": Result(rows=views.rows, note=views.note, title=f"{name}: {views.title}")}


ROW_FUNCTIONS: dict[str, pn.RowFunction] = {
    "now": now_row,
    "activity": activity_row,
    "mix": mix_row,
    "bytes": bytes_row,
    "top": top_row,
    "notable": notable_row,
    "drill": drill_row,
    "drill-views": drill_views_row,
}


def build_view(gold: Gold, state: ViewState, config: DashConfig | None = None) -> dict[str, Any]:
    """The whole page for a view, as its callbacks make it: the view callback's outputs
    (``view``: the View), and each panel's Result by its key. For tests and benchmarks.
    Raises Unavailable, NoData."""
    out = resolve(gold, state, config or DashConfig())
    return pn.filled(gold, out, *ROW_FUNCTIONS.values())


def register_callbacks(app: Dash, gold: Gold, config: DashConfig) -> Callable[..., Any]:
    """The page's callbacks; returns its layout as the pages router draws it."""
    return pn.register_page(
        app,
        gold,
        PREFIX,
        layout,
        controls.register(app, gold, PREFIX),
        lambda search: render(gold, search, config),
        ROWS,
        ROW_FUNCTIONS,
    )


# -- the drill-down's views of the pages edited in the last hour -----------------------------


@dataclass
class DrillViews:
    """The drill-down's "views of the pages edited in the last hour": its title, its rows
    (page, edits, views) and a note saying which hour of views is shown, or why none."""

    title: str
    note: str
    rows: list[list[Any]] = field(default_factory=list)


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
        # the tables exist: the rest side by side where one does not decide the other
        pages, freshness, newest = gold.run_all(
            [
                (q.DRILL_EDITED, {"end": end, "wiki": wiki, "kinds": list(kinds)}),
                (q.DUMPS_FRESHNESS, {}),
                (q.DRILL_VIEWS_HOUR, {"end": end, "wiki": wiki}),
            ],
            ttl=ttl or None,
        )
        fresh = {row[0]: row for row in freshness.rows if row[1]}
        if "pageviews" not in fresh:
            return DrillViews(title, NO_DUMPS)
        if not pages:
            return DrillViews(title, f"no page of {figures.short(wiki)} {edited}")
        hours = newest.column("hour")
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
    rows: list[list[Any]] = [
        [Cell(sites.display_title(t), sites.page_url(wiki, t)), e, views.get(t, 0)]
        for t, e in edits
    ]
    total = pages.column("pages")[0]
    shown = f"the {len(rows)} most edited of {total:,}" if total > len(rows) else f"all {total}"
    return DrillViews(
        title,
        f"views in {parts.when(hour)}–{hour + dt.timedelta(hours=1):%H:%M} UTC, the newest "
        f"hour loaded for {figures.short(wiki)}; {shown} pages edited (0: no view that hour)",
        rows,
    )
