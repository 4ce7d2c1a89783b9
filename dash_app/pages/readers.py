"""The readers page (``/readers``): what Wikimedia's readers do, from the hourly pageviews
and daily mediacounts dumps, set against what its editors do (the live stream).

The same header, controls (wikis, window, auto-refresh, and whether top pages keep the
main page and Special: pages; the editors filter does not apply here and is hidden) and
URL state as the edits page; each dataset has its own freshness pill, and windows end
where the loaded page views end. The dumps' models are opt-in (``dbt build --vars
'{dumps: true}'``): when they are not built, or no file is loaded, the page says so and
what to run, without a callback exception.

Every panel knows what its source holds: each table's retention (its TTL, read from the
schema), the files the ledger publishes, the hours a filtered load left a wiki out of.
Where the window asks for more, a panel falls back to the coarser table that has it
(views per day past the hourly table's retention) or says what is missing and why.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from dash import Dash, dcc, html

from wiki_core.timefmt import age_text, naive_utc

from .. import controls, figures, guard, sites
from .. import page_parts as parts
from .. import panels as pn
from .. import queries as q
from ..page_parts import DashConfig
from ..panels import PAGE, WIKI, Cell, Column, Panel, Result, View
from ..queries import Gold, Table, Unavailable
from ..state import MAX_RANGE, REFRESH, ViewState, resolution

PATH = "/readers"
NAME = "Readers"
TITLE = "wiki-events · readers"
ORDER = 1

PREFIX = "readers-"
# the media panels show whole days: the window's, and at least the last MEDIA_DAYS
MEDIA_DAYS = 7
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
# top pages: of the picked wikis (at most this many), else of the day's busiest
TOP_PAGES_PICKED = 5
# the answers of the page-level tables (silver's pages joined with the edits) are kept
# at least this long (bench/bench_readers.py): they change when an hour's file loads
PAGE_LEVEL_TTL = 300
# the sources whose coverage the page reads: what the ledger publishes and how long each
# table keeps rows is cached this long
COVERAGE_TTL = 60
EDITS_ARE = "edits and page creations (the stream's types edit and new)"
VIEWS_ARE = (
    "views of pages by people (the hourly dumps count user agents only: no spiders, no "
    "automated agents)"
)

VIEWS_HOUR = Panel(
    "views-hour",
    "Page views",
    f"Page views, {VIEWS_ARE}, per hour (per day past a week) over the window, stacked by "
    "access: desktop, mobile, and unknown (the dumps' empty domain code: Wikifunctions). "
    "An hour whose file is not loaded is a gap, not a zero. The wiki filter applies.",
)
VIEWS_WIKIS = Panel(
    "views-wikis",
    "Page views of the busiest wikis",
    "Views per hour (per day past a week) of the window's 8 busiest wikis, or the picked ones.",
)
VIEWS_ACCESS = Panel(
    "views-access",
    "Page views per wiki",
    "Each wiki's views in the window, split by access (desktop, mobile, unknown); the 15 "
    "busiest, or the picked ones. Each name links to the wiki.",
    width="third",
)
EDITS_VIEWS = Panel(
    "edits-views",
    "Views and edits per hour",
    f"Views per hour (above) and the live stream's edits ({EDITS_ARE}, below) of the "
    "same wikis and hours: two charts on one time axis, each from zero. The wiki filter "
    "applies.",
)
EDITS_VIEWS_WIKIS = Panel(
    "edits-views-wikis",
    "Edits per 1,000 views, per wiki",
    f"Per wiki, over the window's hours whose views are loaded: edits ({EDITS_ARE}), "
    "views, and edits per 1,000 views, to three significant figures.",
    kind="table",
    columns=(
        WIKI,
        Column("edits", "edits", "count", EDITS_ARE),
        Column("views", "views", "count", "page views"),
        Column("edits_per_1000_views", "per 1,000 views", "ratio", "edits × 1,000 / views"),
    ),
)
HOUR_COLUMN = Column("hour", "hour (UTC)", "time")
READ_AND_EDITED = Panel(
    "read-and-edited",
    "Heavily read and heavily edited in the same hour",
    "Pages with at least 1,000 views and 3 edits in the same hour (the dbt vars "
    "heavy_views, heavy_edits). Page-level views are kept 7 days from loading.",
    kind="table",
    columns=(
        HOUR_COLUMN,
        WIKI,
        PAGE,
        Column("views", "views", "count"),
        Column("edits", "edits", "count", EDITS_ARE),
    ),
    width="full",
)
VIEWS_WITHOUT_EDITS = Panel(
    "views-without-edits",
    "Views spiking without an edit",
    "Pages whose views in an hour are at least 5× their mean views per hour over the "
    "previous 24 hours and at least 500, with no edit that hour (the dbt vars "
    "spike_ratio, spike_min_views).",
    kind="table",
    columns=(
        HOUR_COLUMN,
        WIKI,
        PAGE,
        Column("views", "views", "count"),
        Column(
            "usual_views",
            "mean views/h, 24 h before",
            "ratio",
            "the page's mean views per hour over the previous 24 hours",
        ),
    ),
)
EDITS_WITHOUT_VIEWS = Panel(
    "edits-without-views",
    "Edited heavily, hardly read",
    "Pages with at least 3 edits in an hour whose views are loaded, and fewer than 10 "
    "views in it (the dbt vars heavy_edits, quiet_max_views). Needs the page-level views: "
    "kept 7 days from loading.",
    kind="table",
    columns=(
        HOUR_COLUMN,
        WIKI,
        PAGE,
        Column("edits", "edits", "count", EDITS_ARE),
        Column("views", "views", "count"),
    ),
)
TOP_PAGES = Panel(
    "top-pages",
    "Top pages of the day",
    "The 10 most viewed pages of the window's last day, per wiki (the picked wikis, else "
    "the day's 3 busiest); the main page and Special: pages are left out unless the "
    "filter keeps them. Exact while the page-level views are kept (7 days): the "
    "candidates come from the day's top-k summaries, their views are counted exactly and "
    "ranked by that count. Older days show the summaries' estimates, marked ≈.",
    kind="table",
    columns=(
        WIKI,
        Column("rank", "rank", "count"),
        PAGE,
        Column("views", "views", "count", "views that day"),
    ),
    width="two-thirds",
)
MEDIA_TYPES = Panel(
    "media-types",
    "Media bytes served per day, by type",
    "Bytes of media files (images, audio, video, other) served per day, of the files the "
    "picked wikis host (Commons hosts most files every wiki shows).",
)
MEDIA_WIKIS = Panel(
    "media-wikis",
    "Media bytes served per day, by hosting wiki",
    "Bytes served per day of the 8 busiest hosting wikis' files ((none): math renderings, "
    "scores, the favicon).",
)
TOP_MEDIA = Panel(
    "top-media",
    "Top media files of the day",
    "The 15 most requested media files of the newest day loaded (transfers: responses "
    "served, thumbnails and transcodes included), exact while the per-file media counts "
    "are kept (30 days): candidates from the day's top-k summary, counted exactly. Each "
    "name links to the file's page.",
    kind="table",
    columns=(
        Column("rank", "rank", "count"),
        Column("file", "file", "title", tip="links to the file's page"),
        Column("transfers", "transfers", "count", "responses served"),
        Column("bytes", "bytes", tip="bytes served"),
    ),
    width="full",
)
ROWS: dict[str, tuple[list[Panel], str]] = {
    "views": ([VIEWS_HOUR, VIEWS_WIKIS], "Page views"),
    "edits-views": ([EDITS_VIEWS, EDITS_VIEWS_WIKIS], "Edits and views"),
    "attention": ([READ_AND_EDITED, VIEWS_WITHOUT_EDITS, EDITS_WITHOUT_VIEWS], ""),
    "top-pages": ([TOP_PAGES, VIEWS_ACCESS], "Top pages and media"),
    "media": ([MEDIA_TYPES, MEDIA_WIKIS, TOP_MEDIA], ""),
}
PANELS = [panel for panels, _ in ROWS.values() for panel in panels]
TABLE_EMPTY = {
    "edits-views-wikis": "no hour of this window has both views loaded and these wikis",
    "read-and-edited": "no page was both heavily read and heavily edited in one hour",
    "views-without-edits": "no page's views spiked without an edit",
    "edits-without-views": "no heavily edited page went unread",
}
INPUT_RULES: dict[str, guard.Check] = {
    **controls.input_rules(PREFIX),
    **pn.input_rules(PREFIX),
}


class NotBuilt(Exception):
    """The dumps' gold models are not in ClickHouse (dbt ran without ``dumps: true``)."""


class NoFiles(Exception):
    """The models are built, but no pageviews or mediacounts file is loaded."""


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            controls.location(PREFIX),
            dcc.Interval(id=f"{PREFIX}tick", interval=parts.RETRY_MS, disabled=True),
            pn.view_store(PREFIX),
            parts.header(PATH, PREFIX, "Page views and media traffic, beside the edits"),
            parts.banner(PREFIX),
            parts.drawer(PREFIX, controls.controls(PREFIX, users=False, special=True)),
            html.Div(id=f"{PREFIX}window", className="window"),
            *[pn.row(PREFIX, panels, heading) for panels, heading in ROWS.values()],
        ],
        className="page",
    )


def load_commands(now: dt.datetime) -> tuple[str, str]:
    """What to run to load the last full day of page views, and recent media counts."""
    today = now.date()
    views = f"wiki-events pageviews --from {today - DAY}T00 --to {today}T00"
    media = f"wiki-events mediacounts --from {today - 3 * DAY} --to {today - DAY}"
    return views, media


def media_days(
    state: ViewState, start: dt.datetime, end: dt.datetime, media_until: dt.datetime
) -> tuple[dt.date, dt.date]:
    """[first, end) days of the media panels: up to the newest loaded day (or the custom
    window's end), the window's days and at least MEDIA_DAYS, at most MAX_RANGE."""
    end_day = media_until.date()
    if state.range == "custom":
        end_day = min(end_day, (end - dt.timedelta(seconds=1)).date() + DAY)
    days = min(max(MEDIA_DAYS, -(-(end - start) // DAY)), MAX_RANGE.days)
    return end_day - days * DAY, end_day


# -- coverage: what each source holds ---------------------------------------------------------

_TTL_DAYS = re.compile(r"toIntervalDay\((\d+)\)")


COVERAGE = [
    (q.RETENTIONS, q.RETENTIONS_PARAMS),
    (q.LOADED, {}),
]


def coverage(
    gold: Gold, views_until: dt.datetime | None, found: list[Table] | None = None
) -> dict[str, Any]:
    """What the sources hold, as facts for the rows (JSON values): each table's
    retention in days (its TTL), the first and last hour of views published, the first
    hour and day whose page-level rows (media rows) silver still holds. ``found``: the
    answers to COVERAGE, when already asked."""
    retentions, published = found or gold.run_all(COVERAGE, ttl=COVERAGE_TTL)
    by_table = {(db, name): engine for db, name, engine in retentions.rows}
    facts: dict[str, Any] = {}
    for source, key in q.RETENTION_TABLES.items():
        days = _TTL_DAYS.search(by_table.get(key, ""))
        facts[f"{source}_days"] = int(days.group(1)) if days else None
    loaded = {r[0]: r for r in published.rows}
    # a pageviews file's period (the hour in its name) to the hour its views happened
    offset = dt.timedelta(0)
    if "pageviews" in loaded and views_until:
        offset = naive_utc(loaded["pageviews"][2]) - (views_until - HOUR)
    facts["offset_s"] = offset.total_seconds()
    if "pageviews" in loaded:
        facts["views_first"] = (naive_utc(loaded["pageviews"][1]) - offset).isoformat()
    if "mediacounts" in loaded:
        facts["media_first"] = naive_utc(loaded["mediacounts"][1]).date().isoformat()
    rows = [
        (dataset, name, (q.ROWS_LOADED, {"days": facts[f"{source}_days"], "dataset": dataset}))
        for dataset, source, name in (
            ("pageviews", "page_rows", "page_rows_first"),
            ("mediacounts", "media_rows", "media_rows_first"),
        )
        if dataset in loaded and facts[f"{source}_days"] is not None
    ]
    answers = gold.run_all([query for *_, query in rows], ttl=COVERAGE_TTL)
    for (dataset, name, _), held in zip(rows, answers, strict=True):
        if held:
            first = naive_utc(held.rows[0][1])
            facts[name] = (
                (first - offset).isoformat() if dataset == "pageviews" else first.date().isoformat()
            )
    return facts


def _days_text(days: int | None) -> str:
    if days is None:
        return "kept for good"
    if days >= 730:
        return f"kept {days:,} days (~{days / 365:.0f} years)"
    return f"kept {days:,} days"


# -- the view -------------------------------------------------------------------------------


def resolve(gold: Gold, state: ViewState, config: DashConfig) -> dict[str, Any]:
    """The view callback's outputs. Raises Unavailable, NotBuilt, NoFiles."""
    ttl = REFRESH[state.refresh] or gold.cache_seconds

    def run(sql: str, p: dict[str, Any] | None = None) -> Table:
        return gold.run(sql, p, ttl=ttl)

    built = set(run(q.READERS_BUILT, {"models": q.READERS_MODELS}).column("name"))
    missing = [m for m in q.READERS_MODELS if m not in built]
    if missing:
        raise NotBuilt(", ".join(missing))
    datasets, edits, known_wikis, *found = gold.run_all(
        [
            (q.DUMPS_FRESHNESS, {}),
            (q.FRESHNESS, {}),
            (q.READERS_KNOWN_WIKIS, {"wikis": list(state.wikis)}),
            *COVERAGE,
        ],
        ttl=ttl,
    )
    fresh = {row[0]: row for row in datasets.rows if row[1]}
    if "pageviews" not in fresh and "mediacounts" not in fresh:
        raise NoFiles()
    edits_newest = naive_utc(edits.rows[0][0]) if edits and edits.rows[0][3] else None
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    views_until = naive_utc(fresh["pageviews"][3]) if "pageviews" in fresh else None
    # windows end where the loaded views end (bounded_window ends at the next minute)
    start, end, range_note = state.bounded_window(
        views_until - dt.timedelta(minutes=1) if views_until else None
    )
    media_until = naive_utc(fresh["mediacounts"][3]) if "mediacounts" in fresh else end
    first_day, end_day = media_days(state, start, end, media_until)
    facts = coverage(gold, views_until, found)
    facts.update(
        views_until=views_until.isoformat() if views_until else None,
        media_loaded="mediacounts" in fresh,
        first_day=first_day.isoformat(),
        end_day=end_day.isoformat(),
    )
    known = set(known_wikis.column("wiki"))
    view = View(state, start, end, now, facts)

    scope = ", ".join(state.wikis) if state.wikis else "all wikis"
    label = f"{parts.when(start)} – {parts.when(end)} UTC"
    views_cmd, media_cmd = load_commands(now)
    messages = [range_note] if range_note else []
    unknown = [w for w in state.wikis if w not in known]
    if unknown:
        messages.append(
            f"No page views of {', '.join(unknown)} are loaded (of any day the dumps' "
            "tables keep): pick one from the list."
        )
    if not views_until:
        messages.append(f"No page views loaded yet: run `{views_cmd}`.")
    if "mediacounts" not in fresh:
        messages.append(f"No media counts loaded yet: run `{media_cmd}`.")
    pills: list[Any] = []
    for dataset, label_, limits in (
        ("pageviews", "views up to", config.views),
        ("mediacounts", "media up to", config.media),
    ):
        if dataset not in fresh:
            pills.append(parts.pill(label_.split()[0], None, limits, "nothing loaded"))
            continue
        until = naive_utc(fresh[dataset][3])
        shown = parts.when(until) if dataset == "pageviews" else str((until - DAY).date())
        behind = (now - until).total_seconds()
        pills.append(
            parts.pill(
                label_,
                behind,
                limits,
                f"{dataset}: {fresh[dataset][1]:,} files published, the newest's data reach "
                f"{parts.when(until)} UTC, {age_text(behind)} ago",
                when=f"{shown} ({age_text(behind)} behind)",
            )
        )
    if edits_newest:
        age = (now - edits_newest).total_seconds()
        pills.append(
            parts.pill("newest edit", age, config.edits, f"{parts.when(edits_newest)} UTC")
        )
    return {
        "view": view.to_store(),
        "freshness": pills,
        **pn.shown(messages),
        "window": f"{scope} · {label} · media counts {first_day} – {end_day - DAY}",
    }


def render(gold: Gold, search: str | None, config: DashConfig | None = None) -> dict[str, Any]:
    """The view callback: no data, models not built or ClickHouse down are messages,
    never an exception."""
    config = config or DashConfig()
    state = ViewState.from_search(search)
    every = REFRESH[state.refresh]
    nav = parts.nav_hrefs(PREFIX, state.to_search())
    try:
        out = resolve(gold, state, config)
    except (Unavailable, NotBuilt, NoFiles) as exc:
        views_cmd, media_cmd = load_commands(dt.datetime.now(dt.UTC))
        if isinstance(exc, NotBuilt):
            message = (
                "The page-view and media models are not built (they are opt-in; missing: "
                f"gold.{exc}). Load some files (`{views_cmd}`, `{media_cmd}`), then build "
                "them: `cd wiki_dbt && dbt build --vars '{dumps: true}'`. "
                "This page checks again every few seconds."
            )
        elif isinstance(exc, NoFiles):
            message = (
                f"No page-view or media files loaded yet: run `{views_cmd}` and "
                f"`{media_cmd}` (add `--follow` to keep up). "
                "This page checks again every few seconds."
            )
        else:
            message = f"ClickHouse {exc}. Retrying every {parts.RETRY_MS // 1000} s."
        return pn.waiting(message, nav, parts.RETRY_MS)
    return pn.refreshing(out, every, nav)


# -- the rows -------------------------------------------------------------------------------


def _run(gold: Gold, view: View, sql: str, params: dict[str, Any], ttl: float = 0) -> Table:
    every = REFRESH[view.state.refresh] or gold.cache_seconds
    return gold.run(sql, params, ttl=max(every, ttl))


def _run_all(
    gold: Gold, view: View, *queries: tuple[str, dict[str, Any]], ttl: float = 0
) -> list[Table]:
    every = REFRESH[view.state.refresh] or gold.cache_seconds
    return gold.run_all(queries, ttl=max(every, ttl))


def _params(view: View) -> dict[str, Any]:
    return q.window_params(view.start, view.end, view.state.wikis, [])


def _hourly_from(view: View) -> dt.datetime | None:
    """The first hour the hourly views table still holds (its TTL), None: all."""
    days = view.facts.get("hourly_days")
    if days is None:
        return None
    return (view.now - dt.timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


def _loaded_span(view: View) -> str:
    first, until = view.fact_time("views_first"), view.fact_time("views_until")
    if not (first and until):
        return "no page views are loaded"
    return f"page views are loaded for {parts.when(first)} – {parts.when(until)} UTC"


def views_row(gold: Gold, view: View) -> dict[str, Result]:
    """Views over the window, per hour (per day past a week), from the hourly table;
    past its retention from the daily totals; what is missing said."""
    p = _params(view)
    hourly_from = _hourly_from(view)
    state = view.state
    if hourly_from and view.start < hourly_from:
        return _daily_views(gold, view, hourly_from)
    bucket = "day" if resolution(view.end - view.start) == "day" else "hour"
    series, by_wiki = q.VIEWS[bucket]
    got, wikis, all_hours, hourly = _run_all(
        gold, view, (series, p), (by_wiki, p), (q.LOADED_HOURS, p), (q.VIEWS_HOUR, p)
    )
    loaded = {naive_utc(h) for h in all_hours.column("hour")}
    with_views = {naive_utc(h) for h in hourly.column("hour")}
    hours = parts.hours(view.start, view.end)
    not_loaded = [h for h in hours if h not in loaded]
    left_out = [h for h in hours if h in loaded and h not in with_views]
    notes = []
    if not loaded:
        notes.append(f"no file of this window's hours is loaded ({_loaded_span(view)})")
    else:
        if not_loaded:
            notes.append(f"not loaded: {parts.hour_ranges(not_loaded)} UTC")
        if left_out and state.wikis:
            notes.append(
                f"{', '.join(state.wikis)} not in the files of {parts.hour_ranges(left_out)} "
                "UTC (loaded with --wiki or --project: the files kept other wikis)"
            )
    note = "; ".join(notes)
    empty_note = note or figures.EMPTY_VIEWS
    per = "per hour" if bucket == "hour" else "per day"
    return {
        "views-hour": Result(
            figure=figures.views_by_access(got, bucket, view.window, empty_note),
            csv=got,
            note=note,
            title=f"Page views {per}",
        ),
        "views-wikis": Result(
            figure=figures.by_key(wikis, bucket, "wiki", "views", view.window, note=empty_note),
            csv=wikis,
            title=f"Page views {per}, the busiest wikis"
            if not state.wikis
            else f"Page views {per}, per wiki",
        ),
    }


def _daily_views(gold: Gold, view: View, hourly_from: dt.datetime) -> dict[str, Result]:
    """Past the hourly table's retention: the daily totals, said so."""
    p = _params(view)
    got, wikis = _run_all(gold, view, (q.VIEWS_DAILY, p), (q.VIEWS_WIKIS_DAILY, p))
    days = view.facts.get("hourly_days")
    note = (
        f"views per hour are {_days_text(days)} (from {parts.when(hourly_from)} UTC): "
        "daily totals shown"
    )
    partial = [
        f"{d} ({h} of 24 hours)"
        for d, h in zip(got.column("day"), got.column("hours"), strict=True)
        if h < 24
    ]
    if partial:
        note += (
            "; days not loaded whole: "
            + ", ".join(partial[:5])
            + (" ..." if len(partial) > 5 else "")
        )
    if not got:
        daily = view.facts.get("daily_days")
        note = (
            f"no views in this window: views per hour are {_days_text(days)}, per day "
            f"{_days_text(daily)}, and {_loaded_span(view)}"
        )
    window = (view.start.date(), (view.end - dt.timedelta(seconds=1)).date() + DAY)
    return {
        "views-hour": Result(
            figure=figures.views_by_access(got, "day", window, note),
            csv=got,
            note=note,
            title="Page views per day",
        ),
        "views-wikis": Result(
            figure=figures.by_key(wikis, "day", "wiki", "views", window, note=note),
            csv=wikis,
            note=note if not got else "",
            title="Page views per day, the busiest wikis",
        ),
    }


def _page_rows_from(view: View) -> dt.datetime | None:
    return view.fact_time("page_rows_first")


def edits_views_row(gold: Gold, view: View) -> dict[str, Result]:
    """Views and edits per hour, and per wiki edits per 1,000 views: hourly views only
    (they are joined hour by hour with the edits); past the hourly table's retention,
    said so."""
    p = _params(view)
    hourly_from = _hourly_from(view)
    if hourly_from and view.start < hourly_from:
        note = (
            f"views per hour are {_days_text(view.facts.get('hourly_days'))}: none for this "
            "window to set beside the edits hour by hour"
        )
        return {
            "edits-views": Result(figure=figures.empty(note), note=note),
            "edits-views-wikis": Result(rows=[], note=note),
        }
    hourly, per_wiki = _run_all(gold, view, (q.EDITS_VIEWS_HOUR, p), (q.EDITS_VIEWS_WIKI, p))
    rows = [[_wiki(w), e, v, r] for w, e, v, r in per_wiki.rows]
    return {
        "edits-views": Result(figure=figures.edits_and_views(hourly, view.window), csv=hourly),
        "edits-views-wikis": Result(
            rows=rows, note="" if rows else TABLE_EMPTY["edits-views-wikis"]
        ),
    }


def _page_level_note(view: View, rows: list[Any], key: str) -> str:
    """A page-level table's note: empty, or why (silver keeps page rows 7 days)."""
    if rows:
        return ""
    held = _page_rows_from(view)
    days = view.facts.get("page_rows_days")
    if held is None:
        return f"page-level views are {_days_text(days)} from loading: none is kept now"
    if view.end <= held:
        return (
            f"page-level views are {_days_text(days)} from loading: silver holds them from "
            f"{parts.when(held)} UTC, after this window"
        )
    return TABLE_EMPTY[key]


def attention_row(gold: Gold, view: View) -> dict[str, Result]:
    """The page-level tables: silver's page rows joined with the edits (the heaviest
    queries of the page, kept PAGE_LEVEL_TTL)."""
    p = _params(view)
    both, attention = _run_all(
        gold, view, (q.READ_AND_EDITED, p), (q.ATTENTION_SPIKES, p), ttl=PAGE_LEVEL_TTL
    )
    both_rows = [[naive_utc(h), _wiki(w), _page(w, t), v, e] for h, w, t, v, e in both.rows]
    out: dict[str, Result] = {
        "read-and-edited": Result(
            rows=both_rows, note=_page_level_note(view, both_rows, "read-and-edited")
        )
    }
    for kind, key in (
        ("views_without_edits", "views-without-edits"),
        ("edits_without_views", "edits-without-views"),
    ):
        rows = []
        for _, h, w, t, views, usual, edits in (r for r in attention.rows if r[0] == kind):
            last = views if kind == "edits_without_views" else usual
            first = edits if kind == "edits_without_views" else views
            rows.append([naive_utc(h), _wiki(w), _page(w, t), first, last])
        note = (
            _page_level_note(view, rows, key)
            if kind == "edits_without_views"
            else ("" if rows else TABLE_EMPTY[key])
        )
        out[key] = Result(rows=rows, note=note)
    return out


def _wiki(wiki: str) -> Cell:
    return Cell(wiki, sites.wiki_url(wiki))


def _page(wiki: str, title: str) -> Cell:
    return Cell(sites.display_title(title), sites.page_url(wiki, title))


def top_pages_row(gold: Gold, view: View) -> dict[str, Result]:
    """The window's last day's top pages per wiki: exact while silver holds the day's
    page rows, estimates (marked ≈) while the top-k summaries do, else said."""
    state = view.state
    day = (view.end - dt.timedelta(seconds=1)).date()
    # what does not depend on the wikis is asked beside the day's busiest
    access = _views_access_query(view)
    first = [_day_rows_query(view, day), access]
    if state.wikis:
        wikis = list(state.wikis[:TOP_PAGES_PICKED])
        held, by_wiki = _run_all(gold, view, *first)
    else:
        busiest, held, by_wiki = _run_all(gold, view, (q.BUSIEST_ON_DAY, {"day": day}), *first)
        wikis = busiest.column("wiki")
    which = (
        f"the first {TOP_PAGES_PICKED} picked wikis"
        if len(state.wikis) > TOP_PAGES_PICKED
        else ("the picked wikis" if state.wikis else f"the day's {len(wikis)} busiest wikis")
    )
    p = {
        "day": day,
        "wikis": wikis,
        "special": state.special,
        "main_pages": sites.MAIN_PAGES_DUMPS,
        "special_pattern": sites.SPECIAL_PATTERN,
    }
    held_files, loaded_files = held.rows[0] if held else (0, 0)
    exact = bool(view.facts.get("page_rows_days") and loaded_files and held_files == loaded_files)
    top_days = view.facts.get("top_pages_days")
    estimate = not exact and bool(
        top_days and day >= (view.now - dt.timedelta(days=top_days)).date()
    )
    hours_query = (q.DAY_HOURS, {"day": day, "wikis": wikis})
    if exact or estimate:
        # the day's hours loaded (the title) beside its top pages, kept as long as they
        hours, got = _run_all(
            gold,
            view,
            hours_query,
            (q.TOP_PAGES_EXACT if exact else q.TOP_PAGES_ESTIMATED, p),
            ttl=PAGE_LEVEL_TTL if exact else 0,
        )
    else:
        hours, got = _run(gold, view, *hours_query), Table(["wiki", "title", "views"], [])
    loaded = hours.rows[0][0] if hours else 0
    title = f"Top pages on {day}" + (
        f" ({loaded} of its 24 hours loaded)" if 0 < loaded < 24 else ""
    )
    left = "" if state.special else "; the main page and Special: pages left out"
    if exact:
        note = f"{which}; exact counts{left}"
    elif estimate:
        note = (
            f"{which}; ≈ estimates from the day's top-k summaries: exact counts need the "
            f"page-level views, {_days_text(view.facts.get('page_rows_days'))} from loading, "
            f"and this day's are gone (the estimates can be off either way){left}"
        )
    else:
        note = (
            f"the days' top pages are {_days_text(top_days)}: {day} is older (its views per "
            "wiki are in the daily totals)"
        )
    rows = []
    rank = 0
    last_wiki = None
    order = {w: i for i, w in enumerate(wikis)}  # the busiest (or first picked) first
    for wiki, t, views in sorted(got.rows, key=lambda r: order.get(r[0], len(order))):
        rank = rank + 1 if wiki == last_wiki else 1
        last_wiki = wiki
        shown = f"≈{parts.count(views)}" if estimate else views
        rows.append([_wiki(wiki), rank, _page(wiki, t), shown])
    if not rows and (exact or estimate):
        note = f"no page views loaded for {day} ({_loaded_span(view)})"
    daily = access[0] == q.VIEWS_BY_WIKI_DAILY
    access_note = "daily totals: views per hour are no longer kept for this window" if daily else ""
    return {
        "top-pages": Result(rows=rows, note=note, title=title),
        "views-access": Result(
            figure=figures.access_bars(by_wiki, access_note or figures.EMPTY_VIEWS),
            csv=by_wiki,
            note=access_note,
        ),
    }


def _views_access_query(view: View) -> tuple[str, dict[str, Any]]:
    """Each wiki's views in the window by access; past the hourly table's retention, from
    the daily totals."""
    hourly_from = _hourly_from(view)
    daily = bool(hourly_from and view.start < hourly_from)
    return (q.VIEWS_BY_WIKI_DAILY if daily else q.VIEWS_BY_WIKI, _params(view))


def _day_rows_query(view: View, day: dt.date) -> tuple[str, dict[str, Any]]:
    """How many of ``day``'s published files silver still holds the page rows of, of how
    many (the day's top pages are exact when it holds them all)."""
    days = view.facts.get("page_rows_days") or 0
    offset = dt.timedelta(seconds=float(view.facts.get("offset_s") or 0))
    first = dt.datetime.combine(day, dt.time()) + offset
    return q.DAY_ROWS_HELD, {"days": days, "first": first, "last": first + DAY}


def media_row(gold: Gold, view: View) -> dict[str, Result]:
    first_day = dt.date.fromisoformat(view.facts["first_day"])
    end_day = dt.date.fromisoformat(view.facts["end_day"])
    media = {"first_day": first_day, "end_day": end_day, "wikis": list(view.state.wikis)}
    types, by_wiki = _run_all(gold, view, (q.MEDIA_TYPES, media), (q.MEDIA_WIKIS, media))
    window = (first_day, end_day)
    hosted = f" (files hosted on {', '.join(view.state.wikis)})" if view.state.wikis else ""
    if not view.facts.get("media_loaded"):
        _, cmd = load_commands(view.now)
        note = f"no media counts loaded: run {cmd}"
    else:
        loaded = {d for d in types.column("day")}
        missing = [
            first_day + dt.timedelta(days=i)
            for i in range((end_day - first_day).days)
            if first_day + dt.timedelta(days=i) not in loaded
        ]
        note = (
            "no media counts loaded for "
            + ", ".join(map(str, missing[:7]))
            + (" ..." if len(missing) > 7 else "")
            if missing and loaded
            else ("" if loaded else "no media traffic these days")
        )
    top = _top_media(gold, view, end_day - DAY)
    return {
        "media-types": Result(
            figure=figures.by_key(
                types,
                "day",
                "media_type",
                "bytes",
                window,
                kind="bars",
                note=note or "no media traffic these days",
                in_bytes=True,
            ),
            csv=types,
            note=note,
            title=f"Media bytes served per day, by type{hosted}",
        ),
        "media-wikis": Result(
            figure=figures.by_key(
                by_wiki,
                "day",
                "host",
                "bytes",
                window,
                note=note or "no media traffic these days",
                in_bytes=True,
            ),
            csv=by_wiki,
            note=note,
        ),
        "top-media": top,
    }


def _top_media(gold: Gold, view: View, day: dt.date) -> Result:
    title = f"Top media files on {day}"
    if not view.facts.get("media_loaded"):
        _, cmd = load_commands(view.now)
        return Result(rows=[], note=f"no media counts loaded: run {cmd}", title=title)
    held = view.facts.get("media_rows_first")
    top_days = view.facts.get("top_media_days")
    hosted = f"files hosted on {', '.join(view.state.wikis)}" if view.state.wikis else "all wikis"
    if held and day >= dt.date.fromisoformat(held):
        got = _run(
            gold,
            view,
            q.TOP_MEDIA_EXACT,
            {"day": day, "wikis": list(view.state.wikis)},
            ttl=PAGE_LEVEL_TTL,
        )
        rows = [
            [rank, Cell(sites.media_name(b), sites.media_url(b)), t, parts.size(n)]
            for rank, (b, t, n) in enumerate(got.rows, 1)
        ]
        note = f"{hosted}; exact counts"
    elif top_days and day >= (view.now - dt.timedelta(days=top_days)).date():
        got = _run(gold, view, q.TOP_MEDIA_ESTIMATED, {"day": day})
        rows = [
            [rank, Cell(sites.media_name(b), sites.media_url(b)), f"≈{parts.count(t)}", ""]
            for rank, (b, t) in enumerate(got.rows, 1)
        ]
        note = (
            "all wikis; ≈ estimates from the day's top-k summary: exact counts need the "
            f"per-file media counts, {_days_text(view.facts.get('media_rows_days'))} from "
            "loading, and this day's are gone"
        )
    else:
        rows = []
        note = f"the days' top media files are {_days_text(top_days)}: {day} is older"
    if not rows and not note.startswith("the days'"):
        note = f"no media counts loaded for {day}"
    return Result(rows=rows, note=note, title=title)


ROW_FUNCTIONS: dict[str, pn.RowFunction] = {
    "views": views_row,
    "edits-views": edits_views_row,
    "attention": attention_row,
    "top-pages": top_pages_row,
    "media": media_row,
}


def build_view(gold: Gold, state: ViewState, config: DashConfig | None = None) -> dict[str, Any]:
    """The whole page for a view, as its callbacks make it (``view``: the View; each
    panel's Result by its key). For tests and benchmarks. Raises Unavailable, NotBuilt,
    NoFiles."""
    out = resolve(gold, state, config or DashConfig())
    return pn.filled(gold, out, *ROW_FUNCTIONS.values())


def register_callbacks(app: Dash, gold: Gold, config: DashConfig) -> Callable[..., Any]:
    """The page's callbacks; returns its layout as the pages router draws it."""
    return pn.register_page(
        app,
        gold,
        PREFIX,
        layout,
        controls.register(app, gold, PREFIX, q.READERS_WIKI_OPTIONS),
        lambda search: render(gold, search, config),
        ROWS,
        ROW_FUNCTIONS,
    )
